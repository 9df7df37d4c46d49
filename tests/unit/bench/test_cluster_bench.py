"""The cluster bench's inputs and its record of polls: the generated containerlab file is the
network the bench claims (N devices of 4 interfaces on their own loopback addresses, in sites,
on the lab's platform with the lab's credentials), and the lab's nodes note one start per poll
and per poller, answered on the control channel's `polls` operation."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from bench.cluster_bench import INTERFACES, cluster_clab, port_of
from bench.cluster_lab import RecordingAgent, RecordingLab
from oss.errors import InvalidInput
from topology.clab import parse_clab


def test_the_generated_network_is_the_one_the_bench_describes(tmp_path: Path) -> None:
    credentials = tmp_path / "lab" / "credentials.yaml"
    topology = parse_clab(cluster_clab(60, 4, credentials), "cluster.clab.yml")

    assert len(topology.devices) == 60
    assert len({d.mgmt_address for d in topology.devices}) == 60
    assert all(str(d.mgmt_address).startswith("127.18.0.") for d in topology.devices)
    assert {d.platform for d in topology.devices} == {"lab-sim"}
    assert {d.credentials_ref for d in topology.devices} == {f"file:{credentials}"}
    assert Counter(d.site for d in topology.devices) == {f"s0{n}": 15 for n in range(1, 5)}
    assert Counter(i.device for i in topology.interfaces) == {
        d.name: INTERFACES for d in topology.devices
    }
    assert len(topology.links) == 2 * 60


def test_a_node_notes_one_start_per_poll_and_poller(tmp_path: Path) -> None:
    topology = parse_clab(cluster_clab(3, 1, tmp_path / "c.yaml"), "cluster.clab.yml")
    lab = RecordingLab(topology, tmp_path / "lab", gnmi=False)
    agent = lab.nodes["d1"].snmp
    assert isinstance(agent, RecordingAgent)
    before = time.time()
    for _ in range(3):  # one poll's burst of requests from one poller
        agent.datagram_received(b"not snmp", ("127.0.0.1", 40001))
    agent.datagram_received(b"not snmp", ("127.0.0.1", 40002))  # another poller, same moment

    starts = agent.starts
    assert [source for _, source in starts] == ["127.0.0.1:40001", "127.0.0.1:40002"]
    assert all(t >= before for t, _ in starts)
    assert port_of(starts[0][1]) == 40001


async def test_the_control_channel_answers_the_polls_since_a_time(tmp_path: Path) -> None:
    topology = parse_clab(cluster_clab(3, 1, tmp_path / "c.yaml"), "cluster.clab.yml")
    lab = RecordingLab(topology, tmp_path / "lab", gnmi=False)
    lab.nodes["d2"].snmp.datagram_received(b"x", ("127.0.0.1", 40003))
    after = time.time() + 1

    found = await lab.control({"op": "polls", "since": 0})
    later = await lab.control({"op": "polls", "since": after})

    assert {node: [s for _, s in starts] for node, starts in found.items()} == {
        "d1": [],
        "d2": ["127.0.0.1:40003"],
        "d3": [],
    }
    assert later == {"d1": [], "d2": [], "d3": []}


async def test_a_bad_since_is_refused_by_name(tmp_path: Path) -> None:
    topology = parse_clab(cluster_clab(1, 1, tmp_path / "c.yaml"), "cluster.clab.yml")
    lab = RecordingLab(topology, tmp_path / "lab", gnmi=False)
    with pytest.raises(InvalidInput, match="since must be a number"):
        await lab.control({"op": "polls", "since": "yesterday"})
