"""What the delivery layer hands the BSS's routes: the FastAPI dependencies it owns.

`bss_bridge` sits below `oss.api` (import-linter's layers), so its routes cannot import the
API's dependencies; `oss/api/app.py` passes them in instead (`bss_bridge.api.routers`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bss_bridge.bridge import Bss
from oss.auth import Principal


@dataclass(frozen=True)
class Access:
    bss: Callable[..., Bss]  # the BSS of the daemon serving the request
    viewer: Callable[..., Awaitable[Principal]]  # the caller, refused (401/403) below viewer
    operator: Callable[..., Awaitable[Principal]]  # the caller, refused below operator
