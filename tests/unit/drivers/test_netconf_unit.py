"""The NETCONF driver's pure parts: rpc-error text, edit-config payloads, framing, host keys."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from lxml import etree
from ncclient.manager import make_device_handler
from ncclient.operations.rpc import RPCError, RPCReply
from ncclient.transport.errors import TransportError
from ncclient.transport.session import NetconfBase

from drivers.netconf import (
    NC_NS,
    _scrub,
    build_edit_config,
    pinned_host_key_b64,
    rpc_error_text,
)
from drivers.netconf_transport import (
    OpenSshOptions,
    ParamikoSession,
    openssh_argv,
    pinned_known_hosts_line,
)
from oss.errors import InvalidInput

OPERATION = f"{{{NC_NS}}}operation"


def reply_error(errors_xml: str) -> RPCError:
    raw = (
        f'<rpc-reply xmlns="{NC_NS}" message-id="1">{errors_xml}</rpc-reply>'  # one or more errors
    )
    reply = RPCReply(raw)
    reply.parse()
    errors = reply.errors
    return errors[0] if len(errors) == 1 else RPCError(etree.fromstring(raw), errs=errors)


RANGE_ERROR = """
<rpc-error>
  <error-type>protocol</error-type><error-tag>invalid-value</error-tag>
  <error-severity>error</error-severity><error-app-tag>not-in-range</error-app-tag>
  <error-path>/nc:rpc/nc:edit-config/nc:config/osslab:interfaces/osslab:interface/osslab:mtu</error-path>
  <error-message xml:lang="en">value not in range</error-message>
</rpc-error>"""
LOCK_ERROR = """
<rpc-error>
  <error-type>protocol</error-type><error-tag>lock-denied</error-tag>
  <error-severity>error</error-severity><error-message>lock denied</error-message>
</rpc-error>"""


def test_rpc_error_text_carries_tag_message_app_tag_and_path() -> None:
    text = rpc_error_text(reply_error(RANGE_ERROR))
    assert text == (
        "invalid-value: value not in range [not-in-range] at "
        "/nc:rpc/nc:edit-config/nc:config/osslab:interfaces/osslab:interface/osslab:mtu"
    )


def test_rpc_error_text_lists_every_error() -> None:
    text = rpc_error_text(reply_error(RANGE_ERROR + LOCK_ERROR))
    assert text.split("; ") == [
        "invalid-value: value not in range [not-in-range] at "
        "/nc:rpc/nc:edit-config/nc:config/osslab:interfaces/osslab:interface/osslab:mtu",
        "lock-denied: lock denied",
    ]


def test_bare_data_elements_are_wrapped_in_config() -> None:
    root, default_op = build_edit_config('<a xmlns="urn:x"><n>1</n></a><b xmlns="urn:x"/>', "merge")
    assert root.tag == f"{{{NC_NS}}}config"
    assert [etree.QName(c).localname for c in root] == ["a", "b"]
    assert default_op == "merge"


def test_a_config_element_is_taken_as_it_is() -> None:
    root, default_op = build_edit_config(
        f'<config xmlns="{NC_NS}"><a xmlns="urn:x"/></config>', "replace"
    )
    assert root.tag == f"{{{NC_NS}}}config"
    assert len(root) == 1
    assert default_op == "replace"


def test_a_config_element_in_a_foreign_namespace_is_refused() -> None:
    with pytest.raises(InvalidInput, match="namespace"):
        build_edit_config('<config xmlns="urn:other"><a/></config>', "merge")


def test_malformed_xml_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="well-formed"):
        build_edit_config("<a><b></a>", "merge")


def test_entities_are_not_expanded() -> None:
    payload = (
        '<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><a xmlns="urn:x">&e;</a></config>'
    )
    root, _ = build_edit_config(payload, "merge")
    assert "root:" not in etree.tostring(root, encoding="unicode")


def test_delete_marks_list_entries_and_empty_leaves_only() -> None:
    root, default_op = build_edit_config(
        '<interfaces xmlns="urn:oss:lab">'
        "<interface><name>eth2</name></interface>"
        "<interface><name>eth1</name><description/></interface>"
        "</interfaces>"
        '<vrfs xmlns="urn:oss:lab"/>',
        "delete",
    )
    assert default_op == "none"
    interfaces, vrfs = list(root)
    eth2, eth1 = list(interfaces)
    assert interfaces.get(OPERATION) is None
    assert eth2.get(OPERATION) == "delete"  # a list entry named by its key
    assert eth1.get(OPERATION) is None
    name, description = list(eth1)
    assert name.get(OPERATION) is None  # the key selects; it is not deleted
    assert description.get(OPERATION) == "delete"
    assert vrfs.get(OPERATION) == "delete"  # an empty container: all of it


def test_a_pinned_host_key_line_yields_its_blob() -> None:
    blob = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"\x00" * 36).decode()
    assert pinned_host_key_b64(f"ssh-ed25519 {blob} host@lab") == blob
    assert pinned_host_key_b64(blob) == blob
    with pytest.raises(InvalidInput):
        pinned_host_key_b64("ssh-ed25519 not*base64")


def test_scrub_removes_every_secret() -> None:
    assert _scrub("user admin password hunter2 refused", ("hunter2",)) == (
        "user admin password *** refused"
    )
    assert _scrub("nothing here", ()) == "nothing here"


class RecordingChannel:
    """Stands in for a paramiko channel: records what the session writes."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.written.append(data)


def connected_session(base: int) -> tuple[ParamikoSession, RecordingChannel]:
    session = ParamikoSession(make_device_handler({"name": "default"}), None, pinned=False)
    channel = RecordingChannel()
    session._channel = channel
    session._connected = True
    session._base = base
    return session, channel


def test_messages_are_written_at_once_with_base_1_0_framing() -> None:
    session, channel = connected_session(NetconfBase.BASE_10)
    session.send("<rpc/>")
    assert channel.written == [b"<rpc/>]]>]]>"]
    assert session._q.empty()  # nothing left for ncclient's polling thread


def test_messages_are_written_at_once_with_base_1_1_chunked_framing() -> None:
    session, channel = connected_session(NetconfBase.BASE_11)
    session.send("<rpc>é</rpc>")
    body = "<rpc>é</rpc>".encode()
    assert channel.written == [b"\n#%d\n" % len(body) + body + b"\n##\n"]


def test_an_aborted_session_refuses_to_send() -> None:
    session, channel = connected_session(NetconfBase.BASE_11)
    session.abort()
    with pytest.raises(TransportError):
        session.send("<rpc/>")
    assert channel.written == []


def ssh_options(**overrides: object) -> OpenSshOptions:
    fields: dict[str, object] = {
        "host": "127.10.0.1",
        "port": 830,
        "username": "oss",
        "private_key_file": Path("/keys/id_ed25519"),
        "known_hosts": Path("/keys/known_hosts"),
        "verify_host_key": True,
        "connect_timeout_s": 7.4,
    }
    fields.update(overrides)
    return OpenSshOptions(**fields)  # type: ignore[arg-type]


def settings(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_openssh_is_strict_quiet_and_reads_no_config() -> None:
    argv = openssh_argv("/usr/bin/ssh", ssh_options())
    assert argv[:3] == ["/usr/bin/ssh", "-F", "/dev/null"]
    assert argv[-3:] == ["-s", "127.10.0.1", "netconf"]
    assert argv[argv.index("-p") + 1] == "830" and argv[argv.index("-l") + 1] == "oss"
    opts = settings(argv)
    assert opts["BatchMode"] == "yes"
    assert opts["StrictHostKeyChecking"] == "yes"
    assert opts["UserKnownHostsFile"] == "/keys/known_hosts"
    assert opts["GlobalKnownHostsFile"] == "/dev/null"
    assert opts["IdentityFile"] == "/keys/id_ed25519"
    assert opts["IdentitiesOnly"] == "yes" and opts["IdentityAgent"] == "none"
    assert opts["ConnectTimeout"] == "7"


def test_openssh_without_verification_trusts_nothing_it_keeps() -> None:
    opts = settings(openssh_argv("ssh", ssh_options(verify_host_key=False)))
    assert opts["StrictHostKeyChecking"] == "no"
    assert opts["UserKnownHostsFile"] == "/dev/null"


def test_openssh_refuses_a_host_that_looks_like_an_option() -> None:
    with pytest.raises(ValueError):
        openssh_argv("ssh", ssh_options(host="-oProxyCommand=evil"))


def test_a_pinned_key_becomes_a_known_hosts_line_for_host_and_port() -> None:
    blob = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x20" + b"k" * 32)
    key = blob.decode()
    assert (
        pinned_known_hosts_line("127.0.0.1", 2830, key) == f"[127.0.0.1]:2830 ssh-ed25519 {key}\n"
    )
    assert pinned_known_hosts_line("r1", 22, key) == f"r1 ssh-ed25519 {key}\n"
