"""The bill run: one TMF678 customer bill per billing account and period, with its lines.

A bill starts as a draft (TMF678 state `new`) and is recomputed by every run of its period: the
run deletes the draft's lines and writes them again, in the same transaction that re-rates the
usage, so a repeated run never adds a second charge. `issue()` moves a draft to `sent` (the
TMF678 state meaning the bill went out to the customer), gives it a bill number and makes it
immutable: the run leaves it alone, `issue()` refuses it again (Conflict). Only a closed period
is issued: `issue()` refuses (Conflict) a bill whose period has not ended by the run's clock, or
whose draft was last computed before the period ended (its usage and SLA were partial: run the
period again first). Drafts of an open period are fine and say so (`period_closed`). What
arrives later for an issued period (late usage records) becomes an `adjustment` line on the
account's next draft, naming the period and the bill it corrects (Kill Bill's model:
corrections are new items).

Lines (kinds, and the unique `key` that makes each charge happen once across all bills):
    recurring   `recurring:<product>:<period start date>`  the monthly price, prorated by the day
    usage       `usage:<product>:<period start date>`      the period's usage, rated by tariff tiers
    sla_credit  `sla:<product>:<period start date>`        when the SLA was missed (negative)
    adjustment  `adjustment:<product>:<corrected period start date>:<bill id>`  late usage,
                priced at the margin: rate(billed + late) - rate(billed), so tiers stay right
    tax         `tax:<bill id>:<rate>`                     per tax rate over the lines above
                (credits reduce the taxable amount)

Exactly once, even when killed: all reads and writes of one account happen in one database
transaction (a transaction holds a batch of whole accounts). Usage records are claimed
(`bill_id` set) by an UPDATE first and then summed by `bill_id`, so the records a line counts
are exactly the records it marks billed, whatever arrives meanwhile.

SLA credits: `compliance_many()` (bss_bridge.sla) is asked, once per batch, for every product
whose offering has SLA terms and whose service had a service alarm overlapping the period
(the OSS's `AlarmHistory` port says which). A service with no such alarm has 100 %
availability, which no credit tier is under: asking would only cost time.

Storage: the rows a run reads and writes go through `bss_bridge.bill_store`'s named functions
(its hot path: statements compiled once per call and executed with driver-form parameters, and
the heap frozen while a run lasts); this module rates and decides. Only `issue()` and the
views (`get`, `find`, `lines`) query here, with the ORM, one bill or one page at a time.

Audit: each batch of a run writes one `billRun` audit entry (the drafts' totals before and
after) in the batch's own transaction; `issue()` writes a `bill` entry in its transaction.

Injected, not read from the environment: the clock (`clock`: periods, issue, SLA "now"), the
SLA (`sla`), the OSS's alarm history (`alarms`) and `before_commit(done)`, awaited once per
batch after its writes and before its commit with the number of accounts committed before it
(a test kills the process there and checks that nothing of that batch stays).
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn, Protocol, cast

from sqlalchemy import event, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bss_bridge import bill_store
from bss_bridge.bill_store import NewBill, StoredBill, UsageClaim
from bss_bridge.catalog import Offering, SlaTerms
from bss_bridge.money import round_money
from bss_bridge.ports import AlarmHistory, Jobs, RunHere
from bss_bridge.rating import (
    Charge,
    Period,
    billing_period,
    period_containing,
    recurring_charge,
    sla_credit,
    tax,
    usage_charge,
)
from bss_bridge.tables import BillingAccountRow, BillLineRow, BillRow
from oss import audit
from oss.errors import Conflict, InvalidInput, NotFound, NotReady
from oss.store import Database
from oss.store.base import utcnow

log = logging.getLogger(__name__)

DRAFT = "new"  # TMF678 stateValue: being prepared, recomputed by each bill run
ISSUED = "sent"  # TMF678 stateValue: sent to the customer; from then on immutable
# Products never activated are not charged; every other state had an active time.
_NOT_CHARGED = frozenset({"created", "pendingActive", "cancelled", "aborted"})
REJECTED = "rejected"  # a usage record refused by rating: never billed
KINDS = ("recurring", "usage", "sla_credit", "adjustment", "tax")
BeforeCommit = Callable[[int], Awaitable[None]]


class SlaOutcome(Protocol):
    """What the bill run needs of bss_bridge.sla.SlaResult."""

    @property
    def met(self) -> bool: ...

    @property
    def availability_percent(self) -> Decimal: ...

    def to_json(self) -> dict[str, Any]: ...


class Compliance(Protocol):
    """bss_bridge.sla.compliance_many: the results of many services by service name."""

    def __call__(
        self,
        db: Database,
        items: Sequence[tuple[str, SlaTerms, Period]],
        *,
        now: datetime | None = None,
    ) -> Awaitable[Mapping[str, SlaOutcome]]: ...


class Offerings(Protocol):
    """bss_bridge.catalog.Catalog, as far as billing uses it."""

    def get(self, offering_id: str) -> Offering: ...


@dataclass(frozen=True)
class BillSummary:
    bill_id: int
    account_id: str
    period: Period
    state: str
    currency: str
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    lines: int
    recomputed: bool  # False: the bill was issued already and left as it was
    bill_no: str | None = None
    period_closed: bool = True  # False: the period had not ended when this run computed it

    def to_json(self) -> dict[str, Any]:
        return {
            "billId": self.bill_id,
            "billNo": self.bill_no,
            "account": self.account_id,
            "periodStart": self.period.start.isoformat(),
            "periodEnd": self.period.end.isoformat(),
            "state": self.state,
            "currency": self.currency,
            "subtotal": str(self.subtotal),
            "tax": str(self.tax),
            "total": str(self.total),
            "lines": self.lines,
            "recomputed": self.recomputed,
            "periodClosed": self.period_closed,
        }


@dataclass(frozen=True)
class Line:
    """A computed bill line, before it is written."""

    key: str
    kind: str
    product_id: str | None
    description: str
    amount: Decimal
    quantity: Decimal | None = None
    unit: str | None = None
    unit_price: Decimal | None = None
    tax_rate: Decimal | None = None
    evidence: Any = None


@dataclass(frozen=True)
class ProductToBill:
    id: str
    offering: Offering
    service_name: str | None
    start_at: datetime
    end_at: datetime | None


@dataclass(frozen=True)
class LateUsage:
    """Usage that arrived after its period's bill was issued (or for a period never billed)."""

    product: ProductToBill
    period: Period  # the period it belongs to
    quantity: Decimal
    already_billed: Decimal  # quantity of that product and period billed before
    corrected_bill_no: str | None


@dataclass
class BillView:
    """A bill with its account's name and its lines, for rendering. `period_closed`: whether
    the bill's period had ended when it was read (by the run's clock)."""

    bill: BillRow
    account_name: str
    lines: list[BillLineRow] = field(default_factory=list)
    period_closed: bool = True


def period_open_note(period_end: datetime) -> str:
    """What a draft of an open period says about itself."""
    return (
        f"the billing period ends at {period_end.isoformat()}: this draft is partial "
        "(usage and SLA so far) and can be issued once the period has ended and a bill run "
        "has recomputed it"
    )


def check_issuable(bill: BillRow, now: datetime) -> None:
    """Refuse (Conflict) to issue a bill of a period that has not ended, or a draft computed
    while its period was still open (its usage and SLA would be partial)."""
    period = f"{bill.period_start.date().isoformat()} to {bill.period_end.date().isoformat()}"
    if now < bill.period_end:
        raise Conflict(
            f"bill {bill.id} is for the period {period} (end exclusive), which has not ended: "
            f"it can be issued from {bill.period_end.isoformat()} on, after a bill run of "
            "that period; until then it stays a draft that each bill run recomputes"
        )
    if bill.bill_date < bill.period_end:
        raise Conflict(
            f"bill {bill.id} for the period {period} was last computed at "
            f"{bill.bill_date.isoformat()}, before its period ended: run the bill run for "
            f"{bill.period_start.strftime('%Y-%m')} again, then issue it"
        )


@event.listens_for(Session, "before_flush")
def _issued_bills_are_immutable(session: Session, _context: Any, _instances: Any) -> None:
    """A last line of defence for code that loads an issued bill and changes it through the
    ORM: the flush raises Conflict (the bill run and issue() check before they write)."""
    for obj in (*session.dirty, *session.deleted):
        if not isinstance(obj, BillRow):
            continue
        history = inspect(obj).attrs.state.history
        was = (history.deleted or history.unchanged or [obj.state])[0]
        if was != DRAFT and (obj in session.deleted or session.is_modified(obj)):
            raise Conflict(
                f"bill {obj.id} was issued as {obj.bill_no}: an issued bill cannot change; "
                "corrections go on the next bill"
            )


# ------------------------------------------------------------------------ pure computation


def compute_lines(
    *,
    bill_id: int,
    currency: str,
    period: Period,
    products: Sequence[ProductToBill],
    usage: Mapping[str, Decimal],
    sla: Mapping[str, SlaOutcome],
    late: Sequence[LateUsage] = (),
) -> list[Line]:
    """Every line of one bill (tax last). `usage`: the period's quantity per product id;
    `sla`: the compliance per product id of products with SLA terms that may have missed."""
    day = period.start.date().isoformat()
    lines: list[Line] = []
    for product in products:
        offering = product.offering
        if offering.currency != currency:
            _currency_mismatch(product, currency)
        rate = offering.tax_rate
        recurring = recurring_charge(
            offering.recurring_price, period, product.start_at, product.end_at, currency
        )
        lines.append(_line(f"recurring:{product.id}:{day}", "recurring", product, recurring, rate))
        tariff = offering.usage
        quantity = usage.get(product.id)
        if tariff is not None and quantity is not None:
            charge = usage_charge(quantity, tariff, currency)
            lines.append(
                _line(f"usage:{product.id}:{day}", "usage", product, charge, rate, tariff.unit)
            )
        result = sla.get(product.id)
        if offering.sla is not None and result is not None and not result.met:
            credit = sla_credit(
                result.availability_percent, offering.sla, recurring.amount, currency
            )
            if credit is not None:
                lines.append(
                    Line(
                        key=f"sla:{product.id}:{day}",
                        kind="sla_credit",
                        product_id=product.id,
                        description=f"{offering.name}: {credit.description}",
                        amount=credit.amount,
                        quantity=credit.quantity,
                        unit_price=credit.unit_price,
                        tax_rate=rate,
                        evidence={"sla": result.to_json(), "credit": dict(credit.detail)},
                    )
                )
    for item in late:
        lines.append(_adjustment(item, bill_id, currency))
    lines.extend(tax_lines(bill_id, currency, lines))
    return lines


def tax_lines(bill_id: int, currency: str, lines: Iterable[Line]) -> list[Line]:
    """One tax line per rate over the taxable lines of that rate (credits count negative)."""
    bases: dict[Decimal, Decimal] = defaultdict(Decimal)
    for line in lines:
        if line.tax_rate is not None and line.kind != "tax":
            bases[line.tax_rate] += line.amount
    out = []
    for rate in sorted(bases):
        base = bases[rate]
        percent, rate_text = _rate_texts(rate)
        out.append(
            Line(
                key=f"tax:{bill_id}:{rate_text}",
                kind="tax",
                product_id=None,
                description=f"VAT {percent} % on {base} {currency}",
                amount=tax(base, rate, currency),
                quantity=None,
                unit_price=None,
                tax_rate=rate,
                evidence={"taxable": str(base)},
            )
        )
    return out


def _rate_texts(rate: Decimal) -> tuple[str, str]:
    """A tax rate as a percentage ("19") and as itself ("0.19"), printed once per rate."""
    texts = _RATE_TEXTS.get(rate)
    if texts is None:
        texts = (format((rate * 100).normalize(), "f"), format(rate.normalize(), "f"))
        if len(_RATE_TEXTS) < 1024:  # a catalogue has a few rates
            _RATE_TEXTS[rate] = texts
    return texts


_RATE_TEXTS: dict[Decimal, tuple[str, str]] = {}


def totals(lines: Iterable[Line], currency: str) -> tuple[Decimal, Decimal, Decimal]:
    """(subtotal before tax, tax, total)."""
    subtotal, taxed = Decimal(0), Decimal(0)
    for line in lines:
        if line.kind == "tax":
            taxed += line.amount
        else:
            subtotal += line.amount
    subtotal, taxed = round_money(subtotal, currency), round_money(taxed, currency)
    return subtotal, taxed, round_money(subtotal + taxed, currency)


def _currency_mismatch(product: ProductToBill, currency: str) -> NoReturn:
    raise InvalidInput(
        f"product {product.id} (offering {product.offering.id}) is priced in "
        f"{product.offering.currency} but its billing account bills in {currency}"
    )


def _line(
    key: str,
    kind: str,
    product: ProductToBill,
    charge: Charge,
    rate: Decimal,
    unit: str | None = None,
) -> Line:
    return Line(
        key=key,
        kind=kind,
        product_id=product.id,
        description=f"{product.offering.name}: {charge.description}",
        amount=charge.amount,
        quantity=charge.quantity,
        unit=unit,
        unit_price=charge.unit_price,
        tax_rate=rate,
        # Rating's detail is JSON-ready and never modified: lines of equal charges share it.
        evidence=charge.detail or None,
    )


def _adjustment(item: LateUsage, bill_id: int, currency: str) -> Line:
    product, tariff = item.product, item.product.offering.usage
    assert tariff is not None  # late usage is only collected for products with a tariff
    before = usage_charge(item.already_billed, tariff, currency)
    after = usage_charge(item.already_billed + item.quantity, tariff, currency)
    period = f"{item.period.start.date()} to {item.period.end.date()}"
    corrected = f" (corrects bill {item.corrected_bill_no})" if item.corrected_bill_no else ""
    return Line(
        key=f"adjustment:{product.id}:{item.period.start.date()}:{bill_id}",
        kind="adjustment",
        product_id=product.id,
        description=(
            f"{product.offering.name}: late usage for {period}{corrected}: "
            f"{item.quantity} {tariff.unit}"
        ),
        amount=after.amount - before.amount,
        quantity=item.quantity,
        unit=tariff.unit,
        tax_rate=product.offering.tax_rate,
        evidence={
            "correctedPeriod": {
                "start": item.period.start.isoformat(),
                "end": item.period.end.isoformat(),
            },
            "correctedBill": item.corrected_bill_no,
            "alreadyBilled": str(item.already_billed),
            "late": str(item.quantity),
            "ratedBefore": str(before.amount),
            "ratedAfter": str(after.amount),
        },
    )


# ------------------------------------------------------------------------------ the bill run


@dataclass(frozen=True)
class _Account:
    id: str
    currency: str
    billing_day: int
    period: Period


@dataclass(frozen=True)
class _RunAudit:
    """A bill run as the audit log names it: one entry per batch, in the batch's transaction,
    with each recomputed draft's total before (None: created by this run) and after."""

    actor: str
    period_month: str
    account: str | None

    def record(
        self,
        s: AsyncSession,
        bills: Mapping[tuple[str, datetime], StoredBill],
        created: set[int],
        written: Mapping[int, tuple[list[Line], tuple[Decimal, Decimal, Decimal]]],
        accounts: Mapping[str, _Account],
        now: datetime,
    ) -> None:
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for (account_id, _), bill in bills.items():
            if bill.id not in written:
                continue
            lines, (_, _, total) = written[bill.id]
            key = str(bill.id)
            before[key] = (
                None if bill.id in created else {"account": account_id, "total": str(bill.total)}
            )
            after[key] = {
                "account": account_id,
                "total": str(total),
                "lines": len(lines),
                "periodClosed": now >= accounts[account_id].period.end,
            }
        audit.record(
            s,
            actor=self.actor,
            action="run",
            object_type="billRun",
            object_id=self.period_month + (f":{self.account}" if self.account else ""),
            before={"bills": before},
            after={"period": self.period_month, "bills": after},
        )


BILL_RUNS = "bill-runs"  # the job a bill run holds (a cluster's lease singleton:bill-runs)


class BillRun:
    def __init__(
        self,
        db: Database,
        catalog: Offerings,
        *,
        sla: Compliance,
        alarms: AlarmHistory,
        clock: Callable[[], datetime] = utcnow,
        batch_size: int = 500,
        before_commit: BeforeCommit | None = None,
        jobs: Jobs | None = None,
    ) -> None:
        self.db = db
        self.jobs = jobs or RunHere()  # in a cluster: one bill run at a time, fenced
        self.catalog = catalog
        self.sla = sla
        self.alarms = alarms
        self.clock = clock
        self.batch_size = batch_size
        self.before_commit = before_commit

    # --- running ----------------------------------------------------------------------------

    async def run(
        self, period_month: str, account: str | None = None, *, actor: str = "system"
    ) -> list[BillSummary]:
        """Bill every account (or one) for the period starting in `period_month` ("2026-11")
        at each account's billing day. Returns one summary per account, in account order.
        `actor`: who ran it, for the audit log. One bill run at a time across the OSS's
        instances (`Jobs`): another one running is a `Conflict` naming where, audited as
        `run.refused`."""
        billing_period(period_month, 1)  # a bad month fails before anything is read
        async with contextlib.AsyncExitStack() as held:
            try:
                await held.enter_async_context(self.jobs.exclusive(BILL_RUNS))
            except (Conflict, NotReady) as exc:
                await self._refused(period_month, account, actor, exc)
                raise
            return await self._run(period_month, account, actor)

    async def _refused(
        self, period_month: str, account: str | None, actor: str, exc: Exception
    ) -> None:
        """A bill run refused before it began, in the audit log (a transaction of its own)."""
        async with self.db.transaction() as s:
            audit.record(
                s,
                actor=actor,
                action="run.refused",
                object_type="billRun",
                object_id=period_month + (f":{account}" if account else ""),
                after={"reason": str(exc)},
            )

    async def _run(self, period_month: str, account: str | None, actor: str) -> list[BillSummary]:
        summaries: list[BillSummary] = []
        after = ""
        with bill_store.older_objects_frozen():
            while True:
                batch = await self._accounts(period_month, account, after)
                if not batch:
                    break
                what = _RunAudit(actor, period_month, account)
                summaries.extend(await self._bill_batch(batch, len(summaries), what))
                after = batch[-1].id
                if account is not None:
                    break
        if account is not None and not summaries:
            raise NotFound(f"billing account {account} not found")
        return summaries

    async def _accounts(self, month: str, only: str | None, after: str) -> list[_Account]:
        periods: dict[int, Period] = {}
        async with self.db.sessions() as s:
            rows = await bill_store.accounts(s, only=only, after=after, limit=self.batch_size)
        out = []
        for account_id, currency, day in rows:
            if day not in periods:
                periods[day] = billing_period(month, day)
            out.append(_Account(account_id, currency, day, periods[day]))
        return out

    async def _bill_batch(
        self,
        accounts: list[_Account],
        done: int,
        what: _RunAudit,
    ) -> list[BillSummary]:
        by_id = {a.id: a for a in accounts}
        async with self.db.transaction() as s:
            bills, created = await self._bills(s, accounts)
            products = await self._products(s, accounts)
            drafts = {
                a.id: bills[(a.id, a.period.start)].id
                for a in accounts
                if bills[(a.id, a.period.start)].state == DRAFT
            }
            sla = await self._compliance(accounts, products, drafts)
            draft_ids = list(drafts.values())
            if draft_ids:
                await bill_store.delete_lines(s, draft_ids)
                await self._claim_usage(s, by_id, products, drafts)
                await self._claim_late_usage(s, by_id, products, drafts, bills)
            usage, late = await self._usage_of(s, by_id, products, drafts, bills)
            written: dict[int, tuple[list[Line], tuple[Decimal, Decimal, Decimal]]] = {}
            now = self.clock()
            for account_id, bill_id in drafts.items():
                acc = by_id[account_id]
                lines = compute_lines(
                    bill_id=bill_id,
                    currency=acc.currency,
                    period=acc.period,
                    products=products.get(account_id, []),
                    usage=usage.get(account_id, {}),
                    sla=sla,
                    late=late.get(account_id, []),
                )
                written[bill_id] = (lines, totals(lines, acc.currency))
            await bill_store.insert_lines(s, ((b, lines) for b, (lines, _) in written.items()), now)
            if written:
                sums = {b: t for b, (_, t) in written.items()}
                await bill_store.update_totals(s, sums, now, state=DRAFT)
                what.record(s, bills, created, written, by_id, now)
            if self.before_commit is not None:
                await self.before_commit(done)
        summaries = []
        for acc in accounts:
            bill = bills[(acc.id, acc.period.start)]
            closed = now >= acc.period.end
            if bill.id in written:
                lines, (subtotal, taxed, total) = written[bill.id]
                summaries.append(
                    BillSummary(
                        bill.id, acc.id, acc.period, DRAFT, acc.currency,
                        subtotal, taxed, total, len(lines), True, None, closed,
                    )
                )  # fmt: skip
            else:
                summaries.append(
                    BillSummary(
                        bill.id, acc.id, acc.period, bill.state, bill.currency,
                        bill.subtotal, bill.tax, bill.total, -1, False, bill.bill_no, closed,
                    )
                )  # fmt: skip
        return summaries

    async def _bills(
        self, s: AsyncSession, accounts: list[_Account]
    ) -> tuple[dict[tuple[str, datetime], StoredBill], set[int]]:
        """Every bill of these accounts by (account, period start), the run's ones created as
        drafts when absent (and the ids of those created). Locked (FOR UPDATE on PostgreSQL)
        against a concurrent issue."""
        first, last = _range(accounts)
        found = {
            (b.account_id, b.period_start): b
            for b in await bill_store.bills_of(s, first, last, lock=True)
        }
        missing = [a for a in accounts if (a.id, a.period.start) not in found]
        created: set[int] = set()
        if missing:
            zeros = {c: round_money(Decimal(0), c) for c in {a.currency for a in missing}}
            drafts = [
                NewBill(a.id, a.period, DRAFT, a.currency, zeros[a.currency]) for a in missing
            ]
            await bill_store.insert_bills(s, drafts, self.clock())
            first, last = _range(missing)
            for b in await bill_store.bills_of(s, first, last, lock=False):
                if (b.account_id, b.period_start) not in found:
                    found[(b.account_id, b.period_start)] = b
                    created.add(b.id)
        return found, created

    async def _products(
        self, s: AsyncSession, accounts: list[_Account]
    ) -> dict[str, list[ProductToBill]]:
        """The products of each account active at any time in its period."""
        by_id = {a.id: a for a in accounts}
        earliest = min(a.period.start for a in accounts)
        latest = max(a.period.end for a in accounts)
        first, last = _range(accounts)
        rows = await bill_store.products_of(s, first, last, earliest, latest)
        out: dict[str, list[ProductToBill]] = defaultdict(list)
        for pid, account_id, offering_id, service, state, start, end in rows:
            if account_id not in by_id:
                continue  # an account created since the batch was read: the next run's
            period = by_id[account_id].period
            if start is None or state in _NOT_CHARGED or start >= period.end:
                continue
            if end is not None and end <= period.start:
                continue
            out[account_id].append(
                ProductToBill(pid, self.catalog.get(offering_id), service, start, end)
            )
        return out

    async def _compliance(
        self,
        accounts: list[_Account],
        products: Mapping[str, list[ProductToBill]],
        drafts: Mapping[str, int],
    ) -> dict[str, SlaOutcome]:
        """SLA results of the draft bills' products with SLA terms and a service alarm
        overlapping the period (without one, availability is 100 %: no credit)."""
        candidates = [
            (a, p)
            for a in accounts
            if a.id in drafts
            for p in products.get(a.id, [])
            if p.offering.sla is not None and p.service_name
        ]
        if not candidates:
            return {}
        earliest = min(a.period.start for a, _ in candidates)
        latest = max(a.period.end for a, _ in candidates)
        names = {p.service_name for _, p in candidates if p.service_name}
        alarmed = await self.alarms.alarmed_services(names, earliest, latest)
        asked = {
            p.id: (p.service_name, cast(SlaTerms, p.offering.sla), a.period)
            for a, p in candidates
            if p.service_name in alarmed
        }
        now = self.clock()
        answers: dict[tuple[str, SlaTerms, Period], SlaOutcome] = {}
        pending = list(dict.fromkeys(asked.values()))
        while pending:
            # One call per round, each service once per call (results are by service name):
            # a service two products bill under other terms or periods goes to the next round.
            this_round: dict[str, tuple[str, SlaTerms, Period]] = {}
            later: list[tuple[str, SlaTerms, Period]] = []
            for item in pending:
                if item[0] in this_round:
                    later.append(item)
                else:
                    this_round[item[0]] = item
            results = await self.sla(self.db, list(this_round.values()), now=now)
            answers.update((item, results[name]) for name, item in this_round.items())
            pending = later
        return {product_id: answers[item] for product_id, item in asked.items()}

    async def _claim_usage(
        self,
        s: AsyncSession,
        accounts: Mapping[str, _Account],
        products: Mapping[str, list[ProductToBill]],
        drafts: Mapping[str, int],
    ) -> None:
        """Mark the unbilled usage records of each draft's products in its period as billed
        to the draft. Summing by bill id afterwards counts exactly the records marked here."""
        claims = [
            UsageClaim(bill_id, p.id, p.offering.usage.usage_type, accounts[account_id].period)
            for account_id, bill_id in drafts.items()
            for p in products.get(account_id, [])
            if p.offering.usage is not None
        ]
        await bill_store.claim_usage(s, claims, billed="billed", rejected=REJECTED)

    async def _claim_late_usage(
        self,
        s: AsyncSession,
        accounts: Mapping[str, _Account],
        products: Mapping[str, list[ProductToBill]],
        drafts: Mapping[str, int],
        bills: Mapping[tuple[str, datetime], StoredBill],
    ) -> None:
        """Unbilled records of an earlier period whose bill is issued (or was never made) go
        to the current draft, as adjustments. Records of an earlier *draft* wait for it."""
        priced = {
            p.id: accounts[account_id]
            for account_id in drafts
            for p in products.get(account_id, [])
            if p.offering.usage is not None
        }
        if not priced:
            return
        tariffs = {
            p.id: p.offering.usage.usage_type
            for account_id in drafts
            for p in products.get(account_id, [])
            if p.offering.usage is not None
        }
        latest = max(accounts[a].period.start for a in drafts)
        first, last = _range(accounts[a] for a in drafts)
        claims: dict[int, int] = {}
        for record_id, product_id, start, usage_type in await bill_store.unbilled_usage_before(
            s, first, last, latest, rejected=REJECTED
        ):
            acc = priced.get(product_id)  # None too for an account outside the batch
            if acc is None or start >= acc.period.start or usage_type != tariffs[product_id]:
                continue
            own = bills.get((acc.id, period_containing(start, acc.billing_day).start))
            if own is not None and own.state == DRAFT:
                continue
            claims[record_id] = drafts[acc.id]
        await bill_store.claim_records(s, claims, billed="billed")

    async def _usage_of(
        self,
        s: AsyncSession,
        accounts: Mapping[str, _Account],
        products: Mapping[str, list[ProductToBill]],
        drafts: Mapping[str, int],
        bills: Mapping[tuple[str, datetime], StoredBill],
    ) -> tuple[dict[str, dict[str, Decimal]], dict[str, list[LateUsage]]]:
        """The quantities billed to each draft: the period's per product, and the late ones
        per (product, earlier period)."""
        usage: dict[str, dict[str, Decimal]] = defaultdict(dict)
        late_sums: dict[tuple[str, str, datetime], Decimal] = defaultdict(Decimal)
        if not drafts:
            return usage, {}
        account_of = {bill_id: account_id for account_id, bill_id in drafts.items()}
        known = {p.id: p for account_id in drafts for p in products.get(account_id, [])}
        for bill_id, product_id, start, quantity, unit in await bill_store.usage_billed_to(
            s, list(account_of)
        ):
            account_id = account_of[cast(int, bill_id)]  # selected by bill_id IN (...)
            product = known.get(product_id)
            if product is None or product.offering.usage is None:
                continue  # claimed while the product was billable; it is no longer
            if unit != product.offering.usage.unit:
                raise InvalidInput(
                    f"usage of product {product_id} is in {unit} but offering "
                    f"{product.offering.id} is priced per {product.offering.usage.unit}"
                )
            acc = accounts[account_id]
            if start >= acc.period.start:
                per_product = usage[account_id]
                per_product[product_id] = per_product.get(product_id, Decimal(0)) + quantity
            else:
                own_start = period_containing(start, acc.billing_day).start
                late_sums[(account_id, product_id, own_start)] += quantity
        late: dict[str, list[LateUsage]] = defaultdict(list)
        for (account_id, product_id, own_start), quantity in sorted(late_sums.items()):
            acc = accounts[account_id]
            own = period_containing(own_start, acc.billing_day)
            already = await bill_store.quantity_billed_elsewhere(
                s, product_id, own, other_than=drafts[account_id]
            )
            corrected = bills.get((account_id, own.start))
            late[account_id].append(
                LateUsage(
                    product=known[product_id],
                    period=own,
                    quantity=quantity,
                    already_billed=already,
                    corrected_bill_no=corrected.bill_no if corrected is not None else None,
                )
            )
        return usage, late

    # --- issuing ----------------------------------------------------------------------------

    async def issue(self, bill_id: int, *, actor: str = "system") -> BillRow:
        """Issue a draft: state `sent`, a bill number `<year>-<6-digit sequence>` (the year it
        is issued in) and `issued_at`. The bill is issued as the last run computed it, which
        must be after its period ended (`check_issuable`)."""
        async with self.db.transaction() as s:
            bill = await s.get(BillRow, bill_id, with_for_update=True)
            if bill is None:
                raise NotFound(f"bill {bill_id} not found")
            if bill.state != DRAFT:
                raise Conflict(
                    f"bill {bill_id} was issued as {bill.bill_no} ({bill.state}): "
                    "an issued bill cannot change; corrections go on the next bill"
                )
            now = self.clock()
            check_issuable(bill, now)
            before = _issue_view(bill)
            prefix = f"{now.year:04d}-"
            last = await s.scalar(
                select(func.max(BillRow.bill_no)).where(BillRow.bill_no.like(f"{prefix}%"))
            )
            sequence = int(last.removeprefix(prefix)) + 1 if last else 1
            bill.bill_no = f"{prefix}{sequence:06d}"
            bill.state = ISSUED
            bill.issued_at = now
            bill.updated_at = now
            try:
                await s.flush()
            except IntegrityError as exc:
                raise Conflict("another bill was issued at the same moment; retry") from exc
            audit.record(
                s,
                actor=actor,
                action="issue",
                object_type="bill",
                object_id=str(bill_id),
                before=before,
                after=_issue_view(bill),
            )
        log.info("bill issued", extra={"bill": bill_id, "bill_no": bill.bill_no})
        return bill

    # --- reading ----------------------------------------------------------------------------

    async def get(self, bill_id: int) -> BillView:
        views, _ = await self._views(select(BillRow).where(BillRow.id == bill_id), 1, 0)
        if not views:
            raise NotFound(f"bill {bill_id} not found")
        return views[0]

    async def find(
        self,
        *,
        account: str | None = None,
        state: str | None = None,
        period: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[BillView], int]:
        """Bills, newest period first. `period` ("2026-11"): bills whose period starts in it."""
        query = select(BillRow)
        if account is not None:
            query = query.where(BillRow.account_id == account)
        if state is not None:
            query = query.where(BillRow.state == state)
        if period is not None:
            first = billing_period(period, 1)
            query = query.where(
                BillRow.period_start >= first.start, BillRow.period_start < first.end
            )
        return await self._views(query, limit, offset)

    async def _views(self, query: Any, limit: int, offset: int) -> tuple[list[BillView], int]:
        async with self.db.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(query.subquery()))
            ordered = query.order_by(BillRow.period_start.desc(), BillRow.account_id)
            bills = (await s.scalars(ordered.limit(limit).offset(offset))).all()
            if not bills:
                return [], int(total or 0)
            accounts = await s.execute(
                select(BillingAccountRow.id, BillingAccountRow.name).where(
                    BillingAccountRow.id.in_({b.account_id for b in bills})
                )
            )
            names: dict[str, str] = {account_id: name for account_id, name in accounts}
            now = self.clock()
            views = {
                b.id: BillView(
                    b, names.get(b.account_id, b.account_id), period_closed=now >= b.period_end
                )
                for b in bills
            }
            lines = await s.scalars(
                select(BillLineRow)
                .where(BillLineRow.bill_id.in_(list(views)))
                .order_by(BillLineRow.id)
            )
            for line in lines:
                views[line.bill_id].lines.append(line)
        return list(views.values()), int(total or 0)

    async def line(self, line_id: int) -> tuple[BillLineRow, BillRow]:
        async with self.db.sessions() as s:
            line = await s.get(BillLineRow, line_id)
            bill = await s.get(BillRow, line.bill_id) if line is not None else None
        if line is None or bill is None or line.kind == "tax":
            # Tax lines are the bill's tax items, not applied billing rates (TMF678).
            raise NotFound(f"applied billing rate {line_id} not found")
        return line, bill

    async def lines(
        self, *, bill_id: int | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[tuple[BillLineRow, BillRow]], int]:
        """The charge lines (every kind but tax, which the bills carry as tax items)."""
        query = (
            select(BillLineRow, BillRow)
            .join(BillRow, BillRow.id == BillLineRow.bill_id)
            .where(BillLineRow.kind != "tax")
        )
        if bill_id is not None:
            query = query.where(BillLineRow.bill_id == bill_id)
        async with self.db.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(query.subquery()))
            page = await s.execute(query.order_by(BillLineRow.id).limit(limit).offset(offset))
            rows = [(line, bill) for line, bill in page]
        return rows, int(total or 0)


def _issue_view(bill: BillRow) -> dict[str, Any]:
    """A bill as the audit log shows it around its issue."""
    return {
        "account": bill.account_id,
        "periodStart": bill.period_start.isoformat(),
        "periodEnd": bill.period_end.isoformat(),
        "state": bill.state,
        "billNo": bill.bill_no,
        "total": str(bill.total),
        "currency": bill.currency,
    }


def _range(accounts: Iterable[_Account]) -> tuple[str, str]:
    """The first and last id of a batch's accounts (see bss_bridge.bill_store)."""
    ids = [a.id for a in accounts]
    return min(ids), max(ids)
