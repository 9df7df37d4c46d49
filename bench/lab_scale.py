"""How many simulated devices one lab process serves with every protocol answering.

For N = 50, 100, 200, 400, ... (while the time budget allows) this starts a lab of N devices
in a ring (one process, as `oss lab up` runs it), then probes it from this process:

- every device: one SNMP GET of sysUpTime.0 and one NETCONF hello (ncclient connect +
  close-session, host key checked against the lab's known_hosts);
- a sample of devices: a CLI login with netmiko (`linux`) and a gNMI Capabilities with pygnmi.

It prints, per N: whether all answered, the lab's start-up time (process spawn to ready, and
the lab's own server start), its resident memory, memory per device, and the probe times; then
the largest N where everything answered. Bounded: the whole run stops after --budget seconds
(default 160) and never starts a size it cannot finish in the time left.

    .venv/bin/python -m bench.lab_scale [--sizes 50,100,200,400,800] [--budget 170]

Only loopback addresses are used (the lab binds 127.12.0.0/22).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.sim.lab import read_state, snmp_answers

SUBNET = "127.12.0.0/22"
NETCONF_THREADS = 8
CLI_SAMPLE = 3
GNMI_SAMPLE = 5


@dataclass
class Step:
    size: int
    ready_s: float = 0.0
    start_s: float = 0.0
    rss_mb: float = 0.0
    snmp_ok: int = 0
    snmp_s: float = 0.0
    netconf_ok: int = 0
    netconf_s: float = 0.0
    cli_ok: int = 0
    gnmi_ok: int = 0
    samples_s: float = 0.0
    error: str = ""

    @property
    def all_answered(self) -> bool:
        return (
            not self.error
            and self.snmp_ok == self.netconf_ok == self.size
            and self.cli_ok == min(CLI_SAMPLE, self.size)
            and self.gnmi_ok == min(GNMI_SAMPLE, self.size)
        )


def ring_topology(size: int) -> str:
    nodes = "\n".join(f"    d{i}: {{}}" for i in range(1, size + 1))
    links = "\n".join(
        f'    - endpoints: ["d{i}:eth1", "d{i % size + 1}:eth2"]' for i in range(1, size + 1)
    )
    return (
        f"name: scale{size}\ntopology:\n  defaults: {{kind: linux}}\n"
        f"  nodes:\n{nodes}\n  links:\n{links}\n"
    )


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def wait_ready(proc: subprocess.Popen[bytes], state_dir: Path, limit_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the lab exited with {proc.returncode}")
        state = read_state(state_dir)
        if state is not None and state.get("pid") == proc.pid:
            return state
        time.sleep(0.05)
    raise TimeoutError(f"the lab was not ready within {limit_s:g} s")


async def snmp_all(addresses: list[str], port: int, community: str) -> int:
    limit = asyncio.Semaphore(100)

    async def one(address: str) -> bool:
        async with limit:
            return await snmp_answers(address, port, community, 3.0)

    return sum(await asyncio.gather(*(one(a) for a in addresses)))


def netconf_hello(address: str, port: int, creds: dict[str, Any], ssh_config: Path) -> bool:
    from ncclient import manager

    session = manager.connect(
        host=address,
        port=port,
        username=creds["username"],
        password=creds["password"],
        ssh_config=str(ssh_config),
        hostkey_verify=True,
        allow_agent=False,
        look_for_keys=False,
        timeout=30,
    )
    session.close_session()
    return True


def cli_login(address: str, port: int, creds: dict[str, Any]) -> bool:
    from netmiko import ConnectHandler

    conn = ConnectHandler(
        device_type="linux",
        host=address,
        port=port,
        username=creds["username"],
        password=creds["password"],
        ssh_strict=True,
        system_host_keys=False,
        alt_host_keys=True,
        alt_key_file=creds["known_hosts"],
        allow_agent=False,
        use_keys=False,
        conn_timeout=30,
    )
    try:
        return conn.find_prompt().endswith("$")
    finally:
        conn.disconnect()


def gnmi_capabilities(address: str, port: int, creds: dict[str, Any], ca_file: str) -> bool:
    from pygnmi.client import gNMIclient

    with gNMIclient(
        target=(address, port),
        username=creds["username"],
        password=creds["password"],
        path_cert=ca_file,
        gnmi_timeout=30,
    ) as client:
        return bool(client.capabilities().get("supported_models"))


def run_step(size: int, workdir: Path, limit_s: float) -> Step:
    deadline = time.monotonic() + limit_s
    step = Step(size)
    directory = workdir / f"n{size}"
    directory.mkdir()
    topology = directory / "ring.clab.yml"
    topology.write_text(ring_topology(size))
    state_dir = directory / "state"
    log = (directory / "lab.log").open("wb")
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.sim.lab", str(topology), "--state-dir", str(state_dir),
         "--subnet", SUBNET],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        state = wait_ready(proc, state_dir, limit_s)
        step.ready_s = time.monotonic() - began
        step.start_s = float(state.get("start_seconds", 0.0))
        creds = yaml.safe_load(Path(state["credentials"]).read_text())
        nodes = list(state["nodes"].values())
        ports = nodes[0]["ports"]
        addresses = [n["address"] for n in nodes]

        began = time.monotonic()
        step.snmp_ok = asyncio.run(snmp_all(addresses, ports["snmp"], creds["snmp"]["community"]))
        step.snmp_s = time.monotonic() - began

        began = time.monotonic()
        ssh_config = Path(state["ssh_config"])

        def hello(address: str) -> bool:
            if time.monotonic() > deadline:
                return False  # out of time: counted as not answering
            return _ok(netconf_hello, address, ports["netconf"], creds, ssh_config)

        with ThreadPoolExecutor(NETCONF_THREADS) as pool:
            step.netconf_ok = sum(pool.map(hello, addresses))
        if step.netconf_ok < size and time.monotonic() > deadline:
            step.error = "the time budget ran out during the NETCONF hellos"
        step.netconf_s = time.monotonic() - began

        began = time.monotonic()
        sample = random.Random(size).sample(addresses, min(GNMI_SAMPLE, size))
        step.gnmi_ok = sum(
            _ok(gnmi_capabilities, a, ports["gnmi"], creds, state["ca_file"]) for a in sample
        )
        step.cli_ok = sum(_ok(cli_login, a, ports["cli"], creds) for a in sample[:CLI_SAMPLE])
        step.samples_s = time.monotonic() - began
        step.rss_mb = rss_mb(proc.pid)
    except (RuntimeError, TimeoutError, OSError) as exc:
        step.error = str(exc)
    finally:
        proc.terminate()  # the lab process this step started
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return step


def _ok(probe: Any, *args: Any) -> bool:
    try:
        return bool(probe(*args))
    except Exception as exc:  # noqa: BLE001 - a probe that fails is a device that did not answer
        print(f"  probe {probe.__name__} {args[0]}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lab_scale")
    parser.add_argument("--sizes", default="50,100,200,400,800")
    parser.add_argument("--budget", type=float, default=160.0, help="seconds for the whole run")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.monotonic()
    print(
        f"lab scale: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{'root (standard ports)' if os.geteuid() == 0 else 'non-root (high ports)'}"
    )
    header = (
        f"{'N':>5} {'all':>4} {'ready s':>8} {'start s':>8} {'RSS MB':>7} {'+MB/dev':>8} "
        f"{'snmp':>9} {'netconf':>13} {'gnmi':>5} {'cli':>4}"
    )
    print(header)
    steps: list[Step] = []
    last_s = 0.0
    with tempfile.TemporaryDirectory(prefix="lab-scale-") as tmp:
        for size in sizes:
            left = args.budget - (time.monotonic() - started)
            # The NETCONF hellos grow faster than N (the client's known_hosts and ssh_config
            # lookups grow with the lab too): extrapolate with some margin.
            estimate = last_s * (size / steps[-1].size) ** 1.6 if steps else 20.0
            if estimate > left:
                print(
                    f"(stopping before N={size}: about {estimate:.0f} s needed, {left:.0f} s left)"
                )
                break
            began = time.monotonic()
            step = run_step(size, Path(tmp), limit_s=left)
            last_s = time.monotonic() - began
            previous = steps[-1] if steps else None
            steps.append(step)
            marginal = (
                f"{(step.rss_mb - previous.rss_mb) / (size - previous.size):.3f}"
                if previous is not None and step.rss_mb and previous.rss_mb
                else "-"
            )
            snmp = f"{step.snmp_ok}/{step.snmp_s:.1f}s"
            netconf = f"{step.netconf_ok}/{step.netconf_s:.1f}s"
            gnmi = f"{step.gnmi_ok}/{min(GNMI_SAMPLE, size)}"
            cli = f"{step.cli_ok}/{min(CLI_SAMPLE, size)}"
            print(
                f"{size:>5} {'yes' if step.all_answered else 'NO':>4} {step.ready_s:>8.2f} "
                f"{step.start_s:>8.2f} {step.rss_mb:>7.1f} {marginal:>8} "
                f"{snmp:>9} {netconf:>13} {gnmi:>5} {cli:>4}"
                + (f"  error: {step.error}" if step.error else "")
            )
            if not step.all_answered:
                break
    good = [s for s in steps if s.all_answered]
    print(
        "ready s: spawn to serving (interpreter start included); start s: the lab's own server "
        "start; +MB/dev: resident memory added per device since the previous N. The NETCONF "
        "time is mostly the ncclient/paramiko client sharing the CPUs with the lab."
    )
    if good:
        print(f"largest N with every device answering: {good[-1].size}")
    else:
        print("no size answered completely")
    print(f"total {time.monotonic() - started:.0f} s")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
