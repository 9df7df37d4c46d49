"""What a device's or a link's failure hits: the graph's impact (links, interfaces, devices
cut off) and the services, slices and customers holding resources on any of it
(`GET /api/v1/topology/impact`, the console's "if this fails")."""

from __future__ import annotations

from typing import Any

from oss.daemon import Daemon


async def impact_of(
    daemon: Daemon, *, device: str | None = None, link: int | None = None
) -> dict[str, Any]:
    result = daemon.inventory.graph.impact(device=device, link_id=link).to_dict()
    services = daemon.services
    hit: dict[int, dict[str, Any]] = {}
    for link_id in result["links"]:
        hit.update((s["id"], s) for s in await services.services_on(link_id=link_id))
    for name in [*([device] if device else []), *result["isolated_devices"]]:
        hit.update((s["id"], s) for s in await services.services_on(device=name))
    affected = [hit[k] for k in sorted(hit)]
    result["services"] = [s["name"] for s in affected]
    result["customers"] = sorted({s["customer"] for s in affected})
    result["affected_services"] = affected
    return result
