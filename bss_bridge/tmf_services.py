"""The TMF638 service inventory: every provisioned service (the `services` table) as a TMF
`Service`, its state mapped to ServiceStateType (see `tmf_orders.SERVICE_STATES`), its
parameters as characteristics, the customer as related party and, when an order made it, the
product and billing account as related entities and the service order item it realises.

The TMF638 id is the service's numeric id; `GET .../service/{id}` also accepts its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from bss_bridge.ports import ServiceLookup, ServiceRecord
from bss_bridge.tables import OrderItemRow, ProductRow
from bss_bridge.tmf_orders import SERVICE_STATES, characteristics, service_order_id
from oss import tmf
from oss.bounds import int64_of
from oss.errors import NotFound
from oss.store import Database


def service_inventory_base() -> str:
    return tmf.spec(tmf.SERVICE_INVENTORY).base_path


def service_doc(
    row: ServiceRecord, product: ProductRow | None, item: OrderItemRow | None
) -> dict[str, Any]:
    state = SERVICE_STATES.get(row.state, "inactive")
    params: dict[str, Any] = dict(row.params or {})
    for key, value in (("vlan", row.vlan), ("vrf", row.vrf), ("rd", row.rd)):
        params.setdefault(key, value)
    doc: dict[str, Any] = {
        "id": str(row.id),
        "href": f"{service_inventory_base()}/service/{row.id}",
        "@type": "Service",
        "name": row.name,
        "serviceType": row.type,
        "category": "CustomerFacingService",
        "state": state,
        "isServiceEnabled": row.state == "active",
        "hasStarted": row.state in ("active", "terminating", "terminated"),
        "serviceDate": row.created_at.isoformat(),
        "serviceCharacteristic": characteristics(params),
    }
    start = product.start_at if product is not None else None
    if start is not None:
        doc["startDate"] = start.isoformat()
    elif doc["hasStarted"]:
        doc["startDate"] = row.created_at.isoformat()
    if product is not None and product.end_at is not None:
        doc["endDate"] = product.end_at.isoformat()
    elif row.ended_at is not None:
        doc["endDate"] = row.ended_at.isoformat()
    if row.customer:
        doc["relatedParty"] = [
            {
                "id": row.customer,
                "href": f"/api/v1/customers/{row.customer}",
                "role": "customer",
                "@referredType": "Customer",
            }
        ]
    if product is not None:
        doc["relatedEntity"] = [
            {
                "id": product.id,
                "href": f"/api/v1/products/{product.id}",
                "role": "product",
                "@referredType": "Product",
            },
            {
                "id": product.account_id,
                "href": f"/api/v1/accounts/{product.account_id}",
                "role": "billingAccount",
                "@referredType": "BillingAccount",
            },
        ]
    if item is not None:
        ident = service_order_id(item.order_id, item.item_id)
        base = tmf.spec(tmf.SERVICE_ORDERING).base_path
        doc["serviceOrderItem"] = [
            {
                "itemId": "1",
                "serviceOrderId": ident,
                "serviceOrderHref": f"{base}/serviceOrder/{ident}",
                "itemAction": item.action,
                "role": "realises",
                "@referredType": "ServiceOrderItem",
            }
        ]
    if row.error:
        doc["note"] = [{"text": row.error, "author": "oss", "@type": "Note"}]
    return doc


class ServiceInventory:
    """Read-only TMF638 views over provisioning's services (through the service-lookup port)
    and the BSS's products."""

    def __init__(self, db: Database, services: ServiceLookup) -> None:
        self.db = db
        self.services = services

    async def find(
        self,
        *,
        state: str | None = None,
        customer: str | None = None,
        service_type: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """`state` is a TMF638 ServiceStateType (the states that map to it are included)."""
        states = None
        if state is not None:
            states = [k for k, v in SERVICE_STATES.items() if v == state]
        rows, total = await self.services.find(
            states=states, customer=customer, service_type=service_type, limit=limit, offset=offset
        )
        async with self.db.read() as s:
            products, items = await self._links(s, [r.name for r in rows])
        docs = [service_doc(r, products.get(r.name), items.get(r.name)) for r in rows]
        return docs, total

    async def get(self, ref: str) -> dict[str, Any]:
        row_id = int64_of(ref)
        if row_id is not None:
            row = await self.services.by_id(row_id)
        else:
            row = (await self.services.named([ref])).get(ref)
        if row is None:
            raise NotFound(f"no service {ref}")
        async with self.db.read() as s:
            products, items = await self._links(s, [row.name])
        return service_doc(row, products.get(row.name), items.get(row.name))

    async def _links(
        self, s: Any, names: list[str]
    ) -> tuple[Mapping[str, ProductRow], Mapping[str, OrderItemRow]]:
        """The product each service realises (the latest one) and the order item that added
        it, by service name."""
        if not names:
            return {}, {}
        products: dict[str, ProductRow] = {}
        for p in await s.scalars(
            select(ProductRow)
            .where(ProductRow.service_name.in_(names))
            .order_by(ProductRow.created_at)
        ):
            products[p.service_name] = p
        items: dict[str, OrderItemRow] = {}
        for i in await s.scalars(
            select(OrderItemRow).where(
                OrderItemRow.service_name.in_(names), OrderItemRow.action == "add"
            )
        ):
            items[i.service_name] = i
        return products, items
