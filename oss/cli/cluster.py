"""`oss cluster status`: the instances of the cluster as the answering daemon reads them from
the database: who is alive, who leads, which singleton jobs run where, how many devices each
polls, and how fresh each lease is (the database's clock)."""

from typing import Annotated, Any

import typer
from rich.console import Console

from oss.cli.main import app, get_context
from oss.cli.output import Format, console, emit_json, new_table, plain, text

cluster_app = typer.Typer(help="The cluster: instances, leases and device shares.")
app.add_typer(cluster_app, name="cluster")


@cluster_app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="the status document as JSON (as `-o json`)")
    ] = False,
) -> None:
    """Instances, their roles, device shares and lease ages; the singleton jobs' holders."""
    c = get_context(ctx)
    with c.client() as api:
        doc: dict[str, Any] = api.get("/api/v1/cluster")
    if as_json or c.output is Format.JSON:
        emit_json(doc)
    else:
        render(doc, console(soft_wrap=True))


def render(doc: dict[str, Any], out: Console) -> None:
    """A summary line, the instances' table and the singletons' table; names are data, printed
    as text (never markup)."""
    for line in summary(doc):
        out.print(text(line))
    instances = new_table(
        ("instance", "alive", "roles", "devices", "lease age", "expires in", "api url", "pid"),
        title="instances",
        whole={"instance", "alive", "devices", "lease age", "expires in", "pid"},
    )
    for member in doc["instances"]:
        name = member["instance"] + (" (this)" if member["instance"] == doc["instance"] else "")
        instances.add_row(
            text(name),
            text("yes" if member["alive"] else "NO", style="" if member["alive"] else "red"),
            text(plain(member["roles"])),
            text(member["devices"]),
            text(seconds(member["lease_age_s"])),
            text(expiry(member["expires_in_s"])),
            text(plain(member["api_url"])),
            text(plain(member["pid"])),
        )
    out.print(instances)
    if doc["singletons"]:
        singletons = new_table(
            ("job", "holder", "token", "expires in"),
            title="singleton jobs",
            whole={"job", "token", "expires in"},
        )
        for job in doc["singletons"]:
            singletons.add_row(
                text(job["job"]),
                text(plain(job["holder"])),
                text(plain(job["token"])),
                text(expiry(job["expires_in_s"])),
            )
        out.print(singletons)


def summary(doc: dict[str, Any]) -> list[str]:
    if not doc["enabled"]:
        return [f"single instance {doc['instance']} (cluster mode off): it owns every device"]
    alive = sum(1 for member in doc["instances"] if member["alive"])
    lines = [
        f"cluster of {len(doc['instances'])} instances, {alive} alive; "
        f"leader {plain(doc['leader']) if doc['leader'] else 'none'}; "
        f"lease {doc['lease_s']:g} s; answered by {doc['instance']}"
    ]
    if doc["unassigned_devices"]:
        lines.append(f"devices no live instance owns yet: {doc['unassigned_devices']}")
    return lines


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def expiry(value: float | None) -> str:
    """Seconds until a lease expires, or how long ago it did."""
    if value is None:
        return "-"
    return f"{value:.1f} s" if value >= 0 else f"expired {-value:.1f} s ago"
