"""REST listing at inventory scale: `GET /api/v1/devices?include=interfaces` and
`GET /api/v1/interfaces`, 1,000 items a page, against a floor in the same run.

The inventory (default 10,000 devices with 10 interfaces each) is written straight into a fresh
state directory's SQLite file (the daemon migrates it first), then a real `oss serve` loads it
(free loopback port, a viewer token). One keep-alive `http.client` connection measures every
request, the cases interleaved round by round: the first page, page 10 and the last page by
cursor (`next_cursor`), the plain device page, and the last page by offset for comparison. The
daemon's CPU per request is read from /proc (its utime + stime over the case's requests).

The floor, timed in this process on the same SQLite file: the same rows (names are zero-padded,
so the API's natural order and SQL's binary order agree; the bench checks the first page's
names are the same) read with one plain SQL query (devices JOIN interfaces; a keyset
`WHERE (device, name) > (?, ?)` for later pages) and serialised with `json.dumps`, with no HTTP
in between: a stricter floor than one served over HTTP.

NetBox's published figure for comparison: 7-9 s per 1,000 interfaces (netbox issue 12546).

    python -m bench.api_listing_bench [--devices 10000] [--interfaces 10] [--rounds 30]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.peers.daemon import Daemon

GOAL_MS = 100.0
GOAL_RATIO = 3.0
PAGE = 1000
DEVICE_COLUMNS = (
    *("name", "role", "platform", "site", "kind", "image"),
    *("mgmt_address", "credentials_ref", "state"),
)
INTERFACE_COLUMNS = ("device", "name", "speed_bps", "admin_state", "oper_state", "description")
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def device_name(n: int) -> str:
    return f"r{n:05d}"


def interface_name(n: int) -> str:
    return f"et-0/0/{n:02d}"


def fill(db: Path, devices: int, interfaces: int) -> None:
    """The inventory's rows, written in bulk into the migrated SQLite file."""
    now = "2026-12-07 00:00:00.000000"
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO devices (name, role, platform, site, kind, image, mgmt_address,"
            " credentials_ref, state, created_at, updated_at)"
            " VALUES (?, 'pe', 'linux', NULL, NULL, NULL, ?, NULL, 'active', ?, ?)",
            (
                (device_name(d), f"10.{d >> 16 & 255}.{d >> 8 & 255}.{d & 255}", now, now)
                for d in range(devices)
            ),
        )
        conn.executemany(
            "INSERT INTO interfaces (device, name, speed_bps, admin_state, oper_state,"
            " description) VALUES (?, ?, 10000000000, 'up', 'up', ?)",
            (
                (device_name(d), interface_name(i), f"to {device_name((d + i + 1) % devices)}")
                for d in range(devices)
                for i in range(interfaces)
            ),
        )


class Floor:
    """The same rows with one plain SQL query each and `json.dumps`, in this process."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db)

    def devices_with_interfaces(self, after: str) -> bytes:
        d_cols = ", ".join(f"d.{c}" for c in DEVICE_COLUMNS)
        i_cols = ", ".join(f"i.{c}" for c in INTERFACE_COLUMNS)
        rows = self.conn.execute(
            f"SELECT {d_cols}, {i_cols} FROM"
            f" (SELECT * FROM devices WHERE name > ? ORDER BY name LIMIT {PAGE}) AS d"
            " JOIN interfaces AS i ON i.device = d.name ORDER BY d.name, i.name",
            (after,),
        ).fetchall()
        items: list[dict[str, Any]] = []
        width, current = len(DEVICE_COLUMNS), None
        interfaces: list[dict[str, Any]] = []
        for row in rows:
            if row[0] != current:
                current, interfaces = row[0], []
                device = dict(zip(DEVICE_COLUMNS, row[:width], strict=True))
                device["interfaces"] = interfaces
                items.append(device)
            interfaces.append(dict(zip(INTERFACE_COLUMNS, row[width:], strict=True)))
        return json.dumps({"items": items}).encode()

    def interfaces(self, after: tuple[str, str]) -> bytes:
        rows = self.conn.execute(
            f"SELECT {', '.join(INTERFACE_COLUMNS)} FROM interfaces"
            f" WHERE (device, name) > (?, ?) ORDER BY device, name LIMIT {PAGE}",
            after,
        ).fetchall()
        return json.dumps(
            {"items": [dict(zip(INTERFACE_COLUMNS, r, strict=True)) for r in rows]}
        ).encode()


class Client:
    def __init__(self, daemon: Daemon, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: Any) -> tuple[float, bytes]:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        start = time.perf_counter()
        self.conn.request("GET", f"{path}?{query}", headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        took = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"GET {path}?{query}: {response.status} {body[:300]!r}")
        return took, body


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cursors(client: Client, path: str, **params: Any) -> list[str | None]:
    """The cursor of every page of the list (None for the first), walked once."""
    found: list[str | None] = [None]
    while True:
        _, body = client.get(path, limit=PAGE, cursor=found[-1], **params)
        nxt = json.loads(body).get("next_cursor")
        if nxt is None:
            return found
        found.append(nxt)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--interfaces", type=int, default=10, help="per device")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="oss-listing-bench-") as tmp:
        state = Path(tmp) / "state"
        daemon = Daemon(state).start(wait=False)  # migrates the fresh database
        try:
            daemon.wait_ready(timeout=300)  # a loaded host: the default 30 s is short
        finally:
            daemon.stop()
        fill(state / "oss.db", args.devices, args.interfaces)
        started = time.perf_counter()
        daemon = Daemon(state).start(wait=False)
        try:
            daemon.wait_ready(timeout=600)
            print(
                f"{args.devices} devices, {args.devices * args.interfaces} interfaces;"
                f" daemon ready in {time.perf_counter() - started:.1f} s"
            )
            run(daemon, Floor(state / "oss.db"), args)
        finally:
            daemon.stop()
    return 0


class Case:
    """One request of the API, and the floor reading the same rows (if it has one)."""

    def __init__(
        self, name: str, api: Callable[[], tuple[float, bytes]], floor: Callable[[], bytes] | None
    ) -> None:
        self.name, self.api, self.floor = name, api, floor
        self.walls: list[float] = []
        self.cpu = 0.0
        self.size = 0
        self.floor_walls: list[float] = []
        self.floor_cpu = 0.0


def run(daemon: Daemon, floor: Floor, args: argparse.Namespace) -> None:
    assert daemon.proc is not None
    loaded = rss_mib(daemon.proc.pid)
    client = Client(daemon, daemon.create_token("viewer"))
    ifaces, devices = "/api/v1/interfaces", "/api/v1/devices"
    n_if = args.interfaces
    total = args.devices * n_if
    first = json.loads(client.get(ifaces, limit=PAGE)[1])
    assert first["total"] == total, first["total"]

    def after_interface(k: int) -> tuple[str, str]:  # the last interface of page k (from 0)
        return (
            ("", "")
            if k == 0
            else (device_name((k * PAGE - 1) // n_if), interface_name((k * PAGE - 1) % n_if))
        )

    def after_device(k: int) -> str:
        return "" if k == 0 else device_name(k * PAGE - 1)

    cases = [
        Case("devices (no interfaces) p1", lambda: client.get(devices, limit=PAGE), None),
        Case(
            "devices+interfaces p1",
            lambda: client.get(devices, limit=PAGE, include="interfaces"),
            lambda: floor.devices_with_interfaces(""),
        ),
        Case(
            "interfaces p1",
            lambda: client.get(ifaces, limit=PAGE),
            lambda: floor.interfaces(("", "")),
        ),
    ]
    if "next_cursor" in first:
        pages = cursors(client, ifaces)
        for k in sorted({min(9, len(pages) - 1), len(pages) - 1}):
            cases.append(
                Case(
                    f"interfaces p{k + 1}, cursor",
                    partial(client.get, ifaces, limit=PAGE, cursor=pages[k]),
                    partial(floor.interfaces, after_interface(k)),
                )
            )
        pages = cursors(client, devices, include="interfaces")
        for k in sorted({min(9, len(pages) - 1), len(pages) - 1}):
            cases.append(
                Case(
                    f"devices+interfaces p{k + 1}, cursor",
                    partial(client.get, devices, limit=PAGE, include="interfaces", cursor=pages[k]),
                    partial(floor.devices_with_interfaces, after_device(k)),
                )
            )
    else:
        print("this daemon pages by offset only (no next_cursor): cursor cases skipped")
    last = (total - 1) // PAGE
    cases.append(
        Case(
            f"interfaces p{last + 1}, offset",
            lambda: client.get(ifaces, limit=PAGE, offset=last * PAGE),
            lambda: floor.interfaces(after_interface(last)),
        )
    )
    check_same_rows(client, floor)

    pid = daemon.proc.pid
    for _ in range(args.rounds):
        for case in cases:
            before = cpu_s(pid)
            took, body = case.api()
            case.cpu += cpu_s(pid) - before
            case.walls.append(took)
            case.size = len(body)
            if case.floor is not None:
                c0, w0 = time.process_time(), time.perf_counter()
                case.floor()
                case.floor_walls.append(time.perf_counter() - w0)
                case.floor_cpu += time.process_time() - c0
    report(cases, args.rounds)
    print(
        f"daemon RSS: {loaded:.0f} MiB with the inventory loaded, {rss_mib(pid):.0f} MiB after"
        " every page was listed"
    )


def check_same_rows(client: Client, floor: Floor) -> None:
    """The floor reads the rows the API answers, in the same order."""
    api = json.loads(client.get("/api/v1/interfaces", limit=PAGE)[1])["items"]
    sql = json.loads(floor.interfaces(("", "")))["items"]
    assert [(i["device"], i["name"]) for i in api] == [(i["device"], i["name"]) for i in sql]


def ms(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1] * 1000


def report(cases: list[Case], rounds: int) -> None:
    print(
        f"\nAPI over HTTP (keep-alive, bearer token) vs the floor (the same rows: one SQL query"
        f" + json.dumps, in the bench process), {rounds} rounds interleaved; limit={PAGE}"
    )
    print(
        f"{'request':<32} {'p50':>8} {'p95':>8} {'daemon CPU':>10} {'KiB':>6}"
        f" {'floor p50':>9} {'CPU':>7} {'p50/floor':>9}"
    )
    met = True
    for case in cases:
        p50 = ms(case.walls, 0.5)
        line = (
            f"{case.name:<32} {p50:7.1f}ms {ms(case.walls, 0.95):7.1f}ms"
            f" {case.cpu / rounds * 1000:8.1f}ms {case.size / 1024:6.0f}"
        )
        if case.floor_walls:
            f50 = ms(case.floor_walls, 0.5)
            ratio = p50 / f50
            line += f" {f50:7.1f}ms {case.floor_cpu / rounds * 1000:5.1f}ms {ratio:8.2f}x"
            if "offset" not in case.name:
                met = met and ratio <= GOAL_RATIO and p50 <= GOAL_MS
        print(line)
    print(
        f"goal: each listing by cursor <= {GOAL_MS:.0f} ms and <= {GOAL_RATIO:.0f}x the floor"
        f" (p50): {'met' if met else 'NOT met'}. NetBox's published figure: 7-9 s per 1,000"
        " interfaces (netbox issue 12546)"
    )


if __name__ == "__main__":
    sys.exit(main())
