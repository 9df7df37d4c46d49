"""The OSS fills the BSS's ports (`bss_bridge.ports`): service lookup and alarm and KPI history
from the store's named reads, provisioning from the `ServiceManager`. The composition root calls
`ports_for` where it builds `Bss`; nothing else in the BSS reaches the OSS."""

from __future__ import annotations

from collections.abc import Collection, Coroutine, Mapping
from datetime import datetime
from typing import Any

from bss_bridge.ports import (
    AlarmRecord,
    Change,
    Jobs,
    KpiMinute,
    OssPorts,
    OssRecords,
    RunHere,
    ServiceRecord,
    ServiceTypeSpec,
)
from oss.errors import OssError
from oss.provisioning.engine import TransactionFailed
from oss.provisioning.services import ServiceManager
from oss.store import Database, history, service_queries
from oss.store.in_use import ENDED
from oss.store.tables import AlarmRow, ServiceRow


def ports_for(db: Database, services: ServiceManager, jobs: Jobs | None = None) -> OssPorts:
    """Every port the BSS needs, over this database and this service manager; `jobs`: the
    cluster's (`oss.cluster`: one bill run at a time across the instances)."""
    return OssPorts(
        records=records_for(db), provisioning=ServiceDesk(services), jobs=jobs or RunHere()
    )


def records_for(db: Database) -> OssRecords:
    """The read-side ports alone (what SLA, usage and the inventory views read)."""
    return OssRecords(services=StoredServices(db), alarms=StoredAlarms(db), kpis=StoredKpis(db))


class StoredServices:
    """`ServiceLookup` over the services table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def by_id(self, service_id: int) -> ServiceRecord | None:
        row = await service_queries.service_by_id(self.db, service_id)
        return None if row is None else service_record(row)

    async def named(self, names: Collection[str]) -> dict[str, ServiceRecord]:
        if not names:
            return {}
        rows = await service_queries.services_named(self.db, names)
        return {row.name: service_record(row) for row in rows}

    async def find(
        self,
        *,
        states: Collection[str] | None = None,
        customer: str | None = None,
        service_type: str | None = None,
        limit: int,
        offset: int,
    ) -> tuple[list[ServiceRecord], int]:
        rows, total = await service_queries.find_services(
            self.db,
            states=states,
            customer=customer,
            service_type=service_type,
            limit=limit,
            offset=offset,
        )
        return [service_record(row) for row in rows], total

    async def endpoint_interfaces(self, names: Collection[str]) -> dict[str, list[str]]:
        if not names:
            return {}
        return await service_queries.endpoint_interfaces(self.db, names)


class ServiceDesk:
    """`Provisioning` over the service manager: a failed or refused change is an outcome the
    order records, not an exception."""

    def __init__(self, services: ServiceManager) -> None:
        self.services = services

    def spawn(self, work: Coroutine[Any, Any, Any]) -> object:
        return self.services.spawn(work)

    def service_types(self) -> Mapping[str, ServiceTypeSpec]:
        return self.services.types

    async def create(
        self, service_type: str, params: Mapping[str, Any], *, name: str, actor: str
    ) -> Change:
        try:
            result = await self.services.create(service_type, params, name=name, actor=actor)
        except TransactionFailed as exc:
            return Change(exc.transaction.id, exc.transaction.error or str(exc))
        except OssError as exc:  # refused before any device was touched (no path, conflict)
            return Change(None, str(exc))
        return Change(int(result["transaction"]["id"]))

    async def delete(self, name: str, *, actor: str) -> Change:
        try:
            result = await self.services.delete(name, actor=actor)
        except TransactionFailed as exc:
            return Change(exc.transaction.id, exc.transaction.error or str(exc))
        except OssError as exc:
            return Change(None, str(exc))
        return Change(int(result["transaction"]["id"]))

    async def finished_at(self, transaction_id: int) -> datetime | None:
        finished = (await self.services.transaction(transaction_id)).get("finished_at")
        return datetime.fromisoformat(finished) if finished else None


class StoredAlarms:
    """`AlarmHistory` over the alarms table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def service_alarms(self, raised_before: Mapping[str, datetime]) -> list[AlarmRecord]:
        if not raised_before:
            return []
        return [alarm_record(row) for row in await history.service_alarms(self.db, raised_before)]

    async def alarms(self, ids: Collection[int]) -> list[AlarmRecord]:
        if not ids:
            return []
        return [alarm_record(row) for row in await history.alarms_by_id(self.db, ids)]

    async def alarmed_services(
        self, names: Collection[str], start: datetime, end: datetime
    ) -> set[str]:
        if not names:
            return set()
        return await history.services_alarmed(self.db, names, start, end)


class StoredKpis:
    """`KpiHistory` over the minute roll-ups."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def minutes(
        self,
        object_type: str,
        objects: Collection[str],
        metric: str,
        start: datetime,
        end: datetime,
    ) -> list[KpiMinute]:
        if not objects:
            return []
        rows = await history.kpi_minutes(self.db, object_type, objects, metric, start, end)
        return [KpiMinute(name, minute, total, count) for name, minute, total, count in rows]


def service_record(row: ServiceRow) -> ServiceRecord:
    return ServiceRecord(
        id=row.id,
        name=row.name,
        type=row.type,
        customer=row.customer,
        state=row.state,
        params=dict(row.params or {}),
        vlan=row.vlan,
        vrf=row.vrf,
        rd=row.rd,
        error=row.error,
        transaction_id=row.transaction_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        # The services table keeps no termination time: its last update is when it ended.
        ended_at=row.updated_at if row.state == ENDED else None,
    )


def alarm_record(row: AlarmRow) -> AlarmRecord:
    return AlarmRecord(
        id=row.id,
        object_type=row.alarmed_object_type,
        object=row.alarmed_object,
        open=row.open,
        raised=row.raised_time,
        # A closed alarm always has cleared_time; changed_time is the fallback for a hand-made row.
        cleared=row.cleared_time or row.changed_time,
        parents=_parents(row),
    )


def _parents(row: AlarmRow) -> tuple[int, ...]:
    """What explains an alarm: its parent, and every other failure that cut the same service
    meanwhile (`causes`, recorded by the correlator; the alarm moves under the one still open
    when another clears)."""
    found = [] if row.parent_id is None else [row.parent_id]
    details = row.details
    causes = details.get("causes", []) if isinstance(details, dict) else []
    found.extend(c for c in causes if isinstance(c, int) and c not in found)
    return tuple(found)
