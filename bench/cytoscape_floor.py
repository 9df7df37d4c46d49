"""The browser's floor for the map: cytoscape.js alone (the console's vendored file) drawing the
map's devices and links in a blank page of the same Chromium, with no console code, no API
call and no alarm list: how long the library takes to build and draw the same elements.

Two variants: `bare` (devices and links only: no compound site nodes, no labels) and `dressed`
as the console draws them (sites as compound nodes, device names, interface names at each link
end). Devices sit on a grid per site (preset positions, like the console's saved layout). The
time is from just before `cytoscape({...})` to the second animation frame after it (drawn).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Browser

from oss.console.manifest import SCRIPT, VENDOR_DIR

VARIANTS = {"bare": False, "dressed": True}
PAGE_HTML = "<!doctype html><div id='cy' style='width:1560px;height:900px'></div>"
SITE_GRID, SITE_SPAN, DEVICE_GRID, DEVICE_SPAN = 8, 1000.0, 7, 120.0
BARE_STYLE = [
    {"selector": "node", "style": {"width": 12, "height": 12}},
    {"selector": "edge", "style": {"width": 1}},
]
DRESSED_STYLE = [
    {"selector": "node", "style": {"width": 12, "height": 12, "label": "data(label)"}},
    {"selector": ":parent", "style": {"label": "data(label)", "text-valign": "top"}},
    {
        "selector": "edge",
        "style": {
            "width": 1,
            "source-label": "data(aIf)",
            "target-label": "data(bIf)",
            "font-size": 6,
        },
    },
]
DRAW_JS = """
([style]) => new Promise((done) => {
  const t0 = performance.now();
  const cy = cytoscape({ container: document.getElementById('cy'), elements: window.benchElements,
                         style, layout: { name: 'preset' }, textureOnViewport: true,
                         hideEdgesOnViewport: true, pixelRatio: 1 });
  const built = performance.now() - t0;
  cy.fit();
  requestAnimationFrame(() => requestAnimationFrame(() => done([built, performance.now() - t0])));
})
"""


@dataclass(frozen=True)
class Drawn:
    built_s: list[float]  # the constructor
    drawn_s: list[float]  # to the second frame after it

    @property
    def p50(self) -> float:
        return statistics.median(self.drawn_s)


def elements(doc: Mapping[str, Any], dressed: bool) -> list[dict[str, Any]]:
    """The map document's devices and links as cytoscape elements."""
    out: list[dict[str, Any]] = []
    sites = sorted({str(d.get("site") or "") for d in doc["devices"]})
    at_site: dict[str, int] = {}
    if dressed:
        out += [{"group": "nodes", "data": {"id": f"s:{s}", "label": s}} for s in sites]
    for device in doc["devices"]:
        site = str(device.get("site") or "")
        n, k = sites.index(site), at_site.get(site, 0)
        at_site[site] = k + 1
        data: dict[str, Any] = {"id": f"d:{device['name']}"}
        if dressed:
            data |= {"label": device["name"], "parent": f"s:{site}"}
        position = {
            "x": n % SITE_GRID * SITE_SPAN + k % DEVICE_GRID * DEVICE_SPAN,
            "y": n // SITE_GRID * SITE_SPAN + k // DEVICE_GRID * DEVICE_SPAN,
        }
        out.append({"group": "nodes", "data": data, "position": position})
    for link in doc["links"]:
        data = {
            "id": f"l:{link['id']}",
            "source": f"d:{link['a']['device']}",
            "target": f"d:{link['b']['device']}",
        }
        if dressed:
            data |= {"aIf": link["a"]["interface"], "bIf": link["b"]["interface"]}
        out.append({"group": "edges", "data": data})
    return out


def draw_times(browser: Browser, doc: Mapping[str, Any], runs: int) -> dict[str, Drawn]:
    """Each variant drawn `runs` times, each in a new context (like a cold load)."""
    out = {}
    for variant, dressed in VARIANTS.items():
        built: list[float] = []
        drawn: list[float] = []
        payload: Sequence[Any] = elements(doc, dressed)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            try:
                page = context.new_page()
                page.set_content(PAGE_HTML)
                page.add_script_tag(path=VENDOR_DIR / SCRIPT)
                page.evaluate("(e) => { window.benchElements = e; }", payload)
                b, d = page.evaluate(DRAW_JS, [DRESSED_STYLE if dressed else BARE_STYLE])
            finally:
                context.close()
            built.append(b / 1000)
            drawn.append(d / 1000)
        out[variant] = Drawn(built, drawn)
    return out
