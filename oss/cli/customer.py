"""`oss customer ...` and `oss account ...`: the customers and billing accounts orders and
bills belong to."""

from typing import Annotated, Any
from urllib.parse import quote

import typer

from oss.cli.main import app, emit, get_context

customer_app = typer.Typer(help="Customers (minimal CRM).", no_args_is_help=True)
account_app = typer.Typer(help="Billing accounts of customers.", no_args_is_help=True)
app.add_typer(customer_app, name="customer")
app.add_typer(account_app, name="account")

CUSTOMER_COLUMNS = ["id", "name", "email", "phone", "created_at"]
ACCOUNT_COLUMNS = ["id", "customer", "name", "currency", "billing_day", "created_at"]


@customer_app.command("create")
def customer_create(
    ctx: typer.Context,
    id: Annotated[str, typer.Argument(help="customer id (the name services carry)")],
    name: Annotated[str, typer.Option(help="the customer's name")],
    email: Annotated[str | None, typer.Option()] = None,
    phone: Annotated[str | None, typer.Option()] = None,
) -> None:
    body = {"id": id, "name": name, "email": email, "phone": phone}
    with get_context(ctx).client() as api:
        emit(ctx, api.post("/api/v1/customers", body))


@customer_app.command("list")
def customer_list(ctx: typer.Context) -> None:
    with get_context(ctx).client() as api:
        rows = api.get_all("/api/v1/customers")
    emit(ctx, rows, CUSTOMER_COLUMNS)


@customer_app.command("show")
def customer_show(ctx: typer.Context, id: Annotated[str, typer.Argument()]) -> None:
    with get_context(ctx).client() as api:
        emit(ctx, api.get(f"/api/v1/customers/{quote(id, safe='')}"))


@account_app.command("create")
def account_create(
    ctx: typer.Context,
    customer: Annotated[str, typer.Option(help="the customer it belongs to")],
    name: Annotated[str, typer.Option(help="account name")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code, e.g. EUR")],
    billing_day: Annotated[int, typer.Option(help="day of the month a period starts (1..28)")] = 1,
    id: Annotated[str | None, typer.Option("--id", help="account id (default: generated)")] = None,
) -> None:
    body: dict[str, Any] = {
        "customer": customer,
        "name": name,
        "currency": currency,
        "billing_day": billing_day,
    }
    if id is not None:
        body["id"] = id
    with get_context(ctx).client() as api:
        emit(ctx, api.post("/api/v1/accounts", body))


@account_app.command("list")
def account_list(
    ctx: typer.Context, customer: Annotated[str | None, typer.Option()] = None
) -> None:
    with get_context(ctx).client() as api:
        rows = api.get_all("/api/v1/accounts", customer=customer)
    emit(ctx, rows, ACCOUNT_COLUMNS)


@account_app.command("show")
def account_show(ctx: typer.Context, id: Annotated[str, typer.Argument()]) -> None:
    with get_context(ctx).client() as api:
        emit(ctx, api.get(f"/api/v1/accounts/{quote(id, safe='')}"))
