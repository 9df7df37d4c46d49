"""Test PKI made with the `openssl` command: a CA, a server certificate for loopback addresses,
a client certificate for mTLS, and a second, unrelated CA (to prove verification happens)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path

    def server_tls(self, *, require_client_cert: bool) -> tuple[bytes, bytes, bytes | None]:
        """(cert, key, client CA) as `start_gnmi_server(tls=...)` takes them."""
        client_ca = self.ca.read_bytes() if require_client_cert else None
        return self.server_cert.read_bytes(), self.server_key.read_bytes(), client_ca


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(name: str, cwd: Path) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign,cRLSign",
        cwd=cwd,
    )  # fmt: skip


def _leaf(name: str, ca: str, extensions: str, cwd: Path) -> None:
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=cwd,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
        cwd=cwd,
    )  # fmt: skip


@contextmanager
def make_pki(server_ips: tuple[str, ...] = ("127.10.0.1", "127.0.0.1")) -> Iterator[Pki]:
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command is missing (Debian package openssl)")
    base = Path(tempfile.mkdtemp(prefix="oss-pki-"))
    try:
        _ca("ca", base)
        _ca("other-ca", base)
        sans = ",".join([*(f"IP:{ip}" for ip in server_ips), "DNS:localhost"])
        _leaf("server", "ca", f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n", base)
        _leaf("client", "ca", "extendedKeyUsage=clientAuth\n", base)
        yield Pki(
            directory=base,
            ca=base / "ca.pem",
            server_cert=base / "server.pem",
            server_key=base / "server.key",
            client_cert=base / "client.pem",
            client_key=base / "client.key",
            other_ca=base / "other-ca.pem",
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
