"""Apply unified diffs to a source tree, like ``patch -p1`` with no fuzz, in pure Python.

Used for the per-package patches of :mod:`.overrides`. No maintained library applies unified
diffs to a tree (``unidiff`` only parses them; ``python-patch`` is abandoned), so this is a
small, strict applier:

- several files per patch and several hunks per file; ``--- a/x`` / ``+++ b/x`` headers with
  the first path component stripped (``-p1``); git headers (``diff --git``, ``index``,
  ``new file mode``, ``deleted file mode``) and any text between files are skipped;
- file creation (``--- /dev/null``) and deletion (``+++ /dev/null``), also in the form
  ``diff -N`` writes them (the missing side dated at the epoch); ``\\ No newline at end of
  file`` markers; CRLF content is matched byte for byte;
- **fuzz 0**: every context and removed line must match exactly. As GNU patch does, a hunk
  may match at another position than its header says (an *offset*): the nearest exact match
  after the previous hunk is taken;
- all or nothing: every file is computed in memory first; if any hunk does not apply, no file
  is touched and :class:`PatchError` names the patch, the file and the hunk (and says when
  the hunk looks already applied);
- refused: paths that are absolute or climb out of the tree (``..``), renames, copies and
  binary patches.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pixi_pack_src.errors import BuildError

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_DEV_NULL = "/dev/null"
_EPOCH_STAMPS = ("1970-01-01 ", "1969-12-31 ")


class PatchError(BuildError):
    """A patch that is malformed or does not apply (exit code 4, like other build failures)."""


@dataclass
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    header_line: int  # 1-based line of the ``@@`` header in the patch file
    old: list[bytes] = field(default_factory=list)  # lines with their line ends
    new: list[bytes] = field(default_factory=list)


@dataclass
class FilePatch:
    old_path: str | None  # None for /dev/null
    new_path: str | None
    hunks: list[Hunk] = field(default_factory=list)
    executable: bool = False  # ``new file mode 100755``

    @property
    def display(self) -> str:
        return self.new_path or self.old_path or "?"


def _header_path(raw: bytes, strip: int, what: str, line_no: int) -> tuple[str | None, bool]:
    """The stripped path of a ``---``/``+++`` line (None: /dev/null) and whether it is dated
    at the epoch (how ``diff -N`` marks a missing file)."""
    text = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
    epoch = False
    if "\t" in text:
        text, stamp = text.split("\t", 1)
        epoch = stamp.strip().startswith(_EPOCH_STAMPS)
    text = text.strip()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        try:
            text = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise PatchError(
                f"{what}: line {line_no}: cannot read the quoted path {text}"
            ) from None
    if text == _DEV_NULL:
        return None, False
    parts = [p for p in PurePosixPath(text).parts if p != "/"]
    if text.startswith("/") or ".." in parts:
        raise PatchError(f"{what}: line {line_no}: refusing the path {text!r} (outside the tree)")
    if len(parts) <= strip:
        raise PatchError(f"{what}: line {line_no}: the path {text!r} has no component to keep")
    return "/".join(parts[strip:]), epoch


def _line_body(line: bytes) -> bytes:
    """A hunk line without its one-character prefix, with a newline guaranteed."""
    body = line[1:]
    return body if body.endswith(b"\n") else body + b"\n"


def _strip_newline(lines: list[bytes]) -> None:
    if lines and lines[-1].endswith(b"\n"):
        lines[-1] = lines[-1][:-1]


def parse_patch(data: bytes, *, strip: int = 1, what: str = "patch") -> list[FilePatch]:
    """Parse a unified diff into file patches (``strip`` leading path components removed)."""
    lines = data.splitlines(keepends=True)
    files: list[FilePatch] = []
    executable_next = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"new file mode ") and line.strip().endswith(b"755"):
            executable_next = True
        elif line.startswith((b"rename from ", b"copy from ")):
            raise PatchError(f"{what}: line {i + 1}: renames and copies are not supported")
        elif line.startswith((b"GIT binary patch", b"Binary files ")):
            raise PatchError(f"{what}: line {i + 1}: binary patches are not supported")
        if not (
            line.startswith(b"--- ") and i + 1 < len(lines) and lines[i + 1].startswith(b"+++ ")
        ):
            if line.startswith(b"diff "):
                executable_next = False
            i += 1
            continue
        old_path, old_epoch = _header_path(line[4:], strip, what, i + 1)
        new_path, new_epoch = _header_path(lines[i + 1][4:], strip, what, i + 2)
        fp = FilePatch(old_path=old_path, new_path=new_path, executable=executable_next)
        executable_next = False
        if fp.old_path is None and fp.new_path is None:
            raise PatchError(f"{what}: line {i + 1}: both sides of a file are /dev/null")
        header_line = i + 1
        i += 2
        while i < len(lines):
            m = _HUNK.match(lines[i])
            if m is None:
                break
            hunk = Hunk(
                old_start=int(m.group(1)),
                old_count=int(m.group(2)) if m.group(2) is not None else 1,
                new_start=int(m.group(3)),
                new_count=int(m.group(4)) if m.group(4) is not None else 1,
                header_line=i + 1,
            )
            i += 1
            old_left, new_left = hunk.old_count, hunk.new_count
            last: list[list[bytes]] = []
            while old_left > 0 or new_left > 0:
                if i >= len(lines):
                    raise PatchError(
                        f"{what}: hunk at line {hunk.header_line} of {fp.display} is truncated"
                    )
                body = lines[i]
                tag = body[:1]
                if body in (b"\n", b"\r\n"):  # an empty context line whose space was stripped
                    tag, body = b" ", b" " + body
                if tag == b" ":
                    hunk.old.append(_line_body(body))
                    hunk.new.append(_line_body(body))
                    old_left -= 1
                    new_left -= 1
                    last = [hunk.old, hunk.new]
                elif tag == b"-":
                    hunk.old.append(_line_body(body))
                    old_left -= 1
                    last = [hunk.old]
                elif tag == b"+":
                    hunk.new.append(_line_body(body))
                    new_left -= 1
                    last = [hunk.new]
                elif tag == b"\\":
                    for side in last:
                        _strip_newline(side)
                else:
                    raise PatchError(
                        f"{what}: line {i + 1}: unexpected {body[:20]!r} inside the hunk at "
                        f"line {hunk.header_line} of {fp.display}"
                    )
                if old_left < 0 or new_left < 0:
                    raise PatchError(
                        f"{what}: the hunk at line {hunk.header_line} of {fp.display} has more "
                        "lines than its header says"
                    )
                i += 1
            while i < len(lines) and lines[i].startswith(b"\\"):
                for side in last:
                    _strip_newline(side)
                i += 1
            fp.hunks.append(hunk)
        if not fp.hunks and not (fp.old_path is None or fp.new_path is None):
            raise PatchError(f"{what}: no hunk for {fp.display}")
        if old_epoch and fp.hunks and all(h.old_count == 0 for h in fp.hunks):
            fp.old_path = None  # created (diff -N)
        elif new_epoch and fp.hunks and all(h.new_count == 0 for h in fp.hunks):
            fp.new_path = None  # deleted (diff -N)
        if fp.old_path is None and fp.new_path is None:
            raise PatchError(f"{what}: line {header_line}: both sides of a file are missing")
        files.append(fp)
    if not files:
        raise PatchError(f"{what}: no file changes found (is it a unified diff?)")
    return files


def _matches_at(content: list[bytes], pos: int, lines: list[bytes]) -> bool:
    return (
        pos >= 0 and pos + len(lines) <= len(content) and content[pos : pos + len(lines)] == lines
    )


def _find(content: list[bytes], lines: list[bytes], expected: int, lowest: int) -> int | None:
    """The match position nearest to ``expected`` that is ``>= lowest`` (GNU patch's offset)."""
    if not lines:
        return max(min(expected, len(content)), lowest) if lowest <= len(content) else None
    span = max(len(content), expected) + 1
    for delta in range(span + 1):
        for pos in (expected + delta, expected - delta) if delta else (expected,):
            if pos >= lowest and _matches_at(content, pos, lines):
                return pos
    return None


def _apply_hunks(content: list[bytes], fp: FilePatch, what: str) -> tuple[list[bytes], list[int]]:
    out: list[bytes] = []
    cursor = 0  # index in content of the first line not yet copied
    offset = 0
    offsets: list[int] = []
    for number, hunk in enumerate(fp.hunks, start=1):
        start = hunk.old_start - 1 if hunk.old_count else hunk.old_start
        expected = start + offset
        pos = _find(content, hunk.old, expected, cursor)
        if pos is None:
            reverse = _find(content, hunk.new, expected, 0) if hunk.new != hunk.old else None
            note = " (it looks already applied)" if reverse is not None and hunk.new else ""
            raise PatchError(
                f"patch {what} does not apply: hunk #{number} of {fp.display} "
                f"(line {hunk.old_start}, patch line {hunk.header_line}) does not match{note}",
                hint="update the patch for this version of the package (fuzz 0: every context "
                "line must match)",
            )
        offsets.append(pos - start)
        offset = pos - start
        out.extend(content[cursor:pos])
        out.extend(hunk.new)
        cursor = pos + len(hunk.old)
    out.extend(content[cursor:])
    return out, offsets


@dataclass(frozen=True)
class AppliedPatch:
    """What one patch changed: relative paths, and the offsets GNU patch would report."""

    changed: tuple[str, ...]
    created: tuple[str, ...]
    deleted: tuple[str, ...]
    offsets: tuple[int, ...]


def apply_patch(
    patch_file: Path, tree: Path, *, strip: int = 1, label: str | None = None
) -> AppliedPatch:
    """Apply ``patch_file`` to the directory ``tree`` (all or nothing)."""
    what = label or patch_file.name
    try:
        data = patch_file.read_bytes()
    except OSError as exc:
        raise PatchError(f"cannot read patch {patch_file}: {exc.strerror or exc}") from exc
    return apply_patch_bytes(data, tree, strip=strip, what=what)


def apply_patch_bytes(data: bytes, tree: Path, *, strip: int = 1, what: str) -> AppliedPatch:
    """Apply the unified diff ``data`` to ``tree`` (see :func:`apply_patch`)."""
    root = tree.resolve()
    results: dict[str, bytes | None] = {}
    modes: dict[str, bool] = {}
    created: list[str] = []
    deleted: list[str] = []
    changed: list[str] = []
    offsets: list[int] = []
    for fp in parse_patch(data, strip=strip, what=what):
        rel = fp.old_path if fp.old_path is not None and fp.new_path is not None else None
        if rel is not None and not (root / rel).exists() and (root / str(fp.new_path)).exists():
            rel = fp.new_path
        target_rel = rel or fp.new_path or fp.old_path
        assert target_rel is not None
        target = (root / target_rel).resolve()
        if not target.is_relative_to(root):
            raise PatchError(f"patch {what}: {target_rel} points outside the source tree")
        if target_rel in results:
            current = results[target_rel]
            content = [] if current is None else current.splitlines(keepends=True)
            exists = current is not None
        elif target.is_file():
            content = target.read_bytes().splitlines(keepends=True)
            exists = True
        else:
            content, exists = [], False
        if fp.old_path is None:  # creation
            if exists and content:
                raise PatchError(
                    f"patch {what} does not apply: it creates {target_rel}, which already exists",
                    hint="update the patch for this version of the package",
                )
        elif not exists:
            raise PatchError(
                f"patch {what} does not apply: {target_rel} does not exist in the source tree",
                hint="update the patch for this version of the package",
            )
        new_content, hunk_offsets = _apply_hunks(content, fp, what)
        offsets.extend(hunk_offsets)
        if fp.new_path is None:  # deletion
            if new_content:
                raise PatchError(
                    f"patch {what} does not apply: deleting {target_rel} leaves content behind"
                )
            results[target_rel] = None
            deleted.append(target_rel)
        else:
            results[target_rel] = b"".join(new_content)
            (created if fp.old_path is None else changed).append(target_rel)
            if fp.executable:
                modes[target_rel] = True
    for rel, data_out in results.items():
        path = root / rel
        if data_out is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data_out)
        if modes.get(rel):
            path.chmod(path.stat().st_mode | 0o111)
    return AppliedPatch(
        changed=tuple(changed),
        created=tuple(created),
        deleted=tuple(deleted),
        offsets=tuple(offsets),
    )
