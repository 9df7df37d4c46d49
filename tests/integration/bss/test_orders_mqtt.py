"""Order state changes reach a real Mosquitto broker: `<prefix>/orders/<order-id>`, QoS 1, not
retained, each a TMF622 ProductOrderStateChangeEvent, in the order the states changed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from oss import tmf
from oss.app import assemble
from tests.integration.bss import lab_fixtures
from tests.integration.bss.lab_fixtures import BOUND_S, lab_settings, open_daemon
from tests.integration.bss.test_orders_lab import slice_order
from tests.integration.provisioning.conftest import ChainLab
from tests.peers.mosquitto import MosquittoServer, running_mosquitto

pytestmark = pytest.mark.integration
bss_lab = lab_fixtures.bss_lab


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoServer]:
    with running_mosquitto() as server:
        yield server


async def test_order_events_are_published(
    bss_lab: ChainLab, broker: MosquittoServer, tmp_path: Path
) -> None:
    prefix = f"oss-{uuid.uuid4().hex[:8]}"
    mqtt = {
        "enabled": True,
        "host": broker.host,
        "port": broker.port,
        "prefix": prefix,
        "client_id": f"oss-{prefix}",
        "poll_interval_s": 0.2,
        "backoff_initial_s": 0.1,
    }
    assembly = assemble(lab_settings(bss_lab, tmp_path, mqtt=mqtt))
    publisher = assembly.daemon.noc_publisher
    assert publisher is not None
    received: list[tuple[str, bool, int, dict[str, Any]]] = []
    async with (
        assembly as parts,
        aiomqtt.Client(broker.host, broker.port, identifier=f"noc-{prefix}") as noc,
    ):
        await noc.subscribe(f"{prefix}/orders/#", qos=1)
        task = asyncio.create_task(publisher.run())
        try:
            async for d in open_daemon(parts, bss_lab.clab_file):
                await d.customer_and_account("acme", "acme-main")
                r = await d.operator.post(
                    "/tmf-api/productOrderingManagement/v4/productOrder",
                    json=slice_order("acme-main"),
                )
                assert r.status_code == 201, r.text
                order_id = r.json()["id"]
                async with asyncio.timeout(BOUND_S):
                    async for message in noc.messages:
                        assert isinstance(message.payload, bytes)
                        event = json.loads(message.payload)
                        received.append((str(message.topic), message.retain, message.qos, event))
                        if event["event"]["productOrder"]["state"] in ("completed", "failed"):
                            break
            await parts.services.close()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    spec = tmf.spec(tmf.PRODUCT_ORDERING)
    assert [e["event"]["productOrder"]["state"] for *_, e in received] == [
        "acknowledged",
        "inProgress",
        "completed",
    ]
    for topic, retain, qos, event in received:
        assert topic == f"{prefix}/orders/{order_id}"
        assert not retain and qos == 1
        assert event["eventType"] == "ProductOrderStateChangeEvent"
        assert spec.errors(event, "ProductOrderStateChangeEvent") == []
    assert len({e["eventId"] for *_, e in received}) == 3
