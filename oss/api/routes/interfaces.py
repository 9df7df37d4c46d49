"""Interfaces, addressed as /interfaces/{device}/{name}; the name may hold slashes
(ge-0/0/0, ethernet-1/1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from oss.api.deps import DaemonDep, Operator, PageDep, Viewer
from oss.api.schemas import InterfaceUpdate, Page
from topology.model import AdminState, Interface, OperState

router = APIRouter(prefix="/api/v1/interfaces", tags=["interfaces"])


@router.get("", response_model=Page[Interface])
async def list_interfaces(
    daemon: DaemonDep,
    _: Viewer,
    page: PageDep,
    device: Annotated[str | None, Query()] = None,
    admin_state: Annotated[AdminState | None, Query()] = None,
    oper_state: Annotated[OperState | None, Query()] = None,
) -> Page[Interface]:
    if device is not None:
        daemon.inventory.graph.device(device)  # 404 for an unknown device, not an empty page
    items = [
        i
        for i in daemon.inventory.graph.interfaces(device)
        if (admin_state is None or i.admin_state == admin_state)
        and (oper_state is None or i.oper_state == oper_state)
    ]
    return Page.of(items, page)


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
