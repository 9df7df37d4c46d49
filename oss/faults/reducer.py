"""The alarm state machine, pure: open alarms by reduction key and signals in, changes out.

A `Signal` says "this problem is present (raise) / gone (clear) on this object". Repeats of one
problem on one object (its reduction key) fold into the key's open alarm: counted once more,
with the last severity, time and details. A clear closes the key's newest open alarm (a clear
of a key with none changes nothing); the next raise opens a new one. Each changed alarm is
reported once per `Reduction` (one transaction), in the order of its first change, with its
strongest event (`stronger`), its sequence moved on once.

No I/O: both alarm paths apply it, the correlated one to ORM rows (`oss.faults.transaction`),
the storm one to plain rows (`oss.faults.uncorrelated`); how rows are read and written is
theirs and the store's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, NamedTuple, Protocol, TypeVar

from oss.errors import InvalidInput

FeedEvent = Literal["raised", "changed", "cleared"]
SignalKind = Literal["raise", "clear"]
SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate", "cleared")


@dataclass(frozen=True, slots=True)
class Signal:
    """A problem on an object, present ("raise") or gone ("clear")."""

    kind: SignalKind
    reduction_key: str  # one open alarm per key: same problem, same object
    alarm_type: str  # X.733 event type, e.g. "communicationsAlarm"
    severity: str  # critical, major, minor, warning, indeterminate
    probable_cause: str
    specific_problem: str
    object_type: str  # device, interface, link, service
    object: str  # "r1", "r1:eth1", "3", "svc-a"
    time_ns: int
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("raise", "clear"):
            raise InvalidInput(f"signal kind must be raise or clear, not {self.kind!r}")
        if self.kind == "raise" and self.severity not in SEVERITIES[:-1]:
            raise InvalidInput(f"unknown severity {self.severity!r}")


def moment(time_ns: int) -> datetime:
    return datetime.fromtimestamp(time_ns / 1e9, UTC)


def stronger(a: FeedEvent, b: FeedEvent) -> FeedEvent:
    """The event an alarm changed twice in one transaction is reported with."""
    return a if _STRENGTH[a] >= _STRENGTH[b] else b


_STRENGTH = {"changed": 0, "raised": 1, "cleared": 2}


class Alarm(Protocol):
    """What the state machine reads and writes of an alarm (an ORM `AlarmRow`, a store
    `PlainAlarm`)."""

    reduction_key: str
    open: bool
    state: str
    perceived_severity: str
    changed_time: datetime
    cleared_time: datetime | None
    count: int
    sequence: int
    details: Any


A = TypeVar("A", bound=Alarm)


def new_alarm(
    s: Signal,
    *,
    repeats: int = 1,
    first_ns: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of the alarm a raise opens. `repeats` > 1: that many raises at once, `s`
    the last of them, `first_ns` the time of the first (the alarm's raise time) and `details`
    those of all of them merged (default: `s`'s)."""
    return {
        "reduction_key": s.reduction_key,
        "open": True,
        "alarm_type": s.alarm_type,
        "perceived_severity": s.severity,
        "probable_cause": s.probable_cause,
        "specific_problem": s.specific_problem,
        "alarmed_object_type": s.object_type,
        "alarmed_object": s.object,
        "state": "raised" if repeats == 1 else "updated",
        "ack_state": "unacknowledged",
        "ack_user_id": None,
        "raised_time": moment(s.time_ns if first_ns is None else first_ns),
        "changed_time": moment(s.time_ns),
        "cleared_time": None,
        "service_affecting": False,
        "affected_services": [],
        "impact": None,
        "parent_id": None,
        "is_root_cause": False,
        "count": repeats,
        "sequence": 1,
        "details": dict(s.details if details is None else details) or None,
    }


def repeat(
    alarm: Alarm, s: Signal, repeats: int = 1, details: Mapping[str, Any] | None = None
) -> None:
    """`repeats` more raises of an open alarm's problem, `s` the last of them (`details`: of
    all of them merged; default `s`'s)."""
    alarm.count += repeats
    alarm.perceived_severity = s.severity
    alarm.changed_time = moment(s.time_ns)
    alarm.state = "updated"
    if details is None:
        details = s.details
    if details:
        alarm.details = {**(alarm.details or {}), **details}


def close(alarm: Alarm, when: datetime) -> None:
    alarm.open = False
    alarm.state = "cleared"
    alarm.perceived_severity = "cleared"
    alarm.cleared_time = when
    alarm.changed_time = when


@dataclass(slots=True)
class Run:
    """Consecutive raises of one key folded into one (or a single clear)."""

    kind: SignalKind
    last: Signal
    first_ns: int
    count: int = 1
    details: dict[str, Any] | None = None  # merged over the run, when more than one has any


class Runs:
    """Signals as runs per key (raise, raise, clear, raise -> raise x2, clear, raise x1), in
    the order each run began: applied in that order, they leave the alarms as the signals one
    by one would, new alarms in the same order. Only for signals that touch nothing but their
    own key's alarm (the correlator leaves them alone)."""

    def __init__(self) -> None:
        self._last: dict[str, Run] = {}
        self._runs: list[Run] = []

    def add(self, s: Signal) -> None:
        last = self._last.get(s.reduction_key)
        if s.kind == "raise" and last is not None and last.kind == "raise":
            if s.details:
                base = last.details if last.details is not None else dict(last.last.details)
                base.update(s.details)
                last.details = base
            elif last.details is None and last.last.details:
                last.details = dict(last.last.details)
            last.last = s
            last.count += 1
        else:
            run = Run(s.kind, s, s.time_ns)
            self._last[s.reduction_key] = run
            self._runs.append(run)

    def take(self) -> list[Run]:
        out, self._runs = self._runs, []
        self._last.clear()
        return out


class Change(NamedTuple, Generic[A]):
    alarm: A
    event: FeedEvent
    new: bool  # opened in this reduction (goes out with sequence 1)


class Reduction(Generic[A]):
    """The alarm changes of one transaction. `open` holds the open alarms of the keys it knows,
    oldest first; the caller fills it (`know`) before a key's first signal. `create` makes an
    alarm of a raise's columns (`new_alarm`, plus the caller's)."""

    def __init__(self, create: Callable[[dict[str, Any]], A]) -> None:
        self.open: dict[str, list[A]] = {}
        self._create = create
        self._changes: dict[int, tuple[A, FeedEvent]] = {}  # by identity, first change first
        self._new: set[int] = set()

    def knows(self, key: str) -> bool:
        return key in self.open

    def know(self, key: str, open_alarms: list[A]) -> None:
        self.open[key] = open_alarms

    def newest(self, key: str) -> A | None:
        """The key's newest open alarm (the one its signals act on)."""
        stack = self.open[key]
        return stack[-1] if stack else None

    def raise_(
        self,
        s: Signal,
        *,
        repeats: int = 1,
        first_ns: int | None = None,
        details: Mapping[str, Any] | None = None,
        **columns: Any,
    ) -> A:
        """The key's open alarm counted `repeats` more times, or a new one (with `columns`
        over `new_alarm`'s)."""
        stack = self.open[s.reduction_key]
        if stack:
            alarm = stack[-1]
            repeat(alarm, s, repeats, details)
            self.changed(alarm, "changed")
            return alarm
        values = new_alarm(s, repeats=repeats, first_ns=first_ns, details=details)
        if columns:
            values.update(columns)
        alarm = self._create(values)
        stack.append(alarm)
        self._new.add(id(alarm))
        self.changed(alarm, "raised")
        return alarm

    def clear(self, alarm: A, when: datetime) -> None:
        """Close an open alarm (one already closed stays as it is)."""
        if not alarm.open:
            return
        close(alarm, when)
        stack = self.open.get(alarm.reduction_key)
        if stack is not None:
            for i in range(len(stack) - 1, -1, -1):
                if stack[i] is alarm:
                    del stack[i]
                    break
        self.changed(alarm, "cleared")

    def apply(self, run: Run) -> None:
        if run.kind == "raise":
            self.raise_(run.last, repeats=run.count, first_ns=run.first_ns, details=run.details)
            return
        alarm = self.newest(run.last.reduction_key)
        if alarm is not None:
            self.clear(alarm, moment(run.last.time_ns))

    def changed(self, alarm: A, event: FeedEvent) -> None:
        previous = self._changes.get(id(alarm))
        if previous is not None:
            event = stronger(previous[1], event)
        self._changes[id(alarm)] = (alarm, event)

    @property
    def pending(self) -> bool:
        return bool(self._changes)

    def settle(self) -> list[Change[A]]:
        """Each changed alarm once, in the order of its first change, with its strongest
        event; an alarm that existed before moves its sequence on once (a new one keeps 1)."""
        out = [Change(a, e, id(a) in self._new) for a, e in self._changes.values()]
        for change in out:
            if not change.new:
                change.alarm.sequence += 1
        self._changes.clear()
        self._new.clear()
        return out
