"""The console bench's generated inventory and its alarm-change traps: the shape the bench
claims (every port in one link at most, the sites joined into one graph, open alarms of every
severity on devices, interfaces and links), written through the daemon's store, and traps the
daemon's codec reads as the linkDown / linkUp of the right port."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import networkx as nx

from bench import console_changes
from bench.console_inventory import (
    LINK_PORTS,
    SEVERITIES,
    SPARE_PORTS,
    Shape,
    device_names,
    generate,
    link_ends,
)
from drivers.snmp_trap_codec import TrapCodec

SMALL = Shape(devices=100, sites=5, alarms=80, trap_sources=6)


def test_each_port_is_in_one_link_and_the_sites_make_one_graph() -> None:
    sites = device_names(SMALL)
    links = list(link_ends(sites))

    assert len(links) == SMALL.links == 400
    ends = [(a, ap) for a, ap, _, _ in links] + [(b, bp) for _, _, b, bp in links]
    assert len(set(ends)) == len(ends)  # no port twice
    assert Counter(device for device, _ in ends) == dict.fromkeys(
        [d for names in sites for d in names], LINK_PORTS
    )
    graph = nx.Graph((a, b) for a, _, b, _ in links)
    assert nx.is_connected(graph)
    assert len({a.split("-")[0] for a, _, b, _ in links if a.split("-")[0] != b.split("-")[0]}) == 5


async def test_generated_rows_are_in_the_store(tmp_path: Path) -> None:
    made = await generate(tmp_path, SMALL)

    db = sqlite3.connect(tmp_path / "oss.db")
    count = {
        t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("sites", "devices", "interfaces", "links", "alarms")
    }
    assert count == {
        "sites": 5,
        "devices": 100,
        "interfaces": 100 * (LINK_PORTS + SPARE_PORTS),
        "links": 400,
        "alarms": 80,
    }
    alarms = db.execute(
        "SELECT id, reduction_key, perceived_severity, alarmed_object_type, alarmed_object,"
        " parent_id, is_root_cause FROM alarms WHERE open"
    ).fetchall()
    assert len(alarms) == 80
    assert {a[2] for a in alarms} == set(SEVERITIES)
    assert {a[3] for a in alarms} == {"device", "interface", "link"}
    assert len({a[1] for a in alarms}) == 80  # one open alarm per reduction key
    roots = {a[0]: a[4] for a in alarms if a[3] == "link"}
    children = [a for a in alarms if a[5] is not None]
    assert children and all(a[5] in roots for a in children)
    for _, _, _, _, obj, parent, _ in children:  # a failed link's ends are down
        device, interface = obj.split(":", 1)
        link = db.execute(
            "SELECT id FROM links WHERE (a_device = ? AND a_interface = ?)"
            " OR (b_device = ? AND b_interface = ?)",
            (device, interface, device, interface),
        ).fetchone()[0]
        assert str(link) == roots[parent]
        oper = db.execute(
            "SELECT oper_state FROM interfaces WHERE device = ? AND name = ?", (device, interface)
        ).fetchone()[0]
        assert oper == "down"
    sources = db.execute(
        "SELECT name, mgmt_address, credentials_ref FROM devices WHERE mgmt_address IS NOT NULL"
    ).fetchall()
    assert sorted((n, a) for n, a, _ in sources) == sorted((n, a) for n, a, _ in made.trap_sources)
    assert all(a.startswith("127.") and c is None for _, a, c in sources)  # never polled


def test_a_flap_is_the_port_going_down_then_up_as_the_daemon_reads_it() -> None:
    ports = console_changes.ports([("s00-core01", "127.20.0.1", ("et-0/0/08", "et-0/0/09"))], 9)
    changes = console_changes.plan(ports, 6)

    assert [(c.port.interface, c.down, c.episode) for c in changes] == [
        ("et-0/0/08", True, 0),
        ("et-0/0/09", True, 0),
        ("et-0/0/08", False, 0),
        ("et-0/0/09", False, 0),
        ("et-0/0/08", True, 1),
        ("et-0/0/09", True, 1),
    ]
    codec = TrapCodec([b"bench"])
    for n, change in enumerate(changes[:3], 1):
        trap = codec.decode(console_changes.encode(change, n, b"bench"))
        index = change.port.ifindex
        values = dict(trap.varbinds)
        assert trap.trap_oid == ("1.3.6.1.6.3.1.1.5.3" if change.down else "1.3.6.1.6.3.1.1.5.4")
        assert values[f"1.3.6.1.2.1.31.1.1.1.1.{index}"] == change.port.interface.encode()
        assert values[f"1.3.6.1.2.1.2.2.1.8.{index}"] == (2 if change.down else 1)
