"""The NETCONF driver against a real netconfd (yuma123), which validates with the project's
YANG module configs/yang/oss-lab.yang."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from drivers.base import Target
from drivers.netconf import NetconfDriver, NetconfSession
from oss.errors import (
    AuthError,
    ConnectError,
    DeviceTimeout,
    InvalidInput,
    RpcError,
    Unsupported,
)
from tests.peers.netconfd import NetconfServer
from tests.peers.ports import free_port

pytestmark = pytest.mark.integration

# The driver's three ways to run a session: OpenSSH on the event loop (the default for key auth,
# drivers/netconf_async.py), OpenSSH under ncclient's RPC layer in worker threads (a target that
# names an ncclient device handler) and paramiko (passwords), drivers/netconf_transport.py.
CLIENT_OPTIONS = {
    "openssh": {"ssh_client": "openssh"},
    "openssh-threads": {"ssh_client": "openssh", "ncclient_device": "default"},
    "paramiko": {"ssh_client": "paramiko"},
}
every_path = pytest.mark.parametrize("client", list(CLIENT_OPTIONS))


def client_options(client: str) -> dict[str, str]:
    return dict(CLIENT_OPTIONS[client])


NS = {"l": "urn:oss:lab"}


def another_host_key() -> str:
    """A freshly generated public key line that the server does not have."""
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def interfaces(**mtus: int) -> str:
    entries = "".join(
        f"<interface><name>{name}</name><mtu>{mtu}</mtu></interface>" for name, mtu in mtus.items()
    )
    return f'<interfaces xmlns="urn:oss:lab">{entries}</interfaces>'


def mtus(data_xml: str) -> dict[str, int]:
    """{interface name: mtu} found in a <data> reply."""
    root = ET.fromstring(data_xml)
    return {
        entry.findtext("l:name", namespaces=NS) or "": int(entry.findtext("l:mtu", "0", NS))
        for entry in root.iterfind(".//l:interfaces/l:interface", NS)
    }


def descriptions(data_xml: str) -> dict[str, str | None]:
    root = ET.fromstring(data_xml)
    return {
        entry.findtext("l:name", namespaces=NS) or "": entry.findtext("l:description", None, NS)
        for entry in root.iterfind(".//l:interfaces/l:interface", NS)
    }


async def running_mtus(nc: NetconfSession) -> dict[str, int]:
    return mtus(await nc.get_config("running", '<interfaces xmlns="urn:oss:lab"/>'))


async def wait_for_running(nc: NetconfSession, expected: dict[str, int], within_s: float) -> None:
    """Poll until running holds `expected`. netconfd runs its confirmed-commit timer only after
    a full second without requests, so polls are 1.5 s apart."""
    deadline = time.monotonic() + within_s
    while (current := await running_mtus(nc)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"running is {current}, expected {expected} within {within_s}s")
        await asyncio.sleep(1.5)


async def commit_interfaces(nc: NetconfSession, **values: int) -> None:
    await nc.edit_config(interfaces(**values))
    await nc.commit()


# --- hello and capabilities ----------------------------------------------------------------


async def test_hello_announces_candidate_confirmed_commit_and_the_yang_module(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        assert nc.session_id is not None
        assert "urn:ietf:params:netconf:capability:candidate:1.0" in nc.capabilities
        assert any(uri.startswith("urn:oss:lab?module=oss-lab") for uri in nc.capabilities)
        nc.require(":candidate")
        nc.require(":confirmed-commit")
        nc.require("urn:oss:lab")
        with pytest.raises(Unsupported, match="urn:example:absent"):
            nc.require("urn:example:absent")


async def test_an_unannounced_datastore_is_unsupported_without_asking(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        assert not nc.has(":startup")  # netconfd runs without --with-startup
        with pytest.raises(Unsupported, match=":startup"):
            await nc.get_config("startup")


# --- reading with filters ------------------------------------------------------------------


async def test_get_config_with_a_subtree_filter(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        await commit_interfaces(nc, eth1=1500, eth2=9000)
        only_eth2 = (
            '<interfaces xmlns="urn:oss:lab"><interface><name>eth2</name></interface></interfaces>'
        )
        assert mtus(await nc.get_config("running", only_eth2)) == {"eth2": 9000}
        assert mtus(await nc.get_config("running")) == {"eth1": 1500, "eth2": 9000}


async def test_get_config_and_get_with_xpath_filters(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        await commit_interfaces(nc, eth1=1500, eth2=9000)
        # netconfd resolves XPath prefixes by module prefix, so the module's own one is used
        selected = await nc.get_config(
            "running",
            "/osslab:interfaces/osslab:interface[osslab:name='eth1']",
            filter_type="xpath",
            namespaces={"osslab": "urn:oss:lab"},
        )
        assert mtus(selected) == {"eth1": 1500}
        state = await nc.get("/interfaces/interface[mtu > 2000]", filter_type="xpath")
        assert mtus(state) == {"eth2": 9000}


async def test_get_with_a_subtree_filter_and_get_config_of_the_candidate(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        await commit_interfaces(nc, eth1=1500)
        await nc.edit_config(interfaces(eth3=1600))
        lab_only = '<interfaces xmlns="urn:oss:lab"/>'
        assert mtus(await nc.get(lab_only)) == {"eth1": 1500}
        assert mtus(await nc.get_config("candidate", lab_only)) == {"eth1": 1500, "eth3": 1600}


# --- locks ---------------------------------------------------------------------------------


async def test_a_second_session_cannot_lock_what_the_first_holds(
    netconf_server: NetconfServer, driver: NetconfDriver
) -> None:
    first, second = netconf_server.target("first"), netconf_server.target("second")
    async with driver.connect(first) as a, driver.connect(second) as b:
        assert a.session_id != b.session_id
        async with a.locked("candidate"):
            with pytest.raises(RpcError) as refused:
                await b.lock("candidate")
            assert "lock-denied" in refused.value.device_error
            assert refused.value.extra["error_tags"] == ["lock-denied"]
            assert "second" in str(refused.value)
        await b.lock("candidate")  # released when the block ended
        await b.unlock("candidate")


# --- edit-config ---------------------------------------------------------------------------


async def test_edit_config_merge_adds_to_what_is_there(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        await commit_interfaces(nc, eth1=1500)
        await nc.edit_config(
            '<interfaces xmlns="urn:oss:lab"><interface><name>eth1</name>'
            "<description>uplink</description></interface></interfaces>",
            operation="merge",
        )
        candidate = await nc.get_config("candidate")
        assert mtus(candidate) == {"eth1": 1500}
        assert descriptions(candidate) == {"eth1": "uplink"}


async def test_edit_config_replace_replaces_the_datastore(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        await commit_interfaces(nc, eth1=1500, eth2=1500)
        await nc.edit_config(interfaces(eth1=9000), operation="replace")
        assert mtus(await nc.get_config("candidate")) == {"eth1": 9000}
        assert mtus(await nc.get_config("running")) == {"eth1": 1500, "eth2": 1500}


async def test_edit_config_delete_removes_a_list_entry_and_a_leaf(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        await nc.edit_config(
            '<interfaces xmlns="urn:oss:lab">'
            "<interface><name>eth1</name><mtu>1500</mtu><description>a</description></interface>"
            "<interface><name>eth2</name><mtu>1500</mtu></interface></interfaces>"
        )
        await nc.commit()
        await nc.edit_config(
            '<interfaces xmlns="urn:oss:lab"><interface><name>eth2</name></interface>'
            "<interface><name>eth1</name><description/></interface></interfaces>",
            operation="delete",
        )
        candidate = await nc.get_config("candidate")
        assert mtus(candidate) == {"eth1": 1500}
        assert descriptions(candidate) == {"eth1": None}


async def test_edit_config_out_of_range_is_refused_with_the_devices_words(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        with pytest.raises(RpcError) as refused:
            await nc.edit_config(interfaces(eth1=100))
        assert "value not in range" in refused.value.device_error
        assert "invalid-value" in refused.value.device_error
        assert "mtu" in refused.value.device_error  # the error-path
        with pytest.raises(RpcError, match="pattern match failed"):
            await nc.edit_config(
                '<vrfs xmlns="urn:oss:lab"><vrf><name>red</name><rd>red</rd></vrf></vrfs>'
            )
        assert nc.is_alive  # an rpc-error does not break the session
        assert mtus(await nc.get_config("candidate")) == {}


# --- validate, commit, discard -------------------------------------------------------------


async def test_validate_refuses_a_yang_constraint_violation(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    two_vrfs_one_rd = (
        '<vrfs xmlns="urn:oss:lab">'
        "<vrf><name>red</name><rd>65000:1</rd></vrf>"
        "<vrf><name>blue</name><rd>65000:1</rd></vrf></vrfs>"
    )
    async with driver.connect(netconf_target) as nc:
        # test-option "set" leaves checking to validate, as a transaction would
        await nc.edit_config(two_vrfs_one_rd, test_option="set")
        with pytest.raises(RpcError) as refused:
            await nc.validate()
        assert "unique-stmt test failed" in refused.value.device_error
        assert "data-not-unique" in refused.value.device_error
        with pytest.raises(RpcError, match="unique-stmt"):
            await nc.commit()
        await nc.discard_changes()
        await nc.validate()  # the candidate is clean again


@every_path
async def test_commit_makes_the_candidate_running(
    driver: NetconfDriver, netconf_server: NetconfServer, client: str
) -> None:
    target = netconf_server.target(client, options=client_options(client))
    async with driver.connect(target) as nc:
        await nc.edit_config(interfaces(eth1=1500))
        assert await running_mtus(nc) == {}
        # (no validate first: netconfd 2.13 then treats the next commit as having nothing to do)
        await nc.commit()
        assert await running_mtus(nc) == {"eth1": 1500}


async def test_discard_changes_returns_the_candidate_to_running(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        await commit_interfaces(nc, eth1=1500)
        await nc.edit_config(interfaces(eth1=9000, eth2=1500))
        await nc.discard_changes()
        assert mtus(await nc.get_config("candidate")) == {"eth1": 1500}


# --- confirmed commit ----------------------------------------------------------------------


async def test_a_confirmed_commit_that_is_not_confirmed_reverts(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        await commit_interfaces(nc, eth1=1500)
        await nc.edit_config(interfaces(eth1=9000))
        await nc.commit(confirmed=True, timeout_s=1)
        assert await running_mtus(nc) == {"eth1": 9000}
        await wait_for_running(nc, {"eth1": 1500}, within_s=15)


async def test_a_confirming_commit_keeps_the_change(
    driver: NetconfDriver, netconf_target: Target
) -> None:
    async with driver.connect(netconf_target) as nc:
        await commit_interfaces(nc, eth1=1500)
        await nc.edit_config(interfaces(eth1=9000))
        await nc.commit(confirmed=True, timeout_s=1)
        await nc.commit()  # confirms
        with pytest.raises(RpcError):  # nothing is pending any more
            await nc.cancel_commit()
        await asyncio.sleep(2.5)  # well past the confirm timeout
        assert await running_mtus(nc) == {"eth1": 9000}


async def test_a_persisted_confirmed_commit_is_confirmed_from_another_session(
    netconf_server: NetconfServer, driver: NetconfDriver
) -> None:
    async with driver.connect(netconf_server.target("a")) as a:
        await commit_interfaces(a, eth1=1500)
        await a.edit_config(interfaces(eth1=9000))
        await a.commit(confirmed=True, timeout_s=30, persist="tx-confirm")
    async with NetconfDriver() as other, other.connect(netconf_server.target("b")) as b:
        await b.commit(persist_id="tx-confirm")
        with pytest.raises(RpcError):
            await b.cancel_commit(persist_id="tx-confirm")
        assert await running_mtus(b) == {"eth1": 9000}


async def test_cancel_commit_reverts_at_once(driver: NetconfDriver, netconf_target: Target) -> None:
    async with driver.connect(netconf_target) as nc:
        await commit_interfaces(nc, eth1=1500)
        await nc.edit_config(interfaces(eth1=9000))
        await nc.commit(confirmed=True, timeout_s=60, persist="tx-cancel")
        assert await running_mtus(nc) == {"eth1": 9000}
        await nc.cancel_commit(persist_id="tx-cancel")
        assert await running_mtus(nc) == {"eth1": 1500}


# --- host keys, reachability, credentials --------------------------------------------------


@every_path
async def test_a_host_key_not_in_known_hosts_is_refused(
    netconf_server: NetconfServer, driver: NetconfDriver, tmp_path, client: str
) -> None:
    opts = client_options(client)
    other = tmp_path / "known_hosts"
    other.write_text(f"[{netconf_server.host}]:{netconf_server.port} {another_host_key()}\n")
    with pytest.raises(AuthError, match="host key"):
        async with driver.connect(
            netconf_server.target("wrong-kh", known_hosts=other, options=opts)
        ):
            pass
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(AuthError, match="known_hosts"):
        async with driver.connect(
            netconf_server.target("empty-kh", known_hosts=empty, options=opts)
        ):
            pass


@every_path
async def test_a_pinned_host_key_must_match(
    netconf_server: NetconfServer, driver: NetconfDriver, tmp_path, client: str
) -> None:
    opts = client_options(client)
    empty = tmp_path / "known_hosts"  # the pin alone must be enough
    empty.write_text("")
    right = netconf_server.target(
        "pinned", host_key=netconf_server.host_key_line, known_hosts=empty, options=opts
    )
    async with driver.connect(right) as nc:
        assert nc.session_id is not None
    wrong = netconf_server.target("pinned-wrong", host_key=another_host_key(), options=opts)
    with pytest.raises(AuthError, match="pinned host key"):
        async with driver.connect(wrong):
            pass


@every_path
async def test_verification_off_is_an_explicit_option(
    netconf_server: NetconfServer, driver: NetconfDriver, tmp_path, client: str
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    insecure = netconf_server.target(
        "insecure", known_hosts=empty, options={"host_key_verify": False, **client_options(client)}
    )
    async with driver.connect(insecure) as nc:
        assert nc.session_id is not None


@every_path
async def test_nothing_listening_is_a_connect_error(
    netconf_server: NetconfServer, driver: NetconfDriver, client: str
) -> None:
    target = netconf_server.target("nobody", port=free_port(), options=client_options(client))
    with pytest.raises(ConnectError, match="nobody"):
        async with driver.connect(target):
            pass


async def test_a_password_goes_over_paramiko_and_openssh_refuses_one(
    netconf_server: NetconfServer, driver: NetconfDriver
) -> None:
    # sshd here takes keys only; the key works, and the password is offered only if it fails
    target = netconf_server.target("with-password", password="unused-secret")
    async with driver.connect(target) as nc:
        assert nc.session_id is not None
    forced = netconf_server.target(
        "openssh-password", password="unused-secret", options={"ssh_client": "openssh"}
    )
    with pytest.raises(InvalidInput, match="password"):
        async with driver.connect(forced):
            pass


async def test_credentials_never_appear_in_errors(
    netconf_server: NetconfServer, driver: NetconfDriver, tmp_path
) -> None:
    secret = "pa55-w0rd-never-shown"
    target = netconf_server.target(
        "stranger", username="oss-no-such-user", password=secret, private_key_file=None
    )
    with pytest.raises(AuthError) as refused:
        async with driver.connect(target):
            pass
    exc = refused.value
    for text in (str(exc), repr(exc), repr(exc.extra), repr(exc.__cause__), repr(target)):
        assert secret not in text
    assert "oss-no-such-user" in str(exc)

    unreachable = netconf_server.target("gone", port=free_port(), password=secret)
    with pytest.raises(ConnectError) as failed:
        async with driver.connect(unreachable):
            pass
    assert secret not in str(failed.value) and secret not in repr(failed.value.extra)


# --- the session pool ----------------------------------------------------------------------


@every_path
async def test_sessions_are_reused_across_borrows(
    driver: NetconfDriver, netconf_server: NetconfServer, client: str
) -> None:
    netconf_target = netconf_server.target(client, options=client_options(client))
    async with driver.connect(netconf_target) as first:
        first_id = first.session_id
    async with driver.connect(netconf_target) as second:
        assert second is first
        assert second.session_id == first_id
        assert await running_mtus(second) == {}
    async with NetconfDriver() as other, other.connect(netconf_target) as third:
        assert third.session_id != first_id  # another driver, another pool


@every_path
async def test_cancelling_a_call_in_flight_leaves_a_working_pool(
    netconf_server: NetconfServer, driver: NetconfDriver, client: str
) -> None:
    netconf_target = netconf_server.target(client, options=client_options(client))
    async with driver.connect(netconf_target) as nc:
        before = nc

    async def read() -> str:
        async with driver.connect(netconf_target) as session:
            return await session.get_config("running")

    with netconf_server.paused():  # netconfd stops answering: the call hangs
        task = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not before.is_alive  # aborted, and dropped from the pool

    async with driver.connect(netconf_target) as nc:
        assert nc is not before
        assert await running_mtus(nc) == {}


@pytest.mark.serial  # a 1 s timeout that a hello beside other workers' CPU load can outlast
async def test_a_call_that_outlives_its_timeout_is_a_device_timeout(
    netconf_server: NetconfServer, driver: NetconfDriver
) -> None:
    target = netconf_server.target("slow", timeout_s=1.0)
    async with driver.connect(target) as nc:
        before = nc
    with netconf_server.paused(), pytest.raises(DeviceTimeout, match="slow"):
        async with driver.connect(target) as nc:
            await nc.get_config("running")
    async with driver.connect(target) as nc:
        assert nc is not before
        assert await running_mtus(nc) == {}
