"""Correlation on the topology: one root-cause alarm per failed link or node, with the alarms it
explains correlated under it (`parent_id`) and its impact attached.

- An interface going down on a link raises (once) the link's root-cause alarm, carrying the
  impact from `InventoryGraph.impact(link_id=)` and the services on the link; the interface
  alarms of both ends, the "device unreachable" alarms of the devices cut off behind it and
  one alarm per affected service become its children. The root clears when neither end is
  down any more, and clears with it everything it explains.
- A device becoming unreachable that no open root cause explains is itself a root cause (a node
  failure): the neighbours' interfaces facing it, the link roots of its links, the devices cut
  off behind it and its services' alarms become its children.

The graph and service lookups happen in `context()`, before the alarm transaction opens (the
service inventory reads in its own session); `correlate()` then works in the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from oss.errors import NotFound
from oss.faults.reducer import Signal, moment
from oss.faults.rules import interface_down_key, is_interface_down, is_unreachable, unreachable_key
from oss.faults.transaction import AlarmTx
from oss.store.tables import AlarmRow
from topology.graph import Impact, InventoryGraph, Neighbour
from topology.model import Endpoint, Link

GraphProvider = Callable[[], InventoryGraph]


class ServicesProvider(Protocol):
    """oss.provisioning.services.ServiceManager's impact query."""

    async def services_on(
        self, *, link_id: int | None = None, device: str | None = None
    ) -> list[dict[str, Any]]: ...


def link_root_key(link_id: int) -> str:
    return f"linkFailure:link:{link_id}"


def service_key(service: str) -> str:
    return f"serviceAffected:service:{service}"


@dataclass(frozen=True)
class Context:
    """What the graph and the service inventory say about a signal's object."""

    link: Link | None = None
    impact: Impact | None = None
    services: Sequence[Mapping[str, Any]] = ()
    neighbours: Sequence[Neighbour] = field(default_factory=list)


class Correlator:
    def __init__(self, graph: GraphProvider, services: ServicesProvider) -> None:
        self._graph = graph
        self._services = services

    async def context(self, s: Signal) -> Context:
        graph = self._graph()
        if is_interface_down(s):
            try:
                endpoint = Endpoint.parse(s.object)
            except ValueError:
                return Context()
            link = graph.link_at(endpoint)
            if link is None or link.id is None:
                return Context()
            if s.kind == "clear":
                return Context(link=link)
            services = await self._services.services_on(link_id=link.id)
            return Context(link=link, impact=graph.impact(link_id=link.id), services=services)
        if is_unreachable(s) and s.kind == "raise":
            try:
                impact = graph.impact(device=s.object)
            except NotFound:
                return Context()  # not in the inventory: nothing to correlate with
            services = await self._services.services_on(device=s.object)
            return Context(impact=impact, services=services, neighbours=graph.neighbours(s.object))
        return Context()

    def inert(self, s: Signal, ctx: Context) -> bool:
        """True when `correlate` would change nothing (mirrors its early returns): the alarm
        manager then lets the signal's new alarm wait for its id, batching the inserts."""
        if is_interface_down(s):
            return ctx.link is None or ctx.link.id is None
        if is_unreachable(s):
            return s.kind == "raise" and ctx.impact is None
        return True

    async def correlate(self, tx: AlarmTx, s: Signal, row: AlarmRow | None, ctx: Context) -> None:
        if is_interface_down(s):
            if s.kind == "raise" and row is not None:
                await self._interface_down(tx, s, row, ctx)
            elif s.kind == "clear":
                await self._interface_up(tx, s, ctx)
        elif is_unreachable(s):
            if s.kind == "raise" and row is not None:
                await self._unreachable(tx, s, row, ctx)
            elif s.kind == "clear" and row is not None and row.is_root_cause:
                await tx.clear_tree(row, moment(s.time_ns))

    async def after_manual_clear(self, tx: AlarmTx, row: AlarmRow) -> None:
        """Nothing beyond the cleared tree: the next signal of the object re-raises it."""

    # --- links -------------------------------------------------------------------------------

    async def _interface_down(self, tx: AlarmTx, s: Signal, row: AlarmRow, ctx: Context) -> None:
        link = ctx.link
        if link is None or link.id is None or row.parent_id is not None:
            return  # not on a link, or already correlated (a repeat)
        near = Endpoint.parse(s.object)
        far = link.b if link.a == near else link.a
        far_down = await tx.open_by_key(unreachable_key(far.device))
        if far_down is not None and far_down.is_root_cause:
            tx.adopt(far_down, row)  # the node behind the link failed, not the link
            return
        root = await tx.open_by_key(link_root_key(link.id))
        if root is None:
            root = await self._raise_root(
                tx,
                Signal(
                    kind="raise",
                    reduction_key=link_root_key(link.id),
                    alarm_type="communicationsAlarm",
                    severity="critical",
                    probable_cause="lossOfSignal",
                    specific_problem=f"link {link.id} ({link.a} -- {link.b}) down",
                    object_type="link",
                    object=str(link.id),
                    time_ns=s.time_ns,
                ),
                ctx,
            )
        tx.adopt(root, row)
        far_row = await tx.open_by_key(interface_down_key(far.device, far.interface))
        if far_row is not None:
            tx.adopt(root, far_row)

    async def _interface_up(self, tx: AlarmTx, s: Signal, ctx: Context) -> None:
        link = ctx.link
        if link is None or link.id is None:
            return
        root = await tx.open_by_key(link_root_key(link.id))
        if root is None:
            return
        for end in link.ends():
            if await tx.open_by_key(interface_down_key(end.device, end.interface)) is not None:
                return  # the other end is still down: the link still is
        await tx.clear_tree(root, moment(s.time_ns))

    # --- nodes -------------------------------------------------------------------------------

    async def _unreachable(self, tx: AlarmTx, s: Signal, row: AlarmRow, ctx: Context) -> None:
        if row.parent_id is not None or row.is_root_cause or ctx.impact is None:
            return  # already correlated, or unknown to the inventory
        for root in await tx.open_where(AlarmRow.is_root_cause):
            if root.id != row.id and s.object in (root.impact or {}).get("isolatedDevices", []):
                tx.adopt(root, row)  # cut off behind a failure already known
                return
        self._make_root(tx, row, ctx)
        for nb in ctx.neighbours:
            link_root = await tx.open_by_key(link_root_key(nb.link_id))
            if link_root is not None:
                tx.adopt(row, link_root)  # with the interface alarms under it
            for key in (
                interface_down_key(nb.device, nb.remote_interface),
                interface_down_key(s.object, nb.local_interface),
            ):
                found = await tx.open_by_key(key)
                if found is not None and found.parent_id is None:
                    tx.adopt(row, found)
        await self._adopt_isolated(tx, row, ctx)
        await self._service_alarms(tx, row, ctx, s.time_ns)

    # --- shared ------------------------------------------------------------------------------

    async def _raise_root(self, tx: AlarmTx, s: Signal, ctx: Context) -> AlarmRow:
        services = [dict(svc) for svc in ctx.services]
        root = await tx.raise_(
            s,
            is_root_cause=True,
            service_affecting=_affecting(ctx),
            affected_services=services,
            impact=_impact(ctx),
        )
        await self._adopt_isolated(tx, root, ctx)
        await self._service_alarms(tx, root, ctx, s.time_ns)
        return root

    def _make_root(self, tx: AlarmTx, row: AlarmRow, ctx: Context) -> None:
        row.is_root_cause = True
        row.service_affecting = _affecting(ctx)
        row.affected_services = [dict(svc) for svc in ctx.services]
        row.impact = _impact(ctx)
        tx.changed(row, "changed")

    async def _adopt_isolated(self, tx: AlarmTx, root: AlarmRow, ctx: Context) -> None:
        if ctx.impact is None:
            return
        for device in ctx.impact.isolated_devices:
            found = await tx.open_by_key(unreachable_key(device))
            if found is not None:
                tx.adopt(root, found)

    async def _service_alarms(
        self, tx: AlarmTx, root: AlarmRow, ctx: Context, time_ns: int
    ) -> None:
        cause = f"{root.alarmed_object_type} {root.alarmed_object}"
        for svc in ctx.services:
            name = str(svc.get("name", svc.get("id")))
            existing = await tx.open_by_key(service_key(name))
            if existing is not None and existing.parent_id is not None:
                if existing.parent_id != root.id:
                    tx.add_cause(existing, root)  # down until both failures end
                continue
            child = await tx.raise_(
                Signal(
                    kind="raise",
                    reduction_key=service_key(name),
                    alarm_type="qualityOfServiceAlarm",
                    severity="major",
                    probable_cause="serviceAffected",
                    specific_problem=f"service {name} affected by the failure of {cause}",
                    object_type="service",
                    object=name,
                    time_ns=time_ns,
                    details={"customer": str(svc.get("customer", ""))},
                ),
                service_affecting=True,
                affected_services=[dict(svc)],
                parent_id=root.id,
            )
            tx.adopt(root, child)


def _affecting(ctx: Context) -> bool:
    return bool(ctx.services) or bool(ctx.impact and ctx.impact.isolated_devices)


def _impact(ctx: Context) -> dict[str, Any]:
    impact = ctx.impact
    services = [str(svc.get("name", svc.get("id"))) for svc in ctx.services]
    customers = sorted({str(svc["customer"]) for svc in ctx.services if svc.get("customer")})
    return {
        "target": impact.target if impact else "",
        "links": list(impact.links) if impact else [],
        "isolatedDevices": list(impact.isolated_devices) if impact else [],
        "partitioned": bool(impact and impact.partitioned),
        "services": services,
        "customers": customers,
    }
