"""The console's map (`GET /api/v1/map`), its utilisation refresh and `GET /api/v1/me`, through
the in-process app over a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from oss.api.console_schemas import MapDocument
from oss.auth_roles import Role
from oss.store.tables import KpiMinuteRow
from tests.integration.api.console_fixtures import ACTOR, raise_on, seed_inventory
from tests.integration.conftest import Api
from topology.model import OperState


def by_name(items: list[dict[str, Any]], key: str = "name") -> dict[Any, dict[str, Any]]:
    return {item[key]: item for item in items}


async def get_map(api: Api, **params: Any) -> dict[str, Any]:
    response = await api.viewer.get("/api/v1/map", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_me_names_the_token_and_its_role(api: Api) -> None:
    for client, role in ((api.viewer, Role.VIEWER), (api.operator, Role.OPERATOR)):
        response = await client.get("/api/v1/me")
        assert response.status_code == 200
        me = response.json()
        assert me["name"] == f"test-{role.value}"
        assert me["role"] == role.value
        assert me["actor"].startswith(f"token:test-{role.value}#")
    assert (await api.anonymous.get("/api/v1/me")).status_code == 401


async def test_map_rolls_alarms_up_onto_devices_and_links(api: Api) -> None:
    ids = await seed_inventory(api.daemon)
    alarms = api.daemon.alarms
    # r2: a minor alarm on the device, a major one on its interface eth2 (towards r3)
    await alarms.signal(raise_on("device", "r2", "minor"))
    await alarms.signal(raise_on("interface", "r2:eth2", "major"))
    # r4: a warning on the device; the link r3-r4 itself critical
    await alarms.signal(raise_on("device", "r4", "warning"))
    await alarms.signal(raise_on("link", str(ids[("r3", "r4")]), "critical"))
    # a cleared alarm counts for nothing
    await alarms.signal(raise_on("device", "r1", "critical", problem="gone"))
    opened, _ = await alarms.find()
    gone = next(a for a in opened if a["alarmedObject"]["id"] == "r1")
    await alarms.clear(int(gone["id"]), ACTOR)

    document = await get_map(api)

    MapDocument.model_validate(document)  # what OpenAPI documents
    assert document["view"] == "default"
    assert document["sites"] == [
        {"name": "north", "device_count": 2},
        {"name": "south", "device_count": 3},
    ]
    assert [d["name"] for d in document["devices"]] == ["r1", "r2", "r3", "r4", "r10"]
    devices = by_name(document["devices"])
    assert devices["r2"]["severity"] == "major"  # the interface's, worse than the device's
    assert devices["r2"]["open_alarms"] == 2
    assert devices["r4"]["severity"] == "warning"  # a link's alarm is not its ends' devices'
    assert devices["r4"]["open_alarms"] == 1
    assert devices["r1"]["severity"] is None and devices["r1"]["open_alarms"] == 0
    assert devices["r3"]["site"] == "south" and devices["r3"]["role"] == "p"
    assert all(d["position"] is None for d in document["devices"])
    assert all("credentials_ref" not in d for d in document["devices"])
    assert "_PW" not in str(document)

    links = by_name(document["links"], "id")
    assert [lk["id"] for lk in document["links"]] == sorted(ids.values())
    assert links[ids[("r2", "r3")]]["severity"] == "major"  # its end r2:eth2
    assert links[ids[("r3", "r4")]]["severity"] == "critical"  # the link itself
    assert links[ids[("r1", "r2")]]["severity"] is None
    assert links[ids[("r1", "r2")]]["a"] == {"device": "r1", "interface": "eth1"}
    assert all(lk["state"] == "up" and lk["utilisation"] is None for lk in links.values())


async def test_a_link_is_down_when_either_end_is_down(api: Api) -> None:
    ids = await seed_inventory(api.daemon)
    inventory = api.daemon.inventory
    before = await get_map(api)
    assert all(lk["state"] == "up" for lk in before["links"])

    await inventory.set_oper_states({("r3", "eth1"): OperState.DOWN}, actor=ACTOR)
    after = by_name((await get_map(api))["links"], "id")
    assert after[ids[("r2", "r3")]]["state"] == "down"
    assert after[ids[("r3", "r4")]]["state"] == "up"

    await inventory.update_link(ids[("r3", "r4")], {"state": "down"}, actor=ACTOR)
    again = by_name((await get_map(api))["links"], "id")
    assert again[ids[("r3", "r4")]]["state"] == "down"
    near = by_name((await get_map(api, around="r3"))["links"], "id")  # a part, object by object
    assert {i: lk["state"] for i, lk in near.items()} == {
        ids[("r2", "r3")]: "down",
        ids[("r3", "r4")]: "down",
    }
    await inventory.set_oper_states({("r3", "eth1"): OperState.UP}, actor=ACTOR)
    back = by_name((await get_map(api))["links"], "id")
    assert back[ids[("r2", "r3")]]["state"] == "up"


async def test_neighbourhood_and_name_filter(api: Api) -> None:
    ids = await seed_inventory(api.daemon)

    one_hop = await get_map(api, around="r3", hops=1)
    assert [d["name"] for d in one_hop["devices"]] == ["r2", "r3", "r4"]
    assert {lk["id"] for lk in one_hop["links"]} == {ids[("r2", "r3")], ids[("r3", "r4")]}
    assert one_hop["sites"] == [
        {"name": "north", "device_count": 1},
        {"name": "south", "device_count": 2},
    ]
    default_hop = await get_map(api, around="r3")
    assert default_hop["devices"] == one_hop["devices"]
    two_hops = await get_map(api, around="r3", hops=2)
    assert [d["name"] for d in two_hops["devices"]] == ["r1", "r2", "r3", "r4", "r10"]

    named = await get_map(api, q="R1")  # any case: r1 and r10
    assert [d["name"] for d in named["devices"]] == ["r1", "r10"]
    assert named["links"] == []  # no link joins r1 and r10
    both = await get_map(api, around="r2", q="r1")
    assert [d["name"] for d in both["devices"]] == ["r1", "r10"]


async def test_map_refuses_what_it_cannot_answer(api: Api) -> None:
    await seed_inventory(api.daemon)
    unknown = await api.viewer.get("/api/v1/map", params={"around": "nope"})
    assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
    far = await api.viewer.get("/api/v1/map", params={"around": "r1", "hops": 11})
    assert far.status_code == 422 and "query.hops" in far.json()["detail"]
    alone = await api.viewer.get("/api/v1/map", params={"hops": 2})
    assert alone.status_code == 422 and "around" in alone.json()["detail"]
    bad_view = await api.viewer.get("/api/v1/map", params={"view": "no/slash"})
    assert bad_view.status_code == 422 and "query.view" in bad_view.json()["detail"]
    missing_view = await api.viewer.get("/api/v1/map", params={"view": "never-saved"})
    assert missing_view.status_code == 404 and "never-saved" in missing_view.json()["detail"]
    assert (await api.anonymous.get("/api/v1/map")).status_code == 401


async def test_map_follows_changes_after_it_was_served(api: Api) -> None:
    """The map's cached body is replaced by what changed since: a device, an alarm."""
    await seed_inventory(api.daemon)
    first = await get_map(api)
    assert (await get_map(api))["devices"] == first["devices"]  # served again, unchanged

    await api.daemon.alarms.signal(raise_on("device", "r3", "critical"))
    assert by_name((await get_map(api))["devices"])["r3"]["severity"] == "critical"

    created = await api.operator.post("/api/v1/devices", json={"name": "r5", "site": "north"})
    assert created.status_code == 201
    assert "r5" in by_name((await get_map(api))["devices"])


async def test_utilisation_colours_links_from_the_latest_minute(api: Api) -> None:
    ids = await seed_inventory(api.daemon)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    async with api.daemon.db.transaction() as session:
        for obj, metric, value, minute in [
            ("r1:eth1", "in-utilisation", 0.25, now),
            ("r2:eth1", "out-utilisation", 0.5, now),  # the other end of r1-r2, higher
            ("r2:eth2", "in-utilisation", 0.9, now - timedelta(minutes=3)),  # older
            ("r2:eth2", "in-utilisation", 0.1, now),
            ("r3:eth2", "in-utilisation", 0.7, now - timedelta(hours=1)),  # says nothing now
        ]:
            session.add(
                KpiMinuteRow(
                    object_type="interface", object=obj, metric=metric, minute=minute,
                    count=1, sum=value, min=value, max=value, last=value,
                )
            )  # fmt: skip

    refreshed = await api.viewer.get("/api/v1/map/utilisation")
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert body["links"] == {str(ids[("r1", "r2")]): 0.5, str(ids[("r2", "r3")]): 0.1}
    links = by_name((await get_map(api))["links"], "id")
    assert links[ids[("r1", "r2")]]["utilisation"] == 0.5
    assert links[ids[("r3", "r4")]]["utilisation"] is None
