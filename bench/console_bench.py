"""The NOC console at NOC scale: the map's API call against the same JSON as a static file, time
to interactive in headless Chromium, and how fast an alarm change reaches the page.

The inventory (default 2,000 devices in 50 sites, 8,000 links, 20,000 interfaces, 500 open
alarms of every severity on devices, interfaces and links: `bench.console_inventory`) is
written through the daemon's store into a fresh SQLite state directory, then a real `oss serve`
loads it (free loopback port, its trap receiver on a free UDP port, an operator token).

1. The API behind the map: `GET /api/v1/map?view=default` from this process (one keep-alive
   `http.client` connection, bearer token), N requests, against the floor: the very bytes the
   daemon answered, written to a file and served by a plain Starlette `StaticFiles` app under
   uvicorn (the daemon's own server and static-file class, without the API's middleware) on
   another free port in a process of its own, the two interleaved request by request. Not
   the daemon's own /ui/: it serves only the package's folder, and a bench does not write into
   the source tree. The daemon's CPU per request is read from /proc.
2. Time to interactive: Debian's Chromium (headless, through Playwright, never a downloaded
   browser), a new context per load (cold cache), the token in sessionStorage as the console
   keeps it, `/ui/` until `document.body.dataset.mapState === "ready"`; the figure is the
   `map-interactive` mark's time from the navigation's start, with the map call's resource
   timing and the page's main-thread time beside it. The library's floor, same run, same
   browser: cytoscape.js alone drawing the same devices and links in a blank page, bare and
   dressed as the console draws them (`bench.cytoscape_floor`). A map past the console's
   overview threshold opens folded into its sites: that is the time to interactive; the full
   detail is timed beside it (the toolbar's "Expand all" to every device and link drawn).
3. Alarm changes -> page: with the console open, linkDown / linkUp traps at `--rate` changes/s
   for `--seconds` into the daemon's trap receiver (`bench.console_changes`: each one raises or
   clears an interface alarm); a MutationObserver the bench injects (`add_init_script`, nothing
   in the product) notes with `Date.now()` when each alarm's row (`[data-alarm-id]`) first
   appears, and when it shows `data-state="cleared"` or leaves the list. Latency = that time -
   the trap's send time (`time.time()`); a change never seen is lost. The bench also reads the
   alarm stream (SSE) itself, to tell the daemon's share from the page's.

    python -m bench.console_bench [--devices 2000] [--sites 50] [--alarms 500] [--requests 100]
        [--loads 5] [--rate 100] [--seconds 15] [--quick] [--path /api/v1/map?view=default]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from bench import console_changes, cytoscape_floor
from bench.browser_profile import JsProfile, MainThread, PageMetrics, Profiled
from bench.console_inventory import LINK_PORTS, Generated, Shape, generate
from bench.server_profile import profile_call
from tests.peers.daemon import Daemon
from tests.peers.ports import free_port, free_udp_port

GOAL_RATIO = 1.5  # the map's API time vs the static floor
GOAL_TTI_S = 2.0
GOAL_CHANGE_P99_S = 1.0
MAP_PATH = "/api/v1/map?view=default"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
]
TOKEN_KEY = "oss.console.token"  # where the console keeps its token (static/js/api.js)
COMMUNITY = "console-bench"
READY_TIMEOUT_MS = 60_000
PROFILED_MISSES = 10


# The generated alarms' ids are 1..N, the failed links' first: the bench acknowledges from the
# first and clears from the last (device and interface alarms: a clear cascades to nothing).
def acked_ids(n: int) -> range:
    return range(1, n + 1)


def cleared_ids(n: int, alarms: int, skip: int = 0) -> range:
    return range(alarms - skip, alarms - skip - n, -1)


SETTLE_S = 5.0  # after the last trap, how long the page gets to show the last changes
TICK_S = 1 / os.sysconf("SC_CLK_TCK")

# Injected before the console's scripts: notes when each alarm row appears, shows cleared, and
# leaves the list. Scans only what each mutation touched, then (one query) whether the rows
# it saw removed are still there (a re-render removes and adds them back).
OBSERVER_JS = """
(() => {
  const seen = {}, cleared = {}, gone = {};
  window.__consoleBench = { seen, cleared, gone };
  const note = (el, now) => {
    const id = el.dataset.alarmId;
    if (!(id in seen)) seen[id] = now;
    if (el.dataset.state === 'cleared' && !(id in cleared)) cleared[id] = now;
  };
  const ROW = '[data-alarm-id]';
  const rows = (node) => node.nodeType !== 1 ? [] :
    [...(node.matches(ROW) ? [node] : []), ...node.querySelectorAll(ROW)];
  new MutationObserver((records) => {
    const now = Date.now(), left = new Set();
    for (const r of records) {
      if (r.type === 'attributes') {
        const row = r.target.closest && r.target.closest('[data-alarm-id]');
        if (row) note(row, now);
        continue;
      }
      for (const n of r.addedNodes) for (const el of rows(n)) note(el, now);
      for (const n of r.removedNodes) for (const el of rows(n)) left.add(el.dataset.alarmId);
    }
    if (!left.size) return;
    const still = new Set([...document.querySelectorAll(ROW)].map((el) => el.dataset.alarmId));
    for (const id of left) if (!(id in gone) && !still.has(id)) gone[id] = now;
  }).observe(document, { subtree: true, childList: true, attributes: true,
                         attributeFilter: ['data-alarm-id', 'data-state'] });
})();
"""

TIMINGS_JS = """
() => {
  const mark = performance.getEntriesByName('map-interactive')[0];
  const nav = performance.getEntriesByType('navigation')[0];
  const calls = performance.getEntriesByType('resource')
    .map((e) => ({ path: new URL(e.name).pathname, start: e.startTime, response: e.responseStart,
                   end: e.responseEnd, bytes: e.decodedBodySize }))
    .filter((c) => c.path.startsWith('/api/') || c.path.startsWith('/tmf-api/'));
  const marks = performance.getEntriesByType('mark')
    .filter((m) => m.name.startsWith('map-')).map((m) => [m.name, m.startTime]);
  return { interactive: mark ? mark.startTime : null, marks,
           dom_content_loaded: nav ? nav.domContentLoadedEventEnd : null, calls };
}
"""


# ------------------------------------------------------------------------------ helpers


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1), nearest rank on the sorted values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Client:
    """One keep-alive HTTP/1.1 connection (what a browser holds to its origin)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str) -> tuple[float, bytes]:
        try:
            return self._get(path)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed the idle connection (uvicorn keeps one 5 s): connect again,
            # as a browser does, and time that request.
            self.conn.close()
            return self._get(path)

    def _get(self, path: str) -> tuple[float, bytes]:
        start = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        took = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
        return took, body

    def patch(self, path: str, body: dict[str, Any]) -> None:
        headers = {**self.headers, "Content-Type": "application/json"}
        self.conn.request("PATCH", path, body=json.dumps(body), headers=headers)
        response = self.conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"PATCH {path}: {response.status} {answer[:300]!r}")

    def close(self) -> None:
        self.conn.close()


# ------------------------------------------------------------------------ the static floor


def serve_static(directory: str, port: int) -> None:
    """The floor server's process: Starlette's StaticFiles under uvicorn, configured as the
    daemon's API server is (oss/api/server.py), nothing else."""
    app = Starlette(routes=[Mount("/", StaticFiles(directory=directory))])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, server_header=False
    )
    uvicorn.Server(config).run()


class StaticFloor:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        ctx = multiprocessing.get_context("spawn")
        self.process = ctx.Process(target=serve_static, args=(str(directory), self.port))

    def __enter__(self) -> StaticFloor:
        self.process.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                Client(self.port).get("/")  # 404 until up is fine: any answer
            except ConnectionRefusedError:
                time.sleep(0.05)
                continue
            except RuntimeError:
                pass
            return self
        raise TimeoutError("the static floor server did not start")

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# ------------------------------------------------------------------------------ 1. the API


@dataclass
class Timed:
    """One kind of request, with the floor's request that followed each."""

    walls: list[float] = field(default_factory=list)
    floor_walls: list[float] = field(default_factory=list)
    daemon_cpu_s: float = 0.0


@dataclass
class ApiResult:
    path: str
    size: int
    first_s: float  # the first request after start-up (caches cold)
    # what happened before each request -> its timings
    cases: dict[str, Timed] = field(default_factory=dict)
    cleared_changed: int = 0  # answers after a clear that differed from the one before
    devices: int = 0
    links: int = 0
    alarmed: int = 0  # devices with a severity
    bad_links: int = 0  # links down or alarmed


def bench_api(
    daemon: Daemon, token: str, path: str, requests: int, misses: int, alarms: int, tmp: Path
) -> ApiResult:
    """`requests` map requests with nothing changed in between (the daemon may answer from a
    cache), then `misses` each after an alarm acknowledged (by PATCH, answered once committed:
    the alarms changed, the map's severities did not), then `misses` each after an alarm
    cleared (a device's open alarms, maybe its colour, change: the map is another document);
    each followed by the floor's request."""
    assert daemon.proc is not None
    api = Client(daemon.port, token)
    first, body = api.get(path)
    result = ApiResult(path, len(body), first)
    doc = json.loads(body)
    result.devices, result.links = len(doc.get("devices", ())), len(doc.get("links", ()))
    result.alarmed = sum(1 for d in doc.get("devices", ()) if d.get("severity"))
    result.bad_links = sum(
        1 for x in doc.get("links", ()) if x.get("state") == "down" or x.get("severity")
    )
    folder = tmp / "floor"
    folder.mkdir()
    (folder / "map.json").write_bytes(body)
    with StaticFloor(folder) as floor_server:
        floor = Client(floor_server.port)
        _, same = floor.get("/map.json")
        assert same == body, "the floor serves other bytes"
        api.get(path), floor.get("/map.json")  # both connections warm
        pid = daemon.proc.pid

        def timed(into: Timed) -> bytes:
            before = cpu_s(pid)
            took, answer = api.get(path)
            into.daemon_cpu_s += cpu_s(pid) - before
            into.walls.append(took)
            result.size = len(answer)
            into.floor_walls.append(floor.get("/map.json")[0])
            return answer

        hits, acked, cleared = Timed(), Timed(), Timed()
        result.cases = {
            "nothing changed": hits,
            "an alarm acknowledged": acked,
            "an alarm cleared": cleared,
        }
        for _ in range(requests):
            timed(hits)
        changer = Client(daemon.port, token)
        for alarm in acked_ids(misses):
            changer.patch(f"/tmf-api/alarm/v4/alarm/{alarm}", {"ackState": "acknowledged"})
            timed(acked)
        last = api.get(path)[1]
        for alarm in cleared_ids(misses, alarms):
            changer.patch(f"/tmf-api/alarm/v4/alarm/{alarm}", {"state": "cleared"})
            answer = timed(cleared)
            result.cleared_changed += answer != last
            last = answer
        changer.close()
        floor.close()
    api.close()
    return result


# -------------------------------------------------------------------------- 2. the browser


@dataclass
class Load:
    interactive_s: float
    dom_content_loaded_s: float | None
    map_call: dict[str, Any] | None  # the map request's resource timing (ms from navigation)
    calls: list[dict[str, Any]]
    main: MainThread  # the page's main thread from navigation to ready
    marks: list[tuple[str, float]]  # the console's own map-* marks (ms from navigation)
    # A map past the console's overview threshold opens folded into sites: then the time from
    # the toolbar's "Expand all" to every device and link drawn (None: it opened in full).
    expand_s: float | None = None


def open_console(
    browser: Browser,
    url: str,
    token: str,
    *,
    observe: bool = False,
    before: Callable[[Page], None] | None = None,
) -> Page:
    """A new context (cold cache, own sessionStorage) with the console loaded and ready;
    `before` is called with the page before the navigation (to start a profiler)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.add_init_script(f"sessionStorage.setItem({json.dumps(TOKEN_KEY)}, {json.dumps(token)})")
    if observe:
        context.add_init_script(OBSERVER_JS)
    page = context.new_page()
    if before is not None:
        before(page)
    page.goto(f"{url}/ui/")
    # A selector, not wait_for_function: the console's CSP forbids the eval that one polls with.
    page.wait_for_selector(
        "body[data-map-state='ready']", state="attached", timeout=READY_TIMEOUT_MS
    )
    return page


def expand_all(page: Page) -> float | None:
    """On an overview (sites folded), clicks "Expand all" and waits for the full map drawn:
    the seconds between the console's map-expand-start and map-expanded marks."""
    if page.get_attribute("body", "data-map-detail") != "sites":
        return None
    page.click("#expand-all")
    page.wait_for_selector(
        "body[data-map-drawn='map-expanded']", state="attached", timeout=READY_TIMEOUT_MS
    )
    marks: dict[str, float] = page.evaluate(
        "() => Object.fromEntries(performance.getEntriesByType('mark')"
        ".filter((m) => m.name.startsWith('map-expand')).map((m) => [m.name, m.startTime]))"
    )
    return (marks["map-expanded"] - marks["map-expand-start"]) / 1000


def bench_loads(
    browser: Browser, url: str, token: str, loads: int, profile: bool
) -> tuple[list[Load], Profiled | None]:
    """`loads` cold loads; with `profile`, one more, under the JS profiler (not timed)."""
    out = []
    for _ in range(loads):
        metrics = PageMetrics()
        page = open_console(browser, url, token, before=metrics.start)
        main = metrics.since()
        timings = page.evaluate(TIMINGS_JS)
        expand_s = expand_all(page)
        page.context.close()
        if timings["interactive"] is None:
            raise RuntimeError("the console set mapState=ready without the map-interactive mark")
        map_calls = [c for c in timings["calls"] if c["path"] == "/api/v1/map"]
        out.append(
            Load(
                timings["interactive"] / 1000,
                None
                if timings["dom_content_loaded"] is None
                else timings["dom_content_loaded"] / 1000,
                map_calls[0] if map_calls else None,
                timings["calls"],
                main,
                [(name, at) for name, at in timings["marks"]],
                expand_s,
            )
        )
    if not profile:
        return out, None
    profiler = JsProfile()
    page = open_console(browser, url, token, before=profiler.start)
    hot = profiler.stop()
    page.context.close()
    return out, hot


# ----------------------------------------------------------------- 3. alarm change latency


@dataclass
class ChangeResult:
    rate: float
    sent: int
    sent_s: float = 0.0  # first to last send
    latencies: list[float] = field(default_factory=list)  # seconds, page
    stream_latencies: list[float] = field(default_factory=list)  # seconds, the SSE stream
    lost: int = 0  # never seen on the page
    lost_in_daemon: int = 0  # traps that made no alarm change (the daemon lost them)
    lost_raises: int = 0
    lost_clears: int = 0
    profile: Profiled | None = None  # the page's JavaScript while the changes came in
    main: MainThread | None = None  # the page's main thread, the same time


class StreamReader(threading.Thread):
    """Reads the alarm stream as the console does (bearer token, SSE) and notes when each
    alarm's create and clear event arrive."""

    def __init__(self, port: int, token: str) -> None:
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.conn.request(
            "GET",
            "/tmf-api/alarm/v4/alarm/stream",
            headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
        )
        self.response = self.conn.getresponse()
        self.created: dict[int, float] = {}
        self.cleared: dict[int, float] = {}
        self.subscribed = threading.Event()  # the daemon's ": subscribed" came
        self.stopped = False

    def run(self) -> None:
        data = ""
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith(": subscribed"):
                    self.subscribed.set()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif not line and data:
                    doc, data = json.loads(data), ""
                    now, alarm = time.time(), int(doc.get("id", 0))
                    self.created.setdefault(alarm, now)
                    if doc.get("state") == "cleared":
                        self.cleared.setdefault(alarm, now)
        except (OSError, ValueError, http.client.HTTPException):
            if not self.stopped:
                raise

    def stop(self) -> None:
        self.stopped = True
        if self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)  # the reader sees the end of the stream
        self.join(timeout=10)
        self.conn.close()


def episodes(
    daemon: Daemon, token: str, ports: Sequence[console_changes.Port]
) -> dict[str, list[int]]:
    """Each flapped port's alarm ids, oldest first (one per down/up episode)."""
    client = Client(daemon.port, token)
    out = {}
    for port in ports:
        _, body = client.get(
            f"/tmf-api/alarm/v4/alarm?alarmedObject.id={port.alarmed_object}&fields=id&limit=1000"
        )
        out[port.alarmed_object] = sorted(int(doc["id"]) for doc in json.loads(body))
    client.close()
    return out


def bench_changes(
    browser: Browser,
    daemon: Daemon,
    token: str,
    generated: Generated,
    traps_port: int,
    rate: float,
    seconds: float,
    profile: bool,
) -> ChangeResult:
    flapped = console_changes.ports(generated.trap_sources, LINK_PORTS + 1)
    changes = console_changes.plan(flapped, int(rate * seconds))
    page = open_console(browser, daemon.url, token, observe=True)
    # The console says when its alarm stream is subscribed (and caught up): body[data-alarms-stream]
    page.wait_for_selector(
        "body[data-alarms-stream='live']", state="attached", timeout=READY_TIMEOUT_MS
    )
    stream = StreamReader(daemon.port, token)
    stream.start()
    if not stream.subscribed.wait(timeout=30):
        raise TimeoutError("the alarm stream did not subscribe within 30 s")
    profiler = JsProfile() if profile else None
    metrics = PageMetrics()
    metrics.start(page)
    try:
        if profiler is not None:
            profiler.start(page)
        sender = console_changes.Sender(changes, traps_port, rate, COMMUNITY.encode())
        sender.start()
        sent = sender.times(timeout=seconds * 3 + 60)
        time.sleep(SETTLE_S)
        observed = page.evaluate("() => window.__consoleBench")
        main = metrics.since()
        hot = None if profiler is None else profiler.stop()
    finally:
        stream.stop()
        page.context.close()
    ids = episodes(daemon, token, flapped)
    result = ChangeResult(rate, len(changes), sent[-1] - sent[0], profile=hot, main=main)
    seen = {int(k): v / 1000 for k, v in observed["seen"].items()}
    shown_cleared = {int(k): v / 1000 for k, v in observed["cleared"].items()}
    gone = {int(k): v / 1000 for k, v in observed["gone"].items()}
    for change, at in zip(changes, sent, strict=True):
        alarms = ids[change.port.alarmed_object]
        if change.episode >= len(alarms):
            result.lost_in_daemon += 1
            continue
        alarm = alarms[change.episode]
        if change.down:
            page_at, stream_at = seen.get(alarm), stream.created.get(alarm)
        else:
            page_at = min(
                (t for t in (shown_cleared.get(alarm), gone.get(alarm)) if t), default=None
            )
            stream_at = stream.cleared.get(alarm)
        if stream_at is not None:
            result.stream_latencies.append(stream_at - at)
        if page_at is None:
            result.lost += 1
            if change.down:
                result.lost_raises += 1
            else:
                result.lost_clears += 1
        else:
            result.latencies.append(page_at - at)
    return result


# ----------------------------------------------------------------------------- the run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--alarms", type=int, default=500, help="open alarms generated")
    parser.add_argument(
        "--trap-sources", type=int, default=100, help="devices whose spare ports flap"
    )
    parser.add_argument("--requests", type=int, default=100, help="map requests (and floor's)")
    parser.add_argument(
        "--misses", type=int, default=30, help="map requests each after an alarm change"
    )
    parser.add_argument("--loads", type=int, default=5, help="cold browser loads")
    parser.add_argument("--rate", type=float, default=100.0, help="alarm changes per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="of alarm changes")
    parser.add_argument("--path", default=MAP_PATH, help="the API call behind the map")
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument(
        "--quick", action="store_true", help="a small run for development (200 devices, 5 s)"
    )
    parser.add_argument("--skip-browser", action="store_true", help="the API part only")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="where the time goes: an extra load and the changes under the JS profiler, then"
        " the map after an alarm change in-process under cProfile",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.devices, args.sites, args.alarms, args.trap_sources = 200, 10, 50, 20
        args.requests, args.misses, args.loads, args.seconds = 20, 10, 2, 5.0
    if not args.skip_browser and not Path(args.chromium).exists():
        parser.error(f"no Chromium at {args.chromium}: `make system-deps` installs Debian's")
    shape = Shape(args.devices, args.sites, args.alarms, args.trap_sources)
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" load {loadavg()}"
    )
    with tempfile.TemporaryDirectory(prefix="oss-console-bench-") as tmp:
        state = Path(tmp) / "state"
        started = time.perf_counter()
        generated = asyncio.run(generate(state, shape))
        print(
            f"generated {len(generated.devices)} devices in {shape.sites} sites,"
            f" {generated.interfaces} interfaces, {generated.links} links,"
            f" {sum(generated.alarms_by_severity.values())} open alarms"
            f" {generated.alarms_by_severity} on {generated.alarms_by_object}"
            f" in {time.perf_counter() - started:.1f} s"
        )
        traps_port = free_udp_port()
        daemon = Daemon(
            state,
            env={
                "OSS_ASSURANCE__TRAPS_PORT": str(traps_port),
                "OSS_ASSURANCE__TRAP_COMMUNITIES": json.dumps([COMMUNITY]),
                "OSS_LOG__LEVEL": "WARNING",
            },
        )
        started = time.perf_counter()
        daemon.start(wait=False)
        try:
            daemon.wait_ready(timeout=600)
            print(f"oss serve ready in {time.perf_counter() - started:.1f} s on {daemon.url}")
            token = daemon.create_token("operator")
            run(daemon, token, generated, traps_port, Path(tmp), args)
        except BaseException:
            daemon.kill()
            raise
        code, err = daemon.stop()
        if code != 0:
            print(f"oss serve exited with {code}:\n{err[-2000:]}")
        if args.profile:  # the daemon has stopped: the state is this process's now
            alarms = sum(generated.alarms_by_severity.values())
            ids = cleared_ids(PROFILED_MISSES, alarms, skip=args.misses)  # still open
            took, text = asyncio.run(profile_call(state, args.path, ids))
            print(
                f"\nserver side: GET {args.path} after an alarm cleared, in-process under"
                f" cProfile ({PROFILED_MISSES} calls, {ms(took)} each with the profiler on):"
            )
            print(text)
    return 0


def run(
    daemon: Daemon,
    token: str,
    generated: Generated,
    traps_port: int,
    tmp: Path,
    args: argparse.Namespace,
) -> None:
    alarms = sum(generated.alarms_by_severity.values())
    api = bench_api(daemon, token, args.path, args.requests, args.misses, alarms, tmp)
    if args.path.startswith("/api/v1/map?") and (api.devices, api.links) != (
        len(generated.devices),
        generated.links,
    ):
        raise RuntimeError(
            f"the map shows {api.devices} devices and {api.links} links, not the"
            f" {len(generated.devices)} and {generated.links} generated"
        )
    report_api(api)
    if args.skip_browser:
        return
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            loads, load_profile = bench_loads(browser, daemon.url, token, args.loads, args.profile)
            floor = None
            if args.path.startswith("/api/v1/map?"):
                doc = json.loads((tmp / "floor" / "map.json").read_bytes())
                floor = cytoscape_floor.draw_times(browser, doc, max(1, min(3, args.loads)))
            report_loads(loads, floor)
            if load_profile is not None:
                report_profile(
                    "one more load, profiled (its time is not counted above)", load_profile
                )
            changes = bench_changes(
                browser, daemon, token, generated, traps_port, args.rate, args.seconds, args.profile
            )
            report_changes(changes, len(generated.trap_sources) * 2 / args.rate)
            if changes.profile is not None:
                report_profile("the page while the changes came in", changes.profile)
        finally:
            browser.close()
    print(f"load average at the end: {loadavg()}")


# ---------------------------------------------------------------------------- reporting


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report_api(r: ApiResult) -> None:
    print(
        f"\n1. the API behind the map: GET {r.path} ({r.devices} devices, {r.links} links,"
        f" {r.size / 1024:.0f} KiB; {r.alarmed} devices coloured by an alarm, {r.bad_links} links"
        f" down or alarmed) on one keep-alive connection, each request followed by the"
        " floor's\n   floor: the same bytes as a static file from a plain Starlette"
        " StaticFiles app under uvicorn (the daemon's server and static-file class, no API"
        " middleware) in its own process: the daemon's /ui/ serves only the package's folder,"
        " and the bench writes nothing into the source tree"
    )
    print(f"   first request after start-up: {ms(r.first_s)}")
    for what, t in r.cases.items():
        if not t.walls:
            continue
        p50, p99 = quantile(t.walls, 0.5), quantile(t.walls, 0.99)
        f50, f99 = quantile(t.floor_walls, 0.5), quantile(t.floor_walls, 0.99)
        ratio = p50 / f50
        print(
            f"   {what} ({len(t.walls)} requests): API p50 {ms(p50)}  p99 {ms(p99)}"
            f"  (daemon CPU {ms(t.daemon_cpu_s / len(t.walls))} per request); floor p50"
            f" {ms(f50)}  p99 {ms(f99)}; ratio p50 {ratio:.2f}x, p99 {p99 / f99:.2f}x;"
            f" goal <= {GOAL_RATIO}x: {'met' if ratio <= GOAL_RATIO else 'NOT met'}"
        )
    cleared = r.cases.get("an alarm cleared")
    if cleared and cleared.walls:
        print(
            f"   after a clear, {r.cleared_changed} of {len(cleared.walls)} answers differed from"
            " the one before (the clear reached the map)"
        )


def report_loads(loads: Sequence[Load], floor: dict[str, cytoscape_floor.Drawn] | None) -> None:
    tti = [x.interactive_s for x in loads]
    print(
        f"\n2. time to interactive: {len(loads)} cold loads of /ui/ in headless Chromium"
        " (a new context each), the map-interactive mark from the navigation's start"
    )
    for n, load in enumerate(loads, 1):
        call = load.map_call
        api = (
            f"map call {call['start']:.0f} -> {call['end']:.0f} ms"
            f" ({call['end'] - call['start']:.0f} ms, first byte after"
            f" {call['response'] - call['start']:.0f} ms, {call['bytes'] / 1024:.0f} KiB)"
            if call
            else "no /api/v1/map call seen"
        )
        after = f", drawn {load.interactive_s * 1000 - call['end']:.0f} ms after it" if call else ""
        print(
            f"   load {n}: interactive at {ms(load.interactive_s)};"
            f" DOMContentLoaded {ms(load.dom_content_loaded_s or 0)}; {api}{after};"
            f" {len(load.calls)} API calls; main thread {main_thread(load.main)}"
        )
        if len(load.marks) > 1:
            print("     the console's marks: " + ", ".join(f"{n} {at:.0f}" for n, at in load.marks))
        if load.expand_s is not None:
            print(f"     opened as sites; 'Expand all' drew the full map in {ms(load.expand_s)}")
    p50 = statistics.median(tti)
    verdict = {True: "met", False: "NOT met"}
    print(
        f"   p50 {ms(p50)}, max {ms(max(tti))}; goal <= {GOAL_TTI_S:.0f} s:"
        f" p50 {verdict[p50 <= GOAL_TTI_S]}, max {verdict[max(tti) <= GOAL_TTI_S]}"
    )
    expands = [x.expand_s for x in loads if x.expand_s is not None]
    if expands:
        full = [x.interactive_s + (x.expand_s or 0) for x in loads if x.expand_s is not None]
        print(
            f"   the map opened as an overview of sites (the figure above); full detail:"
            f" 'Expand all' p50 {ms(statistics.median(expands))}, max {ms(max(expands))};"
            f" navigation -> every device drawn p50 {ms(statistics.median(full))},"
            f" max {ms(max(full))}"
        )
    if floor is None:
        return
    print(
        "   the library's floor: cytoscape.js alone (the vendored file) drawing the same devices"
        " and links in a blank page of the same browser, no console code (a new context each):"
    )
    for variant, drawn in floor.items():
        what = {"bare": "no sites, no labels", "dressed": "site compounds, names, interfaces"}
        print(
            f"     {variant} ({what.get(variant, variant)}): drawn p50 {ms(drawn.p50)}"
            f" (built {ms(statistics.median(drawn.built_s))}); the console's p50 is"
            f" {p50 / drawn.p50:.2f}x this"
        )


def main_thread(m: MainThread) -> str:
    return (
        f"busy {m.busy_s:.2f} s (style {m.style_s:.2f}, layout {m.layout_s:.2f},"
        f" script, canvas, paint and GC {m.rest_s:.2f})"
    )


def report_profile(what: str, profiled: Profiled, top: int = 12) -> None:
    print(f"   JS profile, {what}: {profiled.busy_ms:.0f} ms busy; by self time:")
    for h in profiled.by_self[:top]:
        print(f"     {h.ms:8.1f} ms  {h.where}")
    print("   the console's own functions, with what they call:")
    for h in profiled.by_total[: top // 2]:
        print(f"     {h.ms:8.1f} ms  {h.where}")


def report_changes(r: ChangeResult, open_s: float) -> None:
    print(
        f"\n3. alarm changes -> page: {r.sent} changes (linkDown raises / linkUp clears an"
        f" interface alarm; each open {open_s:.1f} s) at {r.rate:.0f}/s into the trap receiver,"
        " the console open"
    )
    print(f"   sent in {r.sent_s:.1f} s ({(r.sent - 1) / r.sent_s:.0f}/s achieved)")
    if r.main is not None:
        print(
            f"   the page's main thread over the {r.sent_s + SETTLE_S:.0f} s: {main_thread(r.main)}"
        )
    if r.lost_in_daemon:
        print(f"   {r.lost_in_daemon} traps made no alarm change in the daemon")
    if r.stream_latencies:
        s = r.stream_latencies
        print(
            f"   alarm stream (SSE, read by the bench): p50 {ms(quantile(s, 0.5))}"
            f"  p99 {ms(quantile(s, 0.99))}  max {ms(max(s))}  ({len(s)} events)"
        )
    if r.latencies:
        lat = r.latencies
        p99 = quantile(lat, 0.99)
        print(
            f"   page: p50 {ms(quantile(lat, 0.5))}  p99 {ms(p99)}  max {ms(max(lat))}"
            f"  ({len(lat)} seen)"
        )
    else:
        p99 = float("inf")
    print(
        f"   lost (never seen on the page): {r.lost} ({r.lost_raises} raises,"
        f" {r.lost_clears} clears)"
    )
    met = p99 <= GOAL_CHANGE_P99_S and r.lost == 0 and r.lost_in_daemon == 0
    print(f"   goal p99 <= {GOAL_CHANGE_P99_S:.0f} s, none lost: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
