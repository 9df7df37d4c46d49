"""NETCONF on the event loop: the OpenSSH client in an asyncio subprocess, framing parsed in the
pipe's data callback, replies matched to requests by message-id and completing asyncio futures.

A call costs no thread hand-off: the request is built and written by the calling coroutine, and
the reply wakes it directly. This is the driver's path for OpenSSH (key authentication), where
it runs about as fast as the raw clients; drivers/netconf_transport.py keeps the thread-based
paths (paramiko for passwords, and ncclient's own RPC layer when a target asks for an ncclient
device handler).

ncclient still does what it is good at off the hot path: the hello (`HelloHandler.build` /
`parse`, `Capabilities`), filters (`build_filter`) and <rpc-error> parsing (`RPCReply`,
`RPCError`, raised exactly as ncclient's `RaiseMode.ERRORS` would). Requests are built here from
byte templates, with the argument names and element order of ncclient's operations, so that the
session code above speaks to either path the same way (see `AsyncRpcs`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree  # type: ignore[import-untyped]
from ncclient.capabilities import Capabilities
from ncclient.operations import util as nc_util
from ncclient.operations.errors import OperationError
from ncclient.operations.rpc import RPCError, RPCReply
from ncclient.transport.errors import SessionError, TransportError
from ncclient.transport.session import HelloHandler

from drivers.netconf_transport import OpenSshFailed

log = logging.getLogger(__name__)

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"
EOM = b"]]>]]>"
_NC_NS_B = NC_NS.encode()
_STDERR_KEEP = 2000
PROBE_RETRY_S = 0.5
# the probe after the hello: reads nothing (an empty subtree filter selects nothing)
PROBE_RPC = b'<get-config><source><running/></source><filter type="subtree"/></get-config>'
_MAX_CHUNK_HEADER = 13  # "\n#" + up to 10 digits (4294967295) + "\n"

# Replies are parsed without entity expansion or network access.
_REPLY_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
_DATA_TAG = f"{{{NC_NS}}}data"
_OK_TAG = f"{{{NC_NS}}}ok"
_RPC_ERROR_TAG = f"{{{NC_NS}}}rpc-error"
# the message-id of an <rpc-reply>, read without parsing the whole message
_REPLY_ID = re.compile(rb"<(?:[\w.-]+:)?rpc-reply\b[^>]*?\bmessage-id\s*=\s*(\"|')(.*?)\1", re.S)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")


class FramingError(TransportError):  # type: ignore[misc]
    pass


# --- framing -------------------------------------------------------------------------------


class FrameReader:
    """Splits a NETCONF byte stream into messages: end-of-message delimited (base:1.0, always
    used for the hellos) or chunked (base:1.1, RFC 6242 section 4.2). `chunked` may be switched
    between two messages, which is why messages are taken one by one (`next_message`)."""

    def __init__(self) -> None:
        self.chunked = False
        self._buffer = bytearray()
        self._scanned = 0  # base:1.0: how far the buffer holds no delimiter
        self._chunks = bytearray()  # base:1.1: the message so far

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_message(self) -> bytes | None:
        """The next whole message, or None until more bytes arrive."""
        return self._next_chunked() if self.chunked else self._next_eom()

    def _next_eom(self) -> bytes | None:
        buffer = self._buffer
        at = buffer.find(EOM, max(0, self._scanned - len(EOM) + 1))
        if at < 0:
            self._scanned = len(buffer)
            return None
        message = bytes(buffer[:at]).strip()
        del buffer[: at + len(EOM)]
        self._scanned = 0
        return message

    def _next_chunked(self) -> bytes | None:
        buffer = self._buffer
        while True:
            if len(buffer) < 4:
                return None
            if buffer[0] != 0x0A or buffer[1] != 0x23:  # "\n#"
                raise FramingError(f"bad chunk header {bytes(buffer[:16])!r}")
            if buffer[2] == 0x23:  # "\n##\n": end of message
                if buffer[3] != 0x0A:
                    raise FramingError(f"bad end of chunks {bytes(buffer[:16])!r}")
                del buffer[:4]
                message = bytes(self._chunks)
                self._chunks.clear()
                return message
            newline = buffer.find(b"\n", 2, _MAX_CHUNK_HEADER + 1)
            if newline < 0:
                if len(buffer) >= _MAX_CHUNK_HEADER:
                    raise FramingError(f"bad chunk header {bytes(buffer[:16])!r}")
                return None
            digits = bytes(buffer[2:newline])
            if not digits.isdigit() or digits[0] == 0x30:  # no sign, no leading zero
                raise FramingError(f"bad chunk size {digits!r}")
            size = int(digits)
            if size > 4294967295:
                raise FramingError(f"chunk too large: {size}")
            end = newline + 1 + size
            if len(buffer) < end:
                return None
            self._chunks += buffer[newline + 1 : end]
            del buffer[:end]


def frame(message: bytes, chunked: bool) -> bytes:
    if chunked:
        return b"\n#%d\n%s\n##\n" % (len(message), message)
    return message + EOM


def reply_message_id(message: bytes) -> str | None:
    """The message-id of an <rpc-reply>; None for any other message (a notification) or for a
    reply without one."""
    found = _REPLY_ID.search(message, 0, 16384)
    return found.group(2).decode() if found else None


def is_rpc_reply(message: bytes) -> bool:
    head = _XML_DECL.sub(b"", message[:512], count=1).lstrip()
    return bool(re.match(rb"<(?:[\w.-]+:)?rpc-reply\b", head))


# --- replies -------------------------------------------------------------------------------


class Reply:
    """A parsed <rpc-reply>; `data_ele` as on ncclient's GetReply."""

    __slots__ = ("root",)

    def __init__(self, root: Any) -> None:
        self.root = root

    @property
    def data_ele(self) -> Any:
        return self.root.find(_DATA_TAG)


def check_reply(raw: bytes, device_handler: Any) -> Reply:
    """Parse a reply and raise its <rpc-error>s as ncclient does in `RaiseMode.ERRORS`: the
    first error decides (unless the device handler exempts it); several errors raise one
    RPCError that lists them all."""
    try:
        root = etree.fromstring(raw, parser=_REPLY_PARSER)
    except etree.XMLSyntaxError as exc:
        raise OperationError(f"the reply is not well-formed XML: {exc}") from None
    if root.find(_OK_TAG) is not None or root.find(f".//{_RPC_ERROR_TAG}") is None:
        return Reply(root)
    text = raw.decode(errors="replace")
    reply = RPCReply(text)
    reply.parse()  # ncclient's own reading of the errors
    first = reply.error
    if first is None or device_handler.is_rpc_error_exempt(first.message):
        return Reply(root)
    if first.severity != "error":
        return Reply(root)  # warnings only
    errors = reply.errors
    if len(errors) > 1:
        raise RPCError(etree.fromstring(raw, parser=_REPLY_PARSER), errs=errors)
    raise first


# --- requests ------------------------------------------------------------------------------


def _text(value: str) -> bytes:
    return escape(value).encode()


def _datastore(wrapper: str, name: str) -> bytes:
    """<source><running/></source>; a URL goes in <url> as ncclient puts it."""
    if "://" in name:
        return b"<%s><url>%s</url></%s>" % (wrapper.encode(), _text(name), wrapper.encode())
    if not re.fullmatch(r"[A-Za-z_][\w.-]*", name):
        raise OperationError(f"not a datastore name: {name!r}")
    return b"<%s><%s/></%s>" % (wrapper.encode(), name.encode(), wrapper.encode())


def _filter(spec: Any) -> bytes:
    if spec is None:
        return b""
    return bytes(etree.tostring(nc_util.build_filter(spec)))


def _one_of(name: str, value: str | None, allowed: Sequence[str]) -> bytes:
    if value is None:
        return b""
    nc_util.validate_args(name, value, allowed)
    tag = name.replace("_", "-").encode()
    return b"<%s>%s</%s>" % (tag, value.encode(), tag)


class AsyncRpcs:
    """The operations of ncclient's Manager that the session uses, with the same arguments,
    as bytes for the body of an <rpc>."""

    @staticmethod
    def get(filter: Any = None) -> bytes:
        return b"<get>%s</get>" % _filter(filter)

    @staticmethod
    def get_config(source: str, filter: Any = None) -> bytes:
        return b"<get-config>%s%s</get-config>" % (_datastore("source", source), _filter(filter))

    @staticmethod
    def lock(target: str) -> bytes:
        return b"<lock>%s</lock>" % _datastore("target", target)

    @staticmethod
    def unlock(target: str) -> bytes:
        return b"<unlock>%s</unlock>" % _datastore("target", target)

    @staticmethod
    def edit_config(
        config: Any,
        target: str = "candidate",
        default_operation: str | None = None,
        error_option: str | None = None,
        test_option: str | None = None,
    ) -> bytes:
        """`config` is the <config> element (see drivers.netconf.build_edit_config)."""
        return b"<edit-config>%s%s%s%s%s</edit-config>" % (
            _datastore("target", target),
            _one_of("default_operation", default_operation, ("merge", "replace", "none")),
            _one_of("test_option", test_option, ("test-then-set", "set", "test-only")),
            _one_of(
                "error_option",
                error_option,
                ("stop-on-error", "continue-on-error", "rollback-on-error"),
            ),
            etree.tostring(config),
        )

    @staticmethod
    def validate(source: str = "candidate") -> bytes:
        return b"<validate>%s</validate>" % _datastore("source", source)

    @staticmethod
    def commit(
        confirmed: bool = False,
        timeout: str | None = None,
        persist: str | None = None,
        persist_id: str | None = None,
    ) -> bytes:
        if persist and persist_id:
            raise OperationError("Invalid operation as persist cannot be present with persist-id")
        body = b""
        if confirmed:
            body += b"<confirmed/>"
            if timeout is not None:
                body += b"<confirm-timeout>%s</confirm-timeout>" % _text(timeout)
            if persist is not None:
                body += b"<persist>%s</persist>" % _text(persist)
        if persist_id:
            body += b"<persist-id>%s</persist-id>" % _text(persist_id)
        return b"<commit>%s</commit>" % body if body else b"<commit/>"

    @staticmethod
    def cancel_commit(persist_id: str | None = None) -> bytes:
        if persist_id is None:
            return b"<cancel-commit/>"
        return b"<cancel-commit><persist-id>%s</persist-id></cancel-commit>" % _text(persist_id)

    @staticmethod
    def discard_changes() -> bytes:
        return b"<discard-changes/>"

    @staticmethod
    def close_session() -> bytes:
        return b"<close-session/>"


# --- the channel ---------------------------------------------------------------------------


class _SshPipes(asyncio.SubprocessProtocol):
    """The subprocess's pipes: stdout to the channel, stderr's tail kept for error messages."""

    def __init__(self, channel: OpenSshChannel) -> None:
        self._channel = channel
        self.stderr = bytearray()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self._channel._received(data)
        else:
            self.stderr += data
            del self.stderr[:-_STDERR_KEEP]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self._channel._ended(f"ssh closed its output{f' ({exc})' if exc else ''}")

    def process_exited(self) -> None:
        self._channel._exited()


class OpenSshChannel:
    """One NETCONF session through `ssh -s HOST netconf`, driven by the event loop."""

    def __init__(self, device_handler: Any) -> None:
        self._handler = device_handler
        self._client_capabilities = Capabilities(device_handler.get_capabilities())
        self._reader = FrameReader()
        self._ids = itertools.count(1)
        self._pending: OrderedDict[str, asyncio.Future[bytes]] = OrderedDict()
        self._hello: asyncio.Future[bytes] | None = None
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._pipes: _SshPipes | None = None
        self._exit: asyncio.Future[None] | None = None
        self._scratch: str | None = None  # a directory holding the pinned known_hosts file
        self._chunked = False
        self._framing_settled = False  # False until open() has chosen the framing after hello
        self._ended_why: str | None = None
        self.aborted = False
        self.session_id: str | None = None
        self.server_capabilities: Capabilities = Capabilities([])

    @property
    def is_alive(self) -> bool:
        return self._transport is not None and self._ended_why is None and not self.aborted

    @property
    def stderr(self) -> str:
        if self._pipes is None:
            return ""
        return bytes(self._pipes.stderr).decode(errors="replace").strip()

    async def open(
        self,
        argv: Sequence[str],
        *,
        hello_within_s: float,
        pinned_known_hosts: str | None = None,
        allow_agent: bool = False,
    ) -> None:
        """Start ssh and exchange hellos. `pinned_known_hosts` is the one known_hosts line to
        trust; OpenSSH takes the first value it gets for an option, so these come first.
        Raises OpenSshFailed (with ssh's stderr) when no session comes of it."""
        loop = asyncio.get_running_loop()
        argv = list(argv)
        if pinned_known_hosts is not None:
            self._scratch = await asyncio.to_thread(_write_known_hosts, pinned_known_hosts)
            known_hosts = str(Path(self._scratch) / "known_hosts")
            argv[1:1] = [
                "-o",
                f"UserKnownHostsFile={known_hosts}",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
            ]
        keep = ("PATH", "HOME", "USER", "LANG", *(("SSH_AUTH_SOCK",) if allow_agent else ()))
        env = {k: v for k, v in os.environ.items() if k in keep}
        hello_future: asyncio.Future[bytes] = loop.create_future()
        self._hello = hello_future
        self._exit = loop.create_future()
        pipes = self._pipes = _SshPipes(self)
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: pipes,
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # a terminal's Ctrl-C is the daemon's, not ssh's
            )
            self._transport = transport
            self._stdin = transport.get_pipe_transport(0)  # type: ignore[assignment]
            self._write(HelloHandler.build(self._client_capabilities, self._handler).encode())
            hello = await _wait_for_hello(hello_future, hello_within_s)
            self.session_id, self.server_capabilities = HelloHandler.parse(hello.decode())
            # as ncclient does: chunked framing when both sides speak base:1.1
            if BASE_11 in self.server_capabilities and BASE_11 in self._client_capabilities:
                self._chunked = self._reader.chunked = True
            self._framing_settled = True
            self._drain()  # anything that came right behind the hello
            await self._probe(hello_within_s)
        except asyncio.CancelledError:
            self.abort()
            await self._wait_exit(1.0)
            await self._cleanup()
            raise
        except (OSError, TransportError, SessionError, etree.XMLSyntaxError) as exc:
            self.abort()
            await self._wait_exit(1.0)  # for ssh's last words on stderr
            await self._cleanup()
            raise OpenSshFailed(self.stderr) from exc

    async def _probe(self, within_s: float) -> None:
        """Send harmless requests until one is answered. netconfd (yuma123) drops a request
        that reaches it in the same read as the client's hello, which the relays between us
        (ssh, sshd, its subsystem) can make happen to the first request of a session; any
        reply, even an <rpc-error>, shows the server now reads requests one by one. A late
        reply to an earlier probe is dropped as unknown."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while (wait := min(PROBE_RETRY_S, deadline - loop.time())) > 0:
            message_id = str(next(self._ids))
            future: asyncio.Future[bytes] = loop.create_future()
            self._pending[message_id] = future
            try:
                self._write(_rpc(message_id, PROBE_RPC))
                await asyncio.wait_for(asyncio.shield(future), wait)
                return
            except TimeoutError:
                log.debug("netconf session %s: probe %s unanswered", self.session_id, message_id)
            finally:
                self._pending.pop(message_id, None)
                if not future.done():
                    future.cancel()
        raise SessionError("no reply to the first request")

    async def call(self, body: bytes, time_limit: float) -> Reply:
        """Send <rpc>body</rpc> and return its checked reply. A timeout (TimeoutError) or a
        cancellation aborts the session: a late reply could no longer be told apart."""
        if not self.is_alive:
            raise TransportError("Not connected to NETCONF server")
        message_id = str(next(self._ids))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._pending[message_id] = future
        timer = loop.call_later(time_limit, _expire, future)
        try:
            self._write(_rpc(message_id, body))
            raw = await future
        except (TimeoutError, asyncio.CancelledError):
            self.abort()
            raise
        finally:
            timer.cancel()
            self._pending.pop(message_id, None)
        return check_reply(raw, self._handler)

    def _write(self, message: bytes) -> None:
        stdin = self._stdin
        if stdin is None or stdin.is_closing():
            raise TransportError("Not connected to NETCONF server")
        stdin.write(frame(message, self._chunked))

    # -- the pipe's side (event loop callbacks)

    def _received(self, data: bytes) -> None:
        self._reader.feed(data)
        self._drain()

    def _drain(self) -> None:
        try:
            while (message := self._reader.next_message()) is not None:
                self._deliver(message)
                if not self._framing_settled:
                    return  # that was the hello: the framing may change after it
        except FramingError as exc:
            log.warning("netconf session %s: %s; closing it", self.session_id, exc)
            self._fail_all(exc)
            self.abort()

    def _deliver(self, message: bytes) -> None:
        hello = self._hello
        if hello is not None and not hello.done():
            hello.set_result(message)  # the first message is the server's hello
            self._hello = None
            return
        message_id = reply_message_id(message)
        future = self._pending.get(message_id) if message_id is not None else None
        if future is None and message_id is None and self._pending and is_rpc_reply(message):
            # a reply without message-id (some devices' malformed-message errors): replies
            # come in request order, so it answers the oldest request
            future = next(iter(self._pending.values()))
        if future is None:
            log.debug("netconf session %s: unexpected message dropped", self.session_id)
            return
        if not future.done():
            future.set_result(message)

    def _ended(self, why: str) -> None:
        if self._ended_why is None:
            self._ended_why = why
        self._fail_all(TransportError(why))

    def _exited(self) -> None:
        self._ended("ssh ended")
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(None)

    def _fail_all(self, exc: Exception) -> None:
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(TransportError(f"no hello: {exc}"))
            self._hello = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)

    # -- ending

    def abort(self) -> None:
        """Kill ssh now, without waiting: every request still waiting fails at once."""
        self.aborted = True
        self._fail_all(TransportError("the session was aborted"))
        if self._transport is not None:
            self._transport.close()  # kills ssh if it still runs, closes the pipes

    async def close(self, time_limit: float) -> None:
        """Say close-session when the session still works, then end ssh (EOF, then a kill)."""
        if self.is_alive:
            try:
                await self.call(AsyncRpcs.close_session(), time_limit)
            except (RPCError, OperationError, TimeoutError, TransportError) as exc:
                log.debug("close-session on netconf session %s failed: %s", self.session_id, exc)
        if self._stdin is not None:
            self._stdin.close()  # ssh sends EOF and exits
        await self._wait_exit(2.0)
        if self._transport is not None:
            self._transport.close()
        await self._cleanup()

    async def _wait_exit(self, seconds: float) -> None:
        if self._exit is None or self._transport is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._exit), seconds)
        except TimeoutError:
            self._transport.close()  # kills it
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._exit), 5.0)

    async def _cleanup(self) -> None:
        if self._scratch is not None:
            scratch, self._scratch = self._scratch, None
            await asyncio.to_thread(shutil.rmtree, scratch, True)


async def _wait_for_hello(hello: asyncio.Future[bytes], within_s: float) -> bytes:
    try:
        return await asyncio.wait_for(asyncio.shield(hello), within_s)
    except TimeoutError:
        hello.cancel()  # nobody waits for it any more
        raise SessionError("Capability exchange timed out") from None


def _rpc(message_id: str, body: bytes) -> bytes:
    return b'<rpc message-id="%s" xmlns="%s">%s</rpc>' % (message_id.encode(), _NC_NS_B, body)


def _expire(future: asyncio.Future[bytes]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def _write_known_hosts(line: str) -> str:
    scratch = tempfile.mkdtemp(prefix="oss-netconf-")
    (Path(scratch) / "known_hosts").write_text(line)
    return scratch
