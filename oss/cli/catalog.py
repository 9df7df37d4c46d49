"""`oss catalog list|show`: the product offerings an order can name (`configs/catalog/`)."""

from typing import Annotated, Any
from urllib.parse import quote

import typer

from oss.cli.main import app, emit, get_context
from oss.cli.output import Format

catalog_app = typer.Typer(
    help="The product catalogue: offerings and their terms.", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")

BASE = "/api/v1/catalog/offerings"
COLUMNS = ["id", "name", "service_type", "price", "usage", "sla", "order_parameters"]


def row(offering: dict[str, Any]) -> dict[str, Any]:
    """One offering as a table row: the price with its currency, usage and SLA in brief."""
    usage = offering.get("usage")
    sla = offering.get("sla")
    return {
        "id": offering["id"],
        "name": offering["name"],
        "service_type": offering["service_type"],
        "price": f"{offering['recurring_price']} {offering['currency']}/month",
        "usage": f"{usage['usage_type']} per {usage['unit']}, {len(usage['tiers'])} tiers"
        if usage
        else None,
        "sla": f"{sla['availability_target_percent']} %" if sla else None,
        "order_parameters": offering["order_parameters"],
    }


@catalog_app.command("list")
def catalog_list(ctx: typer.Context) -> None:
    """Every offering: service type, monthly price, usage tariff and SLA target."""
    with get_context(ctx).client() as api:
        offerings = api.get_all(BASE)
    if get_context(ctx).output is Format.JSON:
        emit(ctx, offerings)
    else:
        emit(ctx, [row(o) for o in offerings], COLUMNS, title="product offerings")


@catalog_app.command("show")
def catalog_show(
    ctx: typer.Context, offering_id: Annotated[str, typer.Argument(help="offering id")]
) -> None:
    """One offering with its parameters, usage tiers and SLA credit tiers."""
    with get_context(ctx).client() as api:
        offering = api.get(f"{BASE}/{quote(offering_id, safe='')}")
    if get_context(ctx).output is Format.JSON:
        emit(ctx, offering)
    else:
        emit(ctx, details(offering), title=f"offering {offering_id}")


def details(offering: dict[str, Any]) -> dict[str, Any]:
    """The offering as field/value lines: tiers and credits in words, not nested objects."""
    currency = offering["currency"]
    shown = {k: v for k, v in offering.items() if k not in ("usage", "sla")}
    usage = offering.get("usage")
    if usage:
        tiers = [
            f"up to {t['up_to']} at {t['price']}" if t["up_to"] else f"above at {t['price']}"
            for t in usage["tiers"]
        ]
        shown["usage"] = f"{usage['usage_type']} per {usage['unit']} ({currency}): " + ", ".join(
            tiers
        )
    sla = offering.get("sla")
    if sla:
        latency = (
            f", latency {sla['latency_target_ms']} ms per {sla['latency_window_minutes']} min"
            if sla["latency_target_ms"]
            else ""
        )
        credits = ", ".join(
            f"{t['credit_percent']} % below {t['below_percent']} %" for t in sla["credit_tiers"]
        )
        shown["sla"] = (
            f"availability {sla['availability_target_percent']} %{latency}; credit {credits} "
            f"(cap {sla['credit_cap_percent']} %)"
        )
    return shown
