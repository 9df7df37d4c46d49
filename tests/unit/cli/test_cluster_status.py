"""`oss cluster status` as people read it: the summary, every instance with its roles, devices
and lease ages (an expired lease said so), the singletons' holders; names printed verbatim."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from oss.cli.cluster import render


def member(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "instance": name,
        "alive": True,
        "roles": [],
        "devices": 0,
        "lease_age_s": 0.4,
        "expires_in_s": 1.6,
        "api_url": None,
        "started_at": "2026-12-07T15:00:00Z",
        "pid": 100,
        **fields,
    }


def doc(**fields: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "instance": "b",
        "lease_s": 2.0,
        "leader": "[bold]a",
        "instances": [
            member("[bold]a", roles=["leader", "noc-feed"], devices=4, api_url="http://x:1"),
            member("b", devices=3, pid=101),
            member("c", alive=False, devices=3, lease_age_s=5.25, expires_in_s=-3.25, pid=102),
        ],
        "singletons": [
            {"job": "noc-feed", "holder": "[bold]a", "token": 7, "expires_in_s": 1.5},
            {"job": "usage", "holder": None, "token": None, "expires_in_s": None},
        ],
        "unassigned_devices": 3,
        **fields,
    }


def test_status_shows_members_roles_shares_and_leases(capsys: pytest.CaptureFixture[str]) -> None:
    render(doc(), Console(soft_wrap=True, width=200))  # even on a console that reads markup
    out = capsys.readouterr().out
    assert "cluster of 3 instances, 2 alive; leader [bold]a; lease 2 s; answered by b" in out
    assert "devices no live instance owns yet: 3" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert "leader, noc-feed" in rows["[bold]a"] and "http://x:1" in rows["[bold]a"]
    assert "b (this)" in rows
    assert "NO" in rows["c"] and "expired 3.2 s ago" in rows["c"] and "5.2 s" in rows["c"]
    assert "7" in rows["noc-feed"] and "1.5 s" in rows["noc-feed"]
    assert rows["usage"].count(" - ") == 3  # nobody holds it: no holder, token or expiry


def test_a_single_instance_says_cluster_mode_is_off(capsys: pytest.CaptureFixture[str]) -> None:
    solo = doc(
        enabled=False,
        leader=None,
        instances=[member("b", lease_age_s=None, expires_in_s=None, devices=10)],
        unassigned_devices=0,
    )
    render(solo, Console(soft_wrap=True, width=200))
    out = capsys.readouterr().out
    assert "single instance b (cluster mode off): it owns every device" in out
    assert "no live instance" not in out
