"""The ports of the BSS: what it needs of the OSS, declared here as small protocols over plain
data the BSS owns (frozen dataclasses, never OSS table rows).

The OSS fills them (`oss/bss_ports.py`, called by the composition root) from its store and its
provisioning; the BSS reads no OSS table itself and calls no OSS component directly, so the
import-linter `bss-ports` contract holds without exceptions and a test can hand the BSS a fake.

- `ServiceLookup`: the network services (TMF638 inventory, an order's services, SLA lifetimes,
  usage endpoints).
- `Provisioning`: what orders and the catalogue ask of provisioning (the service types, create
  and remove a service, when a transaction finished, background work).
- `AlarmHistory`: service-affecting alarms and their root causes (SLA outages); which services
  had any service alarm in a time span (the bill run asks SLA only of those).
- `KpiHistory`: minute KPI roll-ups (usage octets, SLA latency).
- `OrderEvents`: the outbox for order state-change events (MQTT).
- `Jobs`: one-off work held alone across the OSS's instances (a bill run), `RunHere` for one.
"""

from __future__ import annotations

from collections.abc import Collection, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from oss.errors import Problem


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """A network service as the BSS sees it. `ended_at`: when it was terminated (None while
    it lives)."""

    id: int
    name: str
    type: str
    customer: str
    state: str
    params: Mapping[str, Any]
    vlan: int | None
    vrf: str | None
    rd: str | None
    error: str | None
    transaction_id: int | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """An alarm as the SLA measures it. `cleared`: when it cleared (for an open one, its last
    change); `parents`: the alarms that explain it (its parent, then the other causes the
    correlator recorded)."""

    id: int
    object_type: str
    object: str
    open: bool
    raised: datetime
    cleared: datetime
    parents: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class KpiMinute:
    """One minute's roll-up of one metric of one object: the sum and count of its samples."""

    object: str
    minute: datetime
    sum: float
    count: int


@dataclass(frozen=True, slots=True)
class Change:
    """How a service change ended: its transaction (None: refused before one started) and the
    error when it failed or was refused."""

    transaction_id: int | None
    error: str | None = None


class ServiceLookup(Protocol):
    async def by_id(self, service_id: int) -> ServiceRecord | None: ...

    async def named(self, names: Collection[str]) -> dict[str, ServiceRecord]:
        """The services of these names that exist, by name."""
        ...

    async def find(
        self,
        *,
        states: Collection[str] | None = None,
        customer: str | None = None,
        service_type: str | None = None,
        limit: int,
        offset: int,
    ) -> tuple[list[ServiceRecord], int]:
        """A page of services by id, and how many match."""
        ...

    async def endpoint_interfaces(self, names: Collection[str]) -> dict[str, list[str]]:
        """The customer-facing interfaces of each named service as "<device>:<interface>",
        sorted, by service name (a service without any is left out)."""
        ...


class ParameterSpec(Protocol):
    @property
    def required(self) -> bool: ...

    def check(self, value: Any, where: str, problems: list[Problem]) -> Any:
        """Adds a problem for each way `value` does not fit."""
        ...


@runtime_checkable
class ServiceTypeSpec(Protocol):
    """A service type as the catalogue checks an offering's parameters against it and orders
    an order's."""

    @property
    def name(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, ParameterSpec]: ...

    def validate(self, params: Mapping[str, Any]) -> Any:
        """Raises InvalidInput naming the parameter when `params` do not fit."""
        ...


class Provisioning(Protocol):
    def spawn(self, work: Coroutine[Any, Any, Any]) -> object:
        """Run `work` in the background, tracked (awaited at shutdown)."""
        ...

    def service_types(self) -> Mapping[str, ServiceTypeSpec]:
        """The service types this daemon knows, by name."""
        ...

    async def create(
        self, service_type: str, params: Mapping[str, Any], *, name: str, actor: str
    ) -> Change: ...

    async def delete(self, name: str, *, actor: str) -> Change: ...

    async def finished_at(self, transaction_id: int) -> datetime | None:
        """When the transaction finished; None while it runs."""
        ...


class AlarmHistory(Protocol):
    async def service_alarms(self, raised_before: Mapping[str, datetime]) -> list[AlarmRecord]:
        """The service-affecting alarms on each named service raised before its moment, in the
        order they were raised."""
        ...

    async def alarms(self, ids: Collection[int]) -> list[AlarmRecord]: ...

    async def alarmed_services(
        self, names: Collection[str], start: datetime, end: datetime
    ) -> set[str]:
        """Those of these services with a service alarm (alarmed object type "service") at
        some time in [start, end): raised before `end`, open or cleared after `start`."""
        ...


class KpiHistory(Protocol):
    async def minutes(
        self,
        object_type: str,
        objects: Collection[str],
        metric: str,
        start: datetime,
        end: datetime,
    ) -> list[KpiMinute]:
        """The minute roll-ups of `metric` of these objects with start <= minute < end."""
        ...


@dataclass(frozen=True)
class OssRecords:
    """The read side: what the inventory views, SLA and usage read of the OSS."""

    services: ServiceLookup
    alarms: AlarmHistory
    kpis: KpiHistory


class OrderEvents(Protocol):
    async def add(self, session: AsyncSession, order_id: str, event: Mapping[str, Any]) -> None:
        """Queue `event` (a TMF622 order state change) for MQTT in the session's transaction:
        it goes out once that commits, never if it rolls back."""
        ...


class Jobs(Protocol):
    def exclusive(self, job: str) -> AbstractAsyncContextManager[None]:
        """Hold `job` for the block, alone across the OSS's instances, its writes fenced by
        the job's lease; raises `Conflict` naming the instance that runs it (`NotReady` while
        this instance is not a live member of its cluster)."""
        ...


class RunHere:
    """`Jobs` of a single instance: nothing else runs them."""

    def exclusive(self, job: str) -> AbstractAsyncContextManager[None]:
        return nullcontext()


@dataclass(frozen=True)
class OssPorts:
    """Every port, as the composition root hands them to `Bss`."""

    records: OssRecords
    provisioning: Provisioning
    jobs: Jobs = field(default_factory=RunHere)
