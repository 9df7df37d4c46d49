"""`oss bill run|list|show|issue`: the bill run and the TMF678 bills from the command line.

`show` prints a readable invoice: the header (account, period, bill number or DRAFT), the lines
grouped (recurring, usage with its tier breakdown, SLA credits with their evidence: each outage
window with its times, duration, alarm ids and cause, and the measured availability against the
target; adjustments), tax per rate and the totals. `-o json` prints the TMF documents.

A draft whose period has not ended is marked "period open" everywhere (run, list, show): it is
partial and cannot be issued yet (`issue` then fails with the daemon's 409, exit code 1).
"""

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from oss.cli.main import app, emit, get_context
from oss.cli.output import Format, print_data
from oss.errors import InvalidInput

TMF = "/tmf-api/customerBillManagement/v4"
BILLS = f"{TMF}/customerBill"
RATES = f"{TMF}/appliedCustomerBillingRate"
RUNS = "/api/v1/bill-runs"
LIST_COLUMNS = ["id", "bill_no", "account", "period", "state", "subtotal", "tax", "total"]
RUN_COLUMNS = ["bill", "account", "period", "state", "subtotal", "tax", "total", "recomputed"]
SECTIONS = (
    ("recurring", "Recurring charges"),
    ("usage", "Usage"),
    ("sla_credit", "SLA credits"),
    ("adjustment", "Adjustments"),
)

bill_app = typer.Typer(help="Bills (TMF678): run the bill run, list, show an invoice, issue.")
app.add_typer(bill_app, name="bill")


@bill_app.command("run")
def run(
    ctx: typer.Context,
    period: Annotated[str, typer.Option(help="the month, e.g. 2026-11")],
    account: Annotated[str | None, typer.Option(help="one billing account (default: all)")] = None,
) -> None:
    """Compute (or recompute) the draft bills of a period; issued bills stay as they are."""
    with get_context(ctx).client() as api:
        result = api.post(RUNS, {"period": period, "account": account})
    if get_context(ctx).output is Format.JSON:
        emit(ctx, result)
        return
    rows = [
        {
            "bill": b["billId"],
            "account": b["account"],
            "period": f"{b['periodStart'][:10]} - {b['periodEnd'][:10]}",
            "state": b["billNo"] or _state(b["state"], b.get("periodClosed", True)),
            "subtotal": b["subtotal"],
            "tax": b["tax"],
            "total": f"{b['total']} {b['currency']}",
            "recomputed": "yes" if b["recomputed"] else "no (issued)",
        }
        for b in result["bills"]
    ]
    emit(ctx, rows, RUN_COLUMNS, title=f"bill run {period}")


@bill_app.command("list")
def list_bills(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="billing account id")] = None,
    state: Annotated[str | None, typer.Option(help="new (draft) or sent (issued)")] = None,
    period: Annotated[str | None, typer.Option(help="month the period starts in")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    params = {"billingAccount.id": account, "state": state, "period": period, "limit": limit}
    with get_context(ctx).client() as api:
        docs: list[dict[str, Any]] = api.get(BILLS, **params)
    if get_context(ctx).output is Format.JSON:
        emit(ctx, docs)
    else:
        emit(ctx, [row(d) for d in docs], LIST_COLUMNS, title="bills")


@bill_app.command("show")
def show(ctx: typer.Context, bill_id: int) -> None:
    """The bill as a readable invoice (`-o json`: the bill and its applied rates)."""
    with get_context(ctx).client() as api:
        bill = api.get(f"{BILLS}/{bill_id}")
        rates = api.get(RATES, **{"bill.id": bill_id, "limit": 1000})
    if get_context(ctx).output is Format.JSON:
        emit(ctx, {"customerBill": bill, "appliedCustomerBillingRate": rates})
    else:
        print_data(invoice(bill, rates))


@bill_app.command("issue")
def issue(ctx: typer.Context, bill_id: int) -> None:
    """Issue a draft bill: it gets its number and can no longer change."""
    with get_context(ctx).client() as api:
        bill = api.patch(f"{BILLS}/{bill_id}", {"state": "sent"})
    if get_context(ctx).output is Format.JSON:
        emit(ctx, bill)
    else:
        emit(ctx, [row(bill)], LIST_COLUMNS, title=f"bill {bill_id} issued")


def row(doc: dict[str, Any]) -> dict[str, Any]:
    period = doc.get("billingPeriod") or {}
    return {
        "id": doc.get("id"),
        "bill_no": doc.get("billNo") or "draft",
        "account": (doc.get("billingAccount") or {}).get("id"),
        "period": f"{str(period.get('startDateTime', ''))[:10]} - "
        f"{str(period.get('endDateTime', ''))[:10]}",
        "state": _state(doc.get("state"), doc.get("periodClosed", True)),
        "subtotal": _money(doc.get("taxExcludedAmount")),
        "tax": _money(_tax_total(doc)),
        "total": _money(doc.get("taxIncludedAmount"), unit=True),
    }


def _state(state: Any, period_closed: Any) -> str:
    """The bill's state, marked when its period has not ended (a partial draft)."""
    return f"{state} (period open)" if period_closed is False else str(state)


# --- the invoice ---------------------------------------------------------------------------


def invoice(bill: dict[str, Any], rates: Iterable[dict[str, Any]]) -> Group:
    """The bill and its applied rates as a rich renderable."""
    currency = (bill.get("taxIncludedAmount") or {}).get("unit", "")
    account = bill.get("billingAccount") or {}
    period = bill.get("billingPeriod") or {}
    number = bill.get("billNo")
    title = (
        f"Bill {number}  (issued {str(bill.get('billDate', ''))[:10]})"
        if number
        else f"DRAFT bill #{bill.get('id')}  (not issued: may still change)"
    )
    header = Text()
    header.append(title + "\n", style="bold")
    header.append(f"Account:  {account.get('name', '')} ({account.get('id', '')})\n")
    header.append(
        f"Period:   {_when(period.get('startDateTime'))} - {_when(period.get('endDateTime'))}"
        " (end exclusive)\n"
    )
    header.append(f"State:    {_state(bill.get('state'), bill.get('periodClosed', True))}")
    if bill.get("periodClosed") is False:
        header.append(f"\nPERIOD OPEN: {bill.get('periodNote', 'the period has not ended')}")

    table = Table(show_header=True, header_style="bold", expand=False, show_lines=False)
    table.add_column("", overflow="fold", max_width=90)
    table.add_column(f"amount ({currency})", justify="right", no_wrap=True)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for rate in rates:
        by_kind.setdefault(_chars(rate).get("kind", rate.get("name", "")), []).append(rate)
    for kind, heading in SECTIONS:
        lines = by_kind.get(kind, [])
        if not lines:
            continue
        table.add_row(Text(heading, style="bold underline"), "")
        for rate in lines:
            table.add_row(Text("  " + str(rate.get("description", ""))), _money(_amount(rate)))
            for detail in _details(kind, _chars(rate)):
                table.add_row(Text("      " + detail, style="dim"), "")
    table.add_row(Text("Subtotal", style="bold"), _money(bill.get("taxExcludedAmount")))
    for item in bill.get("taxItem") or []:
        percent = Decimal(repr(item.get("taxRate", 0))) * 100
        label = f"  {item.get('taxCategory', 'tax')} {format(percent.normalize(), 'f')} %"
        table.add_row(Text(label), _money(item.get("taxAmount")))
    table.add_row(Text("Total", style="bold"), Text(_money(bill.get("taxIncludedAmount"))))
    return Group(header, table)


def _details(kind: str, chars: dict[str, Any]) -> list[str]:
    evidence = chars.get("evidence") or {}
    if kind == "usage":
        out = []
        for tier in evidence.get("tiers", []):
            upper = tier.get("up_to") or "..."
            out.append(
                f"{tier['from']} - {upper} {evidence.get('unit', '')}: {tier['quantity']} x "
                f"{tier['unit_price']} = {tier['amount']}"
            )
        return out
    if kind == "sla_credit":
        return _sla_details(evidence)
    if kind == "adjustment" and evidence.get("correctedBill"):
        return [
            f"corrects bill {evidence['correctedBill']}: {evidence.get('alreadyBilled')} "
            f"already billed, {evidence.get('late')} late"
        ]
    return []


def _sla_details(evidence: dict[str, Any]) -> list[str]:
    sla = evidence.get("sla") or {}
    availability = sla.get("availability") or {}
    out = [
        f"availability measured {availability.get('measuredPercent')} % "
        f"vs target {availability.get('targetPercent')} % "
        f"(service {sla.get('service')}, outage {_duration(availability.get('outageSeconds'))})"
    ]
    if sla.get("partial"):
        out.append(
            f"partial: measured {_when(sla.get('measuredFrom'))} - "
            f"{_when(sla.get('measuredUntil'))} only (the period has not ended)"
        )
    for window in availability.get("outageWindows", []):
        ids = ", ".join(f"#{i}" for i in window.get("alarmIds", []))
        out.append(
            f"outage {_when(window.get('start'))} - {_when(window.get('end'))} "
            f"({_duration(window.get('durationSeconds'))}), alarms {ids}, "
            f"cause: {window.get('cause')}"
        )
    credit = evidence.get("credit") or {}
    if credit:
        out.append(
            f"credit {credit.get('credit_percent')} % of {credit.get('recurring_amount')} "
            f"(tier below {credit.get('tier_below_percent')} %)"
        )
    return out


def _chars(rate: dict[str, Any]) -> dict[str, Any]:
    return {c.get("name"): c.get("value") for c in rate.get("characteristic") or []}


def _amount(rate: dict[str, Any]) -> dict[str, Any] | None:
    amount: dict[str, Any] | None = rate.get("taxExcludedAmount")
    return amount


def _tax_total(doc: dict[str, Any]) -> dict[str, Any] | None:
    items = doc.get("taxItem") or []
    if not items:
        return None
    total = sum((Decimal(repr(i["taxAmount"]["value"])) for i in items), Decimal(0))
    return {"unit": items[0]["taxAmount"].get("unit"), "value": total}


def _money(value: dict[str, Any] | None, *, unit: bool = False) -> str:
    """TMF Money as text with the currency's minor unit: 12.30 EUR, 6667 JPY, 1.250 KWD."""
    if not value or value.get("value") is None:
        return "-"
    raw, currency = value["value"], str(value.get("unit", ""))
    amount = raw if isinstance(raw, Decimal) else Decimal(repr(raw))
    from bss_bridge.money import minor_units  # the BSS loads only to print money (main.py)

    try:
        places = minor_units(currency)
    except InvalidInput:
        places = 2
    shown = f"{amount:.{places}f}"
    return f"{shown} {currency}".strip() if unit else shown


def _when(value: Any) -> str:
    if not value:
        return "?"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M")


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "?"
    total = int(Decimal(str(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" + (f" {secs:02d}s" if secs else "")
