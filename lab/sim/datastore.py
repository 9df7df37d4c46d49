"""The NETCONF datastores of one simulated device: running, candidate, locks and commits.

Running *is* the SimDevice's configuration (`device.running`); candidate is a private copy that
edits change until a commit applies it with `device.apply()`. Every writer of running (NETCONF,
the SSH CLI, SNMP sets) goes through `write_running()`, so a NETCONF lock keeps them all out and
one validation applies to all of them.

Confirmed commit follows RFC 6241 section 8.4 (:confirmed-commit:1.1): the running config before
the first confirmed commit is kept; it comes back when the confirm timeout expires, when the
commit is cancelled, or (when no `persist` token was given) when the session that made it ends.
A follow-up confirmed commit restarts the timer; a plain commit confirms. Without `persist` only
the same session may confirm or cancel; with it, any session that presents the `persist-id`.

`validate` checks a whole configuration, whoever wrote it: every leaf against `lab.sim.schema`
(known path, type, range, length, pattern, enum; `config/<key>` equal to its list key; only
interfaces the device has), then the rules between entries: a vlan-id is unique among the
subinterfaces of one interface; a network-instance interface entry names an existing
subinterface and agrees with its id, and no subinterface is in two network-instances;
route-distinguishers are unique; a qos entry names an existing subinterface, and the qos
bandwidth-bps on one physical interface add up to no more than its speed. The first problem is
raised as the `<rpc-error>` a device would send (RFC 7950 section 15 for the app-tags).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from lab.sim import schema
from lab.sim.model import LeafValue, Leaves, SimDevice, iface_path

log = logging.getLogger(__name__)

OC_INTERFACES_NS = schema.NAMESPACES["interfaces"].uri
OC_PREFIX = schema.NAMESPACES["interfaces"].prefix

Datastore = Literal["running", "candidate"]
DATASTORES: tuple[Datastore, ...] = ("running", "candidate")

DEFAULT_CONFIRM_TIMEOUT_S = 600

# A session id that is not a NETCONF session: the SSH CLI, SNMP, gNMI (RFC 6241: 0 in error-info).
NON_NETCONF = 0


class RpcFailure(Exception):
    """One <rpc-error>: the fields a real device reports (RFC 6241 section 4.3)."""

    def __init__(
        self,
        tag: str,
        message: str,
        *,
        error_type: str = "application",
        path: str | None = None,
        app_tag: str | None = None,
        info: Mapping[str, str] | None = None,
        severity: str = "error",
    ) -> None:
        super().__init__(message)
        self.tag = tag
        self.message = message
        self.error_type = error_type
        self.path = path
        self.app_tag = app_tag
        self.info = dict(info or {})
        self.severity = severity


def error_path(ifname: str | None = None, leaf: str | None = None) -> str:
    """The <error-path> of an interface, or of a leaf below it (`config/mtu`)."""
    if ifname is None:
        return schema.instance_path("interfaces")
    return schema.instance_path(iface_path(ifname, leaf) if leaf else iface_path(ifname, "")[:-1])


def unknown_path(path: str, exc: schema.PathError) -> RpcFailure:
    """The device's answer to a path outside the model."""
    if exc.read_only:
        where = f"{exc.at}/{exc.element}" if exc.at else exc.element
        return RpcFailure(
            "invalid-value", "state is read-only (config false)", path=schema.instance_path(where)
        )
    return RpcFailure(
        "unknown-element",
        f"unknown configuration node {path}: {exc.message}",
        path="/" + path.strip("/"),
        info={"bad-element": exc.element},
    )


# --- values -----------------------------------------------------------------------------------

_KIND_WORDS = {"str": "a string", "int": "an integer", "bool": "a boolean"}


def coerce_leaf(path: str, text: str) -> LeafValue:
    """A leaf value from its text form (XML, CLI), or an invalid-value RpcFailure. Checks the
    type (an enum's values are its type); ranges, lengths and patterns are `validate`'s."""
    try:
        resolved = schema.resolve(path)
    except schema.PathError as exc:
        raise unknown_path(path, exc) from None
    spec = resolved.node.leaf
    if spec is None:
        raise RpcFailure(
            "unknown-element",
            f"{path} is not a leaf",
            path=schema.instance_path(resolved.path),
            info={"bad-element": resolved.node.name},
        )
    where = schema.instance_path(resolved.path)
    if spec.kind == "bool":
        if text not in ("true", "false"):
            raise RpcFailure("invalid-value", f"'{text}' is not a boolean", path=where)
        return text == "true"
    if spec.kind == "int":
        try:
            return int(text, 10)
        except ValueError:
            raise RpcFailure("invalid-value", f"'{text}' is not an integer", path=where) from None
    if spec.kind == "enum" and text not in spec.values:
        raise RpcFailure(
            "invalid-value",
            f"'{text}' is not one of {', '.join(spec.values)}",
            path=where,
            app_tag="enum-violation",
        )
    return text


def check_value(leaf: str, spec: schema.LeafSpec, value: LeafValue, where: str) -> None:
    """One value against its spec: type, range, length, pattern, enum."""
    if spec.kind == "enum":
        if not isinstance(value, str) or value not in spec.values:
            raise RpcFailure(
                "invalid-value",
                f"{leaf} '{value}' is not one of {', '.join(spec.values)}",
                path=where,
                app_tag="enum-violation",
            )
        return
    want = {"str": str, "int": int, "bool": bool}[spec.kind]
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise RpcFailure("invalid-value", f"{leaf} must be {_KIND_WORDS[spec.kind]}", path=where)
    if spec.range is not None and isinstance(value, int):
        low, high = spec.range
        if not low <= value <= high:
            raise RpcFailure(
                "invalid-value",
                f"{leaf} {value} is out of range {low}..{high}",
                path=where,
                app_tag="range-violation",
            )
    if isinstance(value, str):
        if spec.length is not None:
            low, high = spec.length
            if len(value) > high:
                raise RpcFailure(
                    "invalid-value",
                    f"{leaf} is longer than {high} characters",
                    path=where,
                    app_tag="length-violation",
                )
            if len(value) < low:
                raise RpcFailure(
                    "invalid-value",
                    f"{leaf} is shorter than {low} characters",
                    path=where,
                    app_tag="length-violation",
                )
        if spec.pattern is not None and re.fullmatch(spec.pattern, value) is None:
            raise RpcFailure(
                "invalid-value",
                f"{leaf} '{value}' is not {spec.pattern_help or 'in the expected format'}",
                path=where,
                app_tag="pattern-violation",
            )


# --- whole-configuration validation -----------------------------------------------------------


@dataclass
class _Subinterface:
    ifname: str
    index: int
    path: str  # of the entry
    vlan: int | None = None


@dataclass
class _Attachment:
    """A network-instance interface entry or a qos interface entry: names a subinterface."""

    owner: str  # the network-instance, or "" for qos
    id: str
    path: str  # of the entry
    interface: LeafValue | None = None
    subinterface: LeafValue | None = None
    bandwidth: int = 0


@dataclass
class _Collected:
    subinterfaces: dict[tuple[str, int], _Subinterface] = field(default_factory=dict)
    # entry path -> attachment, in configuration order
    attachments: dict[str, _Attachment] = field(default_factory=dict)
    qos: dict[str, _Attachment] = field(default_factory=dict)
    route_distinguishers: list[tuple[str, str, str]] = field(default_factory=list)  # ni, rd, path


def validate(device: SimDevice, leaves: Mapping[str, LeafValue]) -> None:
    """Check a whole configuration; raise the first problem as a real device reports it:
    every leaf against the model, then the references and uniqueness rules between entries
    (see lab/README.md)."""
    collected = _Collected()
    checked_entries: set[str] = set()
    for path, value in schema.sorted_leaves(leaves):
        resolved = _check_leaf(device, path, value, checked_entries)
        _collect(collected, resolved, value)
    _check_vlans(collected)
    _check_attachments(collected)
    _check_route_distinguishers(collected)
    _check_qos(device, collected)


def _check_leaf(
    device: SimDevice, path: str, value: LeafValue, checked_entries: set[str]
) -> schema.Resolved:
    try:
        resolved = schema.resolve(path)
    except schema.PathError as exc:
        raise unknown_path(path, exc) from None
    spec = resolved.node.leaf
    if spec is None or resolved.path != path:
        raise RpcFailure(
            "unknown-element",
            f"unknown configuration node {path}",
            path="/" + path,
            info={"bad-element": resolved.node.name},
        )
    entries = schema.entry_keys(path)
    for entry, key, key_value in entries:
        if entry not in checked_entries:  # each entry's key once
            checked_entries.add(entry)
            _check_entry(device, entry, key, key_value)
    leaf = resolved.node.name
    where = schema.instance_path(path)
    check_value(leaf, spec, value, where)
    entry, key, key_value = entries[-1] if entries else ("", "", "")
    if entries and path == f"{entry}/config/{key}" and str(value) != key_value:
        raise RpcFailure(
            "invalid-value",
            f"config/{leaf} '{value}' differs from the list key '{key_value}'",
            path=where,
        )
    return resolved


def _check_entry(device: SimDevice, entry: str, key: str, key_value: str) -> None:
    """A list entry's key against its leaf's constraints; an interface must exist."""
    resolved = schema.resolve(entry)
    if resolved.node.pattern == "interfaces/interface":
        if key_value not in device.interfaces:
            raise RpcFailure(
                "invalid-value",
                f"interface '{key_value}' does not exist on {device.name}",
                path=schema.instance_path(entry),
                app_tag="instance-required",
            )
        return
    spec = schema.key_spec(resolved.node)
    value: LeafValue = int(key_value) if spec.kind == "int" else key_value
    check_value(key, spec, value, schema.instance_path(entry))


def _collect(collected: _Collected, resolved: schema.Resolved, value: LeafValue) -> None:
    """Note what the cross-entry rules need from one (already checked) leaf."""
    pattern, path, leaf = resolved.node.pattern, resolved.path, resolved.node.name
    entries = schema.entry_keys(path)
    if pattern.startswith(_SUBINTERFACE):
        (_, _, ifname), (entry, _, index) = entries[0], entries[1]
        key = (ifname, int(index))
        sub = collected.subinterfaces.get(key)
        if sub is None:
            sub = collected.subinterfaces[key] = _Subinterface(ifname, int(index), entry)
        if leaf == "vlan-id" and isinstance(value, int):
            sub.vlan = value
    elif pattern.startswith(_NI_INTERFACE):
        (_, _, ni), (entry, _, id_) = entries[0], entries[1]
        attachment = _attachment(collected.attachments, ni, id_, entry)
        if leaf in ("interface", "subinterface"):
            setattr(attachment, leaf, value)
    elif pattern == _ROUTE_DISTINGUISHER:
        collected.route_distinguishers.append((entries[0][2], str(value), path))
    elif pattern.startswith(_QOS_INTERFACE):
        entry, _, id_ = entries[0]
        attachment = _attachment(collected.qos, "", id_, entry)
        if leaf == "bandwidth-bps" and isinstance(value, int):
            attachment.bandwidth = value


_SUBINTERFACE = "interfaces/interface/subinterfaces/subinterface/"
_NI_INTERFACE = "network-instances/network-instance/interfaces/interface/"
_ROUTE_DISTINGUISHER = "network-instances/network-instance/config/route-distinguisher"
_QOS_INTERFACE = "qos/interfaces/interface/"


def _attachment(into: dict[str, _Attachment], owner: str, id_: str, entry: str) -> _Attachment:
    attachment = into.get(entry)
    if attachment is None:
        attachment = into[entry] = _Attachment(owner=owner, id=id_, path=entry)
    return attachment


def _split_id(id_: str) -> tuple[str, int] | None:
    """ "eth1.100" -> ("eth1", 100)."""
    ifname, dot, index = id_.rpartition(".")
    if not dot or not ifname or not index.isdigit():
        return None
    return ifname, int(index)


def _check_vlans(collected: _Collected) -> None:
    seen: dict[tuple[str, int], _Subinterface] = {}
    for sub in collected.subinterfaces.values():
        if sub.vlan is None:
            continue
        other = seen.setdefault((sub.ifname, sub.vlan), sub)
        if other is not sub:
            raise RpcFailure(
                "operation-failed",
                f"vlan-id {sub.vlan} is used by subinterfaces {other.index} and {sub.index} "
                f"of {sub.ifname}: a VLAN is unique among the subinterfaces of one interface",
                path=schema.instance_path(f"{sub.path}/vlan/config/vlan-id"),
                app_tag="data-not-unique",
                info={"non-unique": schema.instance_path(f"{other.path}/vlan/config/vlan-id")},
            )


def _referenced(collected: _Collected, attachment: _Attachment, what: str) -> tuple[str, int]:
    """The subinterface an attachment names, which must exist and agree with its leaves."""
    where = schema.instance_path(attachment.path)
    split = _split_id(attachment.id)
    if split is None:  # the id's pattern already refused this; kept for a clear message
        raise RpcFailure("invalid-value", f"{what} id '{attachment.id}' is malformed", path=where)
    ifname, index = split
    if attachment.interface is not None and attachment.interface != ifname:
        raise RpcFailure(
            "operation-failed",
            f"{what} {attachment.id}: interface '{attachment.interface}' does not match the "
            f"id (expected '{ifname}')",
            path=schema.instance_path(f"{attachment.path}/config/interface"),
            app_tag="must-violation",
        )
    if attachment.subinterface is not None and attachment.subinterface != index:
        raise RpcFailure(
            "operation-failed",
            f"{what} {attachment.id}: subinterface {attachment.subinterface} does not match "
            f"the id (expected {index})",
            path=schema.instance_path(f"{attachment.path}/config/subinterface"),
            app_tag="must-violation",
        )
    if (ifname, index) not in collected.subinterfaces:
        raise RpcFailure(
            "data-missing",
            f"{what} {attachment.id} names subinterface {index} of {ifname}, which does not exist",
            path=where,
            app_tag="instance-required",
        )
    return ifname, index


def _check_attachments(collected: _Collected) -> None:
    owners: dict[tuple[str, int], _Attachment] = {}
    for attachment in collected.attachments.values():
        what = f"network-instance {attachment.owner}: interface"
        key = _referenced(collected, attachment, what)
        other = owners.setdefault(key, attachment)
        if other is not attachment:
            raise RpcFailure(
                "operation-failed",
                f"subinterface {attachment.id} is already in network-instance {other.owner}; "
                f"it cannot also be in {attachment.owner}",
                path=schema.instance_path(attachment.path),
                app_tag="data-not-unique",
                info={"non-unique": schema.instance_path(other.path)},
            )


def _check_route_distinguishers(collected: _Collected) -> None:
    seen: dict[str, tuple[str, str]] = {}
    for ni, rd, path in collected.route_distinguishers:
        other = seen.setdefault(rd, (ni, path))
        if other[0] != ni:
            raise RpcFailure(
                "operation-failed",
                f"route-distinguisher {rd} is used by network-instances {other[0]} and {ni}",
                path=schema.instance_path(path),
                app_tag="data-not-unique",
                info={"non-unique": schema.instance_path(other[1])},
            )


def _check_qos(device: SimDevice, collected: _Collected) -> None:
    totals: dict[str, int] = {}
    counted: dict[str, list[str]] = {}
    for attachment in collected.qos.values():
        ifname, _ = _referenced(collected, attachment, "qos interface")
        totals[ifname] = totals.get(ifname, 0) + attachment.bandwidth
        counted.setdefault(ifname, []).append(attachment.id)
        speed = device.interfaces[ifname].speed_bps
        if totals[ifname] > speed:
            raise RpcFailure(
                "operation-failed",
                f"qos bandwidth on {ifname} adds up to {totals[ifname]} bps "
                f"({' + '.join(counted[ifname])}), more than its speed of {speed} bps",
                path=schema.instance_path(f"{attachment.path}/config/bandwidth-bps"),
                app_tag="too-much-bandwidth",
            )


@dataclass
class _PendingCommit:
    """A confirmed commit waiting for its confirmation."""

    session_id: int
    persist: str | None
    before: Leaves  # running as it was before the first confirmed commit
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class Datastores:
    """Running (the device), candidate, their locks, and the confirmed-commit state."""

    def __init__(self, device: SimDevice) -> None:
        self.device = device
        self.candidate: Leaves = device.snapshot()
        self.candidate_dirty = False
        self._locks: dict[Datastore, int] = {}
        self._pending: _PendingCommit | None = None
        self.rollbacks = 0  # confirmed commits rolled back, for tests and status
        self.on_rollback: Callable[[str], None] | None = None

    # --- reading -----------------------------------------------------------------------------

    def get(self, name: Datastore) -> Leaves:
        return dict(self.device.running) if name == "running" else dict(self.candidate)

    @property
    def confirm_pending(self) -> bool:
        return self._pending is not None

    def lock_owner(self, name: Datastore) -> int | None:
        return self._locks.get(name)

    # --- locks -------------------------------------------------------------------------------

    def lock(self, name: Datastore, session_id: int) -> None:
        owner = self._locks.get(name)
        if owner is not None:
            raise RpcFailure(
                "lock-denied",
                f"lock failed: {name} is already locked by session {owner}",
                error_type="protocol",
                info={"session-id": str(owner)},
            )
        if name == "candidate" and self.candidate_dirty:
            raise RpcFailure(
                "lock-denied",
                "lock failed: the candidate has uncommitted changes; discard-changes first",
                error_type="protocol",
                info={"session-id": str(NON_NETCONF)},
            )
        pending = self._pending
        if name == "running" and pending is not None and pending.session_id != session_id:
            raise RpcFailure(
                "lock-denied",
                "lock failed: a confirmed commit of another session is in progress",
                error_type="protocol",
                info={"session-id": str(pending.session_id)},
            )
        self._locks[name] = session_id

    def unlock(self, name: Datastore, session_id: int) -> None:
        owner = self._locks.get(name)
        if owner != session_id:
            held = "not locked" if owner is None else f"locked by session {owner}"
            raise RpcFailure(
                "operation-failed",
                f"unlock failed: {name} is {held}",
                error_type="protocol",
                info={"session-id": str(owner or NON_NETCONF)},
            )
        del self._locks[name]

    def _check_unlocked(self, names: Iterable[Datastore], session_id: int) -> None:
        for name in names:
            owner = self._locks.get(name)
            if owner is not None and owner != session_id:
                raise RpcFailure(
                    "in-use",
                    f"{name} is locked by session {owner}",
                    error_type="protocol",
                    info={"session-id": str(owner)},
                )

    # --- writing -----------------------------------------------------------------------------

    def write(self, name: Datastore, leaves: Leaves, session_id: int) -> None:
        """Replace a datastore's content (the caller already merged its edit into it)."""
        self._check_unlocked([name], session_id)
        if name == "candidate":
            self.candidate = dict(leaves)
            self.candidate_dirty = True
            return
        validate(self.device, leaves)
        self.device.apply(leaves)
        if not self.candidate_dirty:
            self.candidate = self.device.snapshot()

    def write_running(self, leaves: Leaves, *, who: str) -> None:
        """A write to running by a non-NETCONF client (CLI, SNMP, gNMI): honours NETCONF locks."""
        owner = self._locks.get("running")
        if owner is not None:
            raise RpcFailure(
                "in-use",
                f"running is locked by NETCONF session {owner}; {who} cannot change it",
                error_type="protocol",
                info={"session-id": str(owner)},
            )
        self.write("running", leaves, NON_NETCONF)

    def discard_changes(self, session_id: int) -> None:
        self._check_unlocked(["candidate"], session_id)
        self.candidate = self.device.snapshot()
        self.candidate_dirty = False

    def validate(self, leaves: Leaves) -> None:
        validate(self.device, leaves)

    # --- commit ------------------------------------------------------------------------------

    def commit(
        self,
        session_id: int,
        *,
        confirmed: bool = False,
        timeout_s: int = DEFAULT_CONFIRM_TIMEOUT_S,
        persist: str | None = None,
        persist_id: str | None = None,
    ) -> None:
        self._check_unlocked(["running", "candidate"], session_id)
        pending = self._pending
        if pending is not None:
            self._authorise(pending, session_id, persist_id)
        elif persist_id is not None:
            raise RpcFailure(
                "invalid-value",
                "persist-id given but no persistent confirmed commit is in progress",
                error_type="protocol",
            )
        candidate = dict(self.candidate)
        validate(self.device, candidate)
        before = pending.before if pending is not None else self.device.snapshot()
        self._cancel_timer()
        self._pending = None
        self.device.apply(candidate)
        self.candidate_dirty = False
        if confirmed:
            self._pending = _PendingCommit(session_id=session_id, persist=persist, before=before)
            loop = asyncio.get_running_loop()
            self._pending.timer = loop.call_later(timeout_s, self._expire)

    def cancel_commit(self, session_id: int, *, persist_id: str | None = None) -> None:
        pending = self._pending
        if pending is None:
            raise RpcFailure(
                "operation-failed", "no confirmed commit is in progress", error_type="protocol"
            )
        self._authorise(pending, session_id, persist_id)
        self._rollback("cancel-commit")

    def _authorise(self, pending: _PendingCommit, session_id: int, persist_id: str | None) -> None:
        if pending.persist is not None:
            if persist_id != pending.persist:
                raise RpcFailure(
                    "invalid-value",
                    "persist-id does not match the persistent confirmed commit in progress",
                    error_type="protocol",
                )
        elif persist_id is not None:
            raise RpcFailure(
                "invalid-value",
                "persist-id given but the confirmed commit in progress was not persistent",
                error_type="protocol",
            )
        elif pending.session_id != session_id:
            raise RpcFailure(
                "in-use",
                f"a confirmed commit of session {pending.session_id} is in progress",
                error_type="protocol",
                info={"session-id": str(pending.session_id)},
            )

    def _expire(self) -> None:
        if self._pending is not None:
            self._pending.timer = None
            self._rollback("confirm-timeout expired")

    def _rollback(self, why: str) -> None:
        pending = self._pending
        assert pending is not None
        self._cancel_timer()
        self._pending = None
        self.device.apply(pending.before)
        self.candidate = self.device.snapshot()
        self.candidate_dirty = False
        self.rollbacks += 1
        log.info("%s: confirmed commit rolled back (%s)", self.device.name, why)
        if self.on_rollback is not None:
            self.on_rollback(why)

    def _cancel_timer(self) -> None:
        if self._pending is not None and self._pending.timer is not None:
            self._pending.timer.cancel()
            self._pending.timer = None

    # --- sessions ----------------------------------------------------------------------------

    def session_ended(self, session_id: int) -> None:
        """A NETCONF session closed or was killed: release its locks, undo what it left open."""
        pending = self._pending
        if pending is not None and pending.persist is None and pending.session_id == session_id:
            self._rollback(f"session {session_id} ended before confirming")
        if self._locks.get("candidate") == session_id and self.candidate_dirty:
            # RFC 6241 8.3.5.2: changes of a session that held the candidate lock die with it.
            self.candidate = self.device.snapshot()
            self.candidate_dirty = False
        for name in DATASTORES:
            if self._locks.get(name) == session_id:
                del self._locks[name]

    def close(self) -> None:
        """Stop the confirm timer (the lab is shutting down; nothing is rolled back)."""
        self._cancel_timer()
