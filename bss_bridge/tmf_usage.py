"""TMF635 (Usage Management v4) shaping: a `UsageRow` as the spec's `Usage`, and a
`Usage_Create` body as a `UsageDraft`.

The record's unique key. `Usage_Create` has no `id` (the server gives it), so the key travels
in the body as a `usageCharacteristic` named `key`: a batch file replayed as it was carries its
keys with it, whereas an `Idempotency-Key` header would have to be re-derived by the sender. A
POST whose key is already stored returns that record (200, not 201) and stores nothing; the
same key with different values is a 409 Conflict. The spec's POST takes one `Usage` (no list),
so a batch is N POSTs, each idempotent by its key.

Characteristics read on create (`name` / `value`):
    key        (required) string, <= 255 characters, unique across all usage
    productId  (required, unless `ratedProductUsage[0].productRef.id` names the product)
    quantity   (required) a decimal as a string ("1.5") or an integer; floats are refused
    unit       (required) e.g. "GB", "hour"
    endDate    (optional) date-time, the end of the interval; default `usageDate`
`usageDate` (required) is the start of the interval, `usageType` (required) e.g. "data".
`status` may only be "received" on create.

`id` in responses is the record's number (URL-safe, unlike keys, which carry ':' and '+').
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bss_bridge.money import parse_decimal
from bss_bridge.tables import UsageRow
from bss_bridge.usage import UsageDraft
from oss import tmf
from oss.bounds import FIRST_YEAR, LAST_YEAR, in_calendar
from oss.errors import InvalidInput

SPEC = tmf.spec(tmf.USAGE)
BASE_PATH = SPEC.base_path  # /tmf-api/usageManagement/v4
HREF_BASE = f"{BASE_PATH}/usage"


def to_tmf(row: UsageRow) -> dict[str, Any]:
    """The TMF635 `Usage` document of a record."""
    characteristics: list[dict[str, Any]] = [
        _char("key", row.key, "string"),
        _char("productId", row.product_id, "string"),
        _char("quantity", str(row.quantity), "decimal"),
        _char("unit", row.unit, "string"),
        _char("endDate", _iso(row.end_at), "dateTime"),
    ]
    if row.service_name:
        characteristics.append(_char("serviceName", row.service_name, "string"))
    if row.bill_id is not None:
        characteristics.append(_char("billId", str(row.bill_id), "string"))
    return {
        "id": str(row.id),
        "href": f"{HREF_BASE}/{row.id}",
        "@type": "Usage",
        "description": f"{row.quantity} {row.unit} {row.usage_type}, product {row.product_id}",
        "usageDate": _iso(row.start_at),
        "usageType": row.usage_type,
        "status": row.state,
        "usageCharacteristic": characteristics,
        "relatedParty": [
            {"id": row.account_id, "role": "billingAccount", "@referredType": "BillingAccount"}
        ],
        "ratedProductUsage": [
            {
                "productRef": {"id": row.product_id, "@referredType": "Product"},
                "isBilled": row.state == "billed",
                "@type": "RatedProductUsage",
            }
        ],
    }


def from_tmf(body: Any) -> UsageDraft:
    """A `Usage_Create` body as a draft record (InvalidInput naming the field otherwise)."""
    if not isinstance(body, Mapping):
        raise InvalidInput("the body must be one TMF635 Usage_Create object (a batch is N POSTs)")
    SPEC.validate(body, "Usage_Create")
    status = body.get("status", "received")
    if status != "received":
        raise InvalidInput(f"status: a new usage record is 'received', not {status!r}")
    chars = _characteristics(body.get("usageCharacteristic") or [])
    start = _date(body.get("usageDate"), "usageDate")
    end = _date(chars["endDate"], "usageCharacteristic endDate") if "endDate" in chars else start
    return UsageDraft(
        key=_text(chars.get("key"), "usageCharacteristic key"),
        product_id=_product(body, chars),
        usage_type=_text(body.get("usageType"), "usageType"),
        unit=_text(chars.get("unit"), "usageCharacteristic unit"),
        quantity=parse_decimal(_required(chars, "quantity"), "usageCharacteristic quantity"),
        start_at=start,
        end_at=end,
    )


def _characteristics(items: list[Mapping[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items:
        name = str(item["name"])
        if name in found:
            raise InvalidInput(f"usageCharacteristic {name}: given twice")
        found[name] = item["value"]
    return found


def _product(body: Mapping[str, Any], chars: Mapping[str, Any]) -> str:
    by_char = chars.get("productId")
    refs = [
        r["productRef"]["id"] for r in body.get("ratedProductUsage") or [] if r.get("productRef")
    ]
    if len(set(refs)) > 1:
        raise InvalidInput("ratedProductUsage: one usage record is for one product")
    if by_char is not None and refs and str(by_char) != refs[0]:
        raise InvalidInput("usageCharacteristic productId and ratedProductUsage disagree")
    product = by_char if by_char is not None else (refs[0] if refs else None)
    return _text(product, "usageCharacteristic productId")


def _required(chars: Mapping[str, Any], name: str) -> Any:
    if name not in chars:
        raise InvalidInput(f"usageCharacteristic {name}: required")
    return chars[name]


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where}: required, a non-empty string")
    return value.strip()


def _date(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: required, an RFC 3339 date-time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{where}: {value!r} is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{where}: {value!r} needs a UTC offset (e.g. Z)")
    if not in_calendar(parsed):
        raise InvalidInput(f"{where}: {value!r}: the year must be {FIRST_YEAR}..{LAST_YEAR}")
    return parsed.astimezone(UTC)


def _char(name: str, value: str, value_type: str) -> dict[str, Any]:
    return {"name": name, "valueType": value_type, "value": value}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
