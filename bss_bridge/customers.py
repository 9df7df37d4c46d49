"""A minimal CRM: customers, their billing accounts, and the products they have.

A customer's `id` is the very string provisioning stores in `services.customer`, so it follows
the service parameter's rule (letters, digits, `_ . -`, at most 64). A billing account belongs
to one customer, bills in one ISO 4217 currency (one `bss_bridge.money` knows: an unknown code
would misprice every bill) and starts its billing period on `billing_day` (1..28, a day every
month has).

Every create is audited (`oss.audit`) in its own transaction, with who made it and the record.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError

from bss_bridge.money import minor_units
from bss_bridge.tables import BillingAccountRow, CustomerRow, ProductRow
from oss import audit
from oss.errors import Conflict, InvalidInput, NotFound
from oss.store import Database

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ID_MAX = 64
NAME_MAX = 128


def check_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value) or len(value) > ID_MAX:
        raise InvalidInput(
            f"{field}: {value!r} is not a valid id (letters, digits, '_', '.', '-'; starting "
            f"with a letter or digit; at most {ID_MAX} characters)"
        )
    return value


def _check_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX:
        raise InvalidInput(f"{field}: a non-empty text of at most {NAME_MAX} characters")
    return value.strip()


def _check_email(value: str | None) -> str | None:
    if value is None:
        return None
    # Deliverability is the mail system's business; this only catches obvious typos.
    if len(value) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise InvalidInput(f"email: {value!r} is not an e-mail address")
    return value


def _check_phone(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > 32 or not re.fullmatch(r"\+?[0-9][0-9 ()./-]*", value):
        raise InvalidInput(f"phone: {value!r} is not a phone number (digits, an optional +)")
    return value


def check_billing_day(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 28:
        raise InvalidInput(f"billing_day: {value!r} must be a whole number from 1 to 28")
    return value


def check_currency(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"currency: {value!r} is not an ISO 4217 code")
    try:
        minor_units(value)
    except InvalidInput as exc:
        raise InvalidInput(f"currency: {exc}") from None
    return str(value)


def customer_json(row: CustomerRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "phone": row.phone,
        "created_at": row.created_at.isoformat(),
    }


def account_json(row: BillingAccountRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "customer": row.customer_id,
        "name": row.name,
        "currency": row.currency,
        "billing_day": row.billing_day,
        "created_at": row.created_at.isoformat(),
    }


def product_json(row: ProductRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "account": row.account_id,
        "customer": row.customer_id,
        "offering": row.offering_id,
        "service": row.service_name,
        "order": row.order_id,
        "state": row.state,
        "params": row.params,
        "start_at": row.start_at.isoformat() if row.start_at else None,
        "end_at": row.end_at.isoformat() if row.end_at else None,
        "created_at": row.created_at.isoformat(),
    }


RowT = TypeVar("RowT", CustomerRow, BillingAccountRow, ProductRow)


class Customers:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- customers -------------------------------------------------------------------------

    async def create_customer(
        self,
        id: str,
        name: str,
        *,
        email: str | None = None,
        phone: str | None = None,
        actor: str = "system",
    ) -> dict[str, Any]:
        row = CustomerRow(
            id=check_id(id, "id"),
            name=_check_name(name, "name"),
            email=_check_email(email),
            phone=_check_phone(phone),
        )
        try:
            async with self.db.transaction() as s:
                if await s.get(CustomerRow, row.id) is not None:
                    raise Conflict(f"customer {row.id} exists")
                s.add(row)
                await s.flush()
                created = customer_json(row)
                audit.record(
                    s,
                    actor=actor,
                    action="create",
                    object_type="customer",
                    object_id=row.id,
                    after=created,
                )
        except IntegrityError:  # created at the same moment by another request
            raise Conflict(f"customer {row.id} exists") from None
        return created

    async def get_customer(self, id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            row = await s.get(CustomerRow, id)
            if row is None:
                raise NotFound(f"no customer {id}")
            return customer_json(row)

    async def list_customers(
        self, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        rows, total = await self._page(CustomerRow, [], CustomerRow.id, limit, offset)
        return [customer_json(r) for r in rows], total

    # --- billing accounts ------------------------------------------------------------------

    async def create_account(
        self,
        customer: str,
        name: str,
        currency: str,
        *,
        billing_day: int = 1,
        id: str | None = None,
        actor: str = "system",
    ) -> dict[str, Any]:
        row = BillingAccountRow(
            id=check_id(id, "id") if id is not None else f"ba-{uuid.uuid4().hex[:12]}",
            customer_id=check_id(customer, "customer"),
            name=_check_name(name, "name"),
            currency=check_currency(currency),
            billing_day=check_billing_day(billing_day),
        )
        try:
            async with self.db.transaction() as s:
                if await s.get(CustomerRow, row.customer_id) is None:
                    raise InvalidInput(f"customer: no customer {row.customer_id}")
                if await s.get(BillingAccountRow, row.id) is not None:
                    raise Conflict(f"billing account {row.id} exists")
                s.add(row)
                await s.flush()
                created = account_json(row)
                audit.record(
                    s,
                    actor=actor,
                    action="create",
                    object_type="account",
                    object_id=row.id,
                    after=created,
                )
        except IntegrityError:
            raise Conflict(f"billing account {row.id} exists") from None
        return created

    async def get_account(self, id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            row = await s.get(BillingAccountRow, id)
            if row is None:
                raise NotFound(f"no billing account {id}")
            return account_json(row)

    async def list_accounts(
        self, *, customer: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        where = [] if customer is None else [BillingAccountRow.customer_id == customer]
        rows, total = await self._page(
            BillingAccountRow, where, BillingAccountRow.id, limit, offset
        )
        return [account_json(r) for r in rows], total

    # --- products (what customers have; made by orders) ------------------------------------

    async def get_product(self, id: str) -> dict[str, Any]:
        async with self.db.sessions() as s:
            row = await s.get(ProductRow, id)
            if row is None:
                raise NotFound(f"no product {id}")
            return product_json(row)

    async def list_products(
        self,
        *,
        account: str | None = None,
        customer: str | None = None,
        state: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        where: list[ColumnElement[bool]] = []
        if account is not None:
            where.append(ProductRow.account_id == account)
        if customer is not None:
            where.append(ProductRow.customer_id == customer)
        if state is not None:
            where.append(ProductRow.state == state)
        rows, total = await self._page(ProductRow, where, ProductRow.created_at, limit, offset)
        return [product_json(r) for r in rows], total

    async def _page(
        self,
        model: type[RowT],
        where: Sequence[ColumnElement[bool]],
        order: Any,
        limit: int,
        offset: int,
    ) -> tuple[list[RowT], int]:
        async with self.db.read() as s:
            total = await s.scalar(select(func.count()).select_from(model).where(*where))
            rows = await s.scalars(
                select(model).where(*where).order_by(order).limit(limit).offset(offset)
            )
            return list(rows), int(total or 0)
