"""`python -m oss.console.vendor [VERSION]` (`make vendor-js`): fetch cytoscape.js from the npm
registry, check the tarball against the registry's sha512 integrity, extract its dist file and
licence into `static/vendor/` and write the manifest (version, tarball URL, integrity, the
file's sha256) that `tests/unit/console/test_vendor.py` checks the committed file against.

The console loads nothing from a CDN at run time (NOC networks are often offline): this is the
one moment the library crosses the network, by hand, reproducibly.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile

import httpx

from oss.console.manifest import SCRIPT, VENDOR_DIR, Manifest, sha256_of

PACKAGE = "cytoscape"
REGISTRY = "https://registry.npmjs.org"
# tarball member -> file written in VENDOR_DIR
MEMBERS = {f"package/dist/{SCRIPT}": SCRIPT, "package/LICENSE": "LICENSE"}


def check_integrity(data: bytes, integrity: str) -> None:
    """Raise ValueError unless `data` matches the SRI string (`sha512-<base64>`)."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512" or not expected:
        raise ValueError(f"unsupported integrity {integrity!r}: expected sha512-<base64>")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise ValueError(f"tarball integrity mismatch: registry says {expected}, got {actual}")


def extract(tarball: bytes) -> dict[str, bytes]:
    """The files of MEMBERS, by their vendored name; read without extracting anything else."""
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member, name in MEMBERS.items():
            handle = tar.extractfile(member)
            if handle is None:
                raise ValueError(f"{member}: not a regular file in the tarball")
            found[name] = handle.read()
    return found


def fetch(version: str | None, client: httpx.Client) -> tuple[Manifest, dict[str, bytes]]:
    """The registry's metadata for VERSION (default: the `latest` dist-tag), its checked
    tarball's files, and the manifest describing them."""
    meta = client.get(f"{REGISTRY}/{PACKAGE}/{version or 'latest'}")
    meta.raise_for_status()
    doc = meta.json()
    dist = doc["dist"]
    tarball = client.get(dist["tarball"])
    tarball.raise_for_status()
    check_integrity(tarball.content, dist["integrity"])
    files = extract(tarball.content)
    manifest = Manifest(
        package=PACKAGE,
        version=doc["version"],
        tarball=dist["tarball"],
        integrity=dist["integrity"],
        sha256={name: sha256_of(data) for name, data in sorted(files.items())},
    )
    return manifest, files


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    version = args[0] if args else None
    with httpx.Client(timeout=60, follow_redirects=True) as client:
        manifest, files = fetch(version, client)
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (VENDOR_DIR / name).write_bytes(data)
    manifest.write()
    print(f"{PACKAGE} {manifest.version}: {manifest.integrity} verified, files in {VENDOR_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
