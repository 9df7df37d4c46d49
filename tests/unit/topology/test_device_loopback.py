"""The device's `loopback` (the address latency probes measure to): the model, the clab label
`oss.loopback` (import with its line on a bad value, export), and the inventory's row."""

from __future__ import annotations

import textwrap

import pytest
from pydantic import ValidationError

from oss.errors import TopologyFileError
from oss.inventory.rows import device_from_row, device_values
from oss.store.tables import DeviceRow
from topology.clab import export_clab, parse_clab
from topology.model import Device

FILE = "t.clab.yml"


def _clab(loopback: str) -> str:
    return textwrap.dedent(f"""
        name: t
        topology:
          nodes:
            r1:
              kind: linux
              mgmt-ipv4: 127.0.0.11
              labels:
                oss.loopback: "{loopback}"
            r2: {{kind: linux}}
        """).lstrip("\n")


def test_the_label_fills_the_field_and_export_writes_it_back() -> None:
    topo = parse_clab(_clab("10.255.0.1"), FILE)
    r1 = next(d for d in topo.devices if d.name == "r1")
    r2 = next(d for d in topo.devices if d.name == "r2")
    assert (r1.loopback, r2.loopback) == ("10.255.0.1", None)
    again = parse_clab(export_clab(topo.name, topo.devices, topo.links, topo.sites), FILE)
    assert again == topo


def test_a_bad_label_is_refused_with_its_line() -> None:
    with pytest.raises(TopologyFileError) as info:
        parse_clab(_clab("10.255.0.300"), FILE)
    [problem] = info.value.problems
    assert problem.where == f"{FILE}:8"
    assert "label oss.loopback '10.255.0.300'" in problem.reason


def test_the_model_normalises_and_refuses() -> None:
    assert Device(name="r1", loopback="2001:db8::0001").loopback == "2001:db8::1"
    with pytest.raises(ValidationError):
        Device(name="r1", loopback="not-an-address")


def test_the_row_keeps_it() -> None:
    device = Device(name="r1", mgmt_address="127.0.0.11", loopback="10.255.0.1")
    assert device_from_row(DeviceRow(**device_values(device))) == device
