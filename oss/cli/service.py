"""`oss service ...` and `oss slice ...`: services as transactions, with live per-device
progress while a transaction runs (the daemon answers 202 and the CLI follows the transaction)."""

import json
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text

from oss.cli.client import ApiClient, ClientError
from oss.cli.main import app, confirm, emit, get_context, read_file
from oss.cli.output import Format, console, emit_json, new_table, print_data, text

service_app = typer.Typer(
    help="Services (the types in configs/services) and their transactions.", no_args_is_help=True
)
slice_app = typer.Typer(help="Network slices.", no_args_is_help=True)
txn_app = typer.Typer(help="Provisioning transactions.", no_args_is_help=True)
app.add_typer(service_app, name="service")
app.add_typer(slice_app, name="slice")
app.add_typer(txn_app, name="transaction")

SERVICE_COLUMNS = ["id", "name", "type", "customer", "state", "vlan", "vrf", "transaction_id"]
TERMINAL = {"committed", "rolled-back", "failed"}
DIFF_COLOURS = {"+": "green", "-": "red", "~": "yellow"}
POLL_S = 0.25


def _ref(ref: str) -> str:
    return quote(ref, safe="")


def _parse_params(pairs: list[str], params_file: Path | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if params_file is not None:
        import yaml

        data = yaml.safe_load(read_file(params_file))
        if not isinstance(data, dict):
            raise ClientError(f"{params_file}: parameters must be a mapping", exit_code=2)
        params.update(data)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ClientError(f"--param {pair!r}: expected NAME=VALUE", exit_code=2)
        try:
            params[key] = json.loads(value)  # numbers, lists, objects
        except ValueError:
            params[key] = value
    return params


def _progress_table(txn: dict[str, Any]) -> Table:
    table = new_table(
        ("device", "protocol", "state", "step", "time", "error"),
        title=f"transaction {txn['id']} ({txn.get('kind')}): {txn['state']}",
        whole={"device", "state", "step", "time"},
    )
    for d in txn.get("devices", []):
        spent = sum(float(s.get("ms", 0)) for s in d.get("steps") or [])
        table.add_row(
            text(d["device"]),
            text(d.get("protocol", "-")),
            text(d.get("state", "-")),
            text(d.get("step") or "-"),
            text(f"{spent:.0f} ms"),
            text((d.get("error") or "")[:80]),
        )
    return table


def _follow(api: ApiClient, txn_id: int, fmt: Format) -> dict[str, Any]:
    """Poll a transaction until it ends, showing each device's progress on a terminal."""
    path = f"/api/v1/transactions/{txn_id}"
    txn: dict[str, Any] = api.get(path)
    out = console()
    if fmt is Format.JSON or not out.is_terminal:
        while txn["state"] not in TERMINAL:
            time.sleep(POLL_S)
            txn = api.get(path)
        if fmt is Format.TABLE:
            # Piped: the final table once (Live would leave it without a trailing newline).
            out.print(_progress_table(txn))
        return txn
    from rich.live import Live  # only a terminal that watches a change needs it: not at start

    with Live(_progress_table(txn), console=out, refresh_per_second=8) as live:
        while txn["state"] not in TERMINAL:
            time.sleep(POLL_S)
            txn = api.get(path)
            live.update(_progress_table(txn))
    return txn


def _run_change(ctx: typer.Context, method: str, path: str, body: Any, *, dry_run: bool) -> None:
    fmt = get_context(ctx).output
    with get_context(ctx).client() as api:
        if dry_run:
            result = api.request(method, path, json=body, params={"dry_run": "true"}).json()
            _show_diffs(result, fmt)
            return
        response = api.request(method, path, json=body, params={"wait": "false"})
        started = response.json()
        if response.status_code != 202:
            emit(ctx, started.get("service", started))
            return
        txn = _follow(api, int(started["transaction_id"]), fmt)
        service = api.get(f"/api/v1/services/{started['service_id']}")
    if fmt is Format.JSON:
        emit_json({"service": service, "transaction": txn})
    else:
        print_data(
            Text.assemble(
                f"service {service['name']} (id {service['id']}): ",
                (str(service["state"]), "bold"),
            )
        )
    if txn["state"] != "committed":
        raise ClientError(f"transaction {txn['id']} {txn['state']}: {txn.get('error')}")


def _show_diffs(result: dict[str, Any], fmt: Format) -> None:
    if fmt is Format.JSON:
        emit_json(result)
        return
    out = console()
    for d in result.get("devices", []):
        out.print(
            Text.assemble((str(d["device"]), "bold"), f" ({d.get('protocol')}): {d.get('state')}")
        )
        if d.get("error"):
            out.print(text(f"  error: {d['error']}"))
        for line in d.get("diff", []):
            out.print(text(f"  {line}", DIFF_COLOURS.get(str(line)[:1], "")))
    if "in_sync" in result:
        out.print(text("in sync: no drift") if result["in_sync"] else text("drift found", "red"))


DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="show per-device diffs, change nothing")]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="NAME=VALUE (JSON values allowed); repeatable"),
]
ParamsFileOpt = Annotated[
    Path | None, typer.Option("--params-file", "-f", help="YAML file of parameters")
]


@service_app.command("create")
def service_create(
    ctx: typer.Context,
    type: Annotated[str, typer.Argument(help="a service type from configs/services, e.g. l3vpn")],
    param: ParamOpt = None,
    params_file: ParamsFileOpt = None,
    name: Annotated[str | None, typer.Option(help="service name (default: <type>-<id>)")] = None,
    dry_run: DryRunOpt = False,
) -> None:
    body = {"type": type, "name": name, "params": _parse_params(param or [], params_file)}
    _run_change(ctx, "POST", "/api/v1/services", body, dry_run=dry_run)


@service_app.command("list")
def service_list(
    ctx: typer.Context,
    type: Annotated[str | None, typer.Option(help="service type")] = None,
    customer: Annotated[str | None, typer.Option()] = None,
    state: Annotated[str | None, typer.Option()] = None,
) -> None:
    with get_context(ctx).client() as api:
        rows = api.get("/api/v1/services", type=type, customer=customer, state=state)
    emit(ctx, rows, SERVICE_COLUMNS)


@service_app.command("show")
def service_show(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="id or name")]
) -> None:
    with get_context(ctx).client() as api:
        emit(ctx, api.get(f"/api/v1/services/{_ref(ref)}"))


@service_app.command("diff")
def service_diff(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="id or name")]
) -> None:
    """Drift: devices' running configuration against what the service should have rendered."""
    with get_context(ctx).client() as api:
        result = api.get(f"/api/v1/services/{_ref(ref)}/diff")
    _show_diffs(result, get_context(ctx).output)
    if not result["in_sync"]:
        raise typer.Exit(1)


@service_app.command("reconcile")
def service_reconcile(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="id or name")]
) -> None:
    """Push what the service should have where the devices drifted (one transaction)."""
    _run_change(ctx, "POST", f"/api/v1/services/{_ref(ref)}/reconcile", None, dry_run=False)


@service_app.command("modify")
def service_modify(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="id or name")],
    param: ParamOpt = None,
    params_file: ParamsFileOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    body = {"params": _parse_params(param or [], params_file)}
    _run_change(ctx, "PATCH", f"/api/v1/services/{_ref(ref)}", body, dry_run=dry_run)


@service_app.command("delete")
def service_delete(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="id or name")],
    dry_run: DryRunOpt = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Decommission: remove the service from every device (one transaction)."""
    if not dry_run:
        confirm(f"remove service {ref} from every device", yes)
    _run_change(ctx, "DELETE", f"/api/v1/services/{_ref(ref)}", None, dry_run=dry_run)


@slice_app.command("create")
def slice_create(
    ctx: typer.Context,
    from_: Annotated[str, typer.Option("--from", help="site, device or device:interface")],
    to: Annotated[str, typer.Option("--to", help="site, device or device:interface")],
    bandwidth: Annotated[str, typer.Option(help="rate reserved on every hop, e.g. 200M")],
    customer: Annotated[str, typer.Option(help="customer the slice belongs to")],
    latency: Annotated[str | None, typer.Option(help="end-to-end budget, e.g. 5ms")] = None,
    isolation: Annotated[str | None, typer.Option(help="shared or dedicated")] = None,
    qos_class: Annotated[
        str | None, typer.Option("--qos-class", help="best-effort, assured, expedited")
    ] = None,
    protection: Annotated[str | None, typer.Option(help="none, link or node")] = None,
    name: Annotated[str | None, typer.Option(help="slice name")] = None,
    dry_run: DryRunOpt = False,
) -> None:
    body: dict[str, Any] = {"from": from_, "to": to, "bandwidth": bandwidth, "customer": customer}
    optional = {
        "latency": latency,
        "isolation": isolation,
        "qos_class": qos_class,
        "protection": protection,
        "name": name,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    _run_change(ctx, "POST", "/api/v1/slices", body, dry_run=dry_run)


@slice_app.command("list")
def slice_list(ctx: typer.Context, customer: Annotated[str | None, typer.Option()] = None) -> None:
    with get_context(ctx).client() as api:
        emit(ctx, api.get("/api/v1/slices", customer=customer), SERVICE_COLUMNS)


@txn_app.command("show")
def transaction_show(ctx: typer.Context, txn_id: int) -> None:
    """A transaction with each device's state, step and timings."""
    with get_context(ctx).client() as api:
        txn = api.get(f"/api/v1/transactions/{txn_id}")
    if get_context(ctx).output is Format.JSON:
        emit_json(txn)
    else:
        print_data(_progress_table(txn))
        if txn.get("error"):
            print_data(text(f"error: {txn['error']}"))
