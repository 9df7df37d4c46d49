"""A transaction's read of a NETCONF device (one get-config whose subtree filter selects just
the change's scope) against the simulated lab: the same leaves as the whole running
configuration restricted to that scope, and nothing of the entries around them."""

from __future__ import annotations

import pytest

from drivers.platforms import load_platform
from oss.provisioning.leaves import Intent, leaves_to_xml, restrict, xml_intent
from oss.provisioning.plan import DevicePlan
from oss.provisioning.protocols.netconf import NetconfAdapter
from tests.integration.provisioning.conftest import Stack

pytestmark = pytest.mark.integration

DEVICE = "ce2"  # a customer edge: no service of the other tests configures it
IF_NS = "http://openconfig.net/yang/interfaces"
NI_NS = "http://openconfig.net/yang/network-instance"
ETH1 = "interfaces/interface[name=eth1]"
SUB = f"{ETH1}/subinterfaces/subinterface[index=100]"
AROUND = f"{ETH1}/subinterfaces/subinterface[index=200]"
NI = "network-instances/network-instance[name=h3-acme]"
OTHER_NI = "network-instances/network-instance[name=h3-other]"

SETUP = f"""
<interfaces xmlns="{IF_NS}"><interface><name>eth1</name><subinterfaces>
  <subinterface><index>100</index><config><index>100</index><description>in scope</description>
  </config></subinterface>
  <subinterface><index>200</index><config><index>200</index><description>around</description>
  </config></subinterface>
</subinterfaces></interface></interfaces>
<network-instances xmlns="{NI_NS}">
  <network-instance><name>h3-acme</name><config><name>h3-acme</name><type>L3VRF</type></config>
  </network-instance>
  <network-instance><name>h3-other</name><config><name>h3-other</name><type>L3VRF</type>
  </config></network-instance>
</network-instances>
"""


async def push(stack: Stack, xml: str) -> None:
    async with stack.access.adapter(DEVICE) as adapter:
        assert isinstance(adapter, NetconfAdapter)
        session = adapter.session
        async with session.locked("candidate"):
            await session.edit_config(xml, target="candidate", operation="merge")
            await session.commit()


async def test_the_read_is_the_running_config_restricted_to_the_scope(stack: Stack) -> None:
    platform = load_platform("lab-sim")
    await push(stack, SETUP)
    try:
        change = Intent(
            {f"{ETH1}/config/mtu": "9000", f"{SUB}/config/description": "mine now"},
            removals=(),
        )
        plan = DevicePlan(
            device=DEVICE, platform=platform, payload="", intent=change, owned=(SUB, NI)
        )
        async with stack.access.adapter(DEVICE) as adapter:
            assert isinstance(adapter, NetconfAdapter)
            read = await adapter.read(plan)
            whole = xml_intent(await adapter.session.get_config("running"), platform.model).leaves
        expected = restrict(whole, change, plan.owned)
        assert read == expected
        assert read[f"{SUB}/config/description"] == "in scope"
        assert read[f"{NI}/config/type"] == "L3VRF"
        assert not [p for p in read if p.startswith((AROUND, OTHER_NI))]
        assert [p for p in whole if p.startswith((AROUND, OTHER_NI))]  # they are there
    finally:
        removal = Intent({}, removals=(SUB, AROUND, NI, OTHER_NI))
        await push(stack, leaves_to_xml(removal, platform.model))
