"""The BSS's REST routes, owned by the BSS as each netbox app owns its `api/`: the catalogue,
customers, accounts and products, SLA, and the TM Forum APIs TMF622/641 (ordering), TMF635
(usage), TMF638 (service inventory) and TMF678 (bills).

Each module's `router(access)` builds its routes around the dependencies the delivery layer
hands in (`Access`: the request's BSS and the role checks); `oss/api/app.py` includes
`routers(access)`. The TMF conventions (`fields=`, paging, errors) and the project's paging
come from `oss.web`, below both.
"""

from __future__ import annotations

from fastapi import APIRouter

from bss_bridge.api import (
    catalog,
    customers,
    sla,
    tmf_bills,
    tmf_ordering,
    tmf_service_inventory,
    tmf_usage,
)
from bss_bridge.api.access import Access


def routers(access: Access) -> list[APIRouter]:
    """Every BSS router, in the order the API includes them (the OpenAPI document's order)."""
    modules = (sla, tmf_usage, tmf_bills, customers, catalog, tmf_ordering, tmf_service_inventory)
    return [module.router(access) for module in modules]
