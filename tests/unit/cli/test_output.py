"""The CLI's one output path (issue 14, defect 6): what devices, the daemon and users wrote is
data, never Rich markup: list keys, YANG error tags, emoji codes and style tags print verbatim."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from oss.cli.output import Format, show
from oss.cli.service import _progress_table, _show_diffs
from oss.cli.sla import render

# A device's own words: a YANG error tag, list keys in diff paths, an emoji code, a style tag.
TAG = "[not-in-range]"
DIFF = [
    "+ /interfaces/interface[name=gold-eth1]/config/mtu: 9000",
    "- /network-instances/network-instance[name=red]/config/type: L3VRF",
    "~ /qos/classifier[name=:link:]/config/name: [bold]x[/bold]",
]


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # cells stay on one line, as in a wide terminal


def test_service_diff_prints_list_keys_and_error_tags(capsys: pytest.CaptureFixture[str]) -> None:
    result: dict[str, Any] = {
        "in_sync": False,
        "devices": [
            {"device": "r1", "protocol": "netconf", "state": "drift", "diff": DIFF},
            {"device": "r2", "protocol": "netconf", "state": "failed", "error": f"{TAG} mtu"},
        ],
    }
    _show_diffs(result, Format.TABLE)
    out = capsys.readouterr().out
    for line in DIFF:
        assert line in out
    assert f"error: {TAG} mtu" in out and "drift found" in out


def test_progress_table_prints_device_errors(capsys: pytest.CaptureFixture[str]) -> None:
    txn = {
        "id": 7,
        "kind": "create",
        "state": "rolled-back",
        "devices": [{"device": "r1", "protocol": "netconf", "state": "failed", "error": TAG}],
    }
    Console().print(_progress_table(txn))
    assert TAG in capsys.readouterr().out


def test_sla_prints_causes_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    window = {
        "start": "s",
        "end": "e",
        "durationSeconds": "60",
        "serviceAlarmIds": [1],
        "rootAlarmIds": [2],
        "cause": "linkFailure:link:15 [/x]",
    }
    doc = {
        "service": "[bold]svc[/bold]",
        "met": False,
        "period": {"start": "a", "end": "b"},
        "measuredUntil": "c",
        "availability": {
            "measuredPercent": "99",
            "targetPercent": "99.9",
            "met": False,
            "outageSeconds": 60,
            "measuredSeconds": 6000,
            "outageWindows": [window],
        },
        "latency": {"measured": False, "note": "not measured"},
    }
    render(doc, Console(soft_wrap=True))  # even on a console that reads markup (the demo's)
    out = capsys.readouterr().out
    assert "[bold]svc[/bold]" in out and "linkFailure:link:15 [/x]" in out


def test_show_prints_objects_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    show({"name": "x", "description": "[/x] :link:"}, Format.TABLE, title="[red]t[/red]")
    out = capsys.readouterr().out
    assert "[/x] :link:" in out and "[red]t[/red]" in out


def test_invoice_prints_line_descriptions_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    from oss.cli.bill import invoice

    money = {"unit": "EUR", "value": 10}
    bill = {"id": 1, "state": "new", "taxExcludedAmount": money, "taxIncludedAmount": money}
    rate = {
        "description": "[bold]Metro[/bold] slice :link: [/x]",
        "taxExcludedAmount": money,
        "characteristic": [{"name": "kind", "value": "recurring"}],
    }
    Console(soft_wrap=True).print(invoice(bill, [rate]))  # the demo's console reads markup
    assert "[bold]Metro[/bold] slice :link: [/x]" in capsys.readouterr().out
