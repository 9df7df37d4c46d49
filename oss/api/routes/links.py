"""Links: the edges of the inventory graph, between two interfaces."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from oss.api.deps import DaemonDep, Operator, PageDep, Viewer
from oss.api.schemas import LinkCreate, LinkUpdate, Page
from oss.bounds import Int64
from topology.model import Link, LinkState

router = APIRouter(prefix="/api/v1/links", tags=["links"])


@router.get("", response_model=Page[Link])
async def list_links(
    daemon: DaemonDep,
    _: Viewer,
    page: PageDep,
    device: Annotated[str | None, Query(description="links with an end on this device")] = None,
    state: Annotated[LinkState | None, Query()] = None,
) -> Page[Link]:
    if device is not None:
        daemon.inventory.graph.device(device)
    items = [
        lk for lk in daemon.inventory.graph.links(device) if state is None or lk.state == state
    ]
    return Page.of(items, page)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_link(body: LinkCreate, daemon: DaemonDep, who: Operator) -> Link:
    link = Link(**body.model_dump())
    return await daemon.inventory.add_link(link, actor=who.actor)


@router.get("/{link_id}")
async def get_link(link_id: Int64, daemon: DaemonDep, _: Viewer) -> Link:
    return daemon.inventory.graph.link(link_id)


@router.patch("/{link_id}")
async def update_link(link_id: Int64, body: LinkUpdate, daemon: DaemonDep, who: Operator) -> Link:
    return await daemon.inventory.update_link(
        link_id, body.model_dump(exclude_unset=True), actor=who.actor
    )


@router.delete("/{link_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_link(link_id: Int64, daemon: DaemonDep, who: Operator) -> None:
    await daemon.inventory.remove_link(link_id, actor=who.actor)
