"""The vendored cytoscape.js is the file its manifest describes, and the fetch script refuses a
tarball that does not match the registry's integrity string."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile

import pytest

from oss.console.manifest import VENDOR_DIR, read_manifest, sha256_of
from oss.console.vendor import MEMBERS, check_integrity, extract


def test_the_committed_files_match_the_manifest() -> None:
    manifest = read_manifest()
    assert manifest.package == "cytoscape"
    assert manifest.version.startswith("3.")
    assert manifest.tarball.endswith(f"/cytoscape-{manifest.version}.tgz")
    assert manifest.integrity.startswith("sha512-")
    assert set(manifest.sha256) == set(MEMBERS.values())
    for name, digest in manifest.sha256.items():
        assert sha256_of((VENDOR_DIR / name).read_bytes()) == digest, name


def _tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_a_matching_tarball_is_extracted() -> None:
    tarball = _tarball({member: member.encode() for member in MEMBERS} | {"package/x.js": b""})
    check_integrity(tarball, _sri(tarball))
    assert extract(tarball) == {name: member.encode() for member, name in MEMBERS.items()}


def test_a_tampered_tarball_is_refused() -> None:
    tarball = _tarball({member: b"original" for member in MEMBERS})
    integrity = _sri(tarball)
    tampered = _tarball({member: b"tampered" for member in MEMBERS})
    with pytest.raises(ValueError, match="integrity mismatch"):
        check_integrity(tampered, integrity)
    with pytest.raises(ValueError, match="unsupported integrity"):
        check_integrity(tarball, "sha1-" + integrity.removeprefix("sha512-"))


def test_a_tarball_without_the_dist_file_is_refused() -> None:
    with pytest.raises(KeyError):
        extract(_tarball({"package/LICENSE": b"MIT"}))
