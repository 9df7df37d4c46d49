"""The NETCONF driver's pure parts: rpc-error text, edit-config payloads, framing, reply
checking and request building, host keys."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from lxml import etree
from ncclient.manager import make_device_handler
from ncclient.operations.errors import OperationError
from ncclient.operations.rpc import RPCError, RPCReply
from ncclient.transport.errors import TransportError
from ncclient.transport.session import NetconfBase

from drivers.netconf import (
    NC_NS,
    _scrub,
    build_edit_config,
    pinned_host_key_b64,
    rpc_error_tags,
    rpc_error_text,
)
from drivers.netconf_async import (
    AsyncRpcs,
    FrameReader,
    FramingError,
    check_reply,
    frame,
    is_rpc_reply,
    reply_message_id,
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


# --- the event-loop transport's pure parts (drivers/netconf_async.py) -----------------------


def eom_reader() -> FrameReader:
    return FrameReader()


def chunked_reader() -> FrameReader:
    reader = FrameReader()
    reader.chunked = True
    return reader


def messages(reader: FrameReader) -> list[bytes]:
    found = []
    while (message := reader.next_message()) is not None:
        found.append(message)
    return found


def test_base_1_0_messages_end_at_the_delimiter_even_when_it_arrives_in_pieces() -> None:
    reader = eom_reader()
    reader.feed(b"<hello/>]]>")
    assert messages(reader) == []
    reader.feed(b"]]>\n<rpc-reply/>]]>]]><a")
    assert messages(reader) == [b"<hello/>", b"<rpc-reply/>"]
    reader.feed(b"/>]]>]]>")
    assert messages(reader) == [b"<a/>"]


def test_base_1_1_chunks_make_one_message_across_reads() -> None:
    reader = chunked_reader()
    stream = b"\n#5\n<rpc-\n#8\nreply/>x\n##\n\n#4\n<ok>\n##\n"
    for at in range(len(stream)):  # one byte at a time: every header split every way
        reader.feed(stream[at : at + 1])
    assert messages(reader) == [b"<rpc-reply/>x", b"<ok>"]


def test_a_chunk_may_hold_the_delimiter_bytes_and_newlines() -> None:
    reader = chunked_reader()
    body = b"<a>]]>]]>\n#9\n</a>"
    reader.feed(frame(body, chunked=True))
    assert messages(reader) == [body]


def test_the_framing_switches_after_the_hello_with_the_rest_already_buffered() -> None:
    reader = eom_reader()
    reader.feed(b"<hello/>]]>]]>" + frame(b"<rpc-reply/>", chunked=True))
    assert reader.next_message() == b"<hello/>"
    reader.chunked = True
    assert messages(reader) == [b"<rpc-reply/>"]


@pytest.mark.parametrize(
    "bad", [b"#4\n<ok>", b"\n#04\n<ok>", b"\n#-4\n<ok>", b"\n#x\n<ok>", b"\n##x", b"\n#12345678901"]
)
def test_malformed_chunk_headers_are_framing_errors(bad: bytes) -> None:
    reader = chunked_reader()
    reader.feed(bad)
    with pytest.raises(FramingError):
        reader.next_message()


def test_outgoing_framing() -> None:
    assert frame(b"<rpc/>", chunked=False) == b"<rpc/>]]>]]>"
    assert frame("<é/>".encode(), chunked=True) == b"\n#5\n" + "<é/>".encode() + b"\n##\n"


def test_reply_message_ids_are_read_from_the_start_tag() -> None:
    decl = b'<?xml version="1.0" encoding="UTF-8"?>\n'
    assert reply_message_id(
        decl + f'<rpc-reply xmlns="{NC_NS}" message-id="17"><ok/>'.encode()
    ) == ("17")
    assert reply_message_id(b"<nc:rpc-reply xmlns:nc='x' message-id='a b'/>") == "a b"
    assert reply_message_id(b'<notification><x message-id="3"/></notification>') is None
    assert is_rpc_reply(decl + b"<rpc-reply><rpc-error/></rpc-reply>")
    assert not is_rpc_reply(b"<notification/>")


def raw_reply(body: str) -> bytes:
    return f'<rpc-reply xmlns="{NC_NS}" message-id="1">{body}</rpc-reply>'.encode()


HANDLER = make_device_handler({"name": "default"})


def test_an_ok_reply_passes_and_data_is_found() -> None:
    assert check_reply(raw_reply("<ok/>"), HANDLER).data_ele is None
    data = check_reply(raw_reply('<data><a xmlns="urn:x">1</a></data>'), HANDLER).data_ele
    assert etree.QName(data[0]).localname == "a" and data[0].text == "1"


def test_an_rpc_error_raises_as_ncclient_would_with_the_same_text() -> None:
    with pytest.raises(RPCError) as one:
        check_reply(raw_reply(RANGE_ERROR), HANDLER)
    assert rpc_error_text(one.value) == rpc_error_text(reply_error(RANGE_ERROR))
    with pytest.raises(RPCError) as two:
        check_reply(raw_reply(RANGE_ERROR + LOCK_ERROR), HANDLER)
    assert rpc_error_text(two.value) == rpc_error_text(reply_error(RANGE_ERROR + LOCK_ERROR))
    assert rpc_error_tags(two.value) == ["invalid-value", "lock-denied"]


def test_a_warning_alone_does_not_raise() -> None:
    warning = LOCK_ERROR.replace("<error-severity>error", "<error-severity>warning")
    check_reply(raw_reply(warning), HANDLER)


def test_a_malformed_reply_is_an_operation_error() -> None:
    with pytest.raises(OperationError):
        check_reply(b"<rpc-reply><ok/>", HANDLER)


def request(body: bytes) -> etree._Element:
    """A request body as the server would read it: inside an <rpc> in the base namespace."""
    return etree.fromstring(b'<rpc xmlns="%s">%s</rpc>' % (NC_NS.encode(), body))[0]


def shape(element: etree._Element) -> list[str]:
    return [f"{etree.QName(e).localname}={(e.text or '').strip()}" for e in element.iter()][1:]


def test_edit_config_keeps_ncclients_element_order_and_the_payload_namespaces() -> None:
    config, default_op = build_edit_config(
        '<interfaces xmlns="urn:oss:lab"><interface><name>eth1</name></interface></interfaces>',
        "merge",
    )
    body = AsyncRpcs.edit_config(
        config, target="candidate", default_operation=default_op, test_option="set",
        error_option="rollback-on-error",
    )  # fmt: skip
    edit = request(body)
    assert etree.QName(edit).namespace == NC_NS
    assert [etree.QName(child).localname for child in edit] == [
        "target", "default-operation", "test-option", "error-option", "config"
    ]  # fmt: skip
    assert edit.find(f"{{{NC_NS}}}config/{{urn:oss:lab}}interfaces") is not None
    with pytest.raises(OperationError):
        AsyncRpcs.edit_config(config, default_operation="bogus")


def test_commit_variants() -> None:
    assert shape(request(AsyncRpcs.commit())) == []
    confirmed = AsyncRpcs.commit(confirmed=True, timeout="60", persist="tx<1>")
    assert shape(request(confirmed)) == ["confirmed=", "confirm-timeout=60", "persist=tx<1>"]
    assert shape(request(AsyncRpcs.commit(persist_id="tx&2"))) == ["persist-id=tx&2"]
    assert shape(request(AsyncRpcs.cancel_commit("t"))) == ["persist-id=t"]
    with pytest.raises(OperationError):
        AsyncRpcs.commit(confirmed=True, persist="a", persist_id="b")


def test_datastores_and_filters() -> None:
    assert shape(request(AsyncRpcs.lock("candidate"))) == ["target=", "candidate="]
    get_config = request(AsyncRpcs.get_config("running", ("subtree", '<a xmlns="urn:x"/>')))
    assert shape(get_config) == ["source=", "running=", "filter=", "a="]
    assert get_config.find(f"{{{NC_NS}}}filter").get("type") == "subtree"
    xpath = request(AsyncRpcs.get(("xpath", ({"p": "urn:x"}, "/p:a"))))
    assert xpath.find(f"{{{NC_NS}}}filter").get("select") == "/p:a"
    with pytest.raises(OperationError):
        AsyncRpcs.lock("candidate/><evil")
