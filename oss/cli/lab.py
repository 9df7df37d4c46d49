"""`oss lab`: the simulated lab (lab/sim) — start, stop, status and fault injection.

With `--netns` (root), the same commands drive the real-dataplane lab in network namespaces
(`oss/cli/lab_netns.py`, lab/netns): `up --netns FILE`, `down --netns`, `exec`; `status` shows
both kinds, and `fault` acts on whichever lab runs.

`oss lab up FILE` starts the lab in a background process (or in this one with --foreground),
waits until every node answers on every protocol, records each node's address and the lab's
credentials file in the inventory when the daemon's URL and token are known, and prints the
nodes. The other commands talk to the running lab through its control socket in the state
directory. Exit codes: 0 done; 1 failed (no lab running, a node did not answer, the daemon
refused); 2 wrong input (topology file, endpoint, value).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import platformdirs
import typer

from oss.cli import lab_netns
from oss.cli.client import ClientError
from oss.cli.main import app, get_context, read_file
from oss.cli.output import Format, emit_json, error, table
from oss.errors import InvalidInput
from topology.units import parse_latency_us

lab_app = typer.Typer(
    help="Labs: simulated on 127.0.0.0/8, or (--netns) FRR in network namespaces.",
    no_args_is_help=True,
)
fault_app = typer.Typer(help="Fault injection in the running lab.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")
lab_app.add_typer(fault_app, name="fault")

# `python -m lab.sim.lab`, with the known warnings silenced before its imports run.
LAB_MAIN = (
    "import runpy; from oss.known_warnings import silence_known_warnings; "
    "silence_known_warnings(); runpy.run_module('lab.sim.lab', run_name='__main__', alter_sys=True)"
)
NODE_COLUMNS = ["node", "address", "up", "netconf", "gnmi", "snmp", "cli", "interfaces"]


# `make run` keeps its lab here, relative to the checkout it runs from (STATE=.state).
MAKE_RUN_LAB_DIR = Path(".state") / "lab"


def default_lab_dir() -> Path:
    return Path(platformdirs.user_data_dir("oss", appauthor=False)) / "lab"


StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="OSS_LAB_STATE_DIR",
        help="where the lab keeps its keys, credentials and control socket "
        "(default ~/.local/share/oss/lab; without it, the other commands also find the lab "
        "`make run` started in ./.state/lab)",
        show_default=False,
    ),
]


def _state_dir(given: Path | None) -> Path:
    return (given or default_lab_dir()).expanduser().resolve()


def _search_dirs() -> list[Path]:
    """Where a lab is looked for without --state-dir: the default directory, then the one
    `make run` starts its lab in (.state/lab of the checkout it runs from)."""
    return [default_lab_dir().resolve(), (Path.cwd() / MAKE_RUN_LAB_DIR).resolve()]


def _lab_dir(given: Path | None) -> Path:
    """The lab to act on: --state-dir (or OSS_LAB_STATE_DIR) when given, else the first of
    the search directories where a lab runs (the default directory when none does)."""
    if given is not None:
        return _state_dir(given)
    searched = _search_dirs()
    return next((d for d in searched if _live_state(d) is not None), searched[0])


def _live_state(directory: Path) -> dict[str, Any] | None:
    from lab.sim.lab import read_state

    state = read_state(directory)
    if state is None or not _is_lab_process(int(state.get("pid", 0))):
        return None
    return state


def _running_state(given: Path | None) -> dict[str, Any]:
    directory = _lab_dir(given)
    state = _live_state(directory)
    if state is None:
        looked = [directory] if given is not None else _search_dirs()
        raise ClientError(
            f"no lab is running (looked in {', '.join(str(d) for d in looked)}); "
            "give the lab's --state-dir or set OSS_LAB_STATE_DIR"
        )
    return state


def _is_lab_process(pid: int) -> bool:
    """A live, non-zombie process that is a lab (guards against a reused pid)."""
    if pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] == "Z":
        return False  # exited, waiting to be reaped
    return b"lab.sim.lab" in cmdline or b"lab\x00up" in cmdline


def _control(state: dict[str, Any], request: dict[str, Any]) -> Any:
    from lab.sim.control import control_request

    return control_request(Path(state["control"]), request)


# --- up --------------------------------------------------------------------------------------


@lab_app.command("up")
def lab_up(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="a containerlab *.clab.yml file")],
    state_dir: StateDir = None,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="run in this process until Ctrl-C")
    ] = False,
    subnet: Annotated[
        str | None,
        typer.Option(help="put every node in this 127.x.y.0/24 instead of its mgmt-ipv4"),
    ] = None,
    trap_receiver: Annotated[
        list[str] | None,
        typer.Option("--trap-receiver", help="HOST:PORT (loopback) for SNMP traps; repeatable"),
    ] = None,
    gnmi_insecure: Annotated[
        bool,
        typer.Option("--gnmi-insecure", help="plaintext gNMI (lab only; default is TLS)"),
    ] = False,
    no_gnmi: Annotated[bool, typer.Option("--no-gnmi", help="no gNMI servers")] = False,
    high_ports: Annotated[
        bool,
        typer.Option(
            "--high-ports",
            help="10830/57400/10161/10022 even as root (the default when not root)",
        ),
    ] = False,
    inventory: Annotated[
        bool,
        typer.Option(
            "--inventory/--no-inventory",
            help="record node addresses in the daemon's inventory (when a token is known)",
        ),
    ] = True,
    timeout: Annotated[
        float, typer.Option(min=1, help="seconds to wait for every node to answer")
    ] = 60.0,
    netns: Annotated[
        bool,
        typer.Option(
            "--netns",
            help="the real-dataplane lab: a network namespace per node running FRR, snmpd, "
            "lldpd and sshd (root only)",
        ),
    ] = False,
    prefix: Annotated[
        str, typer.Option(help="(--netns) namespace names start with PREFIX-LAB-")
    ] = "oss",
    daemons: Annotated[
        bool,
        typer.Option("--daemons/--no-daemons", help="(--netns) start the nodes' software"),
    ] = True,
    trap_port: Annotated[
        int,
        typer.Option(min=1, max=65535, help="(--netns) where the nodes send traps (the gateway)"),
    ] = 162,
    serve_dir: Annotated[
        Path | None,
        typer.Option(
            "--serve",
            help="(--netns) also run `oss serve` (state in this folder) inside the management "
            "namespace, published on 127.0.0.1:--port, and point its inventory at the lab",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="(--netns --serve) the daemon's port")
    ] = 8080,
) -> None:
    """Start one simulated device per node (or, with --netns, a namespace lab); wait until all
    answer; print the nodes."""
    import asyncio

    if netns:
        if subnet or trap_receiver or foreground or high_ports or no_gnmi or gnmi_insecure:
            raise ClientError(
                "--subnet, --trap-receiver, --foreground, --high-ports, --no-gnmi and "
                "--gnmi-insecure are the simulated lab's; the namespace lab takes none of them",
                exit_code=2,
            )
        lab_netns.up(
            ctx,
            file,
            state_dir,
            prefix=prefix,
            daemons=daemons,
            trap_port=trap_port,
            timeout=timeout,
            serve=serve_dir,
            port=port,
        )
        return

    from lab.sim.lab import Lab, Ports, assign_addresses, parse_receiver, read_state, serve
    from topology.clab import parse_clab

    path = file.expanduser().resolve()
    topology = parse_clab(read_file(path), str(file))  # a bad file stops here, exit 2
    assign_addresses(topology, subnet)
    receivers = [parse_receiver(r) for r in trap_receiver or []]
    directory = _state_dir(state_dir)
    existing = read_state(directory)
    if existing is not None and _is_lab_process(int(existing.get("pid", 0))):
        raise ClientError(
            f"a lab is already running from {directory} (pid {existing['pid']}); "
            "run `oss lab down` first or use another --state-dir"
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if foreground:
        lab = Lab(
            topology,
            directory,
            ports=Ports.high() if high_ports else None,
            subnet=subnet,
            trap_receivers=receivers,
            gnmi=not no_gnmi,
            gnmi_insecure=gnmi_insecure,
            topology_file=path,
        )

        async def ready(state: dict[str, Any]) -> None:
            answers = await _wait_answering(state, timeout)
            recorded = await asyncio.to_thread(_record, ctx, state, inventory)
            _report(ctx, state, answers, recorded)

        asyncio.run(serve(lab, on_ready=ready))
        return
    args = [sys.executable, "-c", LAB_MAIN, str(path), "--state-dir", str(directory)]
    if subnet:
        args += ["--subnet", subnet]
    for receiver in trap_receiver or []:
        args += ["--trap-receiver", receiver]
    if gnmi_insecure:
        args.append("--gnmi-insecure")
    if no_gnmi:
        args.append("--no-gnmi")
    if high_ports:
        args.append("--high-ports")
    state = _spawn(args, directory, timeout)
    answers = asyncio.run(_wait_answering(state, timeout))
    failing = {
        n: [p for p, ok in a.items() if not ok] for n, a in answers.items() if not all(a.values())
    }
    if failing:
        _stop(state)
        details = "; ".join(f"{n}: {', '.join(p)}" for n, p in failing.items())
        raise ClientError(f"the lab started but these nodes did not answer: {details}")
    _report(ctx, state, answers, _record(ctx, state, inventory))


def _spawn(args: list[str], directory: Path, timeout: float) -> dict[str, Any]:
    """Start the lab process, detached; wait for its state file."""
    from lab.sim.lab import LOG_FILE, read_state

    log_path = directory / LOG_FILE
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log_file:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # `oss lab up` returns; the lab keeps running
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            message = "the lab did not start:\n  " + "\n  ".join(tail)
            raise ClientError(message, exit_code=2 if code == 2 else 1)
        state = read_state(directory)
        if state is not None and state.get("pid") == proc.pid:
            return state
        time.sleep(0.1)
    proc.terminate()
    raise ClientError(f"the lab did not start within {timeout:g} s (see {log_path})")


def _community(state: dict[str, Any]) -> str:
    import yaml

    data = yaml.safe_load(Path(state["credentials"]).read_text(encoding="utf-8"))
    return str(data["snmp"]["community"])


async def _wait_answering(state: dict[str, Any], limit_s: float) -> dict[str, dict[str, bool]]:
    """Probe every node until all answer on every protocol, or the time is up."""
    import asyncio

    from lab.sim.lab import probe_node

    community = _community(state)
    deadline = time.monotonic() + limit_s
    answers: dict[str, dict[str, bool]] = {}
    pending = dict(state["nodes"])
    while pending:
        names = list(pending)
        results = await asyncio.gather(
            *(
                probe_node(pending[n]["address"], pending[n]["ports"], community, timeout_s=2.0)
                for n in names
            )
        )
        for name, result in zip(names, results, strict=True):
            answers[name] = result
            if all(result.values()):
                del pending[name]
        if not pending or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    return answers


def _record(ctx: typer.Context, state: dict[str, Any], enabled: bool) -> dict[str, Any]:
    """PATCH each node's address and the lab credentials into the inventory, if we can."""
    context = get_context(ctx)
    if not enabled:
        return {"skipped": "--no-inventory"}
    if not context.token:
        return {"skipped": "no daemon token (OSS_TOKEN or the CLI config)"}
    updated: list[str] = []
    failed: dict[str, str] = {}
    with context.client() as api:
        for name, node in state["nodes"].items():
            body = {
                "mgmt_address": node["address"],
                "credentials_ref": f"file:{state['credentials']}",
            }
            try:
                api.patch(f"/api/v1/devices/{quote(name, safe='')}", body)
                updated.append(name)
            except ClientError as exc:
                failed[name] = str(exc)
    for name, reason in failed.items():
        error(f"inventory: device {name} not updated: {reason}")
    return {"updated": updated, "failed": failed}


def _report(
    ctx: typer.Context,
    state: dict[str, Any],
    answers: dict[str, dict[str, bool]],
    recorded: dict[str, Any],
) -> None:
    if get_context(ctx).output is Format.JSON:
        emit_json({**state, "answering": answers, "inventory": recorded})
        return
    rows = []
    for name, node in state["nodes"].items():
        ports = node["ports"]
        failing = [p for p, ok in answers.get(name, {}).items() if not ok]
        rows.append(
            {
                "node": name,
                "address": node["address"],
                **{p: ports.get(p) for p in ("netconf", "gnmi", "snmp", "cli")},
                "answering": "all" if not failing else "not " + ",".join(failing),
            }
        )
    columns = ["node", "address", "netconf", "gnmi", "snmp", "cli", "answering"]
    table(rows, columns, title=f"lab {state.get('name')} (pid {state['pid']})")
    print(f"credentials: {state['credentials']}")
    print(f"ssh config:  {state['ssh_config']}")
    if state.get("ca_file"):
        print(f"gNMI CA:     {state['ca_file']}")
    if "updated" in recorded:
        print(f"inventory:   {len(recorded['updated'])} devices updated")
    else:
        print(f"inventory:   not updated ({recorded['skipped']})")


# --- down and status -------------------------------------------------------------------------


@lab_app.command("down")
def lab_down(
    state_dir: StateDir = None,
    netns: Annotated[
        bool, typer.Option("--netns", help="take down the namespace lab (idempotent; root)")
    ] = False,
) -> None:
    """Stop the running lab."""
    if netns:
        lab_netns.down(state_dir)
        return
    from lab.sim.lab import read_state, state_file

    directory = _lab_dir(state_dir)
    state = read_state(directory)
    if state is None:
        hint = "; a namespace lab is recorded: --netns" if lab_netns.recorded_dir(state_dir) else ""
        raise ClientError(f"no lab is running (state directory {directory}){hint}")
    if not _is_lab_process(int(state.get("pid", 0))):
        state_file(directory).unlink(missing_ok=True)
        raise ClientError(f"the lab of {directory} was not running; removed its stale state")
    _stop(state)
    print(f"lab {state.get('name')} stopped")


def _stop(state: dict[str, Any], timeout: float = 30.0) -> None:
    from lab.sim.control import ControlError

    pid = int(state["pid"])
    try:
        _control(state, {"op": "stop"})
    except ControlError:
        if _is_lab_process(pid):
            os.kill(pid, signal.SIGTERM)  # the pid of the lab process `oss lab up` started
    deadline = time.monotonic() + timeout
    while _is_lab_process(pid):
        if time.monotonic() > deadline:
            raise ClientError(f"the lab (pid {pid}) did not stop within {timeout:g} s")
        time.sleep(0.1)


@lab_app.command("status")
def lab_status(ctx: typer.Context, state_dir: StateDir = None) -> None:
    """The running labs' nodes, interfaces and links: the simulated lab, the namespace lab."""
    netns_dir = lab_netns.recorded_dir(state_dir)
    sim_running = _live_state(_lab_dir(state_dir)) is not None
    if netns_dir is None and not sim_running:
        looked = [state_dir] if state_dir is not None else _search_dirs()
        looked += [] if state_dir is not None else lab_netns.search_dirs()
        raise ClientError(
            f"no lab is running (looked in {', '.join(str(d) for d in looked)}: neither a "
            "simulated lab nor a namespace lab); give the lab's --state-dir"
        )
    reports = {}
    if sim_running:
        reports["sim"] = _sim_status(ctx, state_dir)
    if netns_dir is not None:
        reports["netns"] = lab_netns.status(ctx, netns_dir)
    if get_context(ctx).output is Format.JSON:
        # One lab: its report as it is; both: {"sim": ..., "netns": ...}.
        emit_json(next(iter(reports.values())) if len(reports) == 1 else reports)


def _sim_status(ctx: typer.Context, state_dir: Path | None) -> dict[str, Any]:
    """Print the simulated lab's tables (unless -o json); its report."""
    state = _running_state(state_dir)
    status = _control(state, {"op": "status"})
    report = {"kind": "sim", "pid": state["pid"], **status}
    if get_context(ctx).output is Format.JSON:
        return report
    rows = []
    for name, node in status["nodes"].items():
        interfaces = " ".join(f"{i}:{s['oper']}" for i, s in node["interfaces"].items())
        rows.append(
            {
                "node": name,
                "address": node["address"],
                "up": node["up"],
                **node["ports"],
                "interfaces": interfaces,
            }
        )
    table(rows, NODE_COLUMNS, title=f"lab {status['name']} (pid {state['pid']})")
    links = [
        {
            "link": f"{link['a']} -- {link['b']}",
            "up": link["up"],
            "latency_us": link["latency_us"],
            "loss": f"{link['loss'] * 100:g}%",
        }
        for link in status["links"]
    ]
    table(links, ["link", "up", "latency_us", "loss"], title="links")
    return report


# --- faults ----------------------------------------------------------------------------------


def _parse_loss(text: str) -> float:
    """`1%`, `0.5%` or `1` (percent) -> a fraction."""
    number = text.strip().removesuffix("%")
    try:
        percent = float(number)
    except ValueError:
        raise InvalidInput(f"loss '{text}' is not a percentage (example: 1%)") from None
    if not 0.0 <= percent <= 100.0:
        raise InvalidInput(f"loss '{text}' is not between 0% and 100%")
    return percent / 100.0


def _up_or_down(word: str) -> bool:
    if word not in ("up", "down"):
        raise InvalidInput(f"expected up or down, not '{word}'")
    return word == "up"


def _netns_dir(state_dir: Path | None) -> Path | None:
    """The namespace lab a fault goes to: when one is recorded and no simulated lab runs there."""
    netns_dir = lab_netns.recorded_dir(state_dir)
    if netns_dir is None or _live_state(_lab_dir(state_dir)) is not None:
        return None
    return netns_dir


@lab_app.command(
    "exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def lab_exec(
    command: Annotated[list[str] | None, typer.Argument(help="the command, after --")] = None,
    node: Annotated[
        str | None, typer.Option(help="run in this node's namespace (default: the management one)")
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """Run a command inside the namespace lab: in the management namespace (where the daemon
    lives: `oss lab exec -- oss serve ...` gets the lab's OSS_* settings) or in a node's."""
    lab_netns.exec_in(state_dir, node, command or [])


@lab_app.command("vtysh")
def lab_vtysh(
    node: Annotated[str, typer.Argument(help="the node, e.g. agg1")],
    commands: Annotated[
        list[str] | None, typer.Argument(help="vtysh commands, each quoted (none: interactive)")
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """A node's vtysh in the namespace lab, as `docker exec -it NODE vtysh` in containerlab."""
    lab_netns.vtysh_in(state_dir, node, commands or [])


@fault_app.command("link")
def fault_link(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="one end of the link, e.g. r1:eth1")],
    change: Annotated[
        list[str],
        typer.Argument(
            help="down | up | latency 5ms [loss 1%] | loss 1%; the namespace lab: down | up | "
            "delay 20ms [jitter 2ms] [loss 1%] | clear (on this end)"
        ),
    ],
    state_dir: StateDir = None,
) -> None:
    """Set a link down or up (both ends; the namespace lab: this end, the far end loses
    carrier), or impair it with latency and loss."""
    netns_dir = _netns_dir(state_dir)
    if netns_dir is not None:
        lab_netns.fault_link(ctx, netns_dir, endpoint, change)
        return
    request: dict[str, Any]
    if len(change) == 1:
        request = {"op": "link", "endpoint": endpoint, "up": _up_or_down(change[0])}
    else:
        if len(change) % 2:
            raise InvalidInput("expected pairs: latency 5ms loss 1%")
        request = {"op": "impair", "endpoint": endpoint}
        for key, value in zip(change[::2], change[1::2], strict=True):
            if key == "latency":
                try:
                    request["latency_us"] = parse_latency_us(value)
                except ValueError as exc:
                    raise InvalidInput(str(exc)) from None
            elif key == "loss":
                request["loss"] = _parse_loss(value)
            else:
                raise InvalidInput(f"unknown impairment '{key}' (latency, loss)")
    state = _running_state(state_dir)
    links = _control(state, request)
    link = next((x for x in links if endpoint in (x["a"], x["b"])), None)
    if get_context(ctx).output is Format.JSON:
        emit_json(link)
    elif link is not None:
        print(
            f"{link['a']} -- {link['b']}: {'up' if link['up'] else 'down'}, "
            f"latency {link['latency_us']} us, loss {link['loss'] * 100:g}%"
        )


@fault_app.command("node")
def fault_node(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="a node of the lab")],
    state: Annotated[str, typer.Argument(help="down | up")],
    state_dir: StateDir = None,
) -> None:
    """Power a node off (it stops answering; neighbours see their links down) or on."""
    up = _up_or_down(state)
    netns_dir = _netns_dir(state_dir)
    if netns_dir is not None:
        lab_netns.fault_node(ctx, netns_dir, name, up, timeout=60.0)
        return
    lab_state = _running_state(state_dir)
    nodes = _control(lab_state, {"op": "node", "name": name, "up": up})
    if get_context(ctx).output is Format.JSON:
        emit_json({"node": name, "up": nodes.get(name)})
    else:
        print(f"{name}: {'up' if nodes.get(name) else 'down'}")
