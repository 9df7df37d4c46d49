"""TMF622 product orders that become provisioning.

An order is validated (the official `ProductOrder_Create` schema, then our rules: the billing
account exists, each item adds an offering of the catalogue with its order parameters as
`product.productCharacteristic`, or deletes an active product of that account), stored
`acknowledged`, and worked on by a tracked background task: `inProgress`, then each item in turn
through the provisioning transaction engine, then `completed`, `failed` (the transaction's
reason in the order's `note`) or `cancelled`.

All or nothing for what an order adds: a product becomes `active` only when its whole order
completes (its `start_at` is the moment its own transaction finished, when charging starts).
When a later item fails, or a cancellation arrives while the order runs, the services the order
already added are removed again and their products end `cancelled`; nothing stays half active.
A delete item is not undone (the service is already gone from the network): its product is
`terminated` with `end_at` the moment its removal committed.

Cancelling (`cancel`): an order not yet started is cancelled at once. A running order is marked
`pendingCancellation`: the device transaction in flight is never interrupted (it commits or rolls
back as a unit); when it ends, no further item starts, what the order added is removed, and the
order ends `cancelled`. A completed, failed or cancelled order cannot be cancelled (409).

Idempotency: a create with an `Idempotency-Key` stores the key on the order (unique in the
database). The same key with the same body returns the same order; with another body it is a
conflict. Two concurrent creates with one key: the database takes one, the other gets that
order back; only one is ever provisioned.

Audit: the order's creation and each of its state changes, and each product it creates or
changes (pendingActive, active, terminated, cancelled), are audit entries (`productOrder`,
`product`) written in the transaction of the change. A refused order (validation, unknown
account or offering) writes nothing: no order, no entry.

Every state change of the order and of its items is an `OrderEventRow`; order state changes
also go, when MQTT is enabled, into the outbox in the same database transaction (topic
`<prefix>/orders/<order-id>`, QoS 1, not retained, a TMF622 ProductOrderStateChangeEvent).

After a daemon restart, `recover()` (once provisioning recovered its transactions) resumes every
order left acknowledged, inProgress or pendingCancellation: an item whose service exists is
settled from the service's state, one whose service never got stored is run again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bss_bridge import tmf_orders
from bss_bridge.customers import ID_PATTERN, product_json
from bss_bridge.ports import OrderEvents, OssPorts, ServiceRecord
from bss_bridge.tables import (
    BillingAccountRow,
    OrderEventRow,
    OrderItemRow,
    ProductOrderRow,
    ProductRow,
)
from oss import audit, tmf
from oss.errors import Conflict, InvalidInput, NotFound, OssError
from oss.store import Database
from oss.store.base import utcnow

log = logging.getLogger(__name__)

ACTIONS = ("add", "delete")
OPEN_STATES = ("acknowledged", "inProgress", "pendingCancellation")
FINAL_STATES = ("completed", "failed", "cancelled")
ITEM_ID_MAX = 32
KEY_MAX = 128
SERVICE_NAME_MAX = 64


class Offering(Protocol):
    """What orders need of a catalogue offering (bss_bridge.catalog.Offering)."""

    @property
    def id(self) -> str: ...
    @property
    def service_type(self) -> str: ...
    @property
    def parameters(self) -> Mapping[str, Any]: ...
    @property
    def order_parameters(self) -> tuple[str, ...]: ...


class Catalog(Protocol):
    def get(self, offering_id: str) -> Any: ...


@dataclass(frozen=True)
class _ItemPlan:
    item_id: str
    action: str
    offering_id: str
    params: dict[str, Any]  # add: the order parameters as given; delete: {}
    product_id: str | None  # delete: the product it ends


class Orders:
    def __init__(
        self,
        db: Database,
        oss: OssPorts,
        catalog: Callable[[], Catalog],
        outbox: OrderEvents | None,
    ) -> None:
        self.db = db
        self.oss = oss  # the services (lookup) and provisioning (changes) ports
        self._catalog = catalog  # looked up when used: the catalogue may be reloaded
        self.outbox = outbox  # order events for MQTT; None: MQTT is off

    # --- create ----------------------------------------------------------------------------

    async def create(
        self, body: Any, *, actor: str, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """(the order, True) when created; (the existing order, False) for a retried create."""
        key = _check_key(idempotency_key)
        tmf.spec(tmf.PRODUCT_ORDERING).validate(body, "ProductOrder_Create")
        if key is not None:
            replay = await self._replay(key, body)
            if replay is not None:
                return replay, False
        account, customer = await self._account(body)
        plans = await self._plan(body, account, customer)
        order_id = str(uuid.uuid4())
        try:
            async with self.db.transaction() as s:
                order = ProductOrderRow(
                    id=order_id,
                    idempotency_key=key,
                    account_id=account,
                    state="acknowledged",
                    description=body.get("description"),
                    request=body,
                )
                s.add(order)
                await s.flush()  # the key's unique constraint decides a concurrent retry here
                for p in plans:
                    s.add(
                        OrderItemRow(
                            order_id=order_id,
                            item_id=p.item_id,
                            action=p.action,
                            offering_id=p.offering_id,
                            params=p.params,
                            state="acknowledged",
                            product_id=p.product_id,
                            service_name=await self._service_name(s, p, customer, order_id),
                        )
                    )
                await s.flush()
                await self._event(s, order, "acknowledged", {"actor": actor}, actor=actor)
                audit.record(
                    s,
                    actor=actor,
                    action="create",
                    object_type="productOrder",
                    object_id=order_id,
                    after=_order_audit(order, plans),
                )
        except IntegrityError:
            if key is None:
                raise
            replay = await self._replay(key, body)
            if replay is None:
                raise
            return replay, False
        self.oss.provisioning.spawn(self._process(order_id, actor))
        return await self.get(order_id), True

    async def _replay(self, key: str, body: Any) -> dict[str, Any] | None:
        async with self.db.transaction() as s:
            order = await s.scalar(
                select(ProductOrderRow).where(ProductOrderRow.idempotency_key == key)
            )
            if order is None:
                return None
            if order.request != body:
                raise Conflict(
                    f"Idempotency-Key {key!r} was used for order {order.id} with a different "
                    "body; use a new key for a new order"
                )
            return await self._doc(s, order)

    async def _account(self, body: Mapping[str, Any]) -> tuple[str, str]:
        ref = body.get("billingAccount")
        account = ref.get("id") if isinstance(ref, Mapping) else None
        if not account:
            raise InvalidInput("billingAccount.id: required (the account the order is billed to)")
        async with self.db.transaction() as s:
            row = await s.get(BillingAccountRow, account)
            if row is None:
                raise InvalidInput(f"billingAccount.id: no billing account {account}")
            return row.id, row.customer_id

    async def _plan(self, body: Mapping[str, Any], account: str, customer: str) -> list[_ItemPlan]:
        items = body["productOrderItem"]
        if not items:
            raise InvalidInput("productOrderItem: an order needs at least one item")
        plans: list[_ItemPlan] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            where = f"productOrderItem[{i}]"
            item_id = item["id"]
            if not ID_PATTERN.fullmatch(item_id) or len(item_id) > ITEM_ID_MAX:
                raise InvalidInput(
                    f"{where}.id: {item_id!r} must be letters, digits, '_', '.', '-' "
                    f"(at most {ITEM_ID_MAX})"
                )
            if item_id in seen:
                raise InvalidInput(f"{where}.id: {item_id!r} is used by another item")
            seen.add(item_id)
            if item["action"] not in ACTIONS:
                raise InvalidInput(
                    f"{where}.action: {item['action']!r} is not supported (add or delete)"
                )
            if item.get("productOrderItem"):
                raise InvalidInput(f"{where}.productOrderItem: nested items are not supported")
            if item.get("quantity", 1) != 1:
                raise InvalidInput(f"{where}.quantity: only 1 is supported")
            own = item.get("billingAccount")
            if isinstance(own, Mapping) and own.get("id") != account:
                raise InvalidInput(f"{where}.billingAccount.id: must be the order's ({account})")
            if item["action"] == "add":
                plans.append(self._plan_add(item_id, item, customer, where))
            else:
                plans.append(await self._plan_delete(item_id, item, account, where))
        return plans

    def _plan_add(
        self, item_id: str, item: Mapping[str, Any], customer: str, where: str
    ) -> _ItemPlan:
        ref = item.get("productOffering")
        offering_id = ref.get("id") if isinstance(ref, Mapping) else None
        if not offering_id:
            raise InvalidInput(f"{where}.productOffering.id: required for action add")
        try:
            offering: Offering = self._catalog().get(offering_id)
        except NotFound:
            raise InvalidInput(
                f"{where}.productOffering.id: no offering {offering_id!r} in the catalogue"
            ) from None
        product = item.get("product") or {}
        params: dict[str, Any] = {}
        for j, c in enumerate(product.get("productCharacteristic") or []):
            at = f"{where}.product.productCharacteristic[{j}]"
            name = c["name"]
            if "value" not in c:
                raise InvalidInput(f"{at}.value: required")
            if name == "customer":
                raise InvalidInput(f"{at}.name: customer is the billing account's; not given")
            if name not in offering.order_parameters:
                allowed = ", ".join(offering.order_parameters) or "none"
                raise InvalidInput(
                    f"{at}.name: {name!r} is not an order parameter of {offering_id} "
                    f"(allowed: {allowed})"
                )
            if name in params:
                raise InvalidInput(f"{at}.name: {name!r} is given twice")
            params[name] = c["value"]
        stype = self.oss.provisioning.service_types().get(offering.service_type)
        if stype is None:
            raise InvalidInput(
                f"{where}.productOffering.id: {offering_id} needs service type "
                f"{offering.service_type!r}, which this daemon does not know"
            )
        try:
            stype.validate(_service_params(offering, params, customer))
        except InvalidInput as exc:
            raise InvalidInput(f"{where}.product.productCharacteristic: {exc}") from None
        return _ItemPlan(item_id, "add", offering_id, params, None)

    async def _plan_delete(
        self, item_id: str, item: Mapping[str, Any], account: str, where: str
    ) -> _ItemPlan:
        product_ref = item.get("product")
        product_id = product_ref.get("id") if isinstance(product_ref, Mapping) else None
        if not product_id:
            raise InvalidInput(f"{where}.product.id: required for action delete")
        async with self.db.transaction() as s:
            product = await s.get(ProductRow, product_id)
        if product is None or product.account_id != account:
            raise InvalidInput(f"{where}.product.id: no product {product_id} on account {account}")
        if product.state != "active":
            raise InvalidInput(f"{where}.product.id: product {product_id} is {product.state}")
        return _ItemPlan(item_id, "delete", product.offering_id, {}, product_id)

    async def _service_name(
        self, s: AsyncSession, plan: _ItemPlan, customer: str, order_id: str
    ) -> str | None:
        if plan.action == "delete":
            assert plan.product_id is not None
            product = await s.get(ProductRow, plan.product_id)
            return product.service_name if product is not None else None
        suffix = f"-{order_id[:8]}-{plan.item_id}"
        return customer[: SERVICE_NAME_MAX - len(suffix)] + suffix

    # --- processing ------------------------------------------------------------------------

    async def _process(self, order_id: str, actor: str) -> None:
        """Work an order to its end (also resumes one a restart interrupted)."""
        async with self.db.transaction() as s:
            order = await self._order(s, order_id)
            if order.state == "acknowledged":
                started = await s.execute(
                    update(ProductOrderRow)
                    .where(ProductOrderRow.id == order_id, ProductOrderRow.state == "acknowledged")
                    .values(state="inProgress")
                )
                if _rowcount(started) == 0:  # cancelled in between
                    return
                await s.refresh(order)
                await self._event(s, order, "inProgress", None, actor=actor, was="acknowledged")
            elif order.state not in OPEN_STATES:
                return
        failure: str | None = None
        for item_id in await self._item_ids(order_id):
            if await self._state(order_id) == "pendingCancellation":
                break
            failure = await self._run_item(order_id, item_id, actor)
            if failure is not None:
                break
        await self._finish(order_id, failure, actor)

    async def _run_item(self, order_id: str, item_id: str, actor: str) -> str | None:
        """Provision one item; its error, or None when it is done."""
        async with self.db.transaction() as s:
            item = await self._item(s, order_id, item_id)
            if item.state == "completed":
                return None
            if item.state in ("failed", "cancelled"):
                return item.error or f"item {item_id} {item.state}"
            if item.state != "inProgress":
                item.state = "inProgress"
                await self._item_event(s, item, None)
            action, name = item.action, item.service_name
            offering_id, params = item.offering_id, dict(item.params or {})
            product_id = item.product_id
            account = await s.get(BillingAccountRow, (await self._order(s, order_id)).account_id)
            assert account is not None
            customer = account.customer_id
        if action == "add":
            assert name is not None
            txn_id, error = await self._add(name, offering_id, params, customer, actor)
        else:
            txn_id, error = await self._delete(name, actor)
        finished = await self._finished_at(txn_id)
        async with self.db.transaction() as s:
            item = await self._item(s, order_id, item_id)
            item.transaction_id = txn_id
            if error is not None:
                item.state, item.error = "failed", error
                await self._item_event(s, item, {"error": error, "transaction": txn_id})
                return error
            item.state = "completed"
            if action == "add":
                product = ProductRow(
                    id=str(uuid.uuid4()),
                    account_id=account.id,
                    customer_id=customer,
                    offering_id=offering_id,
                    service_name=name,
                    order_id=order_id,
                    state="pendingActive",  # active once the whole order completed
                    params=params,
                    start_at=finished,
                )
                s.add(product)
                item.product_id = product.id
                await s.flush()
                _audit_product(s, actor, "create", None, product)
            elif product_id is not None:
                old = await s.get(ProductRow, product_id)
                if old is not None:
                    before = product_json(old)
                    old.state, old.end_at = "terminated", finished
                    await s.flush()
                    _audit_product(s, actor, "terminate", before, old)
            await self._item_event(s, item, {"transaction": txn_id})
        return None

    async def _add(
        self, name: str, offering_id: str, params: dict[str, Any], customer: str, actor: str
    ) -> tuple[int | None, str | None]:
        existing = await self._service(name)
        if existing is not None:  # resumed after a restart: the service tells what happened
            txn = existing.transaction_id
            if existing.state == "active":
                return txn, None
            return txn, existing.error or f"service {name} is {existing.state}"
        try:
            offering: Offering = self._catalog().get(offering_id)
        except OssError as exc:
            return None, str(exc)
        change = await self.oss.provisioning.create(
            offering.service_type,
            _service_params(offering, params, customer),
            name=name,
            actor=actor,
        )
        return change.transaction_id, change.error

    async def _delete(self, name: str | None, actor: str) -> tuple[int | None, str | None]:
        if name is None:
            return None, "the product has no service to remove"
        existing = await self._service(name)
        if existing is None:
            return None, f"service {name} does not exist"
        if existing.state == "terminated":  # resumed: the removal already committed
            return existing.transaction_id, None
        change = await self.oss.provisioning.delete(name, actor=actor)
        return change.transaction_id, change.error

    async def _finish(self, order_id: str, failure: str | None, actor: str) -> None:
        while True:
            cancelling = await self._state(order_id) == "pendingCancellation"
            if failure is not None or cancelling:
                failure = await self._undo(order_id, failure, actor)
            target = "failed" if failure is not None else "cancelled" if cancelling else "completed"
            async with self.db.transaction() as s:
                order = await self._order(s, order_id)
                was = order.state
                now = utcnow()
                values: dict[str, Any] = {"state": target}
                if target == "cancelled":
                    values["cancelled_at"] = now
                else:
                    values["completed_at"] = now
                    values["error"] = failure
                sources = ("inProgress",) if target == "completed" else OPEN_STATES
                done = await s.execute(
                    update(ProductOrderRow)
                    .where(ProductOrderRow.id == order_id, ProductOrderRow.state.in_(sources))
                    .values(**values)
                )
                if _rowcount(done) == 0:
                    if target == "completed":
                        continue  # a cancellation arrived after the last item: honour it
                    return
                await self._settle_items(s, order_id, target, actor)
                await s.refresh(order)
                detail = {"error": failure} if failure else None
                await self._event(s, order, target, detail, actor=actor, was=was)
            log.info("product order %s %s", order_id, target)
            return

    async def _settle_items(self, s: AsyncSession, order_id: str, target: str, actor: str) -> None:
        items = await s.scalars(select(OrderItemRow).where(OrderItemRow.order_id == order_id))
        for item in items:
            if target == "completed" and item.product_id and item.action == "add":
                product = await s.get(ProductRow, item.product_id)
                if product is not None and product.state == "pendingActive":
                    before = product_json(product)
                    product.state = "active"
                    _audit_product(s, actor, "activate", before, product)
            if item.state in ("acknowledged", "inProgress"):
                item.state = "cancelled"
                await self._item_event(s, item, None)

    async def _undo(self, order_id: str, failure: str | None, actor: str) -> str | None:
        """Remove what the order added; returns the failure to report (with any undo error)."""
        async with self.db.transaction() as s:
            added = list(
                await s.scalars(
                    select(ProductRow).where(
                        ProductRow.order_id == order_id, ProductRow.state == "pendingActive"
                    )
                )
            )
        problems = [failure] if failure else []
        for product in added:
            txn_id, error = await self._delete(product.service_name, actor)
            finished = await self._finished_at(txn_id)
            async with self.db.transaction() as s:
                row = await s.get(ProductRow, product.id)
                if row is None:
                    continue
                if error is None:
                    before = product_json(row)
                    row.state, row.end_at = "cancelled", finished
                    await s.flush()
                    _audit_product(s, actor, "cancel", before, row)
                    await s.execute(
                        update(OrderItemRow)
                        .where(
                            OrderItemRow.order_id == order_id,
                            OrderItemRow.product_id == product.id,
                        )
                        .values(state="cancelled")
                    )
                else:
                    # Still on the network: left pendingActive (never charged) for an operator.
                    problems.append(f"could not remove service {product.service_name}: {error}")
        return "; ".join(problems) if problems else None

    # --- cancel ----------------------------------------------------------------------------

    async def cancel(
        self, order_id: str, *, reason: str | None = None, actor: str
    ) -> dict[str, Any]:
        """Cancel an order not yet completed; the TMF622 CancelProductOrder document."""
        detail = {"reason": reason, "actor": actor}
        async with self.db.transaction() as s:
            order = await self._order(s, order_id)
            now = utcnow()
            done = await s.execute(
                update(ProductOrderRow)
                .where(ProductOrderRow.id == order_id, ProductOrderRow.state == "acknowledged")
                .values(state="cancelled", cancelled_at=now)
            )
            if _rowcount(done):
                await s.refresh(order)
                await self._settle_items(s, order_id, "cancelled", actor)
                await self._event(s, order, "cancelled", detail, actor=actor, was="acknowledged")
                task_state = "done"
            else:
                pending = await s.execute(
                    update(ProductOrderRow)
                    .where(ProductOrderRow.id == order_id, ProductOrderRow.state == "inProgress")
                    .values(state="pendingCancellation")
                )
                await s.refresh(order)
                if not _rowcount(pending):
                    raise Conflict(
                        f"product order {order_id} is {order.state}: only an order that has "
                        "not completed can be cancelled"
                    )
                await self._event(
                    s, order, "pendingCancellation", detail, actor=actor, was="inProgress"
                )
                task_state = "inProgress"
        return _cancel_doc(order_id, reason, task_state, now if task_state == "done" else None)

    async def cancellation(self, order_id: str) -> dict[str, Any]:
        """The order's CancelProductOrder, from its cancellation events."""
        async with self.db.transaction() as s:
            order = await self._order(s, order_id)
            detail = await s.scalar(
                select(OrderEventRow.detail)
                .where(
                    OrderEventRow.order_id == order_id,
                    OrderEventRow.item_id.is_(None),
                    OrderEventRow.state.in_(("pendingCancellation", "cancelled")),
                )
                .order_by(OrderEventRow.id)
                .limit(1)
            )
        if detail is None:
            raise NotFound(f"product order {order_id} has no cancellation")
        state = {"cancelled": "done", "pendingCancellation": "inProgress"}.get(
            order.state, "terminatedWithError"
        )
        return _cancel_doc(order_id, (detail or {}).get("reason"), state, order.cancelled_at)

    # --- recovery --------------------------------------------------------------------------

    async def recover(self, actor: str = "recovery") -> list[str]:
        """Resume the orders a previous run left open; call after provisioning recovered."""
        async with self.db.transaction() as s:
            ids = list(
                await s.scalars(
                    select(ProductOrderRow.id)
                    .where(ProductOrderRow.state.in_(OPEN_STATES))
                    .order_by(ProductOrderRow.created_at)
                )
            )
        for order_id in ids:
            log.warning("product order %s was interrupted; resuming it", order_id)
            self.oss.provisioning.spawn(self._process(order_id, actor))
        return ids

    # --- queries ---------------------------------------------------------------------------

    async def get(self, order_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            return await self._doc(s, await self._order(s, order_id))

    async def find(
        self,
        *,
        state: str | None = None,
        account: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        where = []
        if state is not None:
            where.append(ProductOrderRow.state == state)
        if account is not None:
            where.append(ProductOrderRow.account_id == account)
        async with self.db.read() as s:
            total = await s.scalar(select(func.count()).select_from(ProductOrderRow).where(*where))
            rows = list(
                await s.scalars(
                    select(ProductOrderRow)
                    .where(*where)
                    .order_by(ProductOrderRow.created_at, ProductOrderRow.id)
                    .limit(limit)
                    .offset(offset)
                )
            )
            names = await s.scalars(
                select(OrderItemRow.service_name).where(
                    OrderItemRow.order_id.in_([r.id for r in rows]),
                    OrderItemRow.service_name.is_not(None),
                )
            )
            known = await self.oss.records.services.named([n for n in names if n])
            return [await self._doc(s, r, known) for r in rows], int(total or 0)

    async def events(self, order_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            await self._order(s, order_id)
            rows = await s.scalars(
                select(OrderEventRow)
                .where(OrderEventRow.order_id == order_id)
                .order_by(OrderEventRow.id)
            )
            return [
                {
                    "id": r.id,
                    "order": r.order_id,
                    "item": r.item_id,
                    "state": r.state,
                    "detail": r.detail,
                    "time": r.time.isoformat(),
                }
                for r in rows
            ]

    async def service_orders(
        self, *, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """Every order item as a TMF641 ServiceOrder, oldest order first."""
        where = [] if state is None else [OrderItemRow.state == state]
        async with self.db.transaction() as s:
            query = (
                select(OrderItemRow, ProductOrderRow)
                .join(ProductOrderRow, ProductOrderRow.id == OrderItemRow.order_id)
                .where(*where)
            )
            total = await s.scalar(select(func.count()).select_from(query.subquery()))
            rows = (
                await s.execute(
                    query.order_by(
                        ProductOrderRow.created_at, OrderItemRow.order_id, OrderItemRow.item_id
                    )
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            names = [i.service_name for i, _ in rows if i.service_name]
            known = await self.oss.records.services.named(names)
            return [await self._service_order(s, o, i, known) for i, o in rows], int(total or 0)

    async def service_order(self, service_order_id: str) -> dict[str, Any]:
        order_id, item_id = tmf_orders.split_service_order_id(service_order_id)
        async with self.db.read() as s:
            item = await s.get(OrderItemRow, (order_id, item_id))
            order = await s.get(ProductOrderRow, order_id)
            if item is None or order is None:
                raise NotFound(f"no service order {service_order_id}")
            return await self._service_order(s, order, item)

    # --- helpers ---------------------------------------------------------------------------

    async def _order(self, s: AsyncSession, order_id: str) -> ProductOrderRow:
        order = await s.get(ProductOrderRow, order_id)
        if order is None:
            raise NotFound(f"no product order {order_id}")
        return order

    async def _item(self, s: AsyncSession, order_id: str, item_id: str) -> OrderItemRow:
        item = await s.get(OrderItemRow, (order_id, item_id))
        if item is None:
            raise NotFound(f"no item {item_id} in product order {order_id}")
        return item

    async def _state(self, order_id: str) -> str:
        async with self.db.transaction() as s:
            state = await s.scalar(
                select(ProductOrderRow.state).where(ProductOrderRow.id == order_id)
            )
            return str(state)

    async def _item_ids(self, order_id: str) -> list[str]:
        """In the order the request listed them (the insertion order)."""
        async with self.db.transaction() as s:
            order = await self._order(s, order_id)
            listed = [str(i["id"]) for i in (order.request or {}).get("productOrderItem", [])]
            stored = set(
                await s.scalars(
                    select(OrderItemRow.item_id).where(OrderItemRow.order_id == order_id)
                )
            )
            return [i for i in listed if i in stored]

    async def _service(self, name: str) -> ServiceRecord | None:
        return (await self.oss.records.services.named([name])).get(name)

    async def _finished_at(self, txn_id: int | None) -> datetime:
        """When the transaction finished (charging starts or ends then)."""
        if txn_id is None:
            return utcnow()
        return await self.oss.provisioning.finished_at(txn_id) or utcnow()

    async def _doc(
        self,
        s: AsyncSession,
        order: ProductOrderRow,
        known: Mapping[str, ServiceRecord] | None = None,
    ) -> dict[str, Any]:
        """The TMF622 order. `known`: services a listing looked up for all its orders at once
        (else this order's are looked up here)."""
        items = list(await s.scalars(select(OrderItemRow).where(OrderItemRow.order_id == order.id)))
        rank = {
            str(i["id"]): n for n, i in enumerate((order.request or {}).get("productOrderItem", []))
        }
        items.sort(key=lambda i: rank.get(i.item_id, len(rank)))
        account = await s.get(BillingAccountRow, order.account_id)
        product_ids = [i.product_id for i in items if i.product_id]
        products = {
            p.id: p
            for p in await s.scalars(select(ProductRow).where(ProductRow.id.in_(product_ids)))
        }
        names = [i.service_name for i in items if i.service_name]
        found = await self.oss.records.services.named(names) if known is None else known
        services = {name: _service_ref(found[name]) for name in names if name in found}
        reason = await s.scalar(
            select(OrderEventRow.detail)
            .where(
                OrderEventRow.order_id == order.id,
                OrderEventRow.item_id.is_(None),
                OrderEventRow.state.in_(("pendingCancellation", "cancelled")),
            )
            .order_by(OrderEventRow.id)
            .limit(1)
        )
        return tmf_orders.product_order(
            order,
            items,
            customer=account.customer_id if account is not None else "",
            products=products,
            services=services,
            cancellation_reason=(reason or {}).get("reason"),
        )

    async def _service_order(
        self,
        s: AsyncSession,
        order: ProductOrderRow,
        item: OrderItemRow,
        known: Mapping[str, ServiceRecord] | None = None,
    ) -> dict[str, Any]:
        account = await s.get(BillingAccountRow, order.account_id)
        service: dict[str, Any] | None = None
        if item.service_name:
            if known is None:
                row = await self._service(item.service_name)
            else:
                row = known.get(item.service_name)
            if row is not None:
                service = _service_ref(row)
        service_type = service["type"] if service is not None else self._service_type(item)
        return tmf_orders.service_order(
            order,
            item,
            customer=account.customer_id if account is not None else "",
            service_type=service_type,
            service=service,
        )

    def _service_type(self, item: OrderItemRow) -> str | None:
        try:
            offering: Offering = self._catalog().get(item.offering_id)
        except NotFound:
            return None
        return offering.service_type

    async def _event(
        self,
        s: AsyncSession,
        order: ProductOrderRow,
        state: str,
        detail: dict[str, Any] | None,
        *,
        actor: str,
        was: str | None = None,
    ) -> None:
        """An order state change: kept, audited (from `was`; the creation is audited by
        create()), and queued for MQTT in the same transaction."""
        now = utcnow()
        s.add(OrderEventRow(order_id=order.id, state=state, detail=detail, time=now))
        if was is not None:
            audit.record(
                s,
                actor=actor,
                action="update",
                object_type="productOrder",
                object_id=order.id,
                before={"state": was},
                after={"state": state, **(detail or {})},
            )
        if self.outbox is None:
            return
        await s.flush()
        doc = await self._doc(s, order)
        event = tmf_orders.state_change_event(str(uuid.uuid4()), now, doc)
        await self.outbox.add(s, order.id, event)

    async def _item_event(
        self, s: AsyncSession, item: OrderItemRow, detail: dict[str, Any] | None
    ) -> None:
        s.add(
            OrderEventRow(
                order_id=item.order_id, item_id=item.item_id, state=item.state, detail=detail
            )
        )


def _order_audit(order: ProductOrderRow, plans: list[_ItemPlan]) -> dict[str, Any]:
    """A new order as the audit log keeps it."""
    return {
        "state": order.state,
        "account": order.account_id,
        "description": order.description,
        "idempotencyKey": order.idempotency_key,
        "items": [
            {
                "id": p.item_id,
                "action": p.action,
                "offering": p.offering_id,
                "params": p.params,
                "product": p.product_id,
            }
            for p in plans
        ],
    }


def _audit_product(
    s: AsyncSession, actor: str, action: str, before: dict[str, Any] | None, row: ProductRow
) -> None:
    audit.record(
        s,
        actor=actor,
        action=action,
        object_type="product",
        object_id=row.id,
        before=before,
        after=product_json(row),
    )


def _service_ref(service: ServiceRecord) -> dict[str, Any]:
    """A service as the order documents refer to it."""
    return {"id": service.id, "name": service.name, "type": service.type, "state": service.state}


def _service_params(offering: Offering, params: Mapping[str, Any], customer: str) -> dict[str, Any]:
    """The service's parameters: the offering's fixed ones, the order's, the customer."""
    return {**offering.parameters, **params, "customer": customer}


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > KEY_MAX or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key: 1 to {KEY_MAX} printable characters (got {len(key)})")
    return key


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _cancel_doc(
    order_id: str, reason: str | None, state: str, effective: datetime | None
) -> dict[str, Any]:
    """TMF622 CancelProductOrder. One cancellation per order: it carries the order's id."""
    base = tmf_orders.product_ordering_base()
    doc: dict[str, Any] = {
        "id": order_id,
        "href": f"{base}/cancelProductOrder/{order_id}",
        "@type": "CancelProductOrder",
        "state": state,
        "productOrder": {
            "id": order_id,
            "href": f"{base}/productOrder/{order_id}",
            "@referredType": "ProductOrder",
        },
    }
    if reason:
        doc["cancellationReason"] = reason
    if effective is not None:
        doc["effectiveCancellationDate"] = effective.isoformat()
    return doc
