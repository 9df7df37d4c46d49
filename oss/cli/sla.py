"""`oss sla show SERVICE`: a service's running SLA compliance for its current billing period —
the target, what was measured, met or missed, and the outage windows with their alarm ids."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from oss.cli.main import app, get_context
from oss.cli.output import Format, emit_json

sla_app = typer.Typer(help="SLA compliance of customer services.")
app.add_typer(sla_app, name="sla")


@sla_app.command("show")
def show_sla(ctx: typer.Context, service: str) -> None:
    """The running compliance of SERVICE in its current billing period."""
    c = get_context(ctx)
    with c.client() as api:
        doc: dict[str, Any] = api.get(f"/api/v1/sla/{service}")
    if c.output is Format.JSON:
        emit_json(doc)
    else:
        render(doc, Console(soft_wrap=True))


def render(doc: dict[str, Any], console: Console) -> None:
    avail = doc["availability"]
    period = doc["period"]
    verdict = "met" if doc["met"] else "MISSED"
    console.print(
        f"SLA of {doc['service']} (product {doc.get('product', '-')}, "
        f"offering {doc.get('offering', '-')}): {verdict}",
        highlight=False,
        markup=False,
    )
    console.print(
        f"  period        {period['start']} .. {period['end']} "
        f"(measured until {doc['measuredUntil']})",
        highlight=False,
        markup=False,
    )
    console.print(
        f"  availability  {avail['measuredPercent']} % against a target of "
        f"{avail['targetPercent']} % — {'met' if avail['met'] else 'missed'} "
        f"({avail['outageSeconds']} s down of {avail['measuredSeconds']} s measured)",
        highlight=False,
        markup=False,
    )
    latency = doc["latency"]
    if latency.get("measured", True) is False:
        console.print(f"  latency       {latency['note']}", highlight=False, markup=False)
    else:
        console.print(
            f"  latency       target {latency['targetMs']} ms per {latency['windowMinutes']} min "
            f"window: {latency['windowsMissed']} of {latency['windowsMeasured']} windows missed",
            highlight=False,
            markup=False,
        )
    windows = avail["outageWindows"]
    if not windows:
        console.print("  no outage in this period", highlight=False, markup=False)
        return
    table = Table(title="outage windows", header_style="bold")
    for column in ("start", "end", "seconds", "service alarms", "root alarms", "cause"):
        table.add_column(column)
    for w in windows:
        table.add_row(
            w["start"],
            w["end"],
            w["durationSeconds"],
            ", ".join(str(i) for i in w["serviceAlarmIds"]),
            ", ".join(str(i) for i in w["rootAlarmIds"]) or "-",
            w["cause"],
        )
    console.print(table)
