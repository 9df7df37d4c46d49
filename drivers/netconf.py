"""NETCONF over SSH, on ncclient.

    driver = NetconfDriver()
    async with driver.connect(target) as nc:
        nc.require(":candidate")
        async with nc.locked("candidate"):
            await nc.edit_config(xml, target="candidate", operation="merge")
            await nc.validate()
            await nc.commit(confirmed=True, timeout_s=60, persist="tx-42")
        await nc.commit(persist_id="tx-42")  # confirms
    await driver.close()

How a session runs: with the OpenSSH client (the default for key authentication) on the event
loop, drivers/netconf_async.py: ssh is an asyncio subprocess, requests are written by the calling
coroutine and each reply completes its future, so a call costs no thread hand-off. ncclient
still handles the hello, capabilities, filters and <rpc-error> parsing there. With paramiko
(needed for a password) or when the target names an ncclient device handler
(`options={"ncclient_device": "junos"}`: its quirks live in ncclient's RPC layer), ncclient's
Manager runs in a bounded pool of worker threads (`BlockingCalls`). Either way a call has the
target's timeout; a timeout or a cancelled task breaks the SSH connection (what waits for a reply
fails at once) and the session is dropped from the pool, so the next borrower gets a fresh one.
Sessions are reused per device (`SessionPool`).

SSH is the OpenSSH client in a subprocess when authenticating with a key (fastest), or paramiko
when a password is needed (OpenSSH never prompts); `options={"ssh_client": "paramiko"}` (or
"openssh") chooses explicitly. See drivers/netconf_transport.py.

Host keys are verified by default, against `credentials.known_hosts` (default: the SSH client's
own, `~/.ssh/known_hosts`; entries for a non-standard port read `[host]:port key`) or, when
`credentials.host_key` pins one ("ssh-ed25519 AAAA..."), against exactly that key. Verification
is off only when the target says so explicitly: `options={"host_key_verify": False}`.
Authentication uses the credentials' private key and/or password; SSH agents, keys lying
around in ~/.ssh and ~/.ssh/config are not used (`options={"allow_agent": True,
"look_for_keys": True}` to allow the first two).

Errors: unreachable or a broken session -> ConnectError; refused credentials or an untrusted
host key -> AuthError; no answer in time -> DeviceTimeout; <rpc-error> -> RpcError whose
`device_error` carries the device's error-tag, error-message and error-path; a capability the
device lacks -> Unsupported.

Throughput: ncclient's transport thread only looks at its send queue between `select()` waits
of `ncclient.transport.session.TICK` (0.1 s), which caps a stock session near 10 RPC/s. This
driver's threaded transports write each request from the sending thread instead, without
changing ncclient's module state, and the event-loop path has no queue at all;
`bench/netconf_bench.py` measures all three against raw clients.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import paramiko
from lxml import etree  # type: ignore[import-untyped]
from ncclient.capabilities import Capabilities
from ncclient.manager import Manager, make_device_handler
from ncclient.operations import RaiseMode
from ncclient.operations.errors import (
    MissingCapabilityError,
    OperationError,
    TimeoutExpiredError,
)
from ncclient.operations.rpc import RPCError
from ncclient.transport.errors import (
    AuthenticationError,
    SessionCloseError,
    SessionError,
    SSHError,
    SSHUnknownHostError,
    TransportError,
)

from drivers.base import (
    BlockingCalls,
    Datastore,
    PooledDriver,
    SessionPool,
    Target,
)
from drivers.netconf_async import PROBE_RETRY_S, PROBE_RPC, AsyncRpcs, OpenSshChannel
from drivers.netconf_transport import (
    KnownHostsUnreadable,
    OpenSshFailed,
    OpenSshOptions,
    OpenSshSession,
    ParamikoSession,
    openssh_argv,
    pinned_known_hosts_line,
    ssh_binary,
)
from oss.errors import (
    AuthError,
    ConnectError,
    DeviceTimeout,
    DriverError,
    InvalidInput,
    RpcError,
    Unsupported,
)

log = logging.getLogger(__name__)

PROTOCOL = "netconf"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
_OPERATION_ATTR = f"{{{NC_NS}}}operation"

FilterType = Literal["subtree", "xpath"]
SshClient = Literal["openssh", "paramiko"]
Transport = OpenSshSession | ParamikoSession
# merge/replace/none are NETCONF's default-operation; "delete" removes what the payload names
# (see `build_edit_config`).
NetconfEditOperation = Literal["merge", "replace", "delete", "none"]
ErrorOption = Literal["stop-on-error", "continue-on-error", "rollback-on-error"]
TestOption = Literal["test-then-set", "set", "test-only"]

_CLOSE_TIME_LIMIT_S = 5.0

# A payload that is one <config> element (in any namespace prefix), not data to wrap in one.
_CONFIG_START = re.compile(r"\s*<(?:[\w.-]+:)?config[\s/>]")
# Our own XML (config payloads) is parsed without entity expansion or network access.
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


# --- pure helpers --------------------------------------------------------------------------


def rpc_error_text(error: RPCError) -> str:
    """The device's own words for an <rpc-error> (or several): error-tag, error-message,
    error-app-tag and error-path, one error per `;`-separated part."""
    errors = error.errlist or [error]
    parts = []
    for err in errors:
        text = f"{(err.tag or 'error').strip()}: {(err.message or '').strip() or '(no message)'}"
        if err.app_tag:
            text += f" [{err.app_tag.strip()}]"
        if err.path:
            text += f" at {err.path.strip()}"
        parts.append(text)
    return "; ".join(parts)


def rpc_error_tags(error: RPCError) -> list[str]:
    return [str(err.tag) for err in (error.errlist or [error]) if err.tag]


def build_edit_config(config: str, operation: NetconfEditOperation) -> tuple[Any, str | None]:
    """The <config> element and the default-operation for an edit-config.

    `config` is either a `<config>` element (NETCONF base namespace or none) or the top-level
    data elements themselves, which get wrapped. merge/replace/none become the
    default-operation. "delete" marks nodes with `nc:operation="delete"` (default-operation
    none): an empty element (`<description/>`, `<vrfs/>`) is deleted, and so is an element whose
    children are all leaves with values (a list entry named by its keys, such as
    `<interface><name>eth2</name></interface>`); other elements are walked into. For finer
    control put `nc:operation` attributes in the payload yourself and use "none".
    """
    root = _parse_config(config)
    if operation == "delete":
        for child in _element_children(root):
            _mark_deletions(child)
        return root, "none"
    return root, operation


def _parse_config(config: str) -> Any:
    if not _CONFIG_START.match(config):
        # several top-level elements (a rendered payload, mostly): wrapped at once rather than
        # after a failed parse, whose error costs more than the parse
        try:
            return etree.fromstring(_wrapped(config), parser=_XML_PARSER)
        except etree.XMLSyntaxError:
            pass  # an XML declaration, or not well-formed: as below
    try:
        root = etree.fromstring(config.encode(), parser=_XML_PARSER)
    except etree.XMLSyntaxError:
        root = None  # perhaps several top-level elements: wrap them below
    if root is not None and etree.QName(root).localname == "config":
        if etree.QName(root).namespace not in (None, NC_NS):
            raise InvalidInput(f"<config> must be in the namespace {NC_NS}")
        return root
    try:
        return etree.fromstring(_wrapped(config), parser=_XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidInput(f"edit-config payload is not well-formed XML: {exc}") from None


def _wrapped(config: str) -> bytes:
    return f'<nc:config xmlns:nc="{NC_NS}">{config}</nc:config>'.encode()


def _element_children(element: Any) -> list[Any]:
    return [child for child in element if isinstance(child.tag, str)]  # skip comments


def _has_value(element: Any) -> bool:
    return bool((element.text or "").strip())


def _mark_deletions(element: Any) -> None:
    children = _element_children(element)
    if not children:
        if not _has_value(element):
            element.set(_OPERATION_ATTR, "delete")
        return  # a leaf with a value selects (a key); it is not deleted itself
    if all(not _element_children(c) and _has_value(c) for c in children):
        element.set(_OPERATION_ATTR, "delete")
        return
    for child in children:
        _mark_deletions(child)


def pinned_host_key_b64(host_key: str) -> str:
    """The base64 blob of a pinned public key line ("ssh-ed25519 AAAA... [comment]")."""
    parts = host_key.split()
    blob = parts[1] if len(parts) >= 2 else (parts[0] if parts else "")
    try:
        base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("credentials.host_key is not an OpenSSH public key line") from None
    return blob


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# --- the session ---------------------------------------------------------------------------


class NetconfSession:
    """One NETCONF session on one device."""

    def __init__(self, target: Target, rpcs: _Rpcs, secrets: tuple[str, ...]) -> None:
        self._target = target
        self._rpcs = rpcs
        self._secrets = secrets
        self._capabilities = frozenset(str(uri) for uri in rpcs.server_capabilities)
        self._has: dict[str, bool] = {}  # answers of has(): asked before every operation

    def __repr__(self) -> str:
        return f"NetconfSession({self._target}, session-id={self.session_id})"

    # -- hello

    @property
    def capabilities(self) -> frozenset[str]:
        """The capability URIs of the server's hello."""
        return self._capabilities

    @property
    def session_id(self) -> str | None:
        sid = self._rpcs.session_id
        return None if sid is None else str(sid)

    @property
    def is_alive(self) -> bool:
        return self._rpcs.is_alive

    def has(self, capability: str) -> bool:
        """Whether the server announced `capability`: a full URI, the URI without its
        parameters (a YANG module's namespace), or ncclient's short form (":candidate")."""
        known = self._has.get(capability)
        if known is None:
            known = capability in self._rpcs.server_capabilities or any(
                uri.split("?", 1)[0] == capability for uri in self._capabilities
            )
            self._has[capability] = known
        return known

    def require(self, capability: str) -> None:
        if not self.has(capability):
            raise Unsupported(
                f"the device does not announce {capability}",
                device=self._target.name,
                protocol=PROTOCOL,
            )

    # -- reading

    async def get(
        self,
        filter: str | None = None,
        *,
        filter_type: FilterType = "subtree",
        namespaces: Mapping[str, str] | None = None,
    ) -> str:
        """Configuration and state; returns the reply's <data> element as XML text."""
        spec = self._filter(filter, filter_type, namespaces)
        reply = await self._call("get", "get", filter=spec)
        return _data_xml(reply.data_ele)

    async def get_config(
        self,
        source: Datastore = "running",
        filter: str | None = None,
        *,
        filter_type: FilterType = "subtree",
        namespaces: Mapping[str, str] | None = None,
    ) -> str:
        """One datastore's configuration; returns the reply's <data> element as XML text."""
        data = await self.get_config_data(
            source, filter, filter_type=filter_type, namespaces=namespaces
        )
        return _data_xml(data)

    async def get_config_data(
        self,
        source: Datastore = "running",
        filter: str | Sequence[str] | None = None,
        *,
        filter_type: FilterType = "subtree",
        namespaces: Mapping[str, str] | None = None,
    ) -> Any:
        """`get_config`'s <data> as the parsed element (lxml; None when the reply has none),
        for a caller that reads it as a tree: no text to write out and parse again. A
        sequence of subtree filters asks for all of them in one request."""
        if source != "running":
            self.require(f":{source}")
        spec = self._filter(filter, filter_type, namespaces)
        reply = await self._call("get-config", "get_config", source, filter=spec)
        return reply.data_ele

    def _filter(
        self,
        filter: str | Sequence[str] | None,
        filter_type: FilterType,
        namespaces: Mapping[str, str] | None,
    ) -> tuple[str, Any] | list[str] | None:
        if filter is None:
            return None
        if not isinstance(filter, str):
            if filter_type != "subtree" or namespaces:
                raise InvalidInput("several filters in one request are subtree filters")
            return list(filter)  # ncclient's form for sibling subtrees in one <filter>
        if filter_type == "xpath":
            self.require(":xpath")
            return ("xpath", (dict(namespaces), filter) if namespaces else filter)
        if namespaces:
            raise InvalidInput("namespaces apply to XPath filters only")
        return ("subtree", filter)

    # -- locks

    async def lock(self, target: Datastore = "candidate") -> None:
        await self._call(f"lock {target}", "lock", target)

    async def unlock(self, target: Datastore = "candidate") -> None:
        await self._call(f"unlock {target}", "unlock", target)

    @asynccontextmanager
    async def locked(self, target: Datastore = "candidate") -> AsyncIterator[None]:
        await self.lock(target)
        try:
            yield
        except BaseException:
            # Unlock, but the block's own error is the one to report.
            try:
                await self.unlock(target)
            except DriverError as exc:
                log.debug("unlock after a failed block on %s: %s", self._target, exc)
            raise
        await self.unlock(target)

    # -- changing configuration

    async def edit_config(
        self,
        config: str,
        *,
        target: Datastore = "candidate",
        operation: NetconfEditOperation = "merge",
        error_option: ErrorOption | None = None,
        test_option: TestOption | None = None,
    ) -> None:
        """edit-config on `target`. `operation` is the default-operation (merge, replace, none)
        or "delete" (see `build_edit_config`). `test_option="set"` skips the device's
        validation until `validate()` or `commit()`."""
        self.require(":candidate" if target == "candidate" else ":writable-running")
        if test_option is not None:
            self.require(":validate")
        if error_option == "rollback-on-error":
            self.require(":rollback-on-error")
        element, default_operation = build_edit_config(config, operation)
        await self._call(
            f"edit-config {target} ({operation})",
            "edit_config",
            element,
            target=target,
            default_operation=default_operation,
            error_option=error_option,
            test_option=test_option,
        )

    async def validate(self, source: Datastore = "candidate") -> None:
        self.require(":validate")
        await self._call(f"validate {source}", "validate", source)

    async def commit(
        self,
        *,
        confirmed: bool = False,
        timeout_s: int | None = None,
        persist: str | None = None,
        persist_id: str | None = None,
    ) -> None:
        """Commit the candidate. `confirmed=True` reverts by itself after `timeout_s` (the
        device's default: 600 s) unless a confirming commit follows: a plain `commit()` in the
        same session, or `commit(persist_id=...)` from any session when `persist` named it."""
        self.require(":candidate")
        if confirmed:
            self.require(":confirmed-commit")
        elif timeout_s is not None or persist is not None:
            raise InvalidInput("timeout_s and persist apply to a confirmed commit only")
        if persist is not None and persist_id is not None:
            raise InvalidInput("persist and persist_id cannot be given together")
        await self._call(
            "commit confirmed" if confirmed else "commit",
            "commit",
            confirmed=confirmed,
            timeout=None if timeout_s is None else str(int(timeout_s)),
            persist=persist,
            persist_id=persist_id,
        )

    async def cancel_commit(self, persist_id: str | None = None) -> None:
        """Cancel an ongoing confirmed commit: the running configuration goes back now."""
        self.require(":confirmed-commit")
        await self._call("cancel-commit", "cancel_commit", persist_id=persist_id)

    async def discard_changes(self) -> None:
        self.require(":candidate")
        await self._call("discard-changes", "discard_changes")

    # -- plumbing

    async def _call(self, what: str, operation: str, *args: Any, **kwargs: Any) -> Any:
        """Run one of ncclient's Manager operations (by name) on either path, and translate
        what goes wrong into the project's errors."""
        device = self._target.name
        if not self.is_alive:
            raise ConnectError(f"{what}: the session is closed", device=device, protocol=PROTOCOL)
        limit = self._target.timeout_s
        try:
            return await self._rpcs.call(operation, limit, *args, **kwargs)
        except RPCError as exc:
            raise RpcError(
                f"{what} refused",
                device=device,
                protocol=PROTOCOL,
                device_error=_scrub(rpc_error_text(exc), self._secrets),
                error_tags=rpc_error_tags(exc),
            ) from exc
        except (TimeoutError, TimeoutExpiredError) as exc:
            raise DeviceTimeout(
                f"{what}: no reply within {limit:g} s", device=device, protocol=PROTOCOL
            ) from exc
        except MissingCapabilityError as exc:
            raise Unsupported(f"{what}: {exc}", device=device, protocol=PROTOCOL) from exc
        except (TransportError, SessionError, OSError, EOFError, paramiko.SSHException) as exc:
            detail = _scrub(str(exc) or type(exc).__name__, self._secrets)
            raise ConnectError(
                f"{what}: the session broke ({detail})", device=device, protocol=PROTOCOL
            ) from exc
        except OperationError as exc:
            raise DriverError(
                f"{what}: {_scrub(str(exc), self._secrets)}", device=device, protocol=PROTOCOL
            ) from exc

    async def close(self) -> None:
        """Say close-session when the session still works, then end the transport."""
        await self._rpcs.close(min(self._target.timeout_s, _CLOSE_TIME_LIMIT_S))

    def abort(self) -> None:
        """Break the session now (no goodbye); what waits for a reply fails at once."""
        self._rpcs.abort()


# --- the two ways a session runs its operations ---------------------------------------------


class _Rpcs(Protocol):
    """What a session needs of its transport: ncclient's Manager operations by name."""

    @property
    def session_id(self) -> str | None: ...

    @property
    def server_capabilities(self) -> Capabilities: ...

    @property
    def is_alive(self) -> bool: ...

    async def call(self, operation: str, time_limit: float, *args: Any, **kwargs: Any) -> Any: ...

    def abort(self) -> None: ...

    async def close(self, time_limit: float) -> None: ...


class _LoopRpcs:
    """On the event loop (OpenSSH, drivers/netconf_async.py): no thread per call."""

    def __init__(self, channel: OpenSshChannel) -> None:
        self._channel = channel

    @property
    def session_id(self) -> str | None:
        return self._channel.session_id

    @property
    def server_capabilities(self) -> Capabilities:
        return self._channel.server_capabilities

    @property
    def is_alive(self) -> bool:
        return self._channel.is_alive

    async def call(self, operation: str, time_limit: float, *args: Any, **kwargs: Any) -> Any:
        body: bytes = getattr(AsyncRpcs, operation)(*args, **kwargs)
        return await self._channel.call(body, time_limit)

    def abort(self) -> None:
        self._channel.abort()

    async def close(self, time_limit: float) -> None:
        await self._channel.close(time_limit)


class _ThreadRpcs:
    """ncclient's Manager in worker threads (paramiko, or ncclient's RPC layer over OpenSSH
    when the target names an ncclient device handler)."""

    def __init__(self, manager: Any, transport: Transport, calls: BlockingCalls) -> None:
        self._manager = manager
        self._transport = transport
        self._calls = calls

    @property
    def session_id(self) -> str | None:
        sid = self._manager.session_id
        return None if sid is None else str(sid)

    @property
    def server_capabilities(self) -> Capabilities:
        caps: Capabilities = self._manager.server_capabilities
        return caps

    @property
    def is_alive(self) -> bool:
        return bool(self._transport.connected) and not self._transport.aborted

    async def call(self, operation: str, time_limit: float, *args: Any, **kwargs: Any) -> Any:
        return await self._calls.run(
            getattr(self._manager, operation),
            *args,
            time_limit=time_limit,
            abort=self._transport.abort,
            **kwargs,
        )

    def abort(self) -> None:
        self._transport.abort()

    async def close(self, time_limit: float) -> None:
        # close-session may take `time_limit`, and joining the transport's thread a little more
        await self._calls.run(
            self._close_blocking,
            time_limit,
            time_limit=time_limit + _CLOSE_TIME_LIMIT_S,
            abort=self._transport.abort,
        )

    def _close_blocking(self, time_limit: float) -> None:
        if self.is_alive:
            self._manager.timeout = time_limit
            try:
                self._manager.close_session()
            except (RPCError, TimeoutExpiredError, TransportError, OSError) as exc:
                log.debug("close-session failed: %s", exc)
        self._transport.close_quietly()


def _data_xml(data: Any) -> str:
    if data is None:
        return ""
    return str(etree.tostring(data, encoding="unicode", with_tail=False))


# --- the driver ----------------------------------------------------------------------------


class NetconfDriver(PooledDriver[NetconfSession]):
    """NETCONF sessions to many devices: `async with driver.connect(target) as session`.

    `max_workers` bounds the worker threads shared by all devices; `per_device` bounds how many
    borrowers use one device's session at the same time (NETCONF sessions can carry concurrent
    requests; a device's candidate datastore is shared, so 1 is the safe default).
    """

    protocol = PROTOCOL

    def __init__(self, *, max_workers: int = 16, per_device: int = 1) -> None:
        self._calls = BlockingCalls("netconf", max_workers=max_workers)
        self._pool: SessionPool[NetconfSession] = SessionPool(
            self._open,
            self._close,
            per_device=per_device,
            is_broken=_is_broken,
            is_alive=lambda session: session.is_alive,
        )

    async def _open(self, target: Target) -> NetconfSession:
        plan = _ConnectPlan.of(target)
        handler = make_device_handler(
            {"name": str(target.options.get("ncclient_device", "default"))}
        )
        if not plan.verify:
            log.warning("netconf %s: host key verification is off for this target", target)
        rpcs: _Rpcs
        if plan.client == "openssh" and "ncclient_device" not in target.options:
            rpcs = await _open_on_loop(plan, handler)
        else:
            rpcs = await self._open_in_threads(plan, handler)
        session = NetconfSession(target, rpcs, plan.secrets)
        log.info("netconf session %s opened to %s over %s", session.session_id, target, plan.client)
        return session

    async def _open_in_threads(self, plan: _ConnectPlan, handler: Any) -> _ThreadRpcs:
        target = plan.target
        transport: Transport
        if plan.client == "openssh":
            transport = OpenSshSession(handler)
            connect = functools.partial(_connect_openssh, transport, plan)
        else:
            transport = ParamikoSession(handler, plan.known_hosts, pinned=plan.pinned is not None)
            connect = functools.partial(_connect_paramiko, transport, plan)
        try:
            await self._calls.run(connect, time_limit=target.timeout_s, abort=transport.abort)
        except BaseException as exc:
            translated = _open_error(exc, plan)
            if translated is None:
                raise
            raise translated from exc
        manager = Manager(transport, handler, timeout=target.timeout_s, raise_mode=RaiseMode.ERRORS)
        await self._calls.run(
            _probe_blocking, manager, target.timeout_s,
            time_limit=target.timeout_s + 1.0, abort=transport.abort,
        )  # fmt: skip
        return _ThreadRpcs(manager, transport, self._calls)

    async def _close(self, session: NetconfSession) -> None:
        await session.close()


def _is_broken(exc: BaseException) -> bool:
    """Errors after which a session cannot be trusted: its transport is gone or was aborted."""
    return isinstance(exc, ConnectError | DeviceTimeout)


@dataclass(frozen=True)
class _ConnectPlan:
    """How to open a session to one target, decided from its credentials and options."""

    target: Target
    client: SshClient
    verify: bool
    pinned: str | None  # base64 blob of the pinned host key
    known_hosts: Path | None
    password: str | None
    secrets: tuple[str, ...]

    @classmethod
    def of(cls, target: Target) -> _ConnectPlan:
        creds = target.credentials
        verify = bool(target.options.get("host_key_verify", True))
        password = creds.password.get_secret_value() if creds.password else None
        chosen = target.options.get("ssh_client")
        client: SshClient
        if chosen is None:
            # OpenSSH never prompts, so a password needs paramiko; so does a host without ssh
            client = "paramiko" if password or ssh_binary() is None else "openssh"
        elif chosen in ("openssh", "paramiko"):
            client = chosen
        else:
            raise InvalidInput(f"options.ssh_client must be openssh or paramiko, not {chosen!r}")
        if client == "openssh" and password:
            raise InvalidInput("the openssh client cannot use a password; use paramiko")
        return cls(
            target=target,
            client=client,
            verify=verify,
            pinned=pinned_host_key_b64(creds.host_key) if (verify and creds.host_key) else None,
            known_hosts=creds.known_hosts,
            password=password,
            secrets=(password,) if password else (),
        )

    @property
    def where(self) -> str:
        return f"{self.target.host}:{self.target.port}"

    def option(self, name: str) -> bool:
        return bool(self.target.options.get(name, False))


async def _open_on_loop(plan: _ConnectPlan, handler: Any) -> _LoopRpcs:
    channel = OpenSshChannel(handler)
    try:
        argv, pinned_line = _openssh_command(plan)
        await channel.open(
            argv,
            hello_within_s=plan.target.timeout_s,
            pinned_known_hosts=pinned_line,
            allow_agent=plan.option("allow_agent"),
        )
    except BaseException as exc:
        translated = _open_error(exc, plan)
        if translated is None:
            raise
        raise translated from exc
    return _LoopRpcs(channel)


def _connect_openssh(transport: OpenSshSession, plan: _ConnectPlan) -> None:
    argv, pinned_line = _openssh_command(plan)
    transport.connect(
        argv,
        timeout=plan.target.timeout_s,
        pinned_known_hosts=pinned_line,
        allow_agent=plan.option("allow_agent"),
    )


def _openssh_command(plan: _ConnectPlan) -> tuple[list[str], str | None]:
    """The ssh command line and the pinned known_hosts line (if a key is pinned)."""
    target, creds = plan.target, plan.target.credentials
    ssh = ssh_binary()
    if ssh is None:
        raise TransportError("the OpenSSH client (ssh) is not installed")
    options = OpenSshOptions(
        host=target.host,
        port=target.port,
        username=creds.username,
        private_key_file=creds.private_key_file,
        known_hosts=None if plan.pinned else plan.known_hosts,
        verify_host_key=plan.verify,
        connect_timeout_s=target.timeout_s,
        allow_agent=plan.option("allow_agent"),
        look_for_keys=plan.option("look_for_keys"),
    )
    pinned_line = (
        pinned_known_hosts_line(target.host, target.port, plan.pinned) if plan.pinned else None
    )
    return openssh_argv(ssh, options), pinned_line


def _connect_paramiko(transport: ParamikoSession, plan: _ConnectPlan) -> None:
    target, creds = plan.target, plan.target.credentials
    connect_args: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "timeout": target.timeout_s,
        "username": creds.username,
        "password": plan.password,
        "key_filename": str(creds.private_key_file) if creds.private_key_file else None,
        "allow_agent": plan.option("allow_agent"),
        "look_for_keys": plan.option("look_for_keys"),
        "hostkey_verify": True,
        "hostkey_b64": plan.pinned,
    }
    if not plan.verify:
        connect_args["hostkey_verify"] = False  # ok-insecure: the target's explicit choice
    try:
        transport.connect(**connect_args)
    except BaseException:
        transport.close_quietly()
        raise
    if transport.aborted:  # the caller gave up while we were connecting
        transport.close_quietly()
        raise TransportError("connect aborted")


# What OpenSSH says (stderr) when it gives up, and what that means for us.
_OPENSSH_HOST_KEY = ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED")
_OPENSSH_AUTH = ("Permission denied", "Too many authentication failures")


def _open_error(exc: BaseException, plan: _ConnectPlan) -> DriverError | None:
    """The project's error for a failure to open a session, or None to re-raise as is."""
    where, pinned = plan.where, plan.pinned is not None
    kw = {"device": plan.target.name, "protocol": PROTOCOL}
    host_key_source = "the pinned host key" if pinned else "known_hosts"
    if isinstance(exc, OpenSshFailed):
        said = _scrub(exc.stderr, plan.secrets)
        if any(text in said for text in _OPENSSH_HOST_KEY):
            return AuthError(f"the host key of {where} does not match {host_key_source}", **kw)
        if any(text in said for text in _OPENSSH_AUTH):
            user = plan.target.credentials.username or "(local user)"
            return AuthError(f"SSH authentication as {user} was refused by {where}", **kw)
        if not said and isinstance(exc.__cause__, SessionError):
            return DeviceTimeout(f"no NETCONF hello from {where}", **kw)
        return ConnectError(
            f"cannot open a NETCONF session to {where}: {said or 'ssh ended'}", **kw
        )
    if isinstance(exc, SSHUnknownHostError):
        return AuthError(f"the host key of {where} does not match {host_key_source}", **kw)
    if isinstance(exc, KnownHostsUnreadable):
        return AuthError(f"cannot verify the host key of {where}: {exc}", **kw)
    if isinstance(exc, AuthenticationError):
        user = plan.target.credentials.username or "(local user)"
        return AuthError(f"SSH authentication as {user} was refused by {where}", **kw)
    if isinstance(exc, SessionError):  # no <hello> in time
        return DeviceTimeout(f"no NETCONF hello from {where}", **kw)
    if isinstance(exc, TimeoutError):
        return DeviceTimeout(f"connecting to {where} took over {plan.target.timeout_s:g} s", **kw)
    if isinstance(exc, SessionCloseError):
        return ConnectError(f"{where} closed the session before its hello", **kw)
    if isinstance(exc, SSHError) and pinned and "host key" in str(exc):
        return AuthError(f"{where} does not offer the pinned host key's type", **kw)
    if isinstance(exc, SSHError | TransportError | OSError | EOFError | paramiko.SSHException):
        detail = _scrub(str(exc) or type(exc).__name__, plan.secrets)
        return ConnectError(f"cannot open a NETCONF session to {where}: {detail}", **kw)
    return None


def _probe_blocking(manager: Any, within_s: float) -> None:
    """The threaded twin of OpenSshChannel._probe: harmless requests until one is answered,
    since netconfd drops a request that arrives in the same read as the client's hello."""
    deadline = time.monotonic() + within_s
    saved, manager.timeout = manager.timeout, PROBE_RETRY_S
    try:
        while time.monotonic() < deadline:
            try:
                manager.dispatch(etree.fromstring(PROBE_RPC))
                return
            except RPCError:
                return  # any answer, even an error, shows requests are read one by one
            except TimeoutExpiredError:
                log.debug("netconf probe unanswered; sending another")
        raise TimeoutExpiredError(f"no reply to the first request within {within_s}s")
    finally:
        manager.timeout = saved
