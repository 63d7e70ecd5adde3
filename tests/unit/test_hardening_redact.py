"""``redact.redact_text``: credentials in any URL inside any text, and nothing else."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pixi_pack_src.redact import RedactingStream, redact_text, redact_url


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


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (  # issue 18 item 9: an Azure SAS and an `auth` parameter
            "https://acct.blob.core.windows.net/c/a-1.0-0.tar.bz2?sv=2022-11-02&se=2030-01-01"
            "&sp=r&sig=SECRET&auth=SECRET2",
            "https://acct.blob.core.windows.net/c/a-1.0-0.tar.bz2?sv=********&se=********"
            "&sp=********&sig=********&auth=********",
        ),
        (  # S3 pre-signed
            "https://b.s3.amazonaws.com/a.conda?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIA%2F20250101&X-Amz-Date=20250101T000000Z&X-Amz-Expires=60"
            "&X-Amz-SignedHeaders=host&X-Amz-Security-Token=tok&X-Amz-Signature=abc",
            "https://b.s3.amazonaws.com/a.conda?X-Amz-Algorithm=********"
            "&X-Amz-Credential=********&X-Amz-Date=********&X-Amz-Expires=********"
            "&X-Amz-SignedHeaders=********&X-Amz-Security-Token=********"
            "&X-Amz-Signature=********",
        ),
        (  # GCS signed
            "https://storage.googleapis.com/b/a.whl?X-Goog-Algorithm=GOOG4-RSA-SHA256"
            "&X-Goog-Credential=sa%40p.iam&X-Goog-Signature=0a1b",
            "https://storage.googleapis.com/b/a.whl?X-Goog-Algorithm=********"
            "&X-Goog-Credential=********&X-Goog-Signature=********",
        ),
        (  # CloudFront, legacy S3, generic names
            "https://d.cloudfront.net/a.conda?Policy=p&Signature=s&Key-Pair-Id=k"
            "&AWSAccessKeyId=a&Expires=1&token=t&api_key=x&access_token=y&code=z",
            "https://d.cloudfront.net/a.conda?Policy=********&Signature=********"
            "&Key-Pair-Id=********&AWSAccessKeyId=********&Expires=1&token=********"
            "&api_key=********&access_token=********&code=********",
        ),
        # without `sig`, `sp`/`se` are ordinary parameters; a fragment and blanks are kept
        ("https://h/x?sp=1&se=2&v=#frag", "https://h/x?sp=1&se=2&v=#frag"),
        ("https://h/t/tk/x?token=a#f", "https://h/t/********/x?token=********#f"),
        ("http://u:p@[::1", "http://********@[::1"),
    ],
)
def test_signed_url_parameters_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_url(shown) == shown
    assert redact_text(f'"source": "{url}",') == f'"source": "{shown}",'


def test_one_redactor() -> None:
    """redact.py is the only home of the secret rules: no other module has its own."""
    import pixi_pack_src

    root = Path(pixi_pack_src.__file__).parent
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.name != "redact.py"
        and ("signature|credential" in p.read_text() or "********" in p.read_text())
    ]
    assert offenders == []
