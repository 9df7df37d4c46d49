"""Issue 14, defect 1: what a live service uses cannot be removed or shrunk from under it.

One real `oss serve`, the mixed-protocol chain lab, and one active 200M slice across it, set up
once for the module. Each refusal is a 409 problem naming the slice, changes nothing, and is in
the audit log; once the slice is deleted, the same changes go through.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.provisioning.conftest import ChainLab, running_chain_lab
from tests.peers.daemon import Daemon

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
SLICE = {"customer": "acme", "from": "west", "to": "east", "bandwidth": "200M"}
RESERVED_BPS = 200_000_000


@dataclass
class Live:
    daemon: Daemon
    lab: ChainLab
    operator: httpx.Client
    slice: dict[str, Any]  # the active slice, as the API shows it

    @property
    def name(self) -> str:
        return str(self.slice["name"])

    def primary_link(self) -> int:
        return int(
            next(lk["id"] for lk in self.slice["resources"]["links"] if lk["role"] == "primary")
        )

    def refusals(self, action: str, object_id: str) -> list[dict[str, Any]]:
        params = {"action": action, "object_id": object_id}
        page = self.operator.get("/api/v1/audit", params=params)
        assert page.status_code == 200, page.text
        return list(page.json()["items"])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    state = tmp_path_factory.mktemp("integrity")
    with running_chain_lab(state, "integrity-lab") as lab:
        env = {
            "OSS_DRIVERS__ALLOWED_NETWORKS": '["127.0.0.0/8"]',
            "OSS_DRIVERS__PORTS": json.dumps(lab.lab.ports.as_dict()),
            "OSS_DRIVERS__TIMEOUT_S": "15",
        }
        daemon = Daemon(state_dir=state / "daemon", env=env).start()
        try:
            daemon.token = daemon.create_token("operator")
            headers = {"Authorization": f"Bearer {daemon.token}"}
            with httpx.Client(base_url=daemon.url, headers=headers, timeout=60) as operator:
                imported = operator.post(
                    "/api/v1/topology/import",
                    content=lab.clab_file.read_bytes(),
                    params={"filename": "chain5.clab.yml"},
                    headers={"Content-Type": "application/yaml"},
                )
                assert imported.status_code == 200, imported.text
                created = operator.post("/api/v1/slices", json=SLICE)
                assert created.status_code in (200, 201), created.text
                service = created.json()["service"]
                assert service["state"] == "active", service
                yield Live(daemon, lab, operator, service)
        finally:
            daemon.stop()


def assert_refused(response: httpx.Response, live: Live, *, naming: str) -> dict[str, Any]:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert live.name in problem["detail"] and naming in problem["detail"], problem["detail"]
    assert "delete those services first" in problem["detail"]
    assert [s["name"] for s in problem["services"]] == [live.name]
    assert problem["services"][0]["state"] == "active"
    return problem


def assert_audited(live: Live, action: str, object_id: str) -> None:
    entries = live.refusals(action, object_id)
    assert entries, f"no {action} entry for {object_id}"
    latest = entries[0]
    assert latest["actor"].startswith("token:t-operator"), latest
    assert live.name in latest["after"]["reason"]
    assert [s["name"] for s in latest["after"]["services"]] == [live.name]


def test_a_device_on_the_slice_cannot_be_deleted(live: Live) -> None:
    before = live.operator.get("/api/v1/links", params={"device": "p2"}).json()["items"]
    problem = assert_refused(live.operator.delete("/api/v1/devices/p2"), live, naming="p2")
    assert "device p2" in problem["services"][0]["uses"]
    # nothing changed: the device, its links and the slice are all still there
    assert live.operator.get("/api/v1/devices/p2").status_code == 200
    after = live.operator.get("/api/v1/links", params={"device": "p2"}).json()["items"]
    assert after == before and len(after) == 2
    assert live.operator.get(f"/api/v1/services/{live.name}").json()["state"] == "active"
    assert_audited(live, "device.delete.refused", "p2")


def test_the_cli_names_the_service(live: Live) -> None:
    result = live.daemon.cli("device", "rm", "p2", "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert live.name in result.stderr and "p2" in result.stderr, result.stderr


def test_a_link_of_the_slice_cannot_be_deleted(live: Live) -> None:
    link = live.primary_link()
    problem = assert_refused(live.operator.delete(f"/api/v1/links/{link}"), live, naming=f"{link}")
    assert f"link {link} ({RESERVED_BPS} bit/s reserved)" in problem["services"][0]["uses"]
    assert live.operator.get(f"/api/v1/links/{link}").status_code == 200
    assert_audited(live, "link.delete.refused", str(link))


def test_a_link_cannot_shrink_below_its_reservation(live: Live) -> None:
    link = live.primary_link()
    r = live.operator.patch(f"/api/v1/links/{link}", json={"capacity_bps": 1000})
    problem = assert_refused(r, live, naming=f"{RESERVED_BPS} bit/s reserved")
    assert live.operator.get(f"/api/v1/links/{link}").json()["capacity_bps"] == 10**9
    assert_audited(live, "link.update.refused", str(link))
    # shrinking to what is still enough is fine, and so is growing back
    for capacity in (RESERVED_BPS, 10**9):
        r = live.operator.patch(f"/api/v1/links/{link}", json={"capacity_bps": capacity})
        assert r.status_code == 200 and r.json()["capacity_bps"] == capacity, r.text
    assert problem["services"][0]["customer"] == "acme"


def test_an_interface_under_the_slice_cannot_be_deleted(live: Live) -> None:
    r = live.operator.delete("/api/v1/interfaces/p2/eth1")
    assert_refused(r, live, naming="p2:eth1")
    assert live.operator.get("/api/v1/interfaces/p2/eth1").status_code == 200
    assert_audited(live, "interface.delete.refused", "p2:eth1")


def test_a_site_whose_devices_carry_the_slice_cannot_be_deleted(live: Live) -> None:
    problem = assert_refused(live.operator.delete("/api/v1/sites/core"), live, naming="core")
    assert {"device p1", "device p2", "device p3"} <= set(problem["services"][0]["uses"])
    assert live.operator.get("/api/v1/sites/core").status_code == 200
    devices = live.operator.get("/api/v1/devices", params={"site": "core"}).json()["items"]
    assert sorted(d["name"] for d in devices) == ["p1", "p2", "p3"]
    assert_audited(live, "site.delete.refused", "core")


def test_a_reimport_shrinking_a_used_link_is_rejected_whole(live: Live) -> None:
    text = live.lab.clab_file.read_text()
    assert text.count("capacity: 1G") == 7
    # every link shrinks to 100M and a new device comes along: none of it may land
    shrunk = text.replace("capacity: 1G", "capacity: 100M").replace(
        "  links:\n", "    extra1:\n      labels: {oss.platform: lab-sim}\n  links:\n"
    )
    r = live.operator.post(
        "/api/v1/topology/import",
        content=shrunk.encode(),
        params={"filename": "shrunk.clab.yml"},
        headers={"Content-Type": "application/yaml"},
    )
    problem = assert_refused(r, live, naming="shrunk.clab.yml: rejected, nothing was written")
    assert str(live.primary_link()) in problem["detail"]
    links = live.operator.get("/api/v1/links").json()["items"]
    assert {lk["capacity_bps"] for lk in links} == {10**9}
    assert live.operator.get("/api/v1/devices/extra1").status_code == 404
    assert_audited(live, "topology.import.refused", "shrunk.clab.yml")


def test_once_the_slice_is_deleted_everything_goes(live: Live) -> None:
    """Last in the module: it ends the slice the others rely on."""
    deleted = live.operator.delete(f"/api/v1/services/{live.name}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["service"]["state"] == "terminated"
    link = live.primary_link()
    r = live.operator.patch(f"/api/v1/links/{link}", json={"capacity_bps": 1000})
    assert r.status_code == 200, r.text
    assert live.operator.delete("/api/v1/interfaces/p2/eth1").status_code == 409  # link on it
    assert live.operator.delete(f"/api/v1/links/{link}").status_code == 204
    assert live.operator.delete("/api/v1/devices/p2").status_code == 204
    assert live.operator.get("/api/v1/devices/p2").status_code == 404
