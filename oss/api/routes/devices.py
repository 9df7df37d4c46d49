"""Devices: the nodes of the inventory graph."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from drivers.credentials import check_reference
from drivers.platforms import check_platform_name
from oss.api.deps import CursorPageDep, DaemonDep, Operator, Viewer
from oss.api.listing import devices_page
from oss.api.schemas import CursorPage, DeviceInclude, DeviceUpdate, DeviceWithInterfaces
from oss.daemon import Daemon
from oss.faults.alarms import DEVICE_REMOVED
from topology.model import Device, DeviceState

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get(
    "",
    response_model=CursorPage[DeviceWithInterfaces | Device],
    description="Devices in name order (`r9` before `r10`), paged by `cursor` (or `offset`).",
)
async def list_devices(
    daemon: DaemonDep,
    _: Viewer,
    page: CursorPageDep,
    role: Annotated[str | None, Query()] = None,
    site: Annotated[str | None, Query()] = None,
    platform: Annotated[str | None, Query()] = None,
    state: Annotated[DeviceState | None, Query()] = None,
    include: Annotated[
        DeviceInclude | None,
        Query(description="`interfaces`: each device with its interfaces, in name order"),
    ] = None,
) -> Response:
    graph = daemon.inventory.graph
    after = page.after("devices", 1)

    def wanted(d: Device) -> bool:
        return (
            (role is None or d.role == role)
            and (site is None or d.site == site)
            and (platform is None or d.platform == platform)
            and (state is None or d.state == state)
        )

    resumed: Iterator[Device] = graph.devices_after(after[0] if after else None)
    if all(f is None for f in (role, site, platform, state)):
        total = graph.counts()["devices"]
    else:  # the total counts the whole filtered list, not only what follows the cursor
        total = sum(1 for d in graph.devices_after() if wanted(d))
        resumed = filter(wanted, resumed)
    found = CursorPage[Device].window(
        resumed, page, total=total, listing="devices", key=lambda d: (d.name,)
    )
    return devices_page(found, graph, with_interfaces=include is DeviceInclude.INTERFACES)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_device(device: Device, daemon: DaemonDep, who: Operator) -> Device:
    check_platform_name(device.platform)
    _check_credentials(device.credentials_ref, daemon)
    return await daemon.inventory.add_device(device, actor=who.actor)


@router.get("/{name}")
async def get_device(name: str, daemon: DaemonDep, _: Viewer) -> Device:
    return daemon.inventory.graph.device(name)


@router.patch("/{name}")
async def update_device(name: str, body: DeviceUpdate, daemon: DaemonDep, who: Operator) -> Device:
    if body.platform is not None:
        check_platform_name(body.platform)
    _check_credentials(body.credentials_ref, daemon)
    return await daemon.inventory.update_device(
        name, body.model_dump(exclude_unset=True), actor=who.actor
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_device(name: str, daemon: DaemonDep, who: Operator) -> None:
    links = [link.id for link in daemon.inventory.graph.links(name) if link.id is not None]
    await daemon.inventory.remove_device(name, actor=who.actor)
    # Its alarms go with it: nothing would ever clear them.
    await daemon.alarms.close_removed_device(name, links, reason=DEVICE_REMOVED, user=who.actor)


def _check_credentials(ref: str | None, daemon: Daemon) -> None:
    """A `file:` reference outside `drivers.credentials_dirs` is refused (422) before it is
    stored: the daemon would otherwise read any file it can on an operator's word."""
    if ref is not None:
        check_reference(ref, daemon.settings.drivers.credentials_dirs)
