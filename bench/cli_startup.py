"""CLI start-up: `oss --help` and `oss device list` vs a bare typer app's `--help` (goal: at
most 1.5x each), measured in one run with the same interpreter.

The bare app is written by the bench into a temporary file: a typer app with two commands and
nothing else, so the ratio is what the `oss` command adds to Python + typer + Rich. The bare
app also runs its command (`hello x`): typer's own cost of running a command with a parameter,
printed as a second ratio. `oss device
list` talks to a real `oss serve` (own state directory, free loopback port, a viewer token made
with `oss token create --state-dir`; the inventory holds a few devices), so its time includes
the request and the printed table. The three commands run in turn, round after round (so a
noisy neighbour hits them alike); each figure is the median wall time of --rounds runs.

    .venv/bin/python -m bench.cli_startup [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.peers.daemon import OSS, Daemon

GOAL = 1.5
BARE_APP = '''
import typer

app = typer.Typer(help="A bare typer app: the floor every CLI built on typer pays.")


@app.command()
def hello(name: str) -> None:
    """Greet someone."""
    print(f"hello {name}")


@app.command()
def bye() -> None:
    """Say goodbye."""
    print("bye")


app()
'''


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr}")
    return elapsed


def seed_inventory(daemon: Daemon, devices: int) -> None:
    daemon.cli("site", "add", "lab", token=daemon.token)
    for n in range(devices):
        added = daemon.cli("device", "add", f"r{n}", "--site", "lab", token=daemon.token)
        if added.returncode != 0:
            raise RuntimeError(f"oss device add failed: {added.stderr}")


def measure(daemon: Daemon, bare: Path, rounds: int) -> dict[str, list[float]]:
    # As installed: pip compiles a wheel's modules to bytecode, so the CLI does not compile
    # its source at each start. Without this, an environment with PYTHONDONTWRITEBYTECODE
    # (this VM's) would make every `oss` run recompile the project's modules from source.
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "OSS_URL": daemon.url,
        "OSS_TOKEN": daemon.token or "",
        "OSS_CLI_CONFIG": str(daemon.state_dir / "cli.yaml"),
        "COLUMNS": "120",
    }
    contenders = {
        "bare typer --help": [sys.executable, str(bare), "--help"],
        "bare typer hello x": [sys.executable, str(bare), "hello", "x"],
        "oss --help": [OSS, "--help"],
        "oss device list": [OSS, "device", "list"],
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for argv in contenders.values():  # a warm-up round fills the page cache and the bytecode
        wall_time(argv, env)
    for _ in range(rounds):
        for name, argv in contenders.items():
            times[name].append(wall_time(argv, env))
    return times


def report(times: dict[str, list[float]]) -> bool:
    """Ratios to the bare app's --help (the goal), and to the bare app running a command: typer
    (0.29) builds a pydantic validator for every parameter of the command it runs, a cost the
    bare --help does not pay and any command does."""
    floor = statistics.median(times["bare typer --help"])
    command_floor = statistics.median(times["bare typer hello x"])
    print(f"{'command':<20} {'median':>9} {'min':>9} {'ratio':>7} {'to hello x':>11}")
    met = True
    for name, samples in times.items():
        median = statistics.median(samples)
        ratio = median / floor
        if name.startswith("oss"):
            met = met and ratio <= GOAL
        print(
            f"{name:<20} {median * 1000:7.0f}ms {min(samples) * 1000:7.0f}ms {ratio:6.2f}x"
            f" {median / command_floor:10.2f}x"
        )
    print(f"goal: oss --help and oss device list <= {GOAL}x the bare --help: ", end="")
    print("met" if met else "NOT met")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--devices", type=int, default=5, help="devices in the inventory")
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="oss-cli-bench-") as tmp:
        bare = Path(tmp) / "bare_typer.py"
        bare.write_text(BARE_APP, encoding="utf-8")
        daemon = Daemon(Path(tmp) / "state").start()
        try:
            daemon.token = daemon.create_token("operator")
            seed_inventory(daemon, args.devices)
            times = measure(daemon, bare, args.rounds)
        finally:
            daemon.stop()
    report(times)  # printed, not an exit code: `make bench` runs every bench
    return 0


if __name__ == "__main__":
    sys.exit(main())
