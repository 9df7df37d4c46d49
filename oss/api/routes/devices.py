"""Devices: the nodes of the inventory graph."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from drivers.credentials import check_reference
from drivers.platforms import check_platform_name
from oss.api.deps import Operator, PageDep, RuntimeDep, Viewer
from oss.api.schemas import DeviceUpdate, Page
from oss.faults.alarms import DEVICE_REMOVED
from oss.runtime import Runtime
from topology.model import Device, DeviceState

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get("", response_model=Page[Device])
async def list_devices(
    runtime: RuntimeDep,
    _: Viewer,
    page: PageDep,
    role: Annotated[str | None, Query()] = None,
    site: Annotated[str | None, Query()] = None,
    platform: Annotated[str | None, Query()] = None,
    state: Annotated[DeviceState | None, Query()] = None,
) -> Page[Device]:
    devices = [
        d
        for d in runtime.inventory.graph.devices()
        if (role is None or d.role == role)
        and (site is None or d.site == site)
        and (platform is None or d.platform == platform)
        and (state is None or d.state == state)
    ]
    return Page.of(devices, page)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_device(device: Device, runtime: RuntimeDep, who: Operator) -> Device:
    check_platform_name(device.platform)
    _check_credentials(device.credentials_ref, runtime)
    return await runtime.inventory.add_device(device, actor=who.actor)


@router.get("/{name}")
async def get_device(name: str, runtime: RuntimeDep, _: Viewer) -> Device:
    return runtime.inventory.graph.device(name)


@router.patch("/{name}")
async def update_device(
    name: str, body: DeviceUpdate, runtime: RuntimeDep, who: Operator
) -> Device:
    if body.platform is not None:
        check_platform_name(body.platform)
    _check_credentials(body.credentials_ref, runtime)
    return await runtime.inventory.update_device(
        name, body.model_dump(exclude_unset=True), actor=who.actor
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_device(name: str, runtime: RuntimeDep, who: Operator) -> None:
    links = [link.id for link in runtime.inventory.graph.links(name) if link.id is not None]
    await runtime.inventory.remove_device(name, actor=who.actor)
    # Its alarms go with it: nothing would ever clear them.
    await runtime.alarms.close_removed_device(name, links, reason=DEVICE_REMOVED, user=who.actor)


def _check_credentials(ref: str | None, runtime: Runtime) -> None:
    """A `file:` reference outside `drivers.credentials_dirs` is refused (422) before it is
    stored: the daemon would otherwise read any file it can on an operator's word."""
    if ref is not None:
        check_reference(ref, runtime.settings.drivers.credentials_dirs)
