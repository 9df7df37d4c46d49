"""The simulated device's NETCONF server, driven by ncclient."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest
from ncclient.operations.rpc import RPCError
from ncclient.transport.errors import AuthenticationError, SSHUnknownHostError

from tests.integration.lab.conftest import OC_NS, RunningLab, interface_xml

pytestmark = pytest.mark.integration

NS = {"oc": OC_NS}


def _leaf(data_xml: str, ifname: str, path: str) -> str | None:
    root = ET.fromstring(data_xml.encode())
    for interface in root.iter(f"{{{OC_NS}}}interface"):
        if interface.findtext("oc:name", namespaces=NS) == ifname:
            return interface.findtext(path, namespaces=NS)
    return None


def _running_mtu(m: object, ifname: str) -> str | None:
    reply = m.get_config(source="running")  # type: ignore[attr-defined]
    return _leaf(reply.data_xml, ifname, "oc:config/oc:mtu")


def _wait_for(check: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_hello_get_and_filters(lab: RunningLab) -> None:
    with lab.netconf("r1") as m:
        caps = set(m.server_capabilities)
        assert "urn:ietf:params:netconf:base:1.1" in caps
        assert "urn:ietf:params:netconf:capability:candidate:1.0" in caps
        assert "urn:ietf:params:netconf:capability:confirmed-commit:1.1" in caps
        assert any(c.startswith(OC_NS) for c in caps)

        config = m.get_config(source="running").data_xml
        assert _leaf(config, "eth1", "oc:config/oc:mtu") == "1500"
        assert _leaf(config, "eth1", "oc:state/oc:oper-status") is None  # config only

        subtree = (
            f'<interfaces xmlns="{OC_NS}"><interface><name>eth2</name>'
            "<state><oper-status/><counters><in-octets/></counters></state></interface></interfaces>"
        )
        state = m.get(filter=("subtree", subtree)).data_xml
        assert _leaf(state, "eth2", "oc:state/oc:oper-status") == "UP"
        assert int(_leaf(state, "eth2", "oc:state/oc:counters/oc:in-octets") or -1) >= 0
        assert _leaf(state, "eth1", "oc:state/oc:oper-status") is None  # filtered out

        xpath = m.get(filter=("xpath", "/interfaces/interface[name='eth1']/state/admin-status"))
        assert _leaf(xpath.data_xml, "eth1", "oc:state/oc:admin-status") == "UP"
        assert _leaf(xpath.data_xml, "eth2", "oc:state/oc:admin-status") is None


def test_counters_advance(lab: RunningLab) -> None:
    path = "/interfaces/interface[name='eth1']/state/counters/out-octets"
    with lab.netconf("r2") as m:
        first = int(_leaf(m.get(filter=("xpath", path)).data_xml, "eth1", ".//oc:out-octets") or 0)
        time.sleep(0.3)
        second = int(_leaf(m.get(filter=("xpath", path)).data_xml, "eth1", ".//oc:out-octets") or 0)
    assert second > first


def test_edit_candidate_and_commit(lab: RunningLab) -> None:
    with lab.netconf("r1") as m:
        m.edit_config(target="candidate", config=interface_xml("eth1", mtu="9000"))
        assert _running_mtu(m, "eth1") == "1500"  # not yet committed
        candidate = m.get_config(source="candidate").data_xml
        assert _leaf(candidate, "eth1", "oc:config/oc:mtu") == "9000"
        m.commit()
        assert _running_mtu(m, "eth1") == "9000"
        assert lab.snmp_values("snmpget", "r1", "1.3.6.1.2.1.2.2.1.4.1") == {
            "1.3.6.1.2.1.2.2.1.4.1": "9000"
        }


def test_operations_replace_delete_and_errors(lab: RunningLab) -> None:
    with lab.netconf("r1") as m:
        m.edit_config(target="running", config=interface_xml("eth2", description="to r4"))
        replace = (
            '<config xmlns:xc="urn:ietf:params:xml:ns:netconf:base:1.0">'
            f'<interfaces xmlns="{OC_NS}">'
            '<interface><name>eth2</name><config xc:operation="replace"><name>eth2</name>'
            "<mtu>4000</mtu></config></interface></interfaces></config>"
        )
        m.edit_config(target="running", config=replace)
        config = m.get_config(source="running").data_xml
        assert _leaf(config, "eth2", "oc:config/oc:mtu") == "4000"
        assert _leaf(config, "eth2", "oc:config/oc:description") is None  # replaced away

        delete_missing = replace.replace('xc:operation="replace"', "").replace(
            "<mtu>4000</mtu>", '<description xc:operation="delete"/>'
        )
        with pytest.raises(RPCError) as missing:
            m.edit_config(target="running", config=delete_missing)
        assert missing.value.tag == "data-missing"

        with pytest.raises(RPCError) as out_of_range:
            m.edit_config(target="running", config=interface_xml("eth1", mtu="100"))
        assert out_of_range.value.tag == "invalid-value"
        assert "576..9216" in out_of_range.value.message
        assert out_of_range.value.path.endswith("oc-if:config/oc-if:mtu")

        with pytest.raises(RPCError) as unknown:
            m.edit_config(target="running", config=interface_xml("eth1", speed="10G"))
        assert unknown.value.tag == "unknown-element"


def test_validate_refuses_and_discard(lab: RunningLab) -> None:
    with lab.netconf("r1") as m:
        m.edit_config(target="candidate", config=interface_xml("eth9", description="nope"))
        with pytest.raises(RPCError) as invalid:
            m.validate(source="candidate")
        assert "eth9" in invalid.value.message
        with pytest.raises(RPCError):
            m.commit()
        m.discard_changes()
        m.validate(source="candidate")
        m.commit()  # nothing left to refuse


def test_confirmed_commit_rolls_back_on_timeout(lab: RunningLab) -> None:
    with lab.netconf("r1") as m:
        m.edit_config(target="candidate", config=interface_xml("eth1", mtu="2000"))
        m.commit(confirmed=True, timeout="1")
        assert _running_mtu(m, "eth1") == "2000"
        assert _wait_for(lambda: _running_mtu(m, "eth1") == "1500")
        with pytest.raises(RPCError):
            m.cancel_commit()  # nothing is pending any more


def test_confirmed_commit_rolls_back_when_the_session_ends(lab: RunningLab) -> None:
    with lab.netconf("r1") as m:
        m.edit_config(target="candidate", config=interface_xml("eth1", mtu="3000"))
        m.commit(confirmed=True, timeout="120")
    with lab.netconf("r1") as other:
        assert _wait_for(lambda: _running_mtu(other, "eth1") == "1500")
        # With persist, the commit outlives its session and another session confirms it.
        other.edit_config(target="candidate", config=interface_xml("eth1", mtu="3000"))
        other.commit(confirmed=True, timeout="120", persist="change-42")
    with lab.netconf("r1") as third:
        assert _running_mtu(third, "eth1") == "3000"
        with pytest.raises(RPCError):
            third.commit(persist_id="wrong")
        third.commit(persist_id="change-42")
    assert lab.lab.nodes["r1"].datastores.confirm_pending is False
    with lab.netconf("r1") as fourth:
        assert _running_mtu(fourth, "eth1") == "3000"


def test_confirming_commit_keeps_the_change(lab: RunningLab) -> None:
    with lab.netconf("r1") as m:
        m.edit_config(target="candidate", config=interface_xml("eth2", mtu="1600"))
        m.commit(confirmed=True, timeout="120")
        m.commit()
        time.sleep(0.2)
    with lab.netconf("r1") as m:
        assert _running_mtu(m, "eth2") == "1600"


def test_lock_contention_and_kill_session(lab: RunningLab) -> None:
    b = lab.netconf("r3")  # killed below: no `with`, its close-session would fail
    with lab.netconf("r3") as a:
        a.lock("candidate")
        with pytest.raises(RPCError) as denied:
            b.lock("candidate")
        assert denied.value.tag == "lock-denied"
        assert str(a.session_id) in (denied.value.info or "")
        with pytest.raises(RPCError) as in_use:
            b.edit_config(target="candidate", config=interface_xml("eth1", mtu="1400"))
        assert in_use.value.tag == "in-use"
        a.edit_config(target="candidate", config=interface_xml("eth1", mtu="1400"))
        a.commit()
        a.unlock("candidate")
        b.lock("running")
        with pytest.raises(RPCError):
            a.edit_config(target="running", config=interface_xml("eth1", mtu="1450"))
        a.kill_session(b.session_id)
        assert lab.lab.nodes["r3"].datastores.lock_owner("running") is None
        assert _wait_for(lambda: not b.connected)
        a.lock("running")
        a.unlock("running")
        assert _running_mtu(a, "eth1") == "1400"


def test_host_key_and_password_are_checked(lab: RunningLab, tmp_path: object) -> None:
    with pytest.raises(AuthenticationError):
        from ncclient import manager

        manager.connect(
            host=lab.address("r1"),
            port=lab.lab.ports.netconf,
            username=lab.username,
            password="wrong",
            ssh_config=str(lab.lab.ssh_config_file),
            allow_agent=False,
            look_for_keys=False,
            timeout=10,
        )
    empty_config = lab.lab.state_dir / "empty_ssh_config"
    (lab.lab.state_dir / "empty_known_hosts").write_text("")
    empty_config.write_text(
        f"Host *\n  UserKnownHostsFile {lab.lab.state_dir / 'empty_known_hosts'}\n"
    )
    with pytest.raises(SSHUnknownHostError):
        from ncclient import manager

        manager.connect(
            host=lab.address("r1"),
            port=lab.lab.ports.netconf,
            username=lab.username,
            password=lab.password,
            ssh_config=str(empty_config),
            allow_agent=False,
            look_for_keys=False,
            timeout=10,
        )


def test_raw_framing_and_protocol_errors(lab: RunningLab) -> None:
    """Below ncclient: base:1.0 framing, and the errors a broken client gets back."""
    import asyncio

    import asyncssh

    async def exchange() -> list[str]:
        async with asyncssh.connect(
            lab.address("r2"),
            lab.lab.ports.netconf,
            username=lab.username,
            password=lab.password,
            known_hosts=str(lab.lab.known_hosts_file),
            client_keys=None,
        ) as conn:
            writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
            hello = await reader.readuntil(b"]]>]]>")
            assert b"urn:ietf:params:netconf:base:1.1" in hello
            writer.write(
                b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
                b"<capability>urn:ietf:params:netconf:base:1.0</capability>"
                b"</capabilities></hello>]]>]]>"
            )
            replies = []
            for message in (
                b"<rpc this is not xml",
                b'<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get/></rpc>',
                b'<rpc message-id="7" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
                b"<reboot/></rpc>",
                b'<rpc message-id="8" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
                b"<get-config><source><startup/></source></get-config></rpc>",
                b'<rpc message-id="9" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
                b"<close-session/></rpc>",
            ):
                writer.write(message + b"]]>]]>")
                replies.append((await reader.readuntil(b"]]>]]>")).decode())
            assert await reader.read() == b""  # the server ended the session
            return replies

    malformed, no_id, unknown, startup, closed = asyncio.run(exchange())
    assert "<error-tag>malformed-message</error-tag>" in malformed
    assert "<error-tag>missing-attribute</error-tag>" in no_id
    assert 'message-id="7"' in unknown
    assert "<error-tag>operation-not-supported</error-tag>" in unknown
    assert "<error-tag>invalid-value</error-tag>" in startup
    assert 'message-id="9"' in closed and "<ok/>" in closed
