"""`oss demo`: the BSS showcase, start to finish, on the embedded default.

It starts its own `oss serve` (SQLite in the demo's state directory, or the PostgreSQL database
given) on a free loopback port and the simulated metro lab, then does what a customer and an
operator would: a customer with a billing account orders a `metro-slice-200`, the order
provisions the slice, telemetry flows, one link on the slice's path goes down long enough to
break the 99.9 % availability target, comes back, and the month's bill shows the recurring
charge and the SLA credit with its evidence (the outage window, the alarm ids, the link).

Every step is narrated in a line or two. A step that fails names itself and the daemon's log;
the processes the demo started (the daemon and the lab, by pid) are stopped in every case
unless `keep` asks to leave them running.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rich.console import Console

from lab.sim.lab import Ports, assign_addresses, pid_alive, read_state
from oss.cli.bill import invoice
from oss.cli.client import ApiClient, ClientError
from oss.cli.config import CliConfig
from oss.cli.config import save_cli_config as save
from oss.cli.sla import render
from oss.errors import InvalidInput, OssError
from oss.paths import lab_topologies_dir
from topology.clab import parse_clab


def metro_topology() -> Path:
    """The metro lab the demo runs on, as shipped with the package."""
    return lab_topologies_dir() / "metro.clab.yml"


OFFERING = "metro-slice-200"
CUSTOMER = "acme"
ACCOUNT = "acme-main"
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
ALARMS = "/tmf-api/alarm/v4/alarm"
BILLS = "/tmf-api/customerBillManagement/v4/customerBill"
RATES = "/tmf-api/customerBillManagement/v4/appliedCustomerBillingRate"
DEMO_FILE = "demo.json"
POLLING_S = 2


class DemoError(Exception):
    """A step of the demo failed, or it cannot start (`exit_code` 2: a bad option or
    precondition); the message says which and why."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class PreconditionError(DemoError):
    """The demo cannot start here (port in use, a lab or daemon already running)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


@dataclass(frozen=True)
class DemoOptions:
    state_dir: Path
    port: int | None = None  # None: a free one
    keep: bool = False
    database_url: str | None = None  # None: SQLite in the state directory
    topology: Path = field(default_factory=metro_topology)
    subnet: str | None = None  # None: the topology's own addresses, or a free 127.10.N.0/24
    telemetry_s: float = 15.0
    outage_s: float = 30.0
    wait_s: float = 90.0  # the longest wait for any one thing (order, alarm, clear)


@dataclass
class Processes:
    """What the demo started, so it stops exactly those."""

    state_dir: Path
    daemon: subprocess.Popen[bytes] | None = None
    lab_started: bool = False

    @property
    def lab_dir(self) -> Path:
        return self.state_dir / "lab"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "daemon.log"

    @property
    def cli_config(self) -> Path:
        return self.state_dir / "cli.yaml"


@dataclass
class Demo:
    options: DemoOptions
    console: Console
    port: int = 0
    token: str = ""
    procs: Processes = field(init=False)
    step: str = "checking the preconditions"
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.procs = Processes(self.options.state_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- narration ----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        """One narrated step; an error inside names the step."""
        self.step = title
        self.console.print(f"\n[bold]== {title}[/bold]", highlight=False)
        try:
            yield
        except DemoError:
            raise
        except (
            ClientError,
            OssError,
            OSError,
            subprocess.SubprocessError,
            KeyError,
            IndexError,
            ValueError,
        ) as exc:
            raise DemoError(str(exc)) from exc

    # --- the whole run ------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Every step in order; the processes are stopped afterwards unless kept."""
        self._check_preconditions()
        try:
            self._steps()
        except BaseException as exc:
            died = self.procs.daemon.poll() if self.procs.daemon is not None else None
            self._stop_all()  # whatever went wrong, nothing the demo started stays behind
            if not isinstance(exc, DemoError | KeyboardInterrupt):
                raise
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            if died is not None:
                reason += f" (the daemon had exited with code {died})"
            raise DemoError(
                f"the demo failed at step '{self.step}': {reason}\n"
                f"  the daemon's log: {self.procs.log_path}\n"
                f"  the lab's log:    {self.procs.lab_dir / 'lab.log'}"
            ) from exc
        if self.options.keep:
            self._how_to_stop()
        else:
            with self.stage("Stopping the lab and the daemon"):
                self._stop_all()
                self.say(f"Stopped. Everything the demo wrote is in {self.options.state_dir}.")
        return self.facts

    def _steps(self) -> None:
        self._start_daemon()
        self._lab_up()
        self._customer_and_account()
        order = self._order()
        service = self._show_product_and_service(order)
        self._telemetry(service)
        link, endpoint = self._fault(service)
        self._outage(service, link)
        self._restore(endpoint, link)
        self._sla(service)
        self._bill()
        self._where_to_look(service)

    # --- preconditions and processes ----------------------------------------------------------

    def _check_preconditions(self) -> None:

        state_dir = self.options.state_dir
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        lab = read_state(self.procs.lab_dir)
        if lab is not None and pid_alive(int(lab.get("pid", 0))):
            raise PreconditionError(
                f"a lab is already running from {self.procs.lab_dir} (pid {lab['pid']}); "
                f"stop it with `oss lab down --state-dir {self.procs.lab_dir}` "
                "or use another --state-dir"
            )
        previous = read_demo_file(state_dir)
        if previous and pid_alive(int(previous.get("daemon_pid", 0))):
            raise PreconditionError(
                f"a demo daemon is still running from {state_dir} (pid {previous['daemon_pid']}, "
                f"{previous.get('url')}); stop it first or use another --state-dir"
            )
        if self.options.subnet is not None:
            check_lab_subnet(self.options.topology, self.options.subnet)
        if self.options.port is None:
            self.port = free_port()
        elif not port_is_free(self.options.port):
            raise PreconditionError(
                f"port {self.options.port} on 127.0.0.1 is in use; pick another --port"
            )
        else:
            self.port = self.options.port

    def _start_daemon(self) -> None:
        with self.stage("Starting the daemon"):
            env = self._child_env()
            created = run_oss(
                [
                    *("token", "create", "--role", "operator", "--name", "demo", "--replace"),
                    *("--state-dir", str(self.options.state_dir)),
                ],
                env,
            )
            self.token = created.stdout.strip().splitlines()[-1]
            save_cli_config(self.procs.cli_config, self.url, self.token)
            log = self.procs.log_path.open("ab")
            with log:
                self.procs.daemon = subprocess.Popen(
                    [
                        *oss_command(),
                        *("serve", "--state-dir", str(self.options.state_dir)),
                        *("--port", str(self.port), "--topology", str(self.options.topology)),
                    ],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            self._write_demo_file()
            self._wait_ready()
            where = "PostgreSQL" if self.options.database_url else "SQLite"
            self.say(
                f"`oss serve` is up on {self.url} (pid {self.procs.daemon.pid}; {where}; "
                f"it polls every device every {POLLING_S} s)."
            )

    def _child_env(self) -> dict[str, str]:
        """The children's environment: the caller's, without its OSS_* settings (the demo runs
        on its own state), with the lab's loopback ports and a fast polling interval."""

        env = {k: v for k, v in os.environ.items() if not k.startswith("OSS_")}
        env.update(
            {
                "OSS_DRIVERS__ALLOWED_NETWORKS": '["127.0.0.0/8"]',
                "OSS_DRIVERS__PORTS": json.dumps(Ports.for_this_user().as_dict()),
                "OSS_ASSURANCE__POLLING__INTERVAL_S": str(POLLING_S),
                "OSS_BSS__USAGE_INTERVAL_S": "10",
                "OSS_CLI_CONFIG": str(self.procs.cli_config),
                "OSS_URL": self.url,
            }
        )
        if self.token:
            env["OSS_TOKEN"] = self.token
        if self.options.database_url:
            env["OSS_DATABASE_URL"] = self.options.database_url
        return env

    def _wait_ready(self) -> None:
        daemon = self.procs.daemon
        assert daemon is not None

        def ready() -> bool:
            if daemon.poll() is not None:
                raise DemoError(f"`oss serve` exited with code {daemon.returncode}")
            try:
                with ApiClient(self.url, None, timeout=2) as api:
                    api.request("GET", "/readyz")
            except ClientError:
                return False
            return True

        wait_until(ready, 60, "the daemon to be ready")

    def _write_demo_file(self) -> None:
        daemon = self.procs.daemon
        data = {
            "url": self.url,
            "daemon_pid": daemon.pid if daemon else None,
            "lab_dir": str(self.procs.lab_dir),
            "cli_config": str(self.procs.cli_config),
            "log": str(self.procs.log_path),
        }
        (self.options.state_dir / DEMO_FILE).write_text(json.dumps(data, indent=2) + "\n")

    def _lab_up(self) -> None:
        with self.stage("Starting the simulated metro lab"):
            args = ["lab", "up", str(self.options.topology), "--state-dir", str(self.procs.lab_dir)]
            subnet = self.options.subnet or free_lab_subnet(self.options.topology)
            if subnet is not None:
                args += ["--subnet", subnet]
            self.procs.lab_started = True  # from here on, `lab down` is part of the clean-up
            run_oss(["-o", "json", *args], self._child_env(), timeout=120)
            self.say(
                "10 simulated devices (2 aggregation, 2 PE, 6 access routers) answer NETCONF, "
                "gNMI, SNMP and SSH on loopback"
                + (f" in {subnet}" if subnet else "")
                + "; the daemon's inventory now points at them."
            )

    def _stop_all(self) -> None:
        """Stop what the demo started, never anything else: the daemon first (SIGTERM, SIGKILL
        after 30 s; stopped first so the lab going away raises no alarms in its state), then
        the lab (`oss lab down`: its control socket, then its recorded pid)."""
        daemon = self.procs.daemon
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        if self.procs.lab_started:
            with contextlib.suppress(subprocess.SubprocessError, OssError, DemoError):
                if read_state(self.procs.lab_dir) is not None:
                    down = ["lab", "down", "--state-dir", str(self.procs.lab_dir)]
                    run_oss(down, self._child_env())
            self.procs.lab_started = False
        with contextlib.suppress(FileNotFoundError):
            (self.options.state_dir / DEMO_FILE).unlink()

    def _how_to_stop(self) -> None:
        daemon = self.procs.daemon
        assert daemon is not None
        self.console.print("\n[bold]== Still running (--keep)[/bold]", highlight=False)
        self.say(
            f"The daemon (pid {daemon.pid}) and the lab keep running. To stop them:\n"
            f"  oss lab down --state-dir {self.procs.lab_dir}\n"
            f"  kill {daemon.pid}"
        )
        self.facts["daemon_pid"] = daemon.pid
        self.facts["lab_dir"] = str(self.procs.lab_dir)

    # --- the business steps -------------------------------------------------------------------

    def api(self) -> ApiClient:
        return ApiClient(self.url, self.token)

    def _customer_and_account(self) -> None:
        with self.stage("Creating a customer and a billing account"), self.api() as api:
            get_or_create(api, "/api/v1/customers", CUSTOMER, {"id": CUSTOMER, "name": "ACME Corp"})
            body = {
                "id": ACCOUNT,
                "customer": CUSTOMER,
                "name": "ACME main account",
                "currency": "EUR",
                "billing_day": 1,
            }
            get_or_create(api, "/api/v1/accounts", ACCOUNT, body)
            self.say(
                f"Customer '{CUSTOMER}' (ACME Corp) with billing account '{ACCOUNT}': EUR, "
                "billing periods start on day 1 of each month."
            )
            self.facts["account"] = ACCOUNT

    def _order(self) -> dict[str, Any]:
        with self.stage(f"Ordering a {OFFERING} slice from site north to site south"):
            body = {
                "billingAccount": {"id": ACCOUNT},
                "productOrderItem": [
                    {
                        "id": "1",
                        "action": "add",
                        "productOffering": {"id": OFFERING},
                        "product": {
                            "productCharacteristic": [
                                {"name": "from", "value": "north"},
                                {"name": "to", "value": "south"},
                            ]
                        },
                    }
                ],
            }
            with self.api() as api:
                order: dict[str, Any] = api.post(ORDERS, body)
                self.say(
                    f"TMF622 product order {order['id']} is {order['state']}; provisioning ..."
                )
                path = f"{ORDERS}/{quote(order['id'], safe='')}"
                final = {"completed", "failed", "cancelled", "rejected"}

                def done() -> bool:
                    nonlocal order
                    order = api.get(path)
                    return order.get("state") in final

                wait_until(done, self.options.wait_s, f"order {order['id']} to end")
            if order["state"] != "completed":
                notes = "; ".join(n.get("text", "") for n in order.get("note") or [])
                raise DemoError(f"order {order['id']} ended {order['state']}: {notes}")
            self.say(f"Order {order['id']} completed.")
            self.facts["order"] = order["id"]
            return order

    def _show_product_and_service(self, order: dict[str, Any]) -> dict[str, Any]:
        with self.stage("The product and the service it became"):
            product = order["productOrderItem"][0]["product"]
            name = product["realizingService"][0]["name"]
            with self.api() as api:
                service = api.get(f"/api/v1/services/{quote(name, safe='')}")
            hops = service["placement"]["primary"]["devices"]
            self.say(
                f"Product {product['id']} is {product.get('status')} since "
                f"{product.get('startDate')} (charging starts then)."
            )
            self.say(
                f"Service {name} ({service['type']}, {service['state']}): "
                f"{' -> '.join(hops)}, 200 Mbit/s reserved, expedited forwarding."
            )
            self.facts["product"] = product["id"]
            self.facts["service"] = name
            return dict(service)

    def _telemetry(self, service: dict[str, Any]) -> None:
        seconds = self.options.telemetry_s
        with self.stage(f"Letting telemetry flow for {seconds:g} s"):
            time.sleep(seconds)
            hop = service["resources"]["links"][0]
            device, interface = first_end(self.url, self.token, str(hop["id"]))
            traffic = ""

            def measured() -> bool:
                nonlocal traffic
                traffic = traffic_line(self.url, device, interface)
                return bool(traffic)

            # the first rates need two polls of the device after it joined the inventory
            wait_until(measured, self.options.wait_s, f"traffic rates of {device}:{interface}")
            with self.api() as api:
                open_alarms = api.get(ALARMS, state="raised")
            self.say(f"{traffic} {len(open_alarms)} alarms are open.")

    def _fault(self, service: dict[str, Any]) -> tuple[str, str]:
        with self.stage("Breaking a link on the slice's path"):
            link = str(service["resources"]["links"][0]["id"])
            with self.api() as api:
                shown = api.get(f"/api/v1/links/{quote(link, safe='')}")
            endpoint = f"{shown['a']['device']}:{shown['a']['interface']}"
            far = f"{shown['b']['device']}:{shown['b']['interface']}"
            lab = ["--state-dir", str(self.procs.lab_dir)]
            run_oss(["lab", "fault", "link", endpoint, "down", *lab], self._child_env())
            self.say(
                f"`oss lab fault link {endpoint} down`: link {link} ({endpoint} -- {far}) is down."
            )
            self.facts["link"] = link
            self.facts["fault_at"] = datetime.now(UTC).isoformat()
            return link, endpoint

    def _outage(self, service: dict[str, Any], link: str) -> None:
        with self.stage("Waiting for the alarms"):
            name = service["name"]
            found: list[dict[str, Any]] = []

            def raised() -> bool:
                nonlocal found
                with self.api() as api:
                    found = api.get(ALARMS, state="raised", limit=1000)
                return any(is_service_alarm(a, name) for a in found)

            started = time.monotonic()
            wait_until(raised, self.options.wait_s, f"a service alarm on {name}")
            for alarm in sorted(found, key=lambda a: int(a["id"])):
                self.say(describe_alarm(alarm))
            roots = [a for a in found if a.get("isRootCause")]
            if not any(link in json.dumps(a.get("alarmedObject")) for a in roots):
                self.say(f"(note: no root-cause alarm names link {link} yet)")
            self.facts["alarms"] = sorted(int(a["id"]) for a in found)
            rest = max(0.0, self.options.outage_s - (time.monotonic() - started))
            self.say(
                f"Keeping the link down for {self.options.outage_s:g} s in all: the slice has been "
                "active for about a minute, so this outage takes it well below 99.9 %."
            )
            time.sleep(rest)

    def _restore(self, endpoint: str, link: str) -> None:
        with self.stage("Restoring the link"):
            lab = ["--state-dir", str(self.procs.lab_dir)]
            run_oss(["lab", "fault", "link", endpoint, "up", *lab], self._child_env())
            self.say(f"`oss lab fault link {endpoint} up`: link {link} is back.")
            ids = set(self.facts.get("alarms", []))

            def cleared() -> bool:
                with self.api() as api:
                    still = api.get(ALARMS, state="raised", limit=1000)
                return not ids & {int(a["id"]) for a in still}

            wait_until(cleared, self.options.wait_s, "the alarms to clear")
            self.say(f"Alarms {', '.join(f'#{i}' for i in sorted(ids))} are cleared.")

    def _sla(self, service: dict[str, Any]) -> None:
        with self.stage("The slice's SLA this month"):
            with self.api() as api:
                doc = api.get(f"/api/v1/sla/{quote(service['name'], safe='')}")

            render(doc, self.console)
            self.facts["sla"] = doc

    def _bill(self) -> None:
        period = datetime.now(UTC).strftime("%Y-%m")
        with self.stage(f"Running the bill for {period}"):
            with self.api() as api:
                run = api.post("/api/v1/bill-runs", {"period": period, "account": ACCOUNT})
                bill_id = run["bills"][0]["billId"]
                bill = api.get(f"{BILLS}/{bill_id}")
                rates = api.get(RATES, **{"bill.id": bill_id, "limit": 1000})

            self.say(f"Draft bill #{bill_id} of account {ACCOUNT} (`oss bill show {bill_id}`):")
            self.console.print(invoice(bill, rates))
            self.facts["bill"] = {"customerBill": bill, "appliedCustomerBillingRate": rates}

    def _where_to_look(self, service: dict[str, Any]) -> None:
        with self.stage("Where to look"):
            url, name = self.url, service["name"]
            bill_id = self.facts["bill"]["customerBill"]["id"]
            again = f"oss serve --state-dir {self.options.state_dir} --port {self.port}"
            if self.options.database_url:
                again = f"OSS_DATABASE_URL=... {again}"
            still = "" if self.options.keep else f" (once `{again}` runs again)"
            self.say(
                f"API{still}:\n"
                f"  {url}/api/v1/docs\n"
                f"  {url}{ORDERS}/{self.facts['order']}\n"
                f"  {url}/api/v1/services/{name}\n"
                f"  {url}{ALARMS}\n"
                f"  {url}/api/v1/sla/{name}\n"
                f"  {url}{BILLS}/{bill_id}\n"
                f"CLI (the demo's token is in {self.procs.cli_config}):\n"
                f"  export OSS_CLI_CONFIG={self.procs.cli_config}\n"
                f"  oss --url {url} order list\n"
                f"  oss --url {url} alarm list\n"
                f"  oss --url {url} sla show {name}\n"
                f"  oss --url {url} bill show {bill_id}"
            )
            self.facts.update({"url": url, "state_dir": str(self.options.state_dir)})


# --- helpers ------------------------------------------------------------------------------------


def oss_command() -> list[str]:
    """The `oss` command of this installation."""
    beside = Path(sys.executable).parent / "oss"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("oss")
    if found:
        return [found]
    return [sys.executable, "-c", "from oss.cli.main import main; main()"]


def run_oss(
    args: list[str], env: dict[str, str], *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """One `oss` command; a failure becomes a DemoError with what it printed."""
    done = subprocess.run(
        [*oss_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()
        raise DemoError(f"`oss {' '.join(args[:3])} ...` failed ({done.returncode}): {said}")
    return done


def save_cli_config(path: Path, url: str, token: str) -> None:

    save(CliConfig(url=url, token=token), path)


def read_demo_file(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / DEMO_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.5)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def check_lab_subnet(topology: Path, subnet: str) -> None:
    """A chosen `--subnet` must be a loopback network with room for every node, and free."""

    parsed = parse_clab(topology.read_text(encoding="utf-8"), str(topology))
    try:
        addresses = assign_addresses(parsed, subnet).values()
    except InvalidInput as exc:
        raise PreconditionError(f"--subnet: {exc}") from None
    port = Ports.for_this_user().netconf
    busy = [a for a in addresses if not port_is_free(port, a)]
    if busy:
        raise PreconditionError(
            f"--subnet {subnet}: {busy[0]}:{port} is in use (another lab?); pick another /24"
        )


def free_lab_subnet(topology: Path) -> str | None:
    """None when the topology's own addresses are free; otherwise a 127.10.N.0/24 whose
    addresses are (so a `make run` lab or a test lab elsewhere does not get in the way)."""

    port = Ports.for_this_user().netconf
    parsed = parse_clab(topology.read_text(encoding="utf-8"), str(topology))
    candidates: list[str | None] = [None]
    candidates += [f"127.10.{n}.0/24" for n in random.sample(range(100, 251), 30)]
    for subnet in candidates:
        addresses = assign_addresses(parsed, subnet).values()
        if all(port_is_free(port, address) for address in addresses):
            return subnet
    raise DemoError("no free loopback subnet for the lab (127.10.100-250.0/24 all in use)")


def get_or_create(api: ApiClient, path: str, ident: str, body: dict[str, Any]) -> Any:
    """A state directory used before already has the customer and the account."""
    try:
        return api.get(f"{path}/{quote(ident, safe='')}")
    except ClientError:
        return api.post(path, body)


def is_service_alarm(alarm: dict[str, Any], service: str) -> bool:
    target = alarm.get("alarmedObject") or {}
    return alarm.get("alarmedObjectType") == "service" and target.get("id") == service


def describe_alarm(alarm: dict[str, Any]) -> str:
    target = alarm.get("alarmedObject") or {}
    role = "root cause" if alarm.get("isRootCause") else "correlated"
    parent = alarm.get("parentAlarm") or []
    under = f", under #{parent[0]['id']}" if parent else ""
    return (
        f"  alarm #{alarm['id']} {alarm.get('perceivedSeverity')} on "
        f"{alarm.get('alarmedObjectType')} {target.get('id')}: {alarm.get('probableCause')} "
        f"({alarm.get('specificProblem')}) [{role}{under}]"
    )


def traffic_line(url: str, device: str, interface: str) -> str:
    """The live traffic of one interface from the daemon's Prometheus gauges ("" if none yet)."""
    try:
        with ApiClient(url, None, timeout=5) as api:
            text = api.request("GET", "/metrics").text
    except ClientError:
        return ""
    values: dict[str, float] = {}
    labels = f'device="{device}",interface="{interface}"'
    for line in text.splitlines():
        for metric in ("oss_interface_in_bps", "oss_interface_out_bps"):
            if line.startswith(metric + "{") and labels in line:
                values[metric] = float(line.rsplit(" ", 1)[1])
    if len(values) < 2:
        return ""
    return (
        f"Traffic on {device}:{interface}: {values['oss_interface_in_bps'] / 1e6:.1f} Mbit/s in, "
        f"{values['oss_interface_out_bps'] / 1e6:.1f} Mbit/s out."
    )


def first_end(url: str, token: str, link: str) -> tuple[str, str]:
    """The (device, interface) of a link's a-end."""
    with ApiClient(url, token) as api:
        shown = api.get(f"/api/v1/links/{quote(link, safe='')}")
    return str(shown["a"]["device"]), str(shown["a"]["interface"])
