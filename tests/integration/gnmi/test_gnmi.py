"""The gNMI driver against the simulated device's gNMI server: Capabilities, Get, Set,
Subscribe (SAMPLE, ON_CHANGE, ONCE, POLL), TLS and mTLS, and error translation."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import replace

import pytest

from drivers.credentials import Credentials, TlsSettings
from drivers.gnmi import GnmiDriver
from lab.sim.gnmi_server import start_gnmi_server
from lab.sim.model import iface_path
from oss.errors import AuthError, ConnectError, DeviceTimeout, RpcError, Unsupported
from oss.events import Event
from tests.peers.ports import free_port

from .conftest import HOST, Lab, new_device

COUNTERS = "/interfaces/interface[name=eth1]/state/counters"
OPER = "/interfaces/interface[name=eth1]/state/oper-status"


async def first_event(events: object, predicate: object, timeout_s: float = 5.0) -> Event:
    async with asyncio.timeout(timeout_s):
        async for event in events:  # type: ignore[attr-defined]
            if predicate(event):  # type: ignore[operator]
                return event
    raise AssertionError("the subscription ended without the expected event")


async def test_capabilities(lab: Lab, driver: GnmiDriver) -> None:
    async with driver.connect(lab.target()) as session:
        caps = await session.capabilities()
    assert {"name": "openconfig-interfaces", "organization": "OpenConfig working group",
            "version": "3.0.0"} in caps["supported_models"]  # fmt: skip
    assert set(caps["supported_encodings"]) >= {"json", "json_ietf"}
    assert caps["gnmi_version"] == "0.8.0"


async def test_get_counters_oper_status_and_description(lab: Lab, driver: GnmiDriver) -> None:
    lab.device.set_traffic("eth1", 80_000_000)  # 10 MB/s
    lab.device.apply({**lab.device.running, iface_path("eth1", "config/description"): "to r2"})
    async with driver.connect(lab.target()) as session:
        first = await session.get([f"{COUNTERS}/in-octets"])
        await asyncio.sleep(0.05)
        second = await session.get([f"{COUNTERS}/in-octets"])
        status = await session.get([OPER, "/interfaces/interface[name=eth2]/state/oper-status"])
        config = await session.get(
            ["/interfaces/interface[name=eth1]/config/description"], datatype="config"
        )
    key = "interfaces/interface[name=eth1]/state/counters/in-octets"
    assert second[key] > first[key] > 0
    assert status == {
        "interfaces/interface[name=eth1]/state/oper-status": "UP",
        "interfaces/interface[name=eth2]/state/oper-status": "DOWN",
    }
    assert config == {"interfaces/interface[name=eth1]/config/description": "to r2"}


async def test_get_subtree_and_wildcard(lab: Lab, driver: GnmiDriver) -> None:
    async with driver.connect(lab.target()) as session:
        subtree = await session.get(["/interfaces/interface[name=eth1]/config"])
        everything = await session.get(["/interfaces"], datatype="state")
        names = await session.get(["/interfaces/interface[name=*]/state/name"])
    assert subtree == {
        "interfaces/interface[name=eth1]/config": {
            "name": "eth1",
            "enabled": True,
            "description": "",
            "mtu": 1500,
        }
    }
    entries = everything["interfaces"]["interface"]
    assert [e["name"] for e in entries] == ["eth1", "eth2"]
    assert entries[0]["state"]["oper-status"] == "UP"
    assert "config" not in entries[0]  # datatype=state leaves configuration out
    assert names == {
        "interfaces/interface[name=eth1]/state/name": "eth1",
        "interfaces/interface[name=eth2]/state/name": "eth2",
    }


async def test_get_unknown_path_is_the_devices_error(lab: Lab, driver: GnmiDriver) -> None:
    async with driver.connect(lab.target()) as session:
        with pytest.raises(RpcError, match="NOT_FOUND") as caught:
            await session.get(["/interfaces/interface[name=eth9]/state/oper-status"])
    assert "eth9" in caught.value.device_error


async def test_an_encoding_the_device_lacks_is_unsupported(lab: Lab, driver: GnmiDriver) -> None:
    async with driver.connect(lab.target()) as session:
        with pytest.raises(Unsupported, match="ascii"):
            await session.get([OPER], encoding="ascii")
        assert await session.get([OPER], encoding="proto") == {
            "interfaces/interface[name=eth1]/state/oper-status": "UP"
        }


async def test_set_update_replace_delete_in_one_request(lab: Lab, driver: GnmiDriver) -> None:
    device = lab.device
    device.apply({**device.running, iface_path("eth2", "config/description"): "spare"})
    changes: list[object] = []
    device.listen(changes.append)
    async with driver.connect(lab.target()) as session:
        await session.set(
            update=[("/interfaces/interface[name=eth1]/config/description", "core uplink")],
            replace=[("/interfaces/interface[name=eth2]/config", {"mtu": 9000, "enabled": False})],
            delete=["/interfaces/interface[name=eth1]/config/mtu"],
        )
        after = await session.get(["/interfaces/interface[name=eth2]/state/admin-status"])
    running = device.running
    assert running[iface_path("eth1", "config/description")] == "core uplink"
    assert iface_path("eth1", "config/mtu") not in running
    # replace dropped what the new eth2 config does not name (its description)
    assert iface_path("eth2", "config/description") not in running
    assert running[iface_path("eth2", "config/mtu")] == 9000
    assert running[iface_path("eth2", "config/enabled")] is False
    assert after == {"interfaces/interface[name=eth2]/state/admin-status": "DOWN"}
    config_changes = [c for c in changes if getattr(c, "kind", None) == "config"]
    assert len(config_changes) == 1  # applied at once, not edit by edit


@pytest.mark.parametrize(
    ("bad_update", "reason"),
    [
        (("/interfaces/interface[name=eth1]/state/description", "x"), "read-only"),
        (("/interfaces/interface[name=eth1]/config/mtu", "big"), "expected int"),
        (("/interfaces/interface[name=eth7]/config/description", "x"), "no interface eth7"),
    ],
)
async def test_set_with_one_bad_edit_changes_nothing(
    lab: Lab, driver: GnmiDriver, bad_update: tuple[str, str], reason: str
) -> None:
    before = lab.device.snapshot()
    async with driver.connect(lab.target()) as session:
        with pytest.raises(RpcError, match="INVALID_ARGUMENT") as caught:
            await session.set(
                update=[("/interfaces/interface[name=eth1]/config/description", "new"), bad_update],
                delete=["/interfaces/interface[name=eth2]/config/mtu"],
            )
        assert reason in caught.value.device_error
        # the session stays usable after the device refused a request
        assert await session.get(["/interfaces/interface[name=eth1]/config/description"]) == {
            "interfaces/interface[name=eth1]/config/description": ""
        }
    assert lab.device.running == before


async def test_subscribe_sample_sees_counters_advance(lab: Lab, driver: GnmiDriver) -> None:
    lab.device.set_traffic("eth1", 8_000_000)
    seen: list[int] = []
    async with driver.connect(lab.target()) as session:
        events = session.subscribe([COUNTERS], sample_interval_s=0.02, encoding="proto")
        async with contextlib.aclosing(events), asyncio.timeout(10):
            async for event in events:
                assert event.name == "gnmi.update"
                assert event.tags == {
                    "device": "r1",
                    "path": "interfaces/interface[name=eth1]/state/counters",
                    "interface": "eth1",
                }
                assert set(event.values) >= {"in-octets", "out-octets", "in-errors"}
                assert event.timestamp_ns > 0
                seen.append(int(event.values["in-octets"]))
                if len(seen) == 4:
                    break
    assert seen == sorted(seen) and seen[-1] > seen[0]


async def test_subscribe_on_change_sees_link_go_down(lab: Lab, driver: GnmiDriver) -> None:
    async with driver.connect(lab.target()) as session:
        events = session.subscribe([], on_change_paths=[OPER])
        async with contextlib.aclosing(events):
            initial = await first_event(events, lambda e: "oper-status" in e.values)
            assert initial.values == {"oper-status": "UP"}
            lab.device.set_link_up("eth1", False)
            down = await first_event(events, lambda e: "oper-status" in e.values)
    assert down.values == {"oper-status": "DOWN"}
    assert down.tags["interface"] == "eth1"
    assert down.timestamp_ns >= initial.timestamp_ns


async def test_subscribe_on_change_reports_config_changes(lab: Lab, driver: GnmiDriver) -> None:
    path = "/interfaces/interface[name=eth2]/config"
    async with driver.connect(lab.target()) as session:
        events = session.subscribe([], on_change_paths=[path])
        async with contextlib.aclosing(events):
            initial = await first_event(events, lambda e: "mtu" in e.values)
            assert initial.values["mtu"] == 1500
            await session.set(update=[(f"{path}/mtu", 9100)])
            changed = await first_event(events, lambda e: True)
    assert changed.values == {"mtu": 9100}


async def test_subscribe_on_change_reports_deletes(lab: Lab, driver: GnmiDriver) -> None:
    path = "/interfaces/interface[name=eth1]/config"
    async with driver.connect(lab.target()) as session:
        events = session.subscribe([], on_change_paths=[path])
        async with contextlib.aclosing(events):
            await first_event(events, lambda e: "description" in e.values)
            await session.set(delete=[f"{path}/description"])
            deleted = await first_event(events, lambda e: True)
    assert deleted.name == "gnmi.delete"
    assert deleted.tags == {
        "device": "r1",
        "path": "interfaces/interface[name=eth1]/config/description",
        "interface": "eth1",
    }


async def test_subscribe_once_ends_after_sync(lab: Lab, driver: GnmiDriver) -> None:
    async with driver.connect(lab.target()) as session:
        events = [
            e
            async for e in session.subscribe(
                ["/interfaces/interface[name=*]/state/oper-status"], mode="once"
            )
        ]
    by_interface = {e.tags["interface"]: e.values["oper-status"] for e in events}
    assert by_interface == {"eth1": "UP", "eth2": "DOWN"}


async def test_poll(lab: Lab, driver: GnmiDriver) -> None:
    lab.device.set_traffic("eth1", 8_000_000)
    async with driver.connect(lab.target()) as session:
        first = await session.poll([f"{COUNTERS}/in-octets"])
        await asyncio.sleep(0.05)
        second = await session.poll([f"{COUNTERS}/in-octets"])
        lab.device.set_link_up("eth1", False)
        third = await session.poll([OPER])
    assert len(first) == len(second) == 1
    assert int(second[0].values["in-octets"]) > int(first[0].values["in-octets"])
    assert [e.values for e in third] == [{"oper-status": "DOWN"}]


async def test_subscribe_in_poll_mode_polls_on_its_own(lab: Lab, driver: GnmiDriver) -> None:
    lab.device.set_traffic("eth1", 8_000_000)
    seen: list[int] = []
    async with driver.connect(lab.target()) as session:
        events = session.subscribe([f"{COUNTERS}/in-octets"], mode="poll", sample_interval_s=0.02)
        async with contextlib.aclosing(events), asyncio.timeout(10):
            async for event in events:
                seen.append(int(event.values["in-octets"]))
                if len(seen) == 3:
                    break
    assert seen[0] < seen[1] < seen[2]


async def test_leaving_a_subscription_releases_it_on_the_device(
    lab: Lab, driver: GnmiDriver
) -> None:
    listeners_before = len(lab.device._listeners)
    async with driver.connect(lab.target()) as session:
        events = session.subscribe([], on_change_paths=[OPER])
        async with contextlib.aclosing(events):
            await first_event(events, lambda e: True)
            assert len(lab.device._listeners) == listeners_before + 1
    async with asyncio.timeout(5):
        while len(lab.device._listeners) != listeners_before:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_node_down_is_unavailable(lab: Lab, driver: GnmiDriver) -> None:
    async with driver.connect(lab.target()) as session:
        events = session.subscribe([], on_change_paths=[OPER])
        async with contextlib.aclosing(events):
            await first_event(events, lambda e: True)
            lab.device.set_node_up(False)
            with pytest.raises(ConnectError, match="down"):
                await first_event(events, lambda e: False)
        with pytest.raises(ConnectError, match="down"):
            await session.get([OPER])
    # a new session cannot even be opened while the node is down
    async with GnmiDriver(max_workers=1) as other:
        with pytest.raises(ConnectError, match="down"):
            async with other.connect(lab.target()):
                pass
    # the channel itself was fine: once the node is back, the pooled session answers again
    lab.device.set_node_up(True)
    async with driver.connect(lab.target()) as session:
        assert await session.get([OPER])


# --- security ---------------------------------------------------------------------------------


async def test_mtls_with_client_certificate(mtls_lab: Lab, driver: GnmiDriver) -> None:
    async with driver.connect(mtls_lab.target(mtls_lab.mtls())) as session:
        assert await session.get([OPER]) == {
            "interfaces/interface[name=eth1]/state/oper-status": "UP"
        }
        events = [e async for e in session.subscribe([OPER], mode="once")]
    assert [e.values for e in events] == [{"oper-status": "UP"}]


async def test_mtls_server_refuses_a_client_without_certificate(
    mtls_lab: Lab, driver: GnmiDriver
) -> None:
    with pytest.raises((AuthError, ConnectError)):
        async with driver.connect(mtls_lab.target()):
            pass


async def test_wrong_ca_is_refused(lab: Lab, driver: GnmiDriver) -> None:
    with pytest.raises(AuthError, match="TLS"):
        async with driver.connect(lab.target(TlsSettings(ca_file=lab.pki.other_ca))):
            pass


async def test_server_name_is_checked_and_can_be_overridden(lab: Lab, driver: GnmiDriver) -> None:
    server = await start_gnmi_server(
        lab.device, "127.0.0.1", free_port(), tls=lab.pki.server_tls(require_client_cert=False)
    )
    try:
        by_ip = replace(lab.target(), host="127.0.0.1", port=server.port)
        async with driver.connect(by_ip) as session:  # 127.0.0.1 is among the certificate's SANs
            assert await session.get([OPER])
        # A name the certificate does not carry is refused...
        wrong = TlsSettings(ca_file=lab.pki.ca, server_name="router.example")
        with pytest.raises(AuthError):
            async with driver.connect(replace(by_ip, name="r1-wrong", credentials=tls(wrong))):
                pass
        # ...and one it does carry is accepted, whatever address the client dialled.
        named = TlsSettings(ca_file=lab.pki.ca, server_name="localhost")
        async with driver.connect(replace(by_ip, name="r1-named", credentials=tls(named))) as s:
            assert await s.get([OPER])
    finally:
        await server.stop()


def tls(settings: TlsSettings | None) -> Credentials:
    return Credentials(tls=settings)


async def test_plaintext_only_when_explicit(driver: GnmiDriver, lab: Lab) -> None:
    server = await start_gnmi_server(new_device(), HOST, free_port(HOST), tls=None)
    try:
        plain = replace(lab.target(), port=server.port)
        # No TLS settings at all: the driver refuses rather than fetching the server's certificate.
        with pytest.raises(ConnectError, match="ca_file"):
            async with driver.connect(replace(plain, credentials=tls(None))):
                pass
        # A CA but a plaintext server: the TLS handshake fails.
        with pytest.raises((AuthError, ConnectError)):
            async with driver.connect(plain):
                pass
        insecure = replace(plain, name="r1-plain", credentials=tls(TlsSettings(insecure=True)))
        async with driver.connect(insecure) as session:
            assert await session.get([OPER]) == {
                "interfaces/interface[name=eth1]/state/oper-status": "UP"
            }
            events = [e async for e in session.subscribe([OPER], mode="once")]
            assert [e.values for e in events] == [{"oper-status": "UP"}]
    finally:
        await server.stop()


async def test_username_and_password(driver: GnmiDriver, lab: Lab) -> None:
    server = await start_gnmi_server(
        new_device(),
        HOST,
        free_port(HOST),
        tls=lab.pki.server_tls(require_client_cert=False),
        auth=("oss", "s3cret-gnmi"),
    )
    try:
        good = replace(lab.target(username="oss", password="s3cret-gnmi"), port=server.port)
        async with driver.connect(good) as session:
            assert await session.get([OPER])
            assert [e async for e in session.subscribe([OPER], mode="once")]
        bad = replace(
            lab.target(username="oss", password="wrong-password"), name="r1-bad", port=server.port
        )
        with pytest.raises(AuthError) as caught:
            async with driver.connect(bad):
                pass
        assert "wrong-password" not in str(caught.value)
        assert "s3cret" not in str(caught.value)
    finally:
        await server.stop()


async def test_closed_port_is_connect_error(lab: Lab, driver: GnmiDriver) -> None:
    with pytest.raises(ConnectError):
        async with driver.connect(replace(lab.target(), port=free_port(HOST))):
            pass


async def test_a_port_in_use_is_an_os_error(lab: Lab) -> None:
    with pytest.raises(OSError, match="cannot bind"):
        await start_gnmi_server(new_device(), HOST, lab.server.port, tls=None)


async def test_a_silent_device_times_out(lab: Lab, driver: GnmiDriver) -> None:
    # A socket that accepts TCP connections (in the kernel's backlog) and never says a word.
    with socket.socket() as silent:
        silent.bind((HOST, 0))
        silent.listen()
        target = replace(lab.target(), name="silent", port=silent.getsockname()[1], timeout_s=1.0)
        with pytest.raises(DeviceTimeout):
            async with driver.connect(target):
                pass
