"""`oss lab ... --netns`: the real-dataplane lab in network namespaces (lab/netns).

`oss/cli/lab.py` owns the commands and hands the namespace lab's cases to these functions:
`up --netns FILE`, `down --netns`, the namespace lab's part of `status`, `exec`, and `fault`
when the lab that runs is a namespace lab. Everything needs root (network namespaces): without
it, exit 2 with the reason. Its state lives in its own directory (default
~/.local/share/oss/lab-netns; `make lab-real` uses ./.state/lab-netns), so a simulated lab and
a namespace lab can run side by side.
"""

import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import platformdirs
import typer

from oss.cli.client import ApiClient, ClientError
from oss.cli.main import get_context, read_file
from oss.cli.output import Format, emit_json, error, table

MAKE_LAB_REAL_DIR = Path(".state") / "lab-netns"


def default_dir() -> Path:
    return Path(platformdirs.user_data_dir("oss", appauthor=False)) / "lab-netns"


def search_dirs() -> list[Path]:
    return [default_dir().resolve(), (Path.cwd() / MAKE_LAB_REAL_DIR).resolve()]


def recorded_dir(given: Path | None) -> Path | None:
    """The directory of the namespace lab to act on: --state-dir when it holds one, else the
    first search directory that does; None when there is none."""
    from lab.netns.state import state_file

    candidates = [given.expanduser().resolve()] if given is not None else search_dirs()
    return next((d for d in candidates if state_file(d).exists()), None)


def _require_root() -> None:
    from lab.netns.iproute import unavailable

    reason = unavailable()
    if reason is not None:
        raise ClientError(reason, exit_code=2)


def _lab_dir(given: Path | None) -> Path:
    found = recorded_dir(given)
    if found is None:
        looked = [given] if given is not None else search_dirs()
        raise ClientError(
            f"no namespace lab is recorded (looked in {', '.join(str(d) for d in looked)}); "
            "give its --state-dir"
        )
    return found


def _load(directory: Path) -> Any:
    from lab.netns.state import LabState

    state = LabState.load(directory)
    if state is None:
        raise ClientError(f"no namespace lab is recorded in {directory}")
    return state


# --- up ----------------------------------------------------------------------------------------


def up(
    ctx: typer.Context,
    file: Path,
    state_dir: Path | None,
    *,
    prefix: str,
    daemons: bool,
    trap_port: int,
    timeout: float,
    serve: Path | None,
    port: int,
) -> None:
    """Plan (a bad file stops here, exit 2 with file:line), build, start, report."""
    _require_root()
    from lab.netns import build, node, profiles
    from lab.netns.plan import check_prefix, plan_lab
    from lab.netns.state import run_dir
    from topology.clab import parse_clab

    path = file.expanduser().resolve()
    check_prefix(prefix)
    topology = parse_clab(read_file(path), str(file))
    plan = plan_lab(topology, prefix, profiles.profile_of)
    directory = (state_dir or default_dir()).expanduser().resolve()
    for folder, option in ((directory, "--state-dir"), (serve, "--serve")):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise ClientError(f"{option} {folder}: not a directory", exit_code=2)
    if serve is not None:
        _check_port_free(port)
    software = node.NodeSoftware(trap_port=trap_port) if daemons else None
    if software is not None:
        # a bad link var or profile: exit 2 with file:line, before anything is made
        node.check_lab(plan, run_dir(directory), source=topology.source)
    started = time.monotonic()
    try:
        state = build.up(
            plan,
            directory,
            software=software,
            topology=str(path),
            ready_timeout_s=timeout,
            extra={"trap_port": trap_port},
        )
    except OSError as exc:  # the state directory cannot be written, ...
        raise ClientError(f"{exc.filename or directory}: {exc.strerror or exc}") from None
    seconds = round(time.monotonic() - started, 2)
    recorded: dict[str, Any] = {"skipped": "the daemon runs in the management namespace: --serve"}
    if serve is not None:
        token = get_context(ctx).token
        try:
            recorded = _serve(state, serve.expanduser().resolve(), port, token, path, timeout)
        except BaseException:
            build.down(directory)
            raise
    _report(ctx, state, seconds, recorded, port if serve is not None else None)


def _check_port_free(port: int) -> None:
    """The forwarder's port on the root namespace's 127.0.0.1 (checked before anything is made)."""
    try:
        with socket.create_server(("127.0.0.1", port)):
            pass
    except OSError:
        raise ClientError(
            f"127.0.0.1:{port} is taken (by `make run`?): choose another --port", exit_code=2
        ) from None


def _serve(
    state: Any, serve_dir: Path, port: int, token: str | None, topology: Path, timeout: float
) -> dict[str, Any]:
    """`oss serve` in the management namespace, published on 127.0.0.1:port, inventory set."""
    import httpx

    from lab.netns import mgmt

    serve_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    mgmt.start_daemon(state, serve_dir, port, int(state.extra["trap_port"]), topology)
    mgmt.start_forwarder(state, port, port)
    base = f"http://127.0.0.1:{port}"  # the root namespace's loopback: the forwarder
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            log = state.state_dir / mgmt.SERVE_LOG
            raise ClientError(f"the daemon did not become ready within {timeout:g} s (see {log})")
        time.sleep(0.3)
    if not token:
        return {"skipped": "no token (OSS_TOKEN, --token or `oss token create --save`)"}
    updated: list[str] = []
    failed: dict[str, str] = {}
    with ApiClient(base, token) as api:
        for name, body in mgmt.inventory_updates(state).items():
            try:
                api.patch(f"/api/v1/devices/{quote(name, safe='')}", body)
                updated.append(name)
            except ClientError as exc:
                failed[name] = str(exc)
    for name, reason in failed.items():
        error(f"inventory: device {name} not updated: {reason}")
    return {"updated": updated, "failed": failed}


def _report(
    ctx: typer.Context, state: Any, seconds: float, recorded: dict[str, Any], port: int | None
) -> None:
    from lab.netns.state import LabSecrets, credentials_file

    plan = state.plan
    if get_context(ctx).output is Format.JSON:
        emit_json(
            {
                "kind": "netns",
                "name": plan.name,
                "state_dir": str(state.state_dir),
                "seconds": seconds,
                "timings": state.extra.get("timings", {}),
                "mgmt": {"namespace": plan.mgmt_namespace, "gateway": plan.mgmt_gateway},
                "nodes": {
                    n.name: {
                        "namespace": n.namespace,
                        "mgmt_address": n.mgmt_address,
                        "loopback": n.loopback,
                        "profile": n.profile,
                        "daemons": [p.daemon for p in state.processes_of(n.name)],
                    }
                    for n in plan.nodes
                },
                "inventory": recorded,
                "api": f"http://127.0.0.1:{port}" if port else None,
            }
        )
        return
    rows = [
        {
            "node": n.name,
            "mgmt": n.mgmt_address,
            "loopback": n.loopback,
            "profile": n.profile,
            "asn": n.asn or "",
            "daemons": " ".join(p.daemon for p in state.processes_of(n.name)) or "(none)",
        }
        for n in plan.nodes
    ]
    columns = ["node", "mgmt", "loopback", "profile", "asn", "daemons"]
    table(rows, columns, title=f"namespace lab {plan.name} (up in {seconds:g} s)")
    where = f"--state-dir {state.state_dir}"
    print(f"namespaces:  {plan.prefix}-{plan.name}-<node>; management {plan.mgmt_namespace}")
    print(f"gateway:     {plan.mgmt_gateway} (the daemon's address, where traps go)")
    print(f"credentials: {credentials_file(state.state_dir)}")
    if port is not None:
        print(f"the daemon:  http://127.0.0.1:{port} (runs in {plan.mgmt_namespace})")
        if "updated" in recorded:
            print(f"inventory:   {len(recorded['updated'])} devices updated")
        else:
            print(f"inventory:   not updated ({recorded['skipped']})")
    print("try:")
    first = plan.nodes[0] if plan.nodes else None
    if first is not None:
        print(f"  oss lab vtysh {first.name} 'show ip route' {where}   # no command: interactive")
        user = LabSecrets.load(state.state_dir).ssh_user
        address = first.mgmt_address
        print(f"  oss lab exec {where} -- ssh {user}@{address}   # password: credentials file")
    print(f"  oss lab exec {where} -- oss --url http://127.0.0.1:{port or 8080} device list")
    if plan.links:
        print(f"  oss lab fault link {plan.links[0].a} down {where}")
        print(f"  oss lab fault link {plan.links[0].a} delay 20ms loss 1% {where}")
    if first is not None:
        print(f"  oss lab fault node {first.name} down {where}")
    print(f"  oss lab status {where}")
    print(f"  oss lab down --netns {where}")


# --- down, status --------------------------------------------------------------------------


def down(state_dir: Path | None) -> None:
    _require_root()
    from lab.netns import build

    directory = recorded_dir(state_dir)
    if directory is None:
        print("no namespace lab is recorded: nothing to take down")
        return
    report = build.down(directory)
    if report is None:
        print(f"no namespace lab is recorded in {directory}: nothing to take down")
        return
    print(
        f"namespace lab {report['name']} down: {len(report['namespaces_deleted'])} namespaces "
        f"deleted, {report['processes_ended']} processes ended"
    )


def status(ctx: typer.Context, directory: Path) -> dict[str, Any]:
    """Print the namespace lab's status (as JSON when -o json is the caller's job)."""
    _require_root()
    from lab.netns import build, node

    report = build.status(directory, node.NodeSoftware())
    if report is None:
        raise ClientError(f"no namespace lab is recorded in {directory}")
    if get_context(ctx).output is Format.JSON:
        return report
    rows = [
        {
            "node": name,
            "namespace": n["namespace"] if n["present"] else f"{n['namespace']} (missing)",
            "mgmt": n["mgmt_address"],
            "loopback": n["loopback"],
            "down": n["down"],
            "daemons": _daemons_text(n["daemons"]),
        }
        for name, n in report["nodes"].items()
    ]
    title = f"namespace lab {report['name']} ({report['phase']}, {directory})"
    table(rows, ["node", "namespace", "mgmt", "loopback", "down", "daemons"], title=title)
    links = [
        {
            "link": f"{li['a']} -- {li['b']}",
            "subnet": li["subnet"],
            "a": li["a_oper"],
            "b": li["b_oper"],
            "impairment": li["impairment"],
        }
        for li in report["links"]
    ]
    table(links, ["link", "subnet", "a", "b", "impairment"], title="links")
    return report


def _daemons_text(daemons: dict[str, str]) -> str:
    """ "7 answering" when all are; else each daemon that is not, with its state."""
    if not daemons:
        return "(none)"
    off = {d: s for d, s in daemons.items() if s != "answering"}
    if not off:
        return f"{len(daemons)} answering"
    return " ".join(f"{d}:{s}" for d, s in off.items())


# --- exec, faults ------------------------------------------------------------------------------


def exec_in(state_dir: Path | None, node_name: str | None, command: list[str]) -> None:
    """Replace this process with `ip netns exec NS COMMAND` (the terminal and signals pass)."""
    _require_root()
    if not command:
        raise ClientError(
            "give the command after --: oss lab exec [--node N] -- CMD ...", exit_code=2
        )
    from lab.netns.mgmt import daemon_env

    state = _load(_lab_dir(state_dir))
    environment = dict(os.environ)
    if node_name:
        namespace = state.plan.node(node_name).namespace
    else:
        # `oss serve` started here talks to the lab and takes its traps without more settings;
        # the caller's own OSS_* settings win.
        namespace = state.plan.mgmt_namespace
        trap_port = int(state.extra.get("trap_port", 162))
        environment = {**daemon_env(state, trap_port), **environment}
    try:
        os.execvpe("ip", ["ip", "netns", "exec", namespace, *command], environment)
    except OSError as exc:
        raise ClientError(f"cannot run ip netns exec: {exc}") from None


def vtysh_in(state_dir: Path | None, node_name: str, commands: list[str]) -> None:
    """Replace this process with the node's vtysh (each command as one -c; none: interactive)."""
    _require_root()
    from lab.netns.node import vtysh_argv
    from lab.netns.state import run_dir

    state = _load(_lab_dir(state_dir))
    argv = vtysh_argv(run_dir(state.state_dir), state.plan.node(node_name))
    for command in commands:
        argv += ["-c", command]
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        raise ClientError(f"cannot run vtysh: {exc}") from None


def fault_link(ctx: typer.Context, directory: Path, endpoint: str, change: list[str]) -> None:
    _require_root()
    from lab.netns import faults

    state = _load(directory)
    how = ""
    if change == ["down"] or change == ["up"]:
        faults.set_link(state, endpoint, change == ["up"])
    elif change == ["clear"]:
        faults.clear(state, endpoint)
    else:
        how = faults.impair(state, endpoint, faults.parse_impairment(change))
    link = state.plan.link(endpoint)
    result = {
        "link": f"{link.a} -- {link.b}",
        "endpoint": endpoint,
        "down": state.faults.get(f"link:{endpoint}") == "down",
        "impairment": state.faults.get(f"netem:{endpoint}", ""),
        "by": how,
    }
    if get_context(ctx).output is Format.JSON:
        emit_json(result)
        return
    text = "down" if result["down"] else "up"
    if result["impairment"]:
        text += f", {result['impairment']}" + (f" ({how})" if how else "")
    print(f"{endpoint} (link {result['link']}): {text}")


def fault_node(ctx: typer.Context, directory: Path, name: str, up: bool, timeout: float) -> None:
    _require_root()
    from lab.netns import faults, node

    state = _load(directory)
    software = node.NodeSoftware(
        trap_port=int(state.extra.get("trap_port", node.DEFAULT_TRAP_PORT))
    )
    faults.set_node(state, name, up, software, ready_timeout_s=timeout)
    if get_context(ctx).output is Format.JSON:
        emit_json({"node": name, "up": up})
    else:
        print(f"{name}: {'up' if up else 'down'}")
