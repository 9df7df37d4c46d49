"""Interfaces, addressed as /interfaces/{device}/{name}; the name may hold slashes
(ge-0/0/0, ethernet-1/1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from oss.api.deps import CursorPageDep, DaemonDep, Operator, Viewer
from oss.api.listing import interfaces_page
from oss.api.schemas import CursorPage, InterfaceUpdate
from topology.model import AdminState, Interface, OperState

router = APIRouter(prefix="/api/v1/interfaces", tags=["interfaces"])


@router.get(
    "",
    response_model=CursorPage[Interface],
    description="Interfaces in (device, name) order, paged by `cursor` (or `offset`).",
)
async def list_interfaces(
    daemon: DaemonDep,
    _: Viewer,
    page: CursorPageDep,
    device: Annotated[str | None, Query()] = None,
    admin_state: Annotated[AdminState | None, Query()] = None,
    oper_state: Annotated[OperState | None, Query()] = None,
) -> Response:
    graph = daemon.inventory.graph
    after = page.after("interfaces", 2)
    if device is not None:
        graph.device(device)  # 404 for an unknown device, not an empty page

    def wanted(i: Interface) -> bool:
        return (admin_state is None or i.admin_state == admin_state) and (
            oper_state is None or i.oper_state == oper_state
        )

    resume = (after[0], after[1]) if after else None
    resumed: Iterator[Interface] = graph.interfaces_after(resume, device)
    if admin_state is None and oper_state is None:
        total = graph.interface_count() if device is None else len(graph.interfaces(device))
    else:  # the total counts the whole filtered list, not only what follows the cursor
        total = sum(1 for i in graph.interfaces_after(None, device) if wanted(i))
        resumed = filter(wanted, resumed)
    found = CursorPage[Interface].window(
        resumed, page, total=total, listing="interfaces", key=lambda i: (i.device, i.name)
    )
    return interfaces_page(found, graph)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_interface(interface: Interface, daemon: DaemonDep, who: Operator) -> Interface:
    return await daemon.inventory.add_interface(interface, actor=who.actor)


@router.get("/{device}/{name:path}")
async def get_interface(device: str, name: str, daemon: DaemonDep, _: Viewer) -> Interface:
    return daemon.inventory.graph.interface(device, name)


@router.patch("/{device}/{name:path}")
async def update_interface(
    device: str, name: str, body: InterfaceUpdate, daemon: DaemonDep, who: Operator
) -> Interface:
    return await daemon.inventory.update_interface(
        device, name, body.model_dump(exclude_unset=True), actor=who.actor
    )


@router.delete("/{device}/{name:path}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_interface(device: str, name: str, daemon: DaemonDep, who: Operator) -> None:
    await daemon.inventory.remove_interface(device, name, actor=who.actor)
