"""Where a page's JavaScript time goes: Chromium's sampling CPU profiler (the DevTools protocol's
`Profiler` domain, over Playwright's CDP session), summed by function (self time), the heaviest
first. For a bench's "what stops it" line without opening DevTools."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import CDPSession, Page

SAMPLING_US = 500
# Nodes that are not the page's code: the profiler's own bookkeeping.
IDLE = frozenset({"(idle)", "(root)"})


@dataclass(frozen=True)
class Hot:
    where: str  # function (file:line), or the engine's "(garbage collector)", "(program)"
    ms: float


@dataclass(frozen=True)
class Profiled:
    busy_ms: float  # all but idle
    by_self: list[Hot]  # functions by their own time, the heaviest first
    by_total: list[Hot]  # the page's own functions (not vendor/) by time with their callees


class JsProfile:
    """Start on a page (before its navigation to catch the load), stop for the summary."""

    def __init__(self) -> None:
        self._cdp: CDPSession | None = None

    def start(self, page: Page) -> None:
        self._cdp = page.context.new_cdp_session(page)
        self._cdp.send("Profiler.enable")
        self._cdp.send("Profiler.setSamplingInterval", {"interval": SAMPLING_US})
        self._cdp.send("Profiler.start")

    def stop(self) -> Profiled:
        assert self._cdp is not None, "not started"
        profile = self._cdp.send("Profiler.stop")["profile"]
        self._cdp.detach()
        return summarise(profile)


def _where(frame: dict[str, Any]) -> str:
    name = frame.get("functionName") or "(anonymous)"
    url = str(frame.get("url") or "")
    if not url:
        return name
    return f"{name} ({url.rsplit('/', 1)[-1].split('?', 1)[0]}:{int(frame['lineNumber']) + 1})"


def summarise(profile: dict[str, Any]) -> Profiled:
    """A CDP `Profiler.Profile`: each sample's time delta is charged to its node's function
    (self), and once to every distinct function on its stack (total)."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    where = {n: _where(node["callFrame"]) for n, node in nodes.items()}
    own = {n for n, node in nodes.items() if _own(node["callFrame"])}
    parent = {child: n for n, node in nodes.items() for child in node.get("children", ())}
    self_us: Counter[str] = Counter()
    total_us: Counter[str] = Counter()
    for node, delta in zip(profile.get("samples", ()), profile.get("timeDeltas", ()), strict=True):
        self_us[where[node]] += delta
        on_stack, at = set(), node
        while at is not None:
            if at in own:
                on_stack.add(where[at])
            at = parent.get(at)
        for name in on_stack:
            total_us[name] += delta
    busy = sum(us for name, us in self_us.items() if name not in IDLE)
    return Profiled(
        busy / 1000,
        [Hot(name, us / 1000) for name, us in self_us.most_common() if name not in IDLE],
        [Hot(name, us / 1000) for name, us in total_us.most_common()],
    )


def _own(frame: dict[str, Any]) -> bool:
    """The page's own code: a script of its origin, not a vendored library."""
    url = str(frame.get("url") or "")
    return url.startswith("http") and "/vendor/" not in url


# The renderer's main-thread totals (CDP `Performance.getMetrics`), in seconds. Its
# ScriptDuration leaves out much of a module's async work (far below the profiler's figure), so
# script is left in the rest: the JS profile tells script apart.
MAIN_THREAD = ("TaskDuration", "RecalcStyleDuration", "LayoutDuration")


@dataclass(frozen=True)
class MainThread:
    busy_s: float  # every task
    style_s: float  # style recalculation
    layout_s: float

    @property
    def rest_s(self) -> float:
        """Script, the canvas, painting, GC: the rest of the tasks."""
        return self.busy_s - self.style_s - self.layout_s


class PageMetrics:
    """The page's main-thread time from `start` to `since` (cheap: counters, no sampling)."""

    def __init__(self) -> None:
        self._cdp: CDPSession | None = None
        self._start: dict[str, float] = {}

    def start(self, page: Page) -> None:
        self._cdp = page.context.new_cdp_session(page)
        self._cdp.send("Performance.enable")
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        assert self._cdp is not None, "not started"
        metrics = self._cdp.send("Performance.getMetrics")["metrics"]
        return {m["name"]: float(m["value"]) for m in metrics if m["name"] in MAIN_THREAD}

    def since(self) -> MainThread:
        now = self._read()
        busy, style, layout = (now[k] - self._start.get(k, 0.0) for k in MAIN_THREAD)
        return MainThread(busy, style, layout)
