"""`oss sla show SERVICE`: a service's running SLA compliance for its current billing period —
the target, what was measured, met or missed, and the outage windows with their alarm ids."""

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from oss.cli.main import app, get_context
from oss.cli.output import Format, console, emit_json, new_table, text

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
        render(doc, console(soft_wrap=True))


def render(doc: dict[str, Any], out: Console) -> None:
    """The compliance as text lines and the outage windows' table (never markup: ids and
    causes are data)."""
    avail = doc["availability"]
    period = doc["period"]
    verdict = "met" if doc["met"] else "MISSED"
    latency = doc["latency"]
    if latency.get("measured", True) is False:
        latency_line = f"  latency       {latency['note']}"
    else:
        latency_line = (
            f"  latency       target {latency['targetMs']} ms per {latency['windowMinutes']} min "
            f"window: {latency['windowsMissed']} of {latency['windowsMeasured']} windows missed"
        )
    lines = [
        f"SLA of {doc['service']} (product {doc.get('product', '-')}, "
        f"offering {doc.get('offering', '-')}): {verdict}",
        f"  period        {period['start']} .. {period['end']} "
        f"(measured until {doc['measuredUntil']}"
        f"{'; PARTIAL: the period has not ended' if doc.get('partial') else ''})",
        f"  availability  {avail['measuredPercent']} % against a target of "
        f"{avail['targetPercent']} % — {'met' if avail['met'] else 'missed'} "
        f"({avail['outageSeconds']} s down of {avail['measuredSeconds']} s measured)",
        latency_line,
    ]
    windows = avail["outageWindows"]
    if not windows:
        lines.append("  no outage in this period")
    for line in lines:
        out.print(text(line))
    if windows:
        out.print(_outage_table(windows))


def _outage_table(windows: list[dict[str, Any]]) -> Table:
    columns = ("start", "end", "seconds", "service alarms", "root alarms", "cause")
    table = new_table(columns, title="outage windows", whole={"start", "end", "seconds"})
    for w in windows:
        table.add_row(
            text(w["start"]),
            text(w["end"]),
            text(w["durationSeconds"]),
            text(", ".join(str(i) for i in w["serviceAlarmIds"])),
            text(", ".join(str(i) for i in w["rootAlarmIds"]) or "-"),
            text(w["cause"]),
        )
    return table
