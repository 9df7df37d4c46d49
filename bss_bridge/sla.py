"""SLA compliance of a service over a billing period, measured from the assurance data.

Availability
    The outage is the union of the intervals during which the service had an open
    service-affecting alarm on it (`alarms` rows with `alarmed_object_type` "service" and
    `alarmed_object` = the service name, as `oss.faults.correlate` raises them under a link or
    node root cause). Each interval runs from the alarm's `raised_time` to its `cleared_time`;
    an alarm still open runs until `now`. Intervals are clipped to the measured time:

        measured time = the product's active time ([start_at, end_at) of its `products` row;
        without a product row, the service's own lifetime from `services`) within
        [period.start, min(period.end, now)).

    A period that has not ended yet (now < period.end) is measured over its elapsed time only,
    and the result says so: `partial` true, `measuredFrom` .. `measuredUntil` the measured
    time, and a note. Such a result only ever reaches a draft bill (an open period's bill
    cannot be issued), which the next bill run recomputes.

    availability % = 100 x (1 - outage / measured time), computed exactly on microseconds and
    quantized to 3 decimals rounding DOWN (ROUND_FLOOR): a measured 99.8999 % is reported as
    99.899 %, never rounded up onto a 99.9 % target. No measured time (not active yet, or the
    period not started) counts as 100.000 %: nothing was missed.

Evidence
    Overlapping alarms merge into one `OutageWindow` listing the service alarm ids and their
    root-cause alarm ids (the `parent_id` chain, up to the top-most alarm), and as `cause` the
    top-most root cause's alarmed object, e.g. "link 3".

Latency
    From minute KPIs (`kpi_minutes`, object_type "service", metric "latency-ms") in the measured
    time, grouped into windows of `latency_window_minutes` on a grid starting at period.start;
    a window whose mean (sum of sums / sum of counts) exceeds the target is missed. The rows are
    the active probes' (oss.assurance.probes); with none (or no latency target) the latency is
    not measured (None) — never a made-up number.

Many services at once
    `compliance_many()` gives each service exactly what `compliance()` gives it (the latter is
    the former for one service: one implementation). It reads the products of all the
    services in a few chunked queries, and their service alarms, root causes and latency KPIs
    through the OSS's ports (`bss_bridge.ports`: the BSS reads no OSS table), then computes
    each result in memory (`_result`). The bill run asks it once per batch of accounts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import select

from bss_bridge.catalog import SlaTerms
from bss_bridge.ports import AlarmHistory, AlarmRecord, KpiHistory, OssRecords, ServiceLookup
from bss_bridge.rating import Period
from bss_bridge.tables import ProductRow
from oss.errors import NotFound
from oss.store import Database

LATENCY_METRIC = "latency-ms"
_PLACES = Decimal("0.001")
_HUNDRED = Decimal(100)
_MAX_PARENT_DEPTH = 16  # a parent chain longer than this is a data error, not a reason to loop
_CHUNK = 500  # names or ids per IN list
_T = TypeVar("_T")


@dataclass(frozen=True)
class OutageWindow:
    """A stretch of time with at least one open service alarm. `alarm_ids`: every alarm that
    explains it (the service alarms and their root causes), sorted."""

    start: datetime
    end: datetime
    alarm_ids: tuple[int, ...]
    cause: str
    service_alarm_ids: tuple[int, ...] = ()
    root_alarm_ids: tuple[int, ...] = ()

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "durationSeconds": _seconds(self.duration),
            "alarmIds": list(self.alarm_ids),
            "serviceAlarmIds": list(self.service_alarm_ids),
            "rootAlarmIds": list(self.root_alarm_ids),
            "cause": self.cause,
        }


@dataclass(frozen=True)
class LatencyWindow:
    start: datetime
    end: datetime
    mean_ms: Decimal

    def to_json(self) -> dict[str, Any]:
        return {"start": _iso(self.start), "end": _iso(self.end), "meanMs": str(self.mean_ms)}


@dataclass(frozen=True)
class LatencyResult:
    target_ms: Decimal
    window_minutes: int
    windows_measured: int
    missed: tuple[LatencyWindow, ...]

    @property
    def met(self) -> bool:
        return not self.missed

    def to_json(self) -> dict[str, Any]:
        return {
            "targetMs": str(self.target_ms),
            "windowMinutes": self.window_minutes,
            "windowsMeasured": self.windows_measured,
            "windowsMissed": len(self.missed),
            "met": self.met,
            "missedWindows": [w.to_json() for w in self.missed],
        }


@dataclass(frozen=True)
class SlaResult:
    service: str
    period: Period
    measured_until: datetime
    availability_percent: Decimal
    target_percent: Decimal
    met: bool  # availability met, and latency met where it is measured
    outage_windows: tuple[OutageWindow, ...]
    latency: LatencyResult | None
    measured_seconds: Decimal = Decimal(0)
    outage_seconds: Decimal = Decimal(0)
    availability_met: bool = True
    latency_target_ms: Decimal | None = field(default=None)
    measured_from: datetime | None = None  # the measured time's start (None: nothing measured)

    @property
    def partial(self) -> bool:
        """Measured before the period ended: over its elapsed time only."""
        return self.measured_until < self.period.end

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "service": self.service,
            "period": {"start": _iso(self.period.start), "end": _iso(self.period.end)},
            "partial": self.partial,
            "measuredFrom": _iso(self.measured_from) if self.measured_from else None,
            "measuredUntil": _iso(self.measured_until),
            "met": self.met,
            "availability": {
                "targetPercent": str(self.target_percent),
                "measuredPercent": str(self.availability_percent),
                "met": self.availability_met,
                "measuredSeconds": format(self.measured_seconds.normalize(), "f"),
                "outageSeconds": format(self.outage_seconds.normalize(), "f"),
                "outageWindows": [w.to_json() for w in self.outage_windows],
            },
            "latency": (
                self.latency.to_json()
                if self.latency is not None
                else {
                    "measured": False,
                    "targetMs": _str_or_none(self.latency_target_ms),
                    "note": "not measured (no latency KPIs for this service)",
                }
            ),
        }
        if self.partial:
            doc["note"] = (
                f"partial: the period ends at {_iso(self.period.end)}; measured over its "
                f"elapsed time, until {_iso(self.measured_until)}"
            )
        return doc


# ----------------------------------------------------------------------------- computation


async def compliance(
    db: Database,
    service: str,
    terms: SlaTerms,
    period: Period,
    *,
    records: OssRecords,
    now: datetime | None = None,
) -> SlaResult:
    """The SLA compliance of `service` over `period`, as measured up to `now` (default: now)."""
    return (await compliance_many(db, [(service, terms, period)], records=records, now=now))[
        service
    ]


async def compliance_many(
    db: Database,
    items: Sequence[tuple[str, SlaTerms, Period]],
    *,
    records: OssRecords,
    now: datetime | None = None,
) -> dict[str, SlaResult]:
    """`compliance()` of many services at once, by service name: the same rules and the same
    results, with the rows of all the services read in a few chunked queries (products here,
    services, alarms and KPIs through the OSS's ports) instead of several queries per service.
    A service named twice keeps its last item."""
    now = now or datetime.now(UTC)
    last = {service: (terms, period) for service, terms, period in items}
    if not last:
        return {}
    active = await _active_times(db, records.services, list(last))
    spans: dict[str, _Span] = {}
    for service, (_terms, period) in last.items():
        measured_until = min(period.end, max(now, period.start))
        active_from, active_to = active[service]
        start = max(period.start, active_from) if active_from else measured_until
        end = min(measured_until, active_to) if active_to else measured_until
        spans[service] = _Span(measured_until, start, max(start, end))
    measured = {name: span for name, span in spans.items() if span.end > span.start}
    alarms = await _service_alarms(records.alarms, measured)
    known = await _with_ancestors(records.alarms, [a for rows in alarms.values() for a in rows])
    timed = {
        name: span for name, span in measured.items() if last[name][0].latency_target_ms is not None
    }
    kpis = await _latency_rows(records.kpis, timed)
    return {
        service: _result(
            service,
            terms,
            period,
            now,
            spans[service],
            alarms.get(service, []),
            known,
            kpis.get(service) if service in timed else None,
        )
        for service, (terms, period) in last.items()
    }


@dataclass(frozen=True)
class _Span:
    """The measured time of one service: [start, end) within the period, up to now."""

    measured_until: datetime
    start: datetime
    end: datetime


def _result(
    service: str,
    terms: SlaTerms,
    period: Period,
    now: datetime,
    span: _Span,
    alarms: Sequence[AlarmRecord],
    known: Mapping[int, AlarmRecord],
    kpis: Sequence[tuple[datetime, float, int]] | None,
) -> SlaResult:
    """The pure part of compliance: one service's result from its rows."""
    start, end = span.start, span.end
    windows = _outage_windows(alarms, _roots(alarms, known), start, end, now)
    latency = None
    if terms.latency_target_ms is not None and end > start and kpis:
        latency = _latency(kpis, terms, period.start)
    measured_us = _micros(end - start)
    outage_us = sum(_micros(w.duration) for w in windows)
    availability = _availability(outage_us, measured_us)
    availability_met = availability >= terms.availability_target_percent
    return SlaResult(
        service=service,
        period=period,
        measured_until=span.measured_until,
        availability_percent=availability,
        target_percent=terms.availability_target_percent,
        met=availability_met and (latency is None or latency.met),
        outage_windows=tuple(windows),
        latency=latency,
        measured_seconds=Decimal(measured_us).scaleb(-6),
        outage_seconds=Decimal(outage_us).scaleb(-6),
        availability_met=availability_met,
        latency_target_ms=terms.latency_target_ms,
        measured_from=start if end > start else None,
    )


def _availability(outage_us: int, measured_us: int) -> Decimal:
    if measured_us <= 0:
        return Decimal("100.000")
    exact = _HUNDRED * (1 - Decimal(outage_us) / Decimal(measured_us))
    return exact.quantize(_PLACES, rounding=ROUND_FLOOR)


async def _active_times(
    db: Database, lookup: ServiceLookup, services: Sequence[str]
) -> dict[str, tuple[datetime | None, datetime | None]]:
    """[from, to) of each service's product (the newest one naming it), else of the service."""
    out: dict[str, tuple[datetime | None, datetime | None]] = {}
    async with db.sessions() as s:
        for names in _chunks(services):
            query = (
                select(ProductRow.service_name, ProductRow.start_at, ProductRow.end_at)
                .where(ProductRow.service_name.in_(names))
                .order_by(ProductRow.service_name, ProductRow.created_at.desc(), ProductRow.id)
            )
            for name, start_at, end_at in await s.execute(query):
                out.setdefault(cast(str, name), (start_at, end_at))  # the first is the newest
    missing = [name for name in services if name not in out]
    for name, service in (await lookup.named(missing)).items():
        out.setdefault(name, (service.created_at, service.ended_at))
    for name in missing:
        if name not in out:
            raise NotFound(f"service {name} not found (neither a product nor a service)")
    return out


async def _service_alarms(
    alarms: AlarmHistory, spans: Mapping[str, _Span]
) -> dict[str, list[AlarmRecord]]:
    """The service-affecting alarms on each service overlapping its measured time, in the
    order they were raised."""
    out: dict[str, list[AlarmRecord]] = {}
    raised = await alarms.service_alarms({name: span.end for name, span in spans.items()})
    for alarm in raised:
        span = spans[alarm.object]
        if alarm.raised < span.end and (alarm.open or alarm.cleared > span.start):
            out.setdefault(alarm.object, []).append(alarm)
    return out


async def _with_ancestors(
    history: AlarmHistory, alarms: Sequence[AlarmRecord]
) -> dict[int, AlarmRecord]:
    """The alarms and their ancestors (the `parents` chains) by id, a level per query."""
    known = {a.id: a for a in alarms}
    wanted = {p for a in alarms for p in a.parents} - known.keys()
    for _ in range(_MAX_PARENT_DEPTH):
        if not wanted:
            break
        found = await history.alarms(wanted)
        known.update((a.id, a) for a in found)
        wanted = {p for a in found for p in a.parents} - known.keys()
    return known


def _roots(
    alarms: Sequence[AlarmRecord], known: Mapping[int, AlarmRecord]
) -> dict[int, list[AlarmRecord]]:
    """For each service alarm: its ancestors, nearest first; the top-most ones (the root
    causes, having no parents of their own) come last within each branch."""
    chains: dict[int, list[AlarmRecord]] = {}
    for alarm in alarms:
        chain: list[AlarmRecord] = []
        seen = {alarm.id}
        frontier = list(alarm.parents)
        while frontier and len(chain) < _MAX_PARENT_DEPTH:
            parent = known.get(frontier.pop(0))
            if parent is None or parent.id in seen:
                continue
            seen.add(parent.id)
            chain.append(parent)
            frontier.extend(parent.parents)
        chains[alarm.id] = chain
    return chains


def _outage_windows(
    alarms: Iterable[AlarmRecord],
    roots: dict[int, list[AlarmRecord]],
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[OutageWindow]:
    spans: list[tuple[datetime, datetime, AlarmRecord]] = []
    for alarm in alarms:
        until = now if alarm.open else alarm.cleared
        lo, hi = max(alarm.raised, start), min(until, end)
        if hi > lo:
            spans.append((lo, hi, alarm))
    spans.sort(key=lambda span: (span[0], span[1], span[2].id))
    merged: list[tuple[datetime, datetime, list[AlarmRecord]]] = []
    for lo, hi, alarm in spans:
        if merged and lo <= merged[-1][1]:  # overlapping or touching: one outage
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], hi), [*last[2], alarm])
        else:
            merged.append((lo, hi, [alarm]))
    return [_window(lo, hi, members, roots) for lo, hi, members in merged]


def _window(
    start: datetime,
    end: datetime,
    members: list[AlarmRecord],
    roots: dict[int, list[AlarmRecord]],
) -> OutageWindow:
    service_ids = sorted({a.id for a in members})
    ancestors = {p.id: p for a in members for p in roots.get(a.id, [])}
    tops = {p.id: p for p in ancestors.values() if not any(q in ancestors for q in p.parents)}
    causes = sorted({f"{t.object_type} {t.object}" for t in tops.values()})
    if not causes:
        causes = ["unknown (no root cause correlated)"]
    return OutageWindow(
        start=start,
        end=end,
        alarm_ids=tuple(sorted({*service_ids, *ancestors})),
        cause=", ".join(causes),
        service_alarm_ids=tuple(service_ids),
        root_alarm_ids=tuple(sorted(ancestors)),
    )


async def _latency_rows(
    kpis: KpiHistory, spans: Mapping[str, _Span]
) -> dict[str, list[tuple[datetime, float, int]]]:
    """(minute, sum, count) of each service's latency KPIs in its measured time."""
    out: dict[str, list[tuple[datetime, float, int]]] = {}
    if not spans:
        return out
    start = min(span.start for span in spans.values())
    end = max(span.end for span in spans.values())
    for row in await kpis.minutes("service", list(spans), LATENCY_METRIC, start, end):
        span = spans[row.object]
        if span.start <= row.minute < span.end:
            out.setdefault(row.object, []).append((row.minute, row.sum, row.count))
    return out


def _latency(
    rows: Sequence[tuple[datetime, float, int]], terms: SlaTerms, grid_start: datetime
) -> LatencyResult:
    assert terms.latency_target_ms is not None
    width = timedelta(minutes=terms.latency_window_minutes)
    sums: dict[int, tuple[Decimal, int]] = {}
    for minute, row_sum, row_count in rows:
        index = (minute - grid_start) // width
        total, count = sums.get(index, (Decimal(0), 0))
        sums[index] = (total + Decimal(repr(row_sum)), count + row_count)
    missed = []
    for index in sorted(sums):
        total, count = sums[index]
        if count <= 0:
            continue
        mean = (total / count).quantize(_PLACES)
        if mean > terms.latency_target_ms:
            lo = grid_start + index * width
            missed.append(LatencyWindow(lo, lo + width, mean))
    return LatencyResult(
        target_ms=terms.latency_target_ms,
        window_minutes=terms.latency_window_minutes,
        windows_measured=sum(1 for total, count in sums.values() if count > 0),
        missed=tuple(missed),
    )


def _chunks(values: Sequence[_T]) -> Iterator[list[_T]]:
    """Bounded IN lists (SQLite's bound-parameter limit; PostgreSQL plans them better)."""
    for i in range(0, len(values), _CHUNK):
        yield list(values[i : i + _CHUNK])


# ----------------------------------------------------------------------------------- helpers


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _seconds(delta: timedelta) -> str:
    return format(Decimal(_micros(delta)).scaleb(-6).normalize(), "f")  # "3600", "1.5"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _str_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
