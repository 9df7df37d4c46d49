"""`oss order ...`: TMF622 product orders. `create --wait` follows the order until it is
completed, failed or cancelled (exit 1 unless completed)."""

import time
from typing import Annotated, Any
from urllib.parse import quote

import typer

from oss.cli.client import ApiClient, ClientError
from oss.cli.main import app, emit, get_context
from oss.cli.output import Format
from oss.cli.service import _parse_params

order_app = typer.Typer(help="Product orders (TMF622).", no_args_is_help=True)
app.add_typer(order_app, name="order")

BASE = "/tmf-api/productOrderingManagement/v4"
FINAL = {"completed", "failed", "cancelled", "rejected"}
POLL_S = 0.5


def _row(order: dict[str, Any]) -> dict[str, Any]:
    items = order.get("productOrderItem") or []
    notes = [n.get("text", "") for n in order.get("note") or [] if n.get("author") == "oss"]
    return {
        "id": order["id"],
        "state": order.get("state"),
        "account": (order.get("billingAccount") or {}).get("id"),
        "items": ", ".join(
            f"{i.get('id')}:{i.get('action')} {(i.get('productOffering') or {}).get('id', '')}"
            for i in items
        ),
        "ordered": order.get("orderDate"),
        "note": "; ".join(notes) or None,
    }


COLUMNS = ["id", "state", "account", "items", "ordered", "note"]


def _wait(api: ApiClient, order: dict[str, Any]) -> dict[str, Any]:
    path = f"{BASE}/productOrder/{quote(order['id'], safe='')}"
    while order.get("state") not in FINAL:
        time.sleep(POLL_S)
        order = api.get(path)
    return order


@order_app.command("create")
def order_create(
    ctx: typer.Context,
    account: Annotated[str, typer.Option(help="billing account")],
    offering: Annotated[str, typer.Option(help="product offering id from the catalogue")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE order parameter")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="retrying with the same key returns the same order")
    ] = None,
    description: Annotated[str | None, typer.Option()] = None,
    wait: Annotated[bool, typer.Option("--wait", help="wait until the order ends")] = False,
) -> None:
    params = _parse_params(param or [], None)
    body: dict[str, Any] = {
        "billingAccount": {"id": account},
        "productOrderItem": [
            {
                "id": "1",
                "action": "add",
                "productOffering": {"id": offering},
                "product": {
                    "productCharacteristic": [{"name": k, "value": v} for k, v in params.items()]
                },
            }
        ],
    }
    if description:
        body["description"] = description
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with get_context(ctx).client() as api:
        order = api.post(f"{BASE}/productOrder", body, headers=headers)
        if wait:
            order = _wait(api, order)
    _show(ctx, order)
    if wait and order.get("state") != "completed":
        raise ClientError(f"order {order['id']} {order.get('state')}")


def _show(ctx: typer.Context, order: dict[str, Any]) -> None:
    if get_context(ctx).output is Format.JSON:
        emit(ctx, order)
    else:
        emit(ctx, _row(order))


@order_app.command("list")
def order_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="e.g. inProgress, completed")] = None,
    account: Annotated[str | None, typer.Option(help="billing account")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
) -> None:
    with get_context(ctx).client() as api:
        params = {"state": state, "billingAccount.id": account, "limit": limit}
        orders = api.get(f"{BASE}/productOrder", **params)
    if get_context(ctx).output is Format.JSON:
        emit(ctx, orders)
    else:
        emit(ctx, [_row(o) for o in orders], COLUMNS)


@order_app.command("show")
def order_show(ctx: typer.Context, id: Annotated[str, typer.Argument(help="order id")]) -> None:
    with get_context(ctx).client() as api:
        order = api.get(f"{BASE}/productOrder/{quote(id, safe='')}")
    _show(ctx, order)


@order_app.command("cancel")
def order_cancel(
    ctx: typer.Context,
    id: Annotated[str, typer.Argument(help="order id")],
    reason: Annotated[str | None, typer.Option(help="why it is cancelled")] = None,
) -> None:
    """Cancel an order that has not completed (a running one ends after its current step)."""
    body: dict[str, Any] = {"productOrder": {"id": id}}
    if reason:
        body["cancellationReason"] = reason
    with get_context(ctx).client() as api:
        emit(ctx, api.post(f"{BASE}/cancelProductOrder", body))
