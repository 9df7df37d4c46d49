"""The JS profile summary charges each sample to its function (self) and once to every distinct
page function on its stack (total), and keeps the vendored library and idle out of the page's
own totals."""

from __future__ import annotations

from typing import Any

from bench.browser_profile import summarise

PAGE = "http://127.0.0.1:8080/ui/js/"
VENDOR = "http://127.0.0.1:8080/ui/vendor/cytoscape.min.js?v=3.35.0"


def node(n: int, name: str, url: str = "", line: int = 0, children: tuple[int, ...] = ()) -> Any:
    frame = {"functionName": name, "url": url, "lineNumber": line, "columnNumber": 0}
    return {"id": n, "callFrame": frame, "children": list(children)}


def test_self_and_total_time_by_function() -> None:
    profile = {
        "nodes": [
            node(1, "(root)", children=(2, 3)),
            node(2, "(idle)"),
            node(3, "render", PAGE + "alarms.js", 77, children=(4, 5)),
            node(4, "el", PAGE + "dom.js", 3, children=(6,)),
            node(5, "Zl", VENDOR, 28),
            node(6, "render", PAGE + "alarms.js", 77),  # recursion: counted once in total
        ],
        "samples": [2, 3, 4, 5, 6, 6],
        "timeDeltas": [5000, 1000, 2000, 3000, 500, 500],
    }

    profiled = summarise(profile)

    assert profiled.busy_ms == 7.0  # all but idle
    assert profiled.by_self[0].where == "Zl (cytoscape.min.js:29)"  # the heaviest first
    assert {h.where: h.ms for h in profiled.by_self} == {
        "Zl (cytoscape.min.js:29)": 3.0,
        "el (dom.js:4)": 2.0,
        "render (alarms.js:78)": 2.0,
    }
    assert {h.where: h.ms for h in profiled.by_total} == {
        "render (alarms.js:78)": 7.0,
        "el (dom.js:4)": 3.0,
    }
