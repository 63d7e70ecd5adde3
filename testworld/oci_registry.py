"""The reference OCI distribution registry (Debian's ``docker-registry``) on 127.0.0.1, over TLS.

rattler's OCI middleware only speaks ``https://<host>/v2/...`` and (py-rattler 0.28) drops the
port of an ``oci://host:port/`` URL, so the registry listens on port 443 of a loopback address
(127.0.0.1, or another 127.x.y.z when 443 is taken there) and serves TLS with a certificate from
a throw-away CA (``trustme``); :attr:`OciRegistry.ca_file` is the CA bundle a client must trust
(``SSL_CERT_FILE``). Binding port 443 needs root (or ``CAP_NET_BIND_SERVICE``, or a low
``net.ipv4.ip_unprivileged_port_start``): :func:`unavailable` says so when it cannot.

Conda packages are pushed with an OCI client (``oras``) the way ghcr.io/channel-mirrors lays
them out (rattler's ``oci_middleware.rs``): the file ``<subdir>/<name>-<version>-<build>.conda``
of channel ``<prefix>`` is the repository ``<prefix>/<subdir>/<name>`` (a name starting with
``_`` gets a ``zzz`` prefix), tagged ``<version>-<build>`` (``+`` -> ``__p__``, ``!`` ->
``__e__``, ``=`` -> ``__eq__``), with one layer of media type
``application/vnd.conda.package.v2`` (``.conda``) or ``...v1`` (``.tar.bz2``).

:func:`unavailable` says why the registry cannot run here (no binary), for a visible skip.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

from testworld.service import Service

BINARY_NAMES = ("docker-registry", "registry")
MEDIA_TYPES = {
    ".conda": "application/vnd.conda.package.v2",
    ".tar.bz2": "application/vnd.conda.package.v1",
}


def binary() -> str | None:
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def unavailable() -> str | None:
    """Why the registry cannot be started here, or ``None``."""
    if binary() is None:
        return "the OCI registry is not installed (Debian package docker-registry; scripts/test installs it)"
    try:
        import oras.client  # noqa: F401
        import trustme  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[test]')"
    try:
        _free_address()
    except (RuntimeError, PermissionError) as exc:
        return f"the OCI registry must listen on port 443 (rattler's OCI client drops ports): {exc}"
    return None


def _free_address() -> str:
    """A loopback address whose port 443 is free: 127.0.0.1 first, else 127.x.y.z."""
    rng = random.Random()
    candidates = ["127.0.0.1"] + [
        f"127.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}.{rng.randrange(2, 255)}"
        for _ in range(20)
    ]
    for address in candidates:
        with socket.socket() as sock:
            try:
                sock.bind((address, 443))
            except OSError:
                continue
            return address
    raise RuntimeError("no loopback address with a free port 443")


def tag_for(version: str, build: str) -> str:
    return f"{version}-{build}".replace("+", "__p__").replace("!", "__e__").replace("=", "__eq__")


def repository_for(prefix: str, subdir: str, file_name: str) -> tuple[str, str, str]:
    """``(repository, tag, media type)`` of a conda file in the channel mirror ``prefix``."""
    suffix = next((s for s in MEDIA_TYPES if file_name.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"not a conda package file: {file_name}")
    media_type = MEDIA_TYPES[suffix]
    stem = file_name[: -len(suffix)]
    name, version, build = stem.rsplit("-", 2)
    if name.startswith("_"):
        name = "zzz" + name
    return f"{prefix.strip('/')}/{subdir}/{name}", tag_for(version, build), media_type


class OciRegistry(Service):
    """``docker-registry serve`` on 127.0.0.1:<free port> with TLS, storage under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.address = "127.0.0.1"
        self._proc: subprocess.Popen[bytes] | None = None
        self.ca_file = root / "ca.pem"

    @property
    def host(self) -> str:
        return self.address

    def start(self) -> Self:
        import trustme

        exe = binary()
        if exe is None:
            raise RuntimeError(unavailable() or "no registry binary")
        self.root.mkdir(parents=True, exist_ok=True)
        self.address = _free_address()
        ca = trustme.CA()
        cert = ca.issue_cert(self.address)
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert_file, key_file = self.root / "cert.pem", self.root / "key.pem"
        cert.private_key_pem.write_to_path(str(key_file))
        for i, blob in enumerate(cert.cert_chain_pems):
            blob.write_to_path(str(cert_file), append=i > 0)
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'storage'}\n"
            f"http:\n  addr: {self.address}:443\n"
            f"  tls:\n    certificate: {cert_file}\n    key: {key_file}\n",
            encoding="utf-8",
        )
        log = (self.root / "registry.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self._proc = subprocess.Popen(
            [exe, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    "docker-registry exited: "
                    + (self.root / "registry.log").read_text(errors="replace")[-2000:]
                )
            try:
                with socket.create_connection((self.address, 443), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("docker-registry did not start within 30 s")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def push_conda(self, prefix: str, subdir: str, package: Path) -> str:
        """Push ``package`` as the mirror ``prefix`` does; returns ``repository:tag``."""
        import oras.client

        repository, tag, media_type = repository_for(prefix, subdir, package.name)
        client = oras.client.OrasClient(hostname=self.host, tls_verify=str(self.ca_file))
        target = f"{self.host}/{repository}:{tag}"
        client.push(
            target=target,
            files=[f"{package}:{media_type}"],
            disable_path_validation=True,
            quiet=True,
        )
        return f"{repository}:{tag}"

    def url(self, prefix: str) -> str:
        """The ``oci://`` mirror URL of channel mirror ``prefix``."""
        return f"oci://{self.host}/{prefix.strip('/')}"
