"""Warnings that say nothing to an operator, silenced where a process starts (`oss`, the lab).

asyncssh (2.24) names cryptography's DSA classes in its type hints, and cryptography (51 here)
warns at every such access that DSA is deprecated: five lines of CryptographyDeprecationWarning
in the daemon's log and before every `oss lab` command's output. Nothing here uses DSA keys
(the lab and the drivers use Ed25519, ECDSA and RSA), so only that category from asyncssh's
modules is ignored; any other warning still shows.
"""

from __future__ import annotations

import warnings


def silence_known_warnings() -> None:
    from cryptography.utils import CryptographyDeprecationWarning

    warnings.filterwarnings(
        "ignore", category=CryptographyDeprecationWarning, module=r"asyncssh(\.|$)"
    )
