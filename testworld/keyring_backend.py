"""A file-backed keyring backend for tests: what ``pixi auth login`` would have stored in the OS
keyring, kept in a JSON file instead.

Select it with ``PYTHON_KEYRING_BACKEND=testworld.keyring_backend.JsonFileKeyring`` (works in
subprocesses, with ``TESTWORLD_KEYRING_FILE`` naming the file) or in-process with
:func:`use_file_keyring`. Entries are stored the way rattler's keyring storage writes them:
service ``rattler``, user name = the host (or ``s3://bucket``), password = the credential's JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

ENV_FILE = "TESTWORLD_KEYRING_FILE"
SERVICE = "rattler"


class JsonFileKeyring(KeyringBackend):
    """Passwords in a JSON file ``{service: {username: password}}``."""

    priority = 1

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.path = path if path is not None else Path(os.environ.get(ENV_FILE, "keyring.json"))
        self.reads: list[tuple[str, str]] = []  # (service, username) asked for, in order

    def _load(self) -> dict[str, dict[str, str]]:
        if not self.path.is_file():
            return {}
        data: dict[str, dict[str, str]] = json.loads(self.path.read_text(encoding="utf-8"))
        return data

    def get_password(self, service: str, username: str) -> str | None:
        self.reads.append((service, username))
        return self._load().get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data.setdefault(service, {})[username] = password
        self.path.write_text(json.dumps(data), encoding="utf-8")
        self.path.chmod(0o600)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if username not in data.get(service, {}):
            raise PasswordDeleteError(username)
        del data[service][username]
        self.path.write_text(json.dumps(data), encoding="utf-8")


def store(path: Path, entries: Mapping[str, Mapping[str, object]]) -> None:
    """Write rattler credentials (``{host: {"BearerToken": ...}}``) into the keyring file."""
    backend = JsonFileKeyring(path)
    for host, credential in entries.items():
        backend.set_password(SERVICE, host, json.dumps(credential))


@contextmanager
def use_file_keyring(path: Path) -> Iterator[JsonFileKeyring]:
    """Make :class:`JsonFileKeyring` on ``path`` the process's keyring for the block."""
    previous = keyring.get_keyring()
    backend = JsonFileKeyring(path)
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
