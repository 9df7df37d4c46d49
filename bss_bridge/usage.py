"""Usage records (TMF635): what a product used in an interval, each under a unique `key` so a
replayed batch or a second collector pass is stored, and charged, once.

Two sources:
- Telemetry (`UsageLedger.collect`): per product, the octets the customer sent into the network
  at its service's endpoint (attachment) interfaces — the `in-octets` minute roll-ups of those
  interfaces (read through the OSS's ports: object "<device>:<interface>", `sum` = octets
  received in the minute) — summed per closed hour into one record keyed
  `data:<product id>:<hour start ISO>`
  (usage_type "data", unit "GB", quantity = octets / 10^9 exactly). Only hours that closed at
  least `settle` ago are collected (the roll-up writes a minute once the next one starts), and
  only minutes inside the product's active time count, so a record never changes once written.
  An hour without any roll-up rows is not written (it is tried again on the next pass, while it
  is within `lookback`), so telemetry arriving late is not lost to an early zero.
  Known limit: two services sharing one physical interface (different VLANs) both count its
  octets; the roll-ups are per interface, not per sub-interface.
- Outside (`UsageLedger.record`, behind POST /tmf-api/usageManagement/v4/usage).

Records start "received"; the bill run marks them "billed" with its bill id (`mark_billed`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bss_bridge.ports import OssRecords
from bss_bridge.rating import Period
from bss_bridge.tables import ProductRow, UsageRow
from oss import audit
from oss.errors import Conflict, InvalidInput, NotFound
from oss.store import Database
from oss.store.base import IN_CHUNK

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
IN_OCTETS = "in-octets"
STATES = ("received", "rejected", "recycled", "guided", "rated", "rerated", "billed")
_GIGA = 9  # octets -> GB: 10^9 (decimal gigabytes, as tariffs count them)


@dataclass(frozen=True)
class UsageDraft:
    """A usage record as given, before it is stored."""

    key: str
    product_id: str
    usage_type: str
    unit: str
    quantity: Decimal
    start_at: datetime
    end_at: datetime


@dataclass(frozen=True)
class UsageFilter:
    product_id: str | None = None
    account_id: str | None = None
    state: str | None = None
    since: datetime | None = None  # start_at >= since
    until: datetime | None = None  # start_at < until


def hour_key(product_id: str, hour: datetime) -> str:
    return f"data:{product_id}:{_iso(hour)}"


def octets_to_gb(octets: int) -> Decimal:
    """Exact: 1234567890 octets -> Decimal('1.234567890')."""
    return Decimal(octets).scaleb(-_GIGA)


async def usage_for(
    db: Database, product_id: str, period: Period, *, bill_id: int | None = None
) -> list[UsageRow]:
    """The product's usage that started in the period and is not billed yet, or is billed to
    `bill_id` (a draft bill being re-run), oldest first. Rejected records are left out."""
    async with db.sessions() as s:
        billable: ColumnElement[bool] = UsageRow.bill_id.is_(None)
        if bill_id is not None:
            billable = or_(billable, UsageRow.bill_id == bill_id)
        query = (
            select(UsageRow)
            .where(
                UsageRow.product_id == product_id,
                UsageRow.start_at >= period.start,
                UsageRow.start_at < period.end,
                UsageRow.state != "rejected",
                billable,
            )
            .order_by(UsageRow.start_at, UsageRow.id)
        )
        return list((await s.scalars(query)).all())


async def mark_billed(session: AsyncSession, usage_ids: Iterable[int], bill_id: int) -> None:
    """In the bill run's transaction: these records are on bill `bill_id`."""
    ids = sorted(set(usage_ids))
    for start in range(0, len(ids), IN_CHUNK):
        rows = await session.scalars(
            select(UsageRow).where(UsageRow.id.in_(ids[start : start + IN_CHUNK]))
        )
        for row in rows:
            row.state = "billed"
            row.bill_id = bill_id


class UsageLedger:
    """Usage records on the database: idempotent creates, queries, and telemetry collection."""

    def __init__(
        self,
        db: Database,
        oss: OssRecords,
        *,
        settle: timedelta = timedelta(minutes=2),
        lookback: timedelta = timedelta(hours=48),
    ) -> None:
        self.db = db
        self.oss = oss  # the services' endpoint interfaces and their minute roll-ups
        self.settle = settle
        self.lookback = lookback
        self.collected = 0  # records written by collection since start

    # --- from outside ----------------------------------------------------------------------

    async def record(self, draft: UsageDraft, *, actor: str = "system") -> tuple[UsageRow, bool]:
        """Store a record; `(row, True)` when new. The same key again returns the stored record
        unchanged `(row, False)` when it says the same, and is a Conflict when it does not.
        A new record is audited (by `actor`) in its transaction; a replay changes nothing."""
        _check(draft)
        existing = await self._by_key(draft.key)
        if existing is not None:
            return _same_or_conflict(existing, draft), False
        try:
            async with self.db.transaction() as s:
                product = await s.get(ProductRow, draft.product_id)
                if product is None:
                    raise NotFound(f"product {draft.product_id} not found")
                _within_active_time(product, draft)
                row = _row(draft, product, "received")
                s.add(row)
                await s.flush()
                audit.record(
                    s,
                    actor=actor,
                    action="create",
                    object_type="usage",
                    object_id=str(row.id),
                    after={
                        "key": draft.key,
                        "product": draft.product_id,
                        "usageType": draft.usage_type,
                        "quantity": str(draft.quantity),
                        "unit": draft.unit,
                        "start": draft.start_at.isoformat(),
                        "end": draft.end_at.isoformat(),
                    },
                )
            return row, True
        except IntegrityError:
            # A concurrent create with the same key won the race: that record is the answer.
            existing = await self._by_key(draft.key)
            if existing is None:
                raise
            return _same_or_conflict(existing, draft), False

    async def get(self, usage_id: int) -> UsageRow:
        async with self.db.sessions() as s:
            row = await s.get(UsageRow, usage_id)
        if row is None:
            raise NotFound(f"usage {usage_id} not found")
        return row

    async def find(
        self, where: UsageFilter, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[UsageRow], int]:
        conditions = []
        if where.product_id is not None:
            conditions.append(UsageRow.product_id == where.product_id)
        if where.account_id is not None:
            conditions.append(UsageRow.account_id == where.account_id)
        if where.state is not None:
            conditions.append(UsageRow.state == where.state)
        if where.since is not None:
            conditions.append(UsageRow.start_at >= where.since)
        if where.until is not None:
            conditions.append(UsageRow.start_at < where.until)
        async with self.db.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(UsageRow).where(*conditions))
            query = (
                select(UsageRow)
                .where(*conditions)
                .order_by(UsageRow.start_at, UsageRow.id)
                .limit(limit)
                .offset(offset)
            )
            rows = list((await s.scalars(query)).all())
        return rows, int(total or 0)

    async def _by_key(self, key: str) -> UsageRow | None:
        async with self.db.sessions() as s:
            return (await s.scalars(select(UsageRow).where(UsageRow.key == key))).first()

    # --- from telemetry --------------------------------------------------------------------

    async def collect(self, now: datetime | None = None) -> int:
        """Write the data records of every closed hour not written yet; returns how many."""
        now = now or datetime.now(UTC)
        last_hour_end = _floor_hour(now - self.settle)  # hours ending by then are closed
        oldest = _floor_hour(now - self.lookback)
        written = 0
        products = await self._products(oldest)
        # A batch of products at a time: their interfaces and written keys in a query each.
        for start in range(0, len(products), IN_CHUNK):
            batch = products[start : start + IN_CHUNK]
            names = [p.service_name for p in batch if p.service_name is not None]
            endpoints = await self.oss.services.endpoint_interfaces(names)
            done = await self._written_keys(batch, oldest, last_hour_end)
            for product in batch:
                interfaces = endpoints.get(product.service_name or "", [])
                written += await self._collect_product(
                    product, oldest, last_hour_end, interfaces, done
                )
        self.collected += written
        return written

    async def _products(self, oldest: datetime) -> list[ProductRow]:
        async with self.db.sessions() as s:
            query = select(ProductRow).where(
                ProductRow.service_name.is_not(None),
                ProductRow.start_at.is_not(None),
                or_(ProductRow.end_at.is_(None), ProductRow.end_at > oldest),
            )
            return list((await s.scalars(query.order_by(ProductRow.id))).all())

    async def _written_keys(
        self, products: Sequence[ProductRow], oldest: datetime, last_hour_end: datetime
    ) -> dict[str, list[tuple[str, datetime]]]:
        """(key, start) of the records of these products starting in [oldest, last_hour_end),
        by product id."""
        query = select(UsageRow.product_id, UsageRow.key, UsageRow.start_at).where(
            UsageRow.product_id.in_([p.id for p in products]),
            UsageRow.start_at >= oldest,
            UsageRow.start_at < last_hour_end,
        )
        found: dict[str, list[tuple[str, datetime]]] = {}
        async with self.db.sessions() as s:
            for product_id, key, start_at in await s.execute(query):
                found.setdefault(product_id, []).append((key, start_at))
        return found

    async def _collect_product(
        self,
        product: ProductRow,
        oldest: datetime,
        last_hour_end: datetime,
        interfaces: Sequence[str],
        written: Mapping[str, list[tuple[str, datetime]]],
    ) -> int:
        assert product.start_at is not None and product.service_name is not None
        first = max(_floor_hour(product.start_at), oldest)
        last = last_hour_end if product.end_at is None else min(last_hour_end, product.end_at)
        if last <= first or not interfaces:
            return 0
        done = {key for key, start in written.get(product.id, []) if first <= start < last}
        # The active part of [first, last): minutes outside it are not the customer's.
        lo = max(first, product.start_at)
        hi = last if product.end_at is None else min(last, product.end_at)
        octets = await self._octets_per_hour(interfaces, lo, hi)
        drafts = []
        for hour, total in sorted(octets.items()):
            key = hour_key(product.id, hour)
            if key in done:
                continue
            drafts.append(
                UsageDraft(
                    key=key,
                    product_id=product.id,
                    usage_type="data",
                    unit="GB",
                    quantity=octets_to_gb(total),
                    start_at=max(hour, product.start_at),
                    end_at=min(hour + HOUR, hi),
                )
            )
        return await self._insert_new(product, drafts)

    async def _octets_per_hour(
        self, interfaces: Sequence[str], start: datetime, end: datetime
    ) -> dict[datetime, int]:
        totals: dict[datetime, int] = {}
        for row in await self.oss.kpis.minutes("interface", interfaces, IN_OCTETS, start, end):
            hour = _floor_hour(row.minute)
            # Octet counts are whole numbers; the float column holds them exactly below 2^53.
            totals[hour] = totals.get(hour, 0) + round(row.sum)
        return totals

    async def _insert_new(self, product: ProductRow, drafts: Sequence[UsageDraft]) -> int:
        written = 0
        for draft in drafts:
            try:
                async with self.db.transaction() as s:
                    s.add(_row(draft, product, "received"))
                written += 1
            except IntegrityError:
                # Written meanwhile (another pass or process): it is already there, unchanged.
                log.info("usage record %s already written", draft.key)
        return written


# ------------------------------------------------------------------------------------ checks


def _check(draft: UsageDraft) -> None:
    if not draft.key or len(draft.key) > 255:
        raise InvalidInput("key: 1 to 255 characters")
    if not draft.usage_type or len(draft.usage_type) > 32:
        raise InvalidInput("usageType: 1 to 32 characters")
    if not draft.unit or len(draft.unit) > 16:
        raise InvalidInput("unit: 1 to 16 characters")
    if not draft.quantity.is_finite() or draft.quantity < 0:
        raise InvalidInput(f"quantity: must be a number >= 0, not {draft.quantity}")
    if draft.end_at < draft.start_at:
        raise InvalidInput("endDate: must not be before usageDate")


def _within_active_time(product: ProductRow, draft: UsageDraft) -> None:
    if product.start_at is None or draft.start_at < product.start_at:
        raise InvalidInput(
            f"usageDate: product {product.id} was not active at {_iso(draft.start_at)}"
        )
    if product.end_at is not None and draft.start_at >= product.end_at:
        raise InvalidInput(
            f"usageDate: product {product.id} ended at {_iso(product.end_at)}, "
            f"before {_iso(draft.start_at)}"
        )


def _same_or_conflict(row: UsageRow, draft: UsageDraft) -> UsageRow:
    stored = (
        row.product_id,
        row.usage_type,
        row.unit,
        row.quantity,
        row.start_at,
        row.end_at,
    )
    given = (
        draft.product_id,
        draft.usage_type,
        draft.unit,
        draft.quantity,
        draft.start_at,
        draft.end_at,
    )
    if stored != given:
        raise Conflict(
            f"usage key {draft.key!r} is already used by usage {row.id} with other values; "
            "a key names one record"
        )
    return row


def _row(draft: UsageDraft, product: ProductRow, state: str) -> UsageRow:
    return UsageRow(
        key=draft.key,
        product_id=product.id,
        account_id=product.account_id,
        service_name=product.service_name,
        usage_type=draft.usage_type,
        unit=draft.unit,
        quantity=draft.quantity,
        start_at=draft.start_at,
        end_at=draft.end_at,
        state=state,
        created_at=datetime.now(UTC),
    )


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
