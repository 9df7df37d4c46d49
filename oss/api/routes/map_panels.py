"""The console's side panels: a device or a link with its interfaces (state and latest traffic),
its open alarms, the services and slices on it, and "if this fails": the impact query plus
the monthly revenue of the active products whose services it would hit (the BSS). A few
queries per panel, never one per interface or alarm."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from bss_bridge.revenue import revenue_at_risk
from oss.api.console_schemas import DevicePanel, LinkPanel
from oss.api.deps import DaemonDep, Viewer
from oss.api.impact import impact_of
from oss.api.map_document import UTILISATION_METRICS, UTILISATION_WINDOW, link_state
from oss.api.routes.topology_stream import public
from oss.bounds import Int64
from oss.daemon import Daemon
from oss.store.kpi_latest import latest_kpis
from topology.model import Endpoint, Interface

router = APIRouter(prefix="/api/v1/map", tags=["console"])

RATE_METRICS = ("in-bps", "out-bps")


@router.get("/devices/{name}", summary="A device's side panel, with what its failure would hit")
async def device_panel(name: str, daemon: DaemonDep, _: Viewer) -> DevicePanel:
    graph = daemon.inventory.graph
    device = graph.device(name)
    interfaces = graph.interfaces(name)
    links = graph.links(name)
    services: dict[int, dict[str, Any]] = {}
    for found in await daemon.services.services_on(device=name):
        services[found["id"]] = found
    for link in links:
        for found in await daemon.services.services_on(link_id=link.id):
            services[found["id"]] = found
    return DevicePanel.model_validate(
        {
            "device": public(device),
            "interfaces": await _interfaces(daemon, interfaces),
            "alarms": await daemon.alarms.open_on([("device", name)], interfaces_of=name),
            "services": [services[k] for k in sorted(services)],
            "impact": await _impact(daemon, device=name),
        }
    )


@router.get("/links/{link_id}", summary="A link's side panel, with what its failure would hit")
async def link_panel(link_id: Int64, daemon: DaemonDep, _: Viewer) -> LinkPanel:
    graph = daemon.inventory.graph
    link = graph.link(link_id)
    ends = [graph.interface(end.device, end.interface) for end in link.ends()]
    alarmed = [("link", str(link_id)), *(("interface", str(end)) for end in link.ends())]
    return LinkPanel.model_validate(
        {
            "link": {
                **link.model_dump(mode="json"),
                "effective_state": link_state(graph, link).value,
            },
            "interfaces": await _interfaces(daemon, ends),
            "alarms": await daemon.alarms.open_on(alarmed),
            "services": await daemon.services.services_on(link_id=link_id),
            "impact": await _impact(daemon, link=link_id),
        }
    )


async def _interfaces(daemon: Daemon, interfaces: Iterable[Interface]) -> list[dict[str, Any]]:
    """Each interface with its link and its latest rates and utilisation (one KPI query)."""
    listed = list(interfaces)
    names = [f"{i.device}:{i.name}" for i in listed]
    since = datetime.now(UTC) - UTILISATION_WINDOW
    metrics = (*RATE_METRICS, *UTILISATION_METRICS)
    latest = await latest_kpis(daemon.db, "interface", metrics, since, objects=names)
    graph = daemon.inventory.graph
    documents = []
    for interface, key in zip(listed, names, strict=True):
        kpis = latest.get(key, {})
        shares = [kpis[m] for m in UTILISATION_METRICS if m in kpis]
        carried = graph.link_at(Endpoint(device=interface.device, interface=interface.name))
        documents.append(
            {
                **interface.model_dump(mode="json"),
                "link": carried.id if carried is not None else None,
                "in_bps": kpis.get("in-bps"),
                "out_bps": kpis.get("out-bps"),
                "utilisation": min(1.0, max(shares)) if shares else None,
            }
        )
    return documents


async def _impact(
    daemon: Daemon, *, device: str | None = None, link: int | None = None
) -> dict[str, Any]:
    impact = await impact_of(daemon, device=device, link=link)
    bss = daemon.bss
    impact["revenue_at_risk"] = await revenue_at_risk(bss.db, bss.catalog, impact["services"])
    return impact
