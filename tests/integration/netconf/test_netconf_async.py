"""The event-loop transport (drivers/netconf_async.py) against the real netconfd: both framings,
replies matched to pipelined requests, large replies, and no worker thread per call."""

from __future__ import annotations

import asyncio
import sys

import pytest
from lxml import etree
from ncclient.devices.default import DefaultDeviceHandler
from ncclient.operations.rpc import RPCError

from drivers.netconf import NC_NS, NetconfDriver, build_edit_config
from drivers.netconf_async import BASE_11, AsyncRpcs, OpenSshChannel
from drivers.netconf_transport import OpenSshOptions, openssh_argv, ssh_binary
from tests.integration.netconf.test_netconf import interfaces, mtus, running_mtus
from tests.peers.netconfd import NetconfServer

pytestmark = pytest.mark.integration


class Base10Only(DefaultDeviceHandler):  # type: ignore[misc]
    """A client that does not announce base:1.1, so the session keeps end-of-message framing."""

    def get_capabilities(self) -> list[str]:
        return [uri for uri in super().get_capabilities() if uri != BASE_11]


def argv_for(server: NetconfServer) -> list[str]:
    ssh = ssh_binary()
    assert ssh is not None
    return openssh_argv(
        ssh,
        OpenSshOptions(
            host=server.host,
            port=server.port,
            username=server.username,
            private_key_file=server.private_key,
            known_hosts=server.known_hosts,
            verify_host_key=True,
            connect_timeout_s=10,
        ),
    )


@pytest.mark.parametrize("handler", [DefaultDeviceHandler, Base10Only], ids=["1.1", "1.0"])
async def test_a_channel_speaks_either_framing(
    netconf_server: NetconfServer, handler: type[DefaultDeviceHandler]
) -> None:
    channel = OpenSshChannel(handler())
    await channel.open(argv_for(netconf_server), hello_within_s=10)
    try:
        assert channel.session_id is not None
        assert ":candidate" in channel.server_capabilities
        assert channel._chunked is (handler is DefaultDeviceHandler)
        config, _ = build_edit_config(interfaces(eth1=1500), "merge")
        await channel.call(AsyncRpcs.edit_config(config, target="candidate"), 10)
        reply = await channel.call(AsyncRpcs.get_config("candidate"), 10)
        assert mtus(_xml(reply.data_ele)) == {"eth1": 1500}
        await channel.call(AsyncRpcs.lock("running"), 10)
        with pytest.raises(RPCError) as refused:
            await channel.call(AsyncRpcs.lock("running"), 10)
        assert refused.value.tag == "lock-denied"  # we hold it already
        await channel.call(AsyncRpcs.unlock("running"), 10)
        await channel.call(AsyncRpcs.discard_changes(), 10)
    finally:
        await channel.close(5)
    assert not channel.is_alive


def _xml(element: object) -> str:
    return str(etree.tostring(element, encoding="unicode"))


async def test_pipelined_requests_each_get_their_own_reply(netconf_server: NetconfServer) -> None:
    async with NetconfDriver() as driver, driver.connect(netconf_server.target("pipe")) as nc:
        await nc.edit_config(interfaces(eth1=1500))
        await nc.commit()
        await nc.edit_config(interfaces(eth2=1600))
        only = '<interfaces xmlns="urn:oss:lab"/>'
        # all written before the first reply comes back: matched by message-id
        results = await asyncio.gather(
            *(nc.get_config("candidate" if i % 2 else "running", only) for i in range(20))
        )
        for i, data in enumerate(results):
            expected = {"eth1": 1500, "eth2": 1600} if i % 2 else {"eth1": 1500}
            assert mtus(data) == expected
        await nc.discard_changes()


async def test_a_large_reply_spans_many_chunks_and_reads(netconf_server: NetconfServer) -> None:
    many = {f"eth{i}": 1000 + i for i in range(400)}
    async with NetconfDriver() as driver, driver.connect(netconf_server.target("large")) as nc:
        await nc.edit_config(interfaces(**many))
        await nc.commit()
        assert await running_mtus(nc) == many


async def test_calls_on_the_default_path_use_no_worker_thread(
    netconf_server: NetconfServer,
) -> None:
    async with NetconfDriver() as driver:
        async with driver.connect(netconf_server.target("loop")) as nc:
            await nc.edit_config(interfaces(eth1=1500))
            await nc.commit()
            assert await running_mtus(nc) == {"eth1": 1500}
        assert driver._calls._executor._threads == set()
        threaded = netconf_server.target(
            "threads", options={"ssh_client": "openssh", "ncclient_device": "default"}
        )
        async with driver.connect(threaded) as nc:
            assert await running_mtus(nc) == {"eth1": 1500}
        assert driver._calls._executor._threads  # the ncclient path does use them


# A peer that behaves as netconfd does when a request arrives in the same read as the client's
# hello: that request is never answered. It answers the rest with <ok/>, chunked.
FORGETFUL_PEER = r"""
import os, re, sys
def out(data): os.write(1, data)
out(b'<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
    b'<capability>urn:ietf:params:netconf:base:1.1</capability></capabilities>'
    b'<session-id>7</session-id></hello>]]>]]>')
buffer, seen = b"", 0
while chunk := os.read(0, 65536):
    buffer += chunk
    for message_id in re.findall(rb'<rpc message-id="(\d+)"', buffer)[seen:]:
        seen += 1
        if seen > 1:  # the first request is lost
            reply = (b'<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"'
                     b' message-id="%s"><ok/></rpc-reply>' % message_id)
            out(b"\n#%d\n%s\n##\n" % (len(reply), reply))
"""


async def test_a_lost_first_request_is_only_a_probe() -> None:
    channel = OpenSshChannel(DefaultDeviceHandler())
    await channel.open([sys.executable, "-c", FORGETFUL_PEER], hello_within_s=10)
    try:
        assert channel.session_id == "7"
        reply = await channel.call(AsyncRpcs.discard_changes(), 5)  # answered: not the lost one
        assert reply.root.find(f"{{{NC_NS}}}ok") is not None
    finally:
        await channel.close(1)
