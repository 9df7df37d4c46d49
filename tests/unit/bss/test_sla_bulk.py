"""compliance_many() against compliance(), service by service, on generated data in a real
SQLite database: the same SlaResult for every service, whatever else is in the batch.

The generated services cover what the rules distinguish: products active all period, activated
or terminated in it, not active yet, services known only from `services`, alarms before, across,
after and inside the period, overlapping and still open ones, alarms that are not
service-affecting, shared root causes two levels up, latency KPIs over and under the target,
two billing days and two `now`s (after the period, and inside it). The IN lists are cut into
chunks of 7 so the chunking itself is exercised."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bss_bridge import sla
from bss_bridge.catalog import CreditTier, SlaTerms
from bss_bridge.rating import Period, billing_period
from bss_bridge.sla import SlaResult, compliance, compliance_many
from bss_bridge.tables import BillingAccountRow, CustomerRow, ProductRow
from oss.bss_ports import records_for
from oss.errors import NotFound
from oss.store import Database, base, service_queries
from oss.store.tables import AlarmRow, KpiMinuteRow, ServiceRow

SERVICES = 60
NOV_1 = billing_period("2026-11", 1)
NOV_15 = billing_period("2026-11", 15)
AFTER = datetime(2026, 12, 20, tzinfo=UTC)
INSIDE = datetime(2026, 11, 20, 13, 30, tzinfo=UTC)
TIERS = (CreditTier(Decimal("99.9"), Decimal("10")), CreditTier(Decimal("99"), Decimal("25")))
AVAILABILITY_ONLY = SlaTerms(Decimal("99.9"), None, 60, TIERS, Decimal("50"))
WITH_LATENCY = SlaTerms(Decimal("99.5"), Decimal("5"), 30, TIERS, Decimal("50"))
EPOCH = datetime(2026, 10, 20, tzinfo=UTC)  # generated times fall in Oct 20 .. Dec 25


def moment(rng: random.Random) -> datetime:
    return EPOCH + timedelta(minutes=rng.randrange(0, 66 * 24 * 60))


def alarm_row(rng: random.Random, kind: str, obj: str, parent: int | None, open_: bool) -> AlarmRow:
    raised = moment(rng)
    cleared = None if open_ else raised + timedelta(minutes=rng.randrange(1, 3000))
    return AlarmRow(
        reduction_key=f"k:{kind}:{obj}:{rng.random()}",
        open=open_,
        alarm_type="qualityOfServiceAlarm",
        perceived_severity="major" if open_ else "cleared",
        probable_cause="serviceAffected",
        specific_problem="",
        alarmed_object_type=kind,
        alarmed_object=obj,
        state="raised" if open_ else "cleared",
        raised_time=raised,
        changed_time=cleared or raised,
        cleared_time=cleared,
        service_affecting=rng.random() > 0.1,
        affected_services=[],
        parent_id=parent,
        is_root_cause=parent is None and kind != "service",
    )


async def generate(migrated_db: Database, seed: int) -> list[str]:
    rng = random.Random(seed)
    names = [f"svc-{n:03d}" for n in range(SERVICES)]
    async with migrated_db.transaction() as s:
        s.add(CustomerRow(id="acme", name="ACME"))
        await s.flush()
        s.add(BillingAccountRow(id="acme-1", customer_id="acme", name="ACME", currency="EUR"))
        await s.flush()
        roots = []
        for n in range(5):  # shared root causes, some with a parent of their own
            top = alarm_row(rng, "device", f"r{n}", None, False)
            s.add(top)
            await s.flush()
            link = alarm_row(rng, "link", str(n), top.id if n % 2 else None, rng.random() < 0.2)
            s.add(link)
            await s.flush()
            roots.append(link.id)
        for n, name in enumerate(names):
            if n % 10 == 9:  # no product: the service's own lifetime
                created = moment(rng)
                s.add(
                    ServiceRow(
                        name=name,
                        type="slice",
                        customer="acme",
                        state="terminated" if rng.random() < 0.5 else "active",
                        params={},
                        created_at=created,
                        updated_at=created + timedelta(days=rng.randrange(0, 30)),
                    )
                )
            else:
                for k in range(1 + (n % 7 == 0)):  # some services have two products
                    start = None if n % 13 == 5 else moment(rng)
                    end = start + timedelta(days=rng.randrange(1, 40)) if start and k else None
                    s.add(
                        ProductRow(
                            id=f"p-{n}-{k}",
                            account_id="acme-1",
                            customer_id="acme",
                            offering_id="metro-slice-200",
                            service_name=name,
                            state="terminated" if end else "active",
                            params={},
                            start_at=start,
                            end_at=end,
                            created_at=EPOCH + timedelta(days=k),
                        )
                    )
            for _ in range(rng.randrange(0, 5)):
                parent = rng.choice([None, *roots])
                s.add(alarm_row(rng, "service", name, parent, rng.random() < 0.15))
            if n % 3 == 0:
                for minute in range(0, 24 * 60 * 40, rng.choice([97, 211, 503])):
                    ms = rng.choice([1.5, 3.25, 4.75, 7.5, 12.0])
                    s.add(
                        KpiMinuteRow(
                            object_type="service",
                            object=name,
                            metric="latency-ms",
                            minute=EPOCH + timedelta(minutes=minute),
                            count=2,
                            sum=2 * ms,
                            min=ms,
                            max=ms,
                            last=ms,
                        )
                    )
    return names


def items_for(names: list[str], seed: int) -> list[tuple[str, SlaTerms, Period]]:
    rng = random.Random(seed)
    return [
        (
            name,
            rng.choice([AVAILABILITY_ONLY, WITH_LATENCY]),
            rng.choice([NOV_1, NOV_15]),
        )
        for name in names
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("now", [AFTER, INSIDE])
async def test_bulk_equals_one_by_one(
    migrated_db: Database, seed: int, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = await generate(migrated_db, seed)
    items = items_for(names, seed)
    monkeypatch.setattr(sla, "_CHUNK", 7)  # products
    monkeypatch.setattr(base, "IN_CHUNK", 7)  # alarms, KPIs (oss.store.history: in_chunks)
    monkeypatch.setattr(service_queries, "IN_CHUNK", 7)  # services

    many = await compliance_many(migrated_db, items, records=records_for(migrated_db), now=now)

    assert list(many) == names
    singles: dict[str, SlaResult] = {}
    for name, terms, period in items:
        singles[name] = await compliance(
            migrated_db, name, terms, period, records=records_for(migrated_db), now=now
        )
        assert many[name] == singles[name], name
        assert many[name].to_json() == singles[name].to_json(), name
    # The data is varied enough for the comparison to mean something.
    results = list(singles.values())
    assert sum(1 for r in results if r.outage_windows) >= 5
    assert any(not r.availability_met for r in results)
    assert any(r.availability_met for r in results)
    assert any(len(w.root_alarm_ids) >= 2 for r in results for w in r.outage_windows)
    assert any(r.latency is not None and not r.latency.met for r in results)
    assert any(r.measured_seconds == 0 for r in results)


async def test_bulk_of_nothing_and_unknown_services(migrated_db: Database) -> None:
    names = await generate(migrated_db, 4)
    assert await compliance_many(migrated_db, [], records=records_for(migrated_db), now=AFTER) == {}
    with pytest.raises(NotFound, match="svc-nope"):
        await compliance_many(
            migrated_db,
            [(names[0], AVAILABILITY_ONLY, NOV_1), ("svc-nope", AVAILABILITY_ONLY, NOV_1)],
            records=records_for(migrated_db),
        )


async def test_a_service_named_twice_keeps_its_last_item(migrated_db: Database) -> None:
    names = await generate(migrated_db, 5)
    both = await compliance_many(
        migrated_db,
        [(names[0], AVAILABILITY_ONLY, NOV_1), (names[0], WITH_LATENCY, NOV_15)],
        records=records_for(migrated_db),
        now=AFTER,
    )
    single = await compliance(
        migrated_db, names[0], WITH_LATENCY, NOV_15, records=records_for(migrated_db), now=AFTER
    )
    assert both == {names[0]: single}
