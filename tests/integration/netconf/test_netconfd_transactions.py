"""The transaction engine against the real netconfd (yuma123) with configs/yang/oss-lab.yang:
an l3vpn PE commits with a confirmed commit and is confirmed; a rendering the YANG module
refuses is refused in prepare and nothing is committed; a confirmed commit nobody confirms
reverts on the device by itself."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from drivers.netconf import NetconfDriver
from drivers.platforms import load_platform
from oss.provisioning.access import DeviceAccess
from oss.provisioning.engine import DeviceTxn, Engine, NoJournal, Transaction, TransactionFailed
from oss.provisioning.leaves import xml_intent
from oss.provisioning.plan import DevicePlan, Mode
from oss.provisioning.protocols import render_device
from oss.provisioning.protocols.netconf import NetconfAdapter
from oss.provisioning.render import Renderer
from tests.peers.netconfd import NetconfServer
from topology.model import Device

pytestmark = pytest.mark.integration

NS = "urn:oss:lab"


@pytest.fixture
async def access(netconf_server: NetconfServer, tmp_path: Path) -> AsyncIterator[DeviceAccess]:
    creds = tmp_path / "credentials.yaml"
    creds.write_text(
        yaml.safe_dump(
            {
                "username": netconf_server.username,
                "private_key_file": str(netconf_server.private_key),
                "known_hosts": str(netconf_server.known_hosts),
            }
        )
    )
    os.chmod(creds, 0o600)
    device = Device(
        name="yuma1",
        platform="netconfd-lab",
        mgmt_address=netconf_server.host,
        credentials_ref=f"file:{creds}",
    )
    access = DeviceAccess(
        device_of=lambda name: device, ports={"netconf": netconf_server.port}, timeout_s=10
    )
    try:
        yield access
    finally:
        await access.close()


def plan(mode: Mode, *, vrf: str = "acme", rd: str = "65000:42") -> DevicePlan:
    context: dict[str, Any] = {
        "service": {
            "id": "svc-1",
            "type": "l3vpn",
            "customer": "acme",
            "params": {},
            "vlan": None,
            "vrf": vrf,
            "rd": rd,
            "description": "oss svc-1 l3vpn acme",
        },
        "device": {"name": "yuma1", "role": "pe", "platform": "netconfd-lab", "site": None},
        "attachments": [],
    }
    return render_device(
        Renderer(),
        load_platform("netconfd-lab"),
        "netconfd-lab/l3vpn/pe.xml.j2",
        context,
        mode=mode,
        device="yuma1",
    )


async def running(server: NetconfServer) -> dict[str, Any]:
    """The VRFs in running, as leaves (an empty <vrfs/> container left behind is nothing)."""
    async with NetconfDriver() as nc, nc.connect(server.target("reader")) as session:
        xml = await session.get_config("running", filter=f'<vrfs xmlns="{NS}"/>')
    return xml_intent(xml, load_platform("netconfd-lab").model).leaves


async def test_commit_confirm_and_delete(
    access: DeviceAccess, netconf_server: NetconfServer
) -> None:
    engine = Engine(access)
    done = await engine.run(Transaction(1, "create", [DeviceTxn(plan("merge"), 0)]), NoJournal())
    assert done.state == "committed"
    assert [d.state for d in done.devices] == ["confirmed"]
    shown = await running(netconf_server)
    assert shown["vrfs/vrf[name=acme]/rd"] == "65000:42"

    preview = await engine.preview([plan("merge")])
    assert preview[0].state == "unchanged"  # no drift

    gone = await engine.run(Transaction(2, "delete", [DeviceTxn(plan("delete"), 0)]), NoJournal())
    assert gone.state == "committed"
    assert not any("acme" in path for path in await running(netconf_server))


async def test_a_yang_violation_is_refused_and_nothing_is_committed(
    access: DeviceAccess, netconf_server: NetconfServer
) -> None:
    engine = Engine(access)
    first = Transaction(1, "create", [DeviceTxn(plan("merge", vrf="blue", rd="65000:7"), 0)])
    await engine.run(first, NoJournal())
    before = await running(netconf_server)
    # oss-lab.yang: `unique "rd"` across VRFs; a second VRF with the same RD violates it.
    clash = Transaction(2, "create", [DeviceTxn(plan("merge", vrf="red", rd="65000:7"), 0)])
    with pytest.raises(TransactionFailed) as failed:
        await engine.run(clash, NoJournal())
    assert "device yuma1, step prepare" in str(failed.value)
    assert "unique" in str(failed.value)
    assert failed.value.transaction.state == "rolled-back"
    assert await running(netconf_server) == before
    # and the candidate was left clean: a later change commits only itself
    third = Transaction(3, "create", [DeviceTxn(plan("merge", vrf="green", rd="65000:8"), 0)])
    await engine.run(third, NoJournal())
    after = await running(netconf_server)
    assert "vrfs/vrf[name=green]/rd" in after and "vrfs/vrf[name=red]/rd" not in after


async def test_an_unconfirmed_commit_reverts_by_itself(
    access: DeviceAccess, netconf_server: NetconfServer
) -> None:
    before = await running(netconf_server)
    change = plan("merge", vrf="orphan", rd="65000:9")
    change.platform = change.platform.model_copy(update={"confirm_timeout_s": 2})
    async with access.adapter("yuma1") as adapter:
        assert isinstance(adapter, NetconfAdapter)
        change.pre_image = await adapter.read(change)
        await adapter.prepare(change)
        await adapter.commit(change, "oss-test-orphan")
        assert "vrfs/vrf[name=orphan]/rd" in await running(netconf_server)
        await adapter.session.unlock("candidate")
    # The session that made it is gone (its persist id would let any session confirm it).
    # Nobody confirms: netconfd puts the old configuration back when the timeout expires.
    model = load_platform("netconfd-lab").model
    async with NetconfDriver() as nc, nc.connect(netconf_server.target("watcher")) as watcher:
        # netconfd runs its timers when it has been idle for a second: poll slower than that.
        for _ in range(40):
            xml = await watcher.get_config("running", filter=f'<vrfs xmlns="{NS}"/>')
            if xml_intent(xml, model).leaves == before:
                break
            await asyncio.sleep(1.5)
    assert await running(netconf_server) == before
