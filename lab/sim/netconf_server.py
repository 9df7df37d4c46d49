"""The simulated device's NETCONF server: the `netconf` SSH subsystem (RFC 6241/6242).

Framing is end-of-message (`]]>]]>`, base:1.0) for the hellos and until both sides announce
base:1.1, then chunked. The data model is the lab's OpenConfig-shaped subset (interfaces with
subinterfaces, network-instances, qos; see `lab.sim.schema` and `lab.sim.netconf_xml`);
datastores, locks and confirmed commit live in `lab.sim.datastore`.

Candidate edits are checked for structure and types when they are made; constraints (ranges,
lengths, patterns, existing interfaces, references and uniqueness between entries) are checked
by `validate` and `commit`, as on devices with a candidate datastore. Edits of running are
validated in full before they apply.

The device's `reply_delay_s` holds every reply back that long (the request is carried out at
once): a slow management plane, for timeout tests.
"""

from __future__ import annotations

import itertools
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import asyncssh

from lab.sim import schema
from lab.sim.datastore import DEFAULT_CONFIRM_TIMEOUT_S, Datastore, Datastores, RpcFailure
from lab.sim.model import SimDevice
from lab.sim.netconf_xml import (
    BASE_NS,
    apply_edit,
    device_data,
    parse_default_operation,
    split_tag,
    subtree_filter,
    with_namespaces,
    xpath_filter,
)
from lab.sim.sshd import LabLogin, SshListener, SshService

log = logging.getLogger(__name__)

BASE_1_0 = "urn:ietf:params:netconf:base:1.0"
BASE_1_1 = "urn:ietf:params:netconf:base:1.1"
CAPABILITIES = (
    BASE_1_0,
    BASE_1_1,
    "urn:ietf:params:netconf:capability:writable-running:1.0",
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
    "urn:ietf:params:netconf:capability:validate:1.1",
    "urn:ietf:params:netconf:capability:xpath:1.0",
    *(f"{ns.uri}?module={ns.module}&revision={ns.revision}" for ns in schema.NAMESPACES.values()),
)
# <error-path> may use any module's prefix.
_ERROR_PATH_PREFIXES = " ".join(
    f'xmlns:{ns.prefix}="{ns.uri}"' for ns in schema.NAMESPACES.values()
)
EOM = b"]]>]]>"
MAX_MESSAGE = 16 * 1024 * 1024  # a client sending more is broken or hostile
_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'


class FramingError(Exception):
    pass


class _Framer:
    """Reads whole NETCONF messages from an SSH channel, in either framing."""

    def __init__(self, reader: asyncssh.SSHReader[bytes]) -> None:
        self._reader = reader
        self._buffer = bytearray()
        self.chunked = False

    async def _fill(self) -> bool:
        data = await self._reader.read(65536)
        if not data:
            return False
        self._buffer.extend(data)
        if len(self._buffer) > MAX_MESSAGE:
            raise FramingError("message too large")
        return True

    async def read(self) -> bytes | None:
        """The next message, or None at end of input."""
        return await (self._read_chunked() if self.chunked else self._read_eom())

    async def _read_eom(self) -> bytes | None:
        while True:
            end = self._buffer.find(EOM)
            if end >= 0:
                message = bytes(self._buffer[:end])
                del self._buffer[: end + len(EOM)]
                return message
            if not await self._fill():
                return None

    async def _read_chunked(self) -> bytes | None:
        message = bytearray()
        while True:
            while b"\n" not in self._buffer[1:] or len(self._buffer) < 4:
                if not await self._fill():
                    return None
            header_end = self._buffer.index(b"\n", 1)
            header = bytes(self._buffer[:header_end])
            if header == b"\n##":
                del self._buffer[: header_end + 1]
                return bytes(message)
            if not header.startswith(b"\n#") or not header[2:].isdigit():
                raise FramingError(f"bad chunk header {header[:20]!r}")
            size = int(header[2:])
            if not 0 < size <= MAX_MESSAGE:
                raise FramingError("bad chunk size")
            while len(self._buffer) < header_end + 1 + size:
                if not await self._fill():
                    return None
            start = header_end + 1
            message.extend(self._buffer[start : start + size])
            del self._buffer[: start + size]
            if len(message) > MAX_MESSAGE:
                raise FramingError("message too large")


def _frame(body: bytes, chunked: bool) -> bytes:
    if chunked:
        return b"\n#%d\n" % len(body) + body + b"\n##\n"
    return body + EOM


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        ns, local = split_tag(child.tag)
        if local == name and ns in (BASE_NS, None):
            return child
    return None


def _error_xml(failure: RpcFailure) -> str:
    parts = [
        f"<error-type>{failure.error_type}</error-type>",
        f"<error-tag>{failure.tag}</error-tag>",
        f"<error-severity>{failure.severity}</error-severity>",
    ]
    if failure.app_tag:
        parts.append(f"<error-app-tag>{escape(failure.app_tag)}</error-app-tag>")
    if failure.path:
        parts.append(f"<error-path {_ERROR_PATH_PREFIXES}>{escape(failure.path)}</error-path>")
    parts.append(f'<error-message xml:lang="en">{escape(failure.message)}</error-message>')
    if failure.info:
        info = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in failure.info.items())
        parts.append(f"<error-info>{info}</error-info>")
    return "<rpc-error>" + "".join(parts) + "</rpc-error>"


class NetconfServer(SshService):
    """One device's NETCONF server. `stop()` ends every session (the node went down)."""

    def __init__(
        self,
        device: SimDevice,
        datastores: Datastores,
        *,
        login: LabLogin,
        options: asyncssh.SSHServerConnectionOptions,
    ) -> None:
        self.device = device
        self.datastores = datastores
        self.sessions: dict[int, _Session] = {}
        self._ids = itertools.count(1)
        self._listener = SshListener(login=login, options=options, handler=self._serve)

    async def _serve(self, process: asyncssh.SSHServerProcess[Any]) -> None:
        if process.subsystem != "netconf":
            process.stderr.write(b"this port serves only the netconf subsystem\n")
            process.exit(1)
            return
        session = _Session(self, next(self._ids), process)
        self.sessions[session.id] = session
        try:
            await session.run()
        except (asyncssh.Error, ConnectionError) as exc:
            log.debug("%s: NETCONF session %d ended: %s", self.device.name, session.id, exc)
        except FramingError as exc:
            log.info("%s: NETCONF session %d: %s", self.device.name, session.id, exc)
        finally:
            del self.sessions[session.id]
            self.datastores.session_ended(session.id)
            if not process.is_closing():
                process.exit(0)


class _Session:
    def __init__(
        self, server: NetconfServer, session_id: int, process: asyncssh.SSHServerProcess[Any]
    ) -> None:
        self.id = session_id
        self._server = server
        self._device = server.device
        self._ds = server.datastores
        self._process = process
        self._framer = _Framer(process.stdin)
        self._handlers: dict[str, Callable[[ET.Element], str]] = {
            "get": self._get,
            "get-config": self._get_config,
            "edit-config": self._edit_config,
            "lock": self._lock,
            "unlock": self._unlock,
            "validate": self._validate,
            "commit": self._commit,
            "cancel-commit": self._cancel_commit,
            "discard-changes": self._discard_changes,
            "close-session": self._close_session,
            "kill-session": self._kill_session,
        }
        self._closing = False

    def kill(self) -> None:
        self._closing = True
        self._process.close()

    async def _send(self, text: str) -> None:
        self._process.stdout.write(_frame(text.encode(), self._framer.chunked))
        await self._process.stdout.drain()

    async def run(self) -> None:
        capabilities = "".join(f"<capability>{escape(c)}</capability>" for c in CAPABILITIES)
        await self._send(
            f'{_XML_DECL}<hello xmlns="{BASE_NS}"><capabilities>{capabilities}</capabilities>'
            f"<session-id>{self.id}</session-id></hello>"
        )
        hello = await self._framer.read()
        if hello is None:
            return
        client_caps = self._client_capabilities(hello)
        if client_caps is None:
            return
        self._framer.chunked = BASE_1_1 in client_caps
        while not self._closing:
            message = await self._framer.read()
            if message is None:
                return
            reply = self._handle(message)
            await self._device.delay_reply()
            await self._send(reply)

    def _client_capabilities(self, hello: bytes) -> set[str] | None:
        try:
            root = ET.fromstring(hello)
        except ET.ParseError:
            log.info("%s: session %d: malformed hello", self._device.name, self.id)
            return None
        if split_tag(root.tag) != (BASE_NS, "hello"):
            log.info("%s: session %d: expected hello", self._device.name, self.id)
            return None
        caps = root.find(f"{{{BASE_NS}}}capabilities")
        found = {(c.text or "").strip() for c in (caps if caps is not None else [])}
        if not found & {BASE_1_0, BASE_1_1}:
            log.info("%s: session %d: no common base capability", self._device.name, self.id)
            return None
        return found

    # --- dispatch ----------------------------------------------------------------------------

    def _handle(self, message: bytes) -> str:
        try:
            rpc = ET.fromstring(message)
        except ET.ParseError as exc:
            return self._reply(
                {}, _error_xml(RpcFailure("malformed-message", str(exc), error_type="rpc"))
            )
        attrs = {k: v for k, v in rpc.attrib.items() if not k.startswith("{")}
        try:
            if split_tag(rpc.tag) != (BASE_NS, "rpc"):
                raise RpcFailure(
                    "unknown-element",
                    "expected an <rpc> element",
                    error_type="rpc",
                    info={"bad-element": split_tag(rpc.tag)[1]},
                )
            if "message-id" not in attrs:
                raise RpcFailure(
                    "missing-attribute",
                    "rpc without message-id",
                    error_type="rpc",
                    info={"bad-attribute": "message-id", "bad-element": "rpc"},
                )
            if len(rpc) != 1:
                raise RpcFailure(
                    "malformed-message", "an rpc holds exactly one operation", error_type="rpc"
                )
            operation = rpc[0]
            ns, name = split_tag(operation.tag)
            handler = self._handlers.get(name) if ns == BASE_NS else None
            if handler is None:
                raise RpcFailure(
                    "operation-not-supported",
                    f"operation '{name}' is not supported",
                    error_type="protocol",
                    info={"bad-element": name},
                )
            return self._reply(attrs, handler(operation))
        except RpcFailure as failure:
            return self._reply(attrs, _error_xml(failure))

    @staticmethod
    def _reply(attrs: dict[str, str], body: str) -> str:
        attr_text = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items() if k != "xmlns")
        return f'{_XML_DECL}<rpc-reply xmlns="{BASE_NS}"{attr_text}>{body}</rpc-reply>'

    # --- parameters --------------------------------------------------------------------------

    @staticmethod
    def _datastore(operation: ET.Element, param: str) -> Datastore:
        holder = _child(operation, param)
        if holder is None or len(holder) != 1:
            raise RpcFailure(
                "missing-element",
                f"<{param}> must name one datastore",
                error_type="protocol",
                info={"bad-element": param},
            )
        _, name = split_tag(holder[0].tag)
        if name in ("running", "candidate"):
            return "running" if name == "running" else "candidate"
        if name in ("url", "config"):
            raise RpcFailure(
                "operation-not-supported",
                f"<{name}> as {param} is not supported",
                error_type="protocol",
            )
        raise RpcFailure(
            "invalid-value",
            f"unknown datastore '{name}'",
            error_type="protocol",
            info={"bad-element": name},
        )

    def _filtered(self, operation: ET.Element, data: ET.Element) -> str:
        flt = _child(operation, "filter")
        if flt is not None:
            kind = flt.get("type", "subtree")
            if kind == "subtree":
                data = subtree_filter(data, flt)
            elif kind == "xpath":
                select = flt.get("select")
                if not select:
                    raise RpcFailure(
                        "missing-attribute",
                        "xpath filter without select",
                        error_type="protocol",
                        info={"bad-attribute": "select", "bad-element": "filter"},
                    )
                data = xpath_filter(data, select)
            else:
                raise RpcFailure(
                    "bad-attribute",
                    f"unknown filter type '{kind}'",
                    error_type="protocol",
                    info={"bad-attribute": "type", "bad-element": "filter"},
                )
        return ET.tostring(with_namespaces(data), encoding="unicode")

    # --- operations --------------------------------------------------------------------------

    def _get(self, operation: ET.Element) -> str:
        data = device_data(self._device, self._ds.get("running"), with_state=True)
        return self._filtered(operation, data)

    def _get_config(self, operation: ET.Element) -> str:
        source = self._datastore(operation, "source")
        data = device_data(self._device, self._ds.get(source), with_state=False)
        return self._filtered(operation, data)

    def _edit_config(self, operation: ET.Element) -> str:
        target = self._datastore(operation, "target")
        default_op = _child(operation, "default-operation")
        test_option = _child(operation, "test-option")
        test = (test_option.text or "").strip() if test_option is not None else "test-then-set"
        if test not in ("test-then-set", "set", "test-only"):
            raise RpcFailure(
                "invalid-value", f"unknown test-option '{test}'", error_type="protocol"
            )
        config = _child(operation, "config")
        if config is None:
            if _child(operation, "url") is not None:
                raise RpcFailure(
                    "operation-not-supported", "<url> is not supported", error_type="protocol"
                )
            raise RpcFailure(
                "missing-element",
                "edit-config without <config>",
                error_type="protocol",
                info={"bad-element": "config"},
            )
        op = parse_default_operation(default_op.text if default_op is not None else None)
        edited = apply_edit(self._ds.get(target), config, op)
        if test == "test-only":
            self._ds.validate(edited)
        else:
            self._ds.write(target, edited, self.id)
        return "<ok/>"

    def _lock(self, operation: ET.Element) -> str:
        self._ds.lock(self._datastore(operation, "target"), self.id)
        return "<ok/>"

    def _unlock(self, operation: ET.Element) -> str:
        self._ds.unlock(self._datastore(operation, "target"), self.id)
        return "<ok/>"

    def _validate(self, operation: ET.Element) -> str:
        source = _child(operation, "source")
        inline = _child(source, "config") if source is not None else None
        if inline is not None:
            self._ds.validate(apply_edit({}, inline, "merge"))
        else:
            self._ds.validate(self._ds.get(self._datastore(operation, "source")))
        return "<ok/>"

    def _commit(self, operation: ET.Element) -> str:
        confirmed = _child(operation, "confirmed") is not None
        timeout_s = DEFAULT_CONFIRM_TIMEOUT_S
        timeout = _child(operation, "confirm-timeout")
        if timeout is not None:
            text = (timeout.text or "").strip()
            if not text.isdigit() or not 0 < int(text) < 2**32:
                raise RpcFailure(
                    "invalid-value",
                    f"confirm-timeout '{text}' is not a positive number of seconds",
                    error_type="protocol",
                )
            timeout_s = int(text)
        persist = _child(operation, "persist")
        persist_id = _child(operation, "persist-id")
        self._ds.commit(
            self.id,
            confirmed=confirmed,
            timeout_s=timeout_s,
            persist=(persist.text or "").strip() if persist is not None else None,
            persist_id=(persist_id.text or "").strip() if persist_id is not None else None,
        )
        return "<ok/>"

    def _cancel_commit(self, operation: ET.Element) -> str:
        persist_id = _child(operation, "persist-id")
        self._ds.cancel_commit(
            self.id, persist_id=(persist_id.text or "").strip() if persist_id is not None else None
        )
        return "<ok/>"

    def _discard_changes(self, operation: ET.Element) -> str:
        self._ds.discard_changes(self.id)
        return "<ok/>"

    def _close_session(self, operation: ET.Element) -> str:
        self._closing = True
        return "<ok/>"

    def _kill_session(self, operation: ET.Element) -> str:
        holder = _child(operation, "session-id")
        text = (holder.text or "").strip() if holder is not None else ""
        if not text.isdigit():
            raise RpcFailure(
                "missing-element",
                "kill-session needs a numeric session-id",
                error_type="protocol",
                info={"bad-element": "session-id"},
            )
        target = int(text)
        if target == self.id:
            raise RpcFailure(
                "invalid-value",
                "a session cannot kill itself; use close-session",
                error_type="protocol",
            )
        victim = self._server.sessions.get(target)
        if victim is None:
            raise RpcFailure(
                "invalid-value",
                f"no session {target}",
                error_type="protocol",
                info={"session-id": text},
            )
        victim.kill()
        # Release its locks and roll back its unconfirmed commit now, not when its task ends.
        self._ds.session_ended(target)
        return "<ok/>"
