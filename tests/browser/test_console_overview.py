"""The big map's overview in headless Chromium: an inventory above the console's overview
threshold (generated into the daemon's store before it starts, as the console bench does) opens
as one node per site (its device count, its devices' worst severity) and one edge per pair of
linked sites (their link count, red when one is down or alarmed); clicking a site unfolds its
devices where the layout has them, nothing else moving; a search for a device of a folded site
unfolds it; clearing a site's alarms recolours it live.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Playwright

from bench.console_inventory import Shape, generate
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, LIVE_MS, VIEWPORT, WAIT_MS, Session
from tests.browser.conftest import log_in as sign_in
from tests.browser.test_console import drag
from tests.peers.daemon import Daemon

pytestmark = pytest.mark.integration

SHAPE = Shape(devices=330, sites=6, alarms=72, trap_sources=0)  # > 300: the overview
RANK = {"critical": 5, "major": 4, "minor": 3, "warning": 2, "indeterminate": 1}
MARK = {"critical": "✖ CRIT", "major": "▲ MAJ", "minor": "◆ MIN", "warning": "● WARN"}
SAVED = {"x": 4321.5, "y": -1234.0}  # a saved position for one device of a folded site


def worst(severities: list[str | None]) -> str | None:
    found = [s for s in severities if s]
    return max(found, key=RANK.__getitem__) if found else None


def expected_sites(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each folded site should show, from the map API's devices."""
    sites: dict[str, list[dict[str, Any]]] = {}
    for d in doc["devices"]:
        sites.setdefault(d["site"], []).append(d)
    return {
        site: {"count": len(ds), "severity": worst([d["severity"] for d in ds])}
        for site, ds in sites.items()
    }


def expected_bundles(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each pair of linked sites: how many links, whether any is down or alarmed."""
    site = {d["name"]: d["site"] for d in doc["devices"]}
    pairs: dict[str, dict[str, Any]] = {}
    for link in doc["links"]:
        a, b = sorted((site[link["a"]["device"]], site[link["b"]["device"]]))
        if a == b:
            continue
        p = pairs.setdefault(f"g:{a}|g:{b}", {"count": 0, "bad": False})
        p["count"] += 1
        p["bad"] = p["bad"] or link["state"] == "down" or bool(link["severity"])
    return pairs


@pytest.fixture(scope="module")
def big_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, str]]:
    state = tmp_path_factory.mktemp("overview")
    asyncio.run(generate(state, SHAPE))
    daemon = Daemon(state_dir=state, env={"OSS_LOG__LEVEL": "WARNING"})
    daemon.start()
    try:
        yield daemon, daemon.create_token("operator")
    finally:
        daemon.kill()


@pytest.fixture
def session(
    playwright: Playwright, big_daemon: tuple[Daemon, str], tmp_path: Path
) -> Iterator[Session]:
    daemon, token = big_daemon
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS,
        headless=True,
        viewport=VIEWPORT,  # type: ignore[arg-type]
    )
    page = context.pages[0] if context.pages else context.new_page()
    found = Session(context, page, "operator")
    page.on("console", lambda m: found.console_errors.append(m.text) if m.type == "error" else None)
    page.goto(daemon.url + "/ui/")
    sign_in(found, token)
    yield found
    context.close()


def api(big_daemon: tuple[Daemon, str]) -> httpx.Client:
    daemon, token = big_daemon
    return httpx.Client(
        base_url=daemon.url, headers={"Authorization": f"Bearer {token}"}, timeout=20
    )


def clusters(session: Session) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = session.js(
        """() => Object.fromEntries(window.ossConsole.cy.nodes('node.cluster').map((n) =>
             [n.data('site'), {count: n.data('count'), severity: n.data('severity') ?? null,
                               label: n.data('label'), position: {...n.position()}}]))"""
    )
    return found


def bundles(session: Session) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = session.js(
        """() => Object.fromEntries(window.ossConsole.cy.edges('edge.bundle').map((e) =>
             [[e.data('source'), e.data('target')].sort().join('|'),
              {count: e.data('count'), bad: e.hasClass('bad'), label: e.data('mark')}]))"""
    )
    return found


def drawn_devices(session: Session) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = session.js(
        """() => Object.fromEntries(window.ossConsole.cy.nodes('node.device')
             .map((n) => [n.data('name'), {...n.position()}]))"""
    )
    return found


def click_node(session: Session, node_id: str) -> None:
    at = session.js(
        """(id) => { const r = document.getElementById('map').getBoundingClientRect();
        const p = window.ossConsole.cy.getElementById(id).renderedPosition();
        return {x: r.left + p.x, y: r.top + p.y}; }""",
        node_id,
    )
    session.page.mouse.click(at["x"], at["y"])


def test_a_big_map_opens_as_sites_and_a_click_unfolds_one_in_place(
    big_daemon: tuple[Daemon, str], session: Session, shots: Path
) -> None:
    with api(big_daemon) as client:
        doc = client.get("/api/v1/map").json()
    sites = expected_sites(doc)
    assert len(doc["devices"]) == SHAPE.devices
    session.page.wait_for_selector("body[data-map-detail=sites]", timeout=WAIT_MS)
    shown = clusters(session)
    assert {s: {"count": v["count"], "severity": v["severity"]} for s, v in shown.items()} == sites
    assert any(v["severity"] for v in sites.values())  # the inventory has alarmed devices
    for site, v in shown.items():  # the severity as text too, beside the colour
        assert f"{v['count']} devices" in v["label"]
        if v["severity"] in MARK:
            assert MARK[v["severity"]] in v["label"], (site, v)
    want = expected_bundles(doc)
    got = bundles(session)
    assert {k: {"count": v["count"], "bad": v["bad"]} for k, v in got.items()} == want
    assert all(f"{v['count']} links" in v["label"] for v in got.values())
    assert drawn_devices(session) == {}
    session.page.screenshot(path=str(shots / "overview-01-sites.png"))

    site = sorted(sites)[1]
    members = sorted(d["name"] for d in doc["devices"] if d["site"] == site)
    click_node(session, f"g:{site}")
    session.page.wait_for_selector("body[data-map-detail=partial]", timeout=WAIT_MS)
    devices = drawn_devices(session)
    assert sorted(devices) == members
    after = clusters(session)
    assert site not in after
    assert {s: v["position"] for s, v in after.items()} == {
        s: v["position"] for s, v in shown.items() if s != site
    }
    inside = [
        link["id"]
        for link in doc["links"]
        if link["a"]["device"] in members and link["b"]["device"] in members
    ]
    drawn = session.js("() => window.ossConsole.cy.edges('[linkId]').map((e) => e.data('linkId'))")
    assert sorted(drawn) == sorted(inside)
    session.page.screenshot(path=str(shots / "overview-02-site-unfolded.png"))

    # The first drag pins the whole layout, the folded sites' devices where they would unfold:
    # after a reload every other site is where it was.
    drag(session, members[0], 60, 40)
    session.page.wait_for_selector("body[data-layout-saves]", timeout=WAIT_MS)
    with api(big_daemon) as client:
        view = client.get("/api/v1/map/views/default").json()
    assert len(view["positions"]) == SHAPE.devices
    session.page.reload()
    session.page.wait_for_selector("body[data-map-detail=sites]", timeout=WAIT_MS)
    again = clusters(session)
    assert sorted(again) == sorted(shown)
    for other, v in after.items():  # saved to 0.1: the same place to the rounding
        assert v["position"] == pytest.approx(again[other]["position"], abs=0.1), other
    assert session.console_errors == []


def test_a_saved_position_a_search_and_a_live_clear_reach_folded_sites(
    big_daemon: tuple[Daemon, str], session: Session
) -> None:
    with api(big_daemon) as client:
        doc = client.get("/api/v1/map").json()
        site = sorted(expected_sites(doc))[-1]
        device = sorted(d["name"] for d in doc["devices"] if d["site"] == site)[-1]
        saved = client.put(
            "/api/v1/map/views/default/positions", json={"positions": {device: SAVED}}
        )
        assert saved.status_code == 200, saved.text
    session.page.reload()
    session.page.wait_for_selector("body[data-map-detail=sites]", timeout=WAIT_MS)
    before = clusters(session)
    # Enter on a device's name unfolds its site and opens its panel, where the layout has it.
    session.page.fill("#search", device)
    session.page.press("#search", "Enter")
    session.page.wait_for_selector(f"#panel h2[data-device='{device}']", timeout=WAIT_MS)
    assert drawn_devices(session)[device] == SAVED
    after = clusters(session)
    assert site not in after
    assert {s: v["position"] for s, v in after.items()} == {
        s: v["position"] for s, v in before.items() if s != site
    }

    # Clearing every alarm of a folded site's devices recolours the site without a reload.
    target = next(s for s, v in sorted(after.items()) if v["severity"])
    with api(big_daemon) as client:
        open_alarms = client.get(
            "/tmf-api/alarm/v4/alarm", params={"state": "raised", "limit": 1000}
        ).json()
        mine = [a for a in open_alarms if a["alarmedObject"]["id"].startswith(f"{target}-")]
        assert mine
        for alarm in mine:
            done = client.patch(f"/tmf-api/alarm/v4/alarm/{alarm['id']}", json={"state": "cleared"})
            assert done.status_code == 200, done.text
        now = expected_sites(client.get("/api/v1/map").json())[target]
    assert now["severity"] != after[target]["severity"]
    session.wait(
        "([id, sev]) => (window.ossConsole.cy.getElementById(id).data('severity') ?? null) === sev",
        [f"g:{target}", now["severity"]],
        timeout=LIVE_MS,
    )
    assert session.console_errors == []
