"""``redact.redact_text``: credentials in any URL inside any text, and nothing else."""

from __future__ import annotations

import io

import pytest

from pixi_pack_src.redact import RedactingStream, redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "git fetch http://bob:hunter2@127.0.0.1:9/x.git failed",
            "git fetch http://bob:********@127.0.0.1:9/x.git failed",
        ),
        ("https://ghp_token@github.com/o/r", "https://********@github.com/o/r"),
        ("git+https://u:p@h/r.git@0123abcd", "git+https://u:********@h/r.git@0123abcd"),
        (
            "https://conda.example/t/tk-123/conda-forge/noarch/a.conda",
            "https://conda.example/t/********/conda-forge/noarch/a.conda",
        ),
        ("https://h/x.whl?X-Amz-Signature=abc&v=1", "https://h/x.whl?X-Amz-Signature=********&v=1"),
        (
            "'http://u:p@h/a' and \"https://v:q@i/b\"",
            "'http://u:********@h/a' and \"https://v:********@i/b\"",
        ),
        ("user@example.com wrote a:b@c", "user@example.com wrote a:b@c"),  # not URLs
        ("no url here", "no url here"),
        ("http://h/path@v1.0/file", "http://h/path@v1.0/file"),  # '@' after the host
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # idempotent


def test_a_redacting_stream_writes_redacted_text() -> None:
    sink = io.StringIO()
    stream = RedactingStream(sink)
    assert stream.write("from http://a:secret@h/x\n") == len("from http://a:secret@h/x\n")
    assert sink.getvalue() == "from http://a:********@h/x\n"
    assert stream.closed is False  # everything else is delegated
