"""TMF622 ProductOrder and TMF641 ServiceOrder documents, shaped from the order tables.

Every product order item becomes one service order: its TMF641 id is `<order id>-<item id>`
(an order id is a uuid4, always 36 characters, so the split is unambiguous). The failure
reason of a failed order goes into the order's `note` (TMF622 v4 has no error attribute); the
cancellation reason into `cancellationReason`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bss_bridge.tables import OrderItemRow, ProductOrderRow, ProductRow
from oss import tmf
from oss.errors import NotFound

ORDER_ID_LENGTH = 36
AUTHOR = "oss"
# Attributes of the create request that the order document repeats as given.
_ECHOED = (
    "category",
    "externalId",
    "priority",
    "notificationContact",
    "requestedStartDate",
    "requestedCompletionDate",
    "channel",
    "agreement",
)
_PRODUCT_STATUSES = {"created", "pendingActive", "cancelled", "active", "pendingTerminate"}
_PRODUCT_STATUSES |= {"terminated", "suspended"}
# provisioning's service states -> TMF638 ServiceStateType
SERVICE_STATES = {
    "designed": "designed",
    "reserved": "reserved",
    "provisioning": "reserved",
    "active": "active",
    "failed": "inactive",  # in the inventory, delivering nothing, holding nothing
    "terminating": "active",  # still configured until its removal commits
    "terminated": "terminated",
}


def product_ordering_base() -> str:
    return tmf.spec(tmf.PRODUCT_ORDERING).base_path


def service_ordering_base() -> str:
    return tmf.spec(tmf.SERVICE_ORDERING).base_path


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def service_order_id(order_id: str, item_id: str) -> str:
    return f"{order_id}-{item_id}"


def split_service_order_id(value: str) -> tuple[str, str]:
    if len(value) < ORDER_ID_LENGTH + 2 or value[ORDER_ID_LENGTH] != "-":
        raise NotFound(f"no service order {value}")
    return value[:ORDER_ID_LENGTH], value[ORDER_ID_LENGTH + 1 :]


def characteristics(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Parameters as TMF characteristics; absent optional ones (None) are left out."""
    return [{"name": k, "value": v} for k, v in params.items() if v is not None]


def _party(customer: str, *, with_type: bool = False) -> dict[str, Any]:
    party: dict[str, Any] = {
        "id": customer,
        "href": f"/api/v1/customers/{customer}",
        "role": "customer",
        "@referredType": "Customer",
    }
    if with_type:
        party["@type"] = "RelatedParty"  # TMF641's RelatedParty requires it
    return party


def _note(text: str, when: datetime | None) -> dict[str, Any]:
    note: dict[str, Any] = {"text": text, "author": AUTHOR, "@type": "Note"}
    if when is not None:
        note["date"] = when.isoformat()
    return note


def _failure_notes(
    order: ProductOrderRow, items: Sequence[OrderItemRow], when: datetime | None
) -> list[dict[str, Any]]:
    notes = [_note(f"item {i.item_id}: {i.error}", when) for i in items if i.error]
    if order.error and not any(i.error == order.error for i in items):
        notes.append(_note(order.error, when))
    return notes


def product_order(
    order: ProductOrderRow,
    items: Sequence[OrderItemRow],
    *,
    customer: str,
    products: Mapping[str, ProductRow],
    services: Mapping[str, Mapping[str, Any]],
    cancellation_reason: str | None = None,
) -> dict[str, Any]:
    """The TMF622 ProductOrder. `products` by product id, `services` (id, name, type) by
    service name."""
    request = order.request if isinstance(order.request, Mapping) else {}
    base = product_ordering_base()
    doc: dict[str, Any] = {
        "id": order.id,
        "href": f"{base}/productOrder/{order.id}",
        "@type": "ProductOrder",
        "state": order.state,
        "orderDate": order.created_at.isoformat(),
        "billingAccount": {
            "id": order.account_id,
            "href": f"/api/v1/accounts/{order.account_id}",
            "@referredType": "BillingAccount",
        },
        "relatedParty": [_party(customer)],
        "productOrderItem": [_item(i, products, services) for i in items],
    }
    for key in _ECHOED:
        if key in request:
            doc[key] = request[key]
    if order.description is not None:
        doc["description"] = order.description
    if order.completed_at is not None:
        doc["completionDate"] = order.completed_at.isoformat()
    if order.cancelled_at is not None:
        doc["cancellationDate"] = order.cancelled_at.isoformat()
    if cancellation_reason:
        doc["cancellationReason"] = cancellation_reason
    notes = list(request.get("note") or [])
    notes += _failure_notes(order, items, order.completed_at or order.cancelled_at)
    if notes:
        doc["note"] = notes
    return doc


def _item(
    item: OrderItemRow,
    products: Mapping[str, ProductRow],
    services: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    product: dict[str, Any] = {"productCharacteristic": characteristics(item.params or {})}
    row = products.get(item.product_id) if item.product_id else None
    if item.product_id:
        product["id"] = item.product_id
        product["href"] = f"/api/v1/products/{item.product_id}"
    if row is not None:
        if row.state in _PRODUCT_STATUSES:
            product["status"] = row.state
        if row.start_at is not None:
            product["startDate"] = row.start_at.isoformat()
        if row.end_at is not None:
            product["terminationDate"] = row.end_at.isoformat()
    service = services.get(item.service_name) if item.service_name else None
    if service is not None:
        product["realizingService"] = [
            {
                "id": str(service["id"]),
                "href": f"{tmf.spec(tmf.SERVICE_INVENTORY).base_path}/service/{service['id']}",
                "name": service["name"],
                "@referredType": "Service",
            }
        ]
    return {
        "id": item.item_id,
        "@type": "ProductOrderItem",
        "action": item.action,
        "state": item.state,
        "productOffering": {"id": item.offering_id, "@referredType": "ProductOffering"},
        "product": product,
    }


def service_order(
    order: ProductOrderRow,
    item: OrderItemRow,
    *,
    customer: str,
    service_type: str | None,
    service: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The TMF641 ServiceOrder that one product order item became."""
    ident = service_order_id(order.id, item.item_id)
    target: dict[str, Any] = {"@type": "Service"}
    if item.service_name:
        target["name"] = item.service_name
    if service_type:
        target["serviceType"] = service_type
    if service is not None:
        target["id"] = str(service["id"])
        target["href"] = f"{tmf.spec(tmf.SERVICE_INVENTORY).base_path}/service/{service['id']}"
        target["state"] = SERVICE_STATES.get(str(service["state"]), "inactive")
    target["serviceCharacteristic"] = characteristics(item.params or {})
    doc: dict[str, Any] = {
        "id": ident,
        "href": f"{service_ordering_base()}/serviceOrder/{ident}",
        "@type": "ServiceOrder",
        "state": item.state,
        "orderDate": order.created_at.isoformat(),
        "description": f"{item.action} {item.offering_id} (product order {order.id}, "
        f"item {item.item_id})",
        "externalReference": [
            {
                "name": order.id,
                "externalReferenceType": "ProductOrder",
                "href": f"{product_ordering_base()}/productOrder/{order.id}",
            }
        ],
        "relatedParty": [_party(customer, with_type=True)],
        "serviceOrderItem": [
            {
                "id": "1",
                "@type": "ServiceOrderItem",
                "action": item.action,
                "state": item.state,
                "service": target,
            }
        ],
    }
    if item.state == "completed" and order.completed_at is not None:
        doc["completionDate"] = order.completed_at.isoformat()
    if item.state == "cancelled" and order.cancelled_at is not None:
        doc["cancellationDate"] = order.cancelled_at.isoformat()
    if item.error:
        doc["note"] = [_note(item.error, order.completed_at)]
    return doc


def state_change_event(
    event_id: str, when: datetime, order_doc: Mapping[str, Any]
) -> dict[str, Any]:
    """The TMF622 ProductOrderStateChangeEvent published for a state change."""
    return {
        "eventId": event_id,
        "eventTime": when.isoformat(),
        "eventType": "ProductOrderStateChangeEvent",
        "domain": "productOrdering",
        "title": f"product order {order_doc['id']} is {order_doc['state']}",
        "event": {"productOrder": dict(order_doc)},
    }
