"""The vendored cytoscape.js's manifest (`static/vendor/manifest.json`): its version, the npm
tarball it came from, the registry's integrity string and each extracted file's sha256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
MANIFEST = VENDOR_DIR / "manifest.json"
SCRIPT = "cytoscape.min.js"


@dataclass(frozen=True)
class Manifest:
    package: str
    version: str
    tarball: str
    integrity: str  # the registry's Subresource-Integrity string of the tarball (sha512-...)
    sha256: dict[str, str]  # file written -> its sha256, hex

    def write(self, path: Path = MANIFEST) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")


def read_manifest(path: Path = MANIFEST) -> Manifest:
    return Manifest(**json.loads(path.read_text()))


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
