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
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from lab.sim.model import LeafValue, Leaves, SimDevice

log = logging.getLogger(__name__)

OC_INTERFACES_NS = "http://openconfig.net/yang/interfaces"
OC_PREFIX = "oc-if"

Datastore = Literal["running", "candidate"]
DATASTORES: tuple[Datastore, ...] = ("running", "candidate")

MTU_MIN, MTU_MAX = 576, 9216
DESCRIPTION_MAX = 255  # characters; the simulated platform's limit
DEFAULT_CONFIRM_TIMEOUT_S = 600

# The configuration leaves the simulated device knows, with their YANG-ish types.
CONFIG_LEAF_TYPES: dict[str, type] = {"name": str, "description": str, "enabled": bool, "mtu": int}
_CONFIG_LEAF = re.compile(r"^interfaces/interface\[name=([^\]]+)\]/config/([a-z-]+)$")

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
    """An instance identifier in the style devices use in <error-path>."""
    path = f"/{OC_PREFIX}:interfaces"
    if ifname is not None:
        path += f"/{OC_PREFIX}:interface[{OC_PREFIX}:name='{ifname}']"
    if leaf is not None:
        path += "".join(f"/{OC_PREFIX}:{part}" for part in leaf.split("/"))
    return path


def parse_config_path(path: str) -> tuple[str, str] | None:
    """`interfaces/interface[name=eth1]/config/mtu` -> ("eth1", "mtu"); None if not a leaf."""
    match = _CONFIG_LEAF.match(path.strip("/"))
    if match is None or match.group(2) not in CONFIG_LEAF_TYPES:
        return None
    return match.group(1), match.group(2)


def coerce_leaf(ifname: str, leaf: str, text: str) -> LeafValue:
    """A leaf value from its text form (XML, CLI), or an invalid-value RpcFailure."""
    kind = CONFIG_LEAF_TYPES[leaf]
    where = error_path(ifname, f"config/{leaf}")
    if kind is bool:
        if text not in ("true", "false"):
            raise RpcFailure("invalid-value", f"'{text}' is not a boolean", path=where)
        return text == "true"
    if kind is int:
        try:
            return int(text, 10)
        except ValueError:
            raise RpcFailure("invalid-value", f"'{text}' is not an integer", path=where) from None
    return text


def validate(device: SimDevice, leaves: Mapping[str, LeafValue]) -> None:
    """Check a whole configuration; raise the first problem as a real device reports it."""
    for path, value in leaves.items():
        parsed = parse_config_path(path)
        if parsed is None:
            raise RpcFailure(
                "unknown-element",
                f"unknown configuration node {path}",
                path="/" + path,
                info={"bad-element": path.rsplit("/", 1)[-1]},
            )
        ifname, leaf = parsed
        where = error_path(ifname, f"config/{leaf}")
        if ifname not in device.interfaces:
            raise RpcFailure(
                "invalid-value",
                f"interface '{ifname}' does not exist on {device.name}",
                path=error_path(ifname),
                app_tag="instance-required",
            )
        kind = CONFIG_LEAF_TYPES[leaf]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise RpcFailure("invalid-value", f"{leaf} must be a {kind.__name__}", path=where)
        if leaf == "mtu" and not MTU_MIN <= int(value) <= MTU_MAX:
            raise RpcFailure(
                "invalid-value",
                f"mtu {value} is out of range {MTU_MIN}..{MTU_MAX}",
                path=where,
                app_tag="range-violation",
            )
        if leaf == "description" and len(str(value)) > DESCRIPTION_MAX:
            raise RpcFailure(
                "invalid-value",
                f"description is longer than {DESCRIPTION_MAX} characters",
                path=where,
                app_tag="length-violation",
            )
        if leaf == "name" and value != ifname:
            raise RpcFailure(
                "invalid-value",
                f"config/name '{value}' differs from the list key '{ifname}'",
                path=where,
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
