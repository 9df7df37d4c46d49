"""Sites: where devices live."""

from __future__ import annotations

from fastapi import APIRouter, status

from oss.api.deps import DaemonDep, Operator, PageDep, Viewer
from oss.api.schemas import Page, SiteUpdate
from topology.model import Site

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])


@router.get("", response_model=Page[Site])
async def list_sites(daemon: DaemonDep, _: Viewer, page: PageDep) -> Page[Site]:
    return Page.of(daemon.inventory.graph.sites(), page)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_site(site: Site, daemon: DaemonDep, who: Operator) -> Site:
    return await daemon.inventory.add_site(site, actor=who.actor)


@router.get("/{name}")
async def get_site(name: str, daemon: DaemonDep, _: Viewer) -> Site:
    return daemon.inventory.graph.site(name)


@router.patch("/{name}")
async def update_site(name: str, body: SiteUpdate, daemon: DaemonDep, who: Operator) -> Site:
    return await daemon.inventory.update_site(
        name, body.model_dump(exclude_unset=True), actor=who.actor
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_site(name: str, daemon: DaemonDep, who: Operator) -> None:
    await daemon.inventory.remove_site(name, actor=who.actor)
