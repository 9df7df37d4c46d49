"""Bills as TMF678 documents: `CustomerBill` for a bill and `AppliedCustomerBillingRate` for
each of its charge lines (recurring, usage, SLA credit, adjustment).

Tax lines are not applied rates (TMF678: an applied billing charge is "any kind of charge
except taxation charges"): they are the bill's `taxItem`s, one per rate, and every rate names
its tax rate in `appliedTax`. The project's own line data that TMF678 has no attribute for (the
line's kind, key, quantity, unit, unit price and evidence: usage tiers, the SLA result with its
outage windows and alarm ids) travels as `characteristic`s.

A bill whose period has not ended says so: `periodClosed` (false) and `periodNote` (when the
period ends and that the draft is partial) — TMF678 has no attribute for it, and the schema allows
extensions. A draft of an open period cannot be issued (bss_bridge.billing.check_issuable).

Money: TMF678's `Money.value` is a JSON number. Amounts are rendered from their exact Decimal
with `float()`: a value with at most a few decimals prints back as the same digits ("12.34").
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bss_bridge.billing import ISSUED, BillView, period_open_note
from bss_bridge.tables import BillLineRow, BillRow
from oss import tmf

SPEC = tmf.spec(tmf.CUSTOMER_BILL)
BASE_PATH = SPEC.base_path
TAX_CATEGORY = "VAT"
_CREDIT_KINDS = {"sla_credit"}


def bill_href(bill_id: int) -> str:
    return f"{BASE_PATH}/customerBill/{bill_id}"


def rate_href(line_id: int) -> str:
    return f"{BASE_PATH}/appliedCustomerBillingRate/{line_id}"


def customer_bill(view: BillView) -> dict[str, Any]:
    bill = view.bill
    currency = bill.currency
    doc: dict[str, Any] = {
        "id": str(bill.id),
        "href": bill_href(bill.id),
        "billDate": _iso(bill.bill_date),
        "lastUpdate": _iso(bill.updated_at),
        "category": "normal",
        "runType": "onCycle",
        "state": bill.state,
        "billingAccount": {
            "id": bill.account_id,
            "name": view.account_name,
            "@referredType": "BillingAccount",
        },
        "billingPeriod": {
            "startDateTime": _iso(bill.period_start),
            "endDateTime": _iso(bill.period_end),
        },
        "amountDue": money(bill.total, currency),
        "remainingAmount": money(bill.total, currency),
        "taxExcludedAmount": money(bill.subtotal, currency),
        "taxIncludedAmount": money(bill.total, currency),
        "taxItem": [
            {
                "taxCategory": TAX_CATEGORY,
                "taxRate": float(line.tax_rate or 0),
                "taxAmount": money(line.amount, currency),
                "@type": "TaxItem",
            }
            for line in view.lines
            if line.kind == "tax"
        ],
        "periodClosed": view.period_closed,
        "@type": "CustomerBill",
    }
    if not view.period_closed:
        doc["periodNote"] = period_open_note(bill.period_end)
    if bill.bill_no is not None:
        doc["billNo"] = bill.bill_no
    if bill.state == ISSUED and bill.issued_at is not None:
        doc["billDate"] = _iso(bill.issued_at)
    return doc


def applied_rate(line: BillLineRow, bill: BillRow) -> dict[str, Any]:
    currency = bill.currency
    credit = line.kind in _CREDIT_KINDS or line.amount < 0
    doc: dict[str, Any] = {
        "id": str(line.id),
        "href": rate_href(line.id),
        "date": _iso(line.created_at),
        "name": line.kind,
        "description": line.description,
        "type": "appliedBillingCredit" if credit else "appliedBillingCharge",
        "isBilled": True,
        "bill": {"id": str(bill.id), "href": bill_href(bill.id), "@referredType": "CustomerBill"},
        "billingAccount": {"id": bill.account_id, "@referredType": "BillingAccount"},
        "periodCoverage": {
            "startDateTime": _iso(bill.period_start),
            "endDateTime": _iso(bill.period_end),
        },
        "taxExcludedAmount": money(line.amount, currency),
        "characteristic": _characteristics(line),
        "@type": "AppliedCustomerBillingRate",
    }
    if line.product_id is not None:
        doc["product"] = {"id": line.product_id, "@referredType": "Product"}
    if line.tax_rate is not None and line.kind != "tax":
        doc["appliedTax"] = [
            {
                "taxCategory": TAX_CATEGORY,
                "taxRate": float(line.tax_rate),
                "@type": "AppliedBillingTaxRate",
            }
        ]
    return doc


def _characteristics(line: BillLineRow) -> list[dict[str, Any]]:
    values: list[tuple[str, str, Any]] = [
        ("kind", "string", line.kind),
        ("key", "string", line.key),
    ]
    if line.quantity is not None:
        values.append(("quantity", "decimal", str(line.quantity)))
    if line.unit is not None:
        values.append(("unit", "string", line.unit))
    if line.unit_price is not None:
        values.append(("unitPrice", "decimal", str(line.unit_price)))
    if line.tax_rate is not None:
        values.append(("taxRate", "decimal", str(line.tax_rate)))
    if line.evidence is not None:
        values.append(("evidence", "object", line.evidence))
    return [{"name": n, "valueType": t, "value": v} for n, t, v in values]


def money(value: Decimal, currency: str) -> dict[str, Any]:
    return {"unit": currency, "value": float(value)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
