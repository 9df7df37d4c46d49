"""The alarm state machine alone (oss.faults.reducer): open alarms and signals in, changes out,
no database. Each case runs the signals one by one and folded into runs (as a storm batch
is): both must end the same."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import pytest

from oss.faults.reducer import Change, Reduction, Runs, Signal, moment, new_alarm
from oss.store.alarm_rows import PlainAlarm
from oss.store.tables import AlarmRow

KEY = "linkDown:r1:ifIndex.3"


def sig(kind: str = "raise", severity: str = "major", t: int = 0, **details: Any) -> Signal:
    return Signal(
        kind=kind,  # type: ignore[arg-type]
        reduction_key=KEY,
        alarm_type="communicationsAlarm",
        severity=severity,
        probable_cause="linkDown",
        specific_problem="link down",
        object_type="interface",
        object="r1:ifIndex.3",
        time_ns=t * 1_000_000_000,
        details=details,
    )


def open_alarm(alarm_id: int, severity: str = "major", count: int = 1) -> PlainAlarm:
    columns = new_alarm(sig(severity=severity), repeats=count)
    return PlainAlarm(**columns, id=alarm_id)


Seen = tuple[str, int | None, str, str, int, int]  # event, id (None: new), state, sev, count, seq


@dataclass(frozen=True)
class Case:
    name: str
    open: list[PlainAlarm]
    signals: list[Signal]
    changes: list[Seen]
    still_open: list[tuple[int | None, str, int]]  # id, severity, count


CASES = [
    Case(
        "repeats fold into one new alarm",
        [],
        [sig(t=1), sig(t=2), sig(t=3)],
        [("raised", None, "updated", "major", 3, 1)],
        [(None, "major", 3)],
    ),
    Case(
        "a repeat counts on the open alarm, sequence once",
        [open_alarm(7)],
        [sig(t=1), sig(t=2)],
        [("changed", 7, "updated", "major", 3, 2)],
        [(7, "major", 3)],
    ),
    Case(
        "severity up, then down: the last one's",
        [open_alarm(7, "minor")],
        [sig(severity="critical", t=1), sig(severity="warning", t=2)],
        [("changed", 7, "updated", "warning", 3, 2)],
        [(7, "warning", 3)],
    ),
    Case(
        "severity up alone",
        [open_alarm(7, "minor")],
        [sig(severity="critical", t=1)],
        [("changed", 7, "updated", "critical", 2, 2)],
        [(7, "critical", 2)],
    ),
    Case("a clear of a key with no open alarm changes nothing", [], [sig("clear")], [], []),
    Case(
        "clear then raise: the old alarm closes, a new one opens",
        [open_alarm(7, count=4)],
        [sig("clear", t=1), sig(t=2)],
        [("cleared", 7, "cleared", "cleared", 4, 2), ("raised", None, "raised", "major", 1, 1)],
        [(None, "major", 1)],
    ),
    Case(
        "raised and cleared in one go: sent once, as cleared, sequence 1",
        [],
        [sig(t=1), sig(t=2), sig("clear", t=3)],
        [("cleared", None, "cleared", "cleared", 2, 1)],
        [],
    ),
    Case(
        "a second clear changes nothing more",
        [open_alarm(7)],
        [sig("clear", t=1), sig("clear", t=2)],
        [("cleared", 7, "cleared", "cleared", 1, 2)],
        [],
    ),
    Case(
        "two open alarms of a key: a clear closes the newest, a raise counts on the older",
        [open_alarm(1), open_alarm(2)],
        [sig("clear", t=1), sig(t=2)],
        [("cleared", 2, "cleared", "cleared", 1, 2), ("changed", 1, "updated", "major", 2, 2)],
        [(1, "major", 2)],
    ),
]


def one_by_one(reduction: Reduction[PlainAlarm], signals: list[Signal]) -> None:
    for s in signals:
        if s.kind == "raise":
            reduction.raise_(s)
        elif (alarm := reduction.newest(s.reduction_key)) is not None:
            reduction.clear(alarm, moment(s.time_ns))


def folded(reduction: Reduction[PlainAlarm], signals: list[Signal]) -> None:
    runs = Runs()
    for s in signals:
        runs.add(s)
    for run in runs.take():
        reduction.apply(run)


def seen(change: Change[PlainAlarm]) -> Seen:
    a = change.alarm
    return (change.event, a.id, a.state, a.perceived_severity, a.count, a.sequence)


@pytest.mark.parametrize("apply", [one_by_one, folded], ids=["one-by-one", "folded"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_state_machine(case: Case, apply: Any) -> None:
    reduction = Reduction(lambda columns: PlainAlarm(**columns))
    reduction.know(KEY, [replace(a) for a in case.open])
    apply(reduction, case.signals)
    changes = reduction.settle()
    assert [seen(c) for c in changes] == case.changes
    assert [c.new for c in changes] == [c.alarm.id is None for c in changes]
    assert [(a.id, a.perceived_severity, a.count) for a in reduction.open[KEY]] == case.still_open
    assert reduction.settle() == []  # settled once


def test_a_new_alarm_keeps_its_first_raise_time_and_every_detail() -> None:
    for apply in (one_by_one, folded):
        reduction = Reduction(lambda columns: PlainAlarm(**columns))
        reduction.know(KEY, [])
        apply(reduction, [sig(t=1, cpu=91, core=0), sig(t=4), sig(t=9, cpu=99)])
        [change] = reduction.settle()
        alarm = change.alarm
        assert (alarm.raised_time, alarm.changed_time) == (moment(1_000_000_000), moment(9 * 10**9))
        assert alarm.details == {"cpu": 99, "core": 0}
        assert alarm.open and alarm.cleared_time is None


def test_a_cleared_alarm_has_its_clear_time() -> None:
    reduction = Reduction(lambda columns: PlainAlarm(**columns))
    reduction.know(KEY, [open_alarm(7)])
    one_by_one(reduction, [sig("clear", t=5)])
    [change] = reduction.settle()
    assert change.alarm.cleared_time == change.alarm.changed_time == moment(5 * 10**9)
    assert change.alarm.open is False


def test_an_unknown_key_is_the_callers_to_look_up() -> None:
    reduction = Reduction(lambda columns: PlainAlarm(**columns))
    with pytest.raises(KeyError):
        reduction.raise_(sig())


def test_plain_alarms_have_the_columns_of_the_alarms_table() -> None:
    columns = {c.name for c in AlarmRow.__table__.columns}
    assert {f.name for f in fields(PlainAlarm)} == columns
    assert set(new_alarm(sig())) == columns - {"id"}
