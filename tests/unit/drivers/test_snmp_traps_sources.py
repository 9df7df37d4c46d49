"""An unknown community from an inventory device whose community the receiver is not told
(it booted before its SNMP credentials were recorded: `make run`'s lab sent ten coldStarts so)
is counted but logged at debug only; from a device whose community is known, or from an
address no device has, it is a warning (rate-limited)."""

from __future__ import annotations

import logging
import socket

import pytest

from drivers.snmp_traps import TrapReceiver
from tests.unit.drivers.test_snmp_trap_codec import v2c_message

DEVICES = {"127.0.0.1": "acc1", "127.0.0.2": "acc2"}


async def test_unknown_community_is_a_warning_only_where_one_is_expected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.snmp_traps")
    async with TrapReceiver("127.0.0.1", 0) as receiver:
        receiver.update_sources(DEVICES, ["the-community"], expecting=["127.0.0.2"])
        for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.bind((host, 0))
                sender.sendto(v2c_message(community=b"wrong"), ("127.0.0.1", receiver.port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            good = v2c_message(community=b"the-community")
            sender.sendto(good, ("127.0.0.1", receiver.port))  # read after the others
        await receiver.get(timeout_s=5)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 2, warned
    assert "127.0.0.2:" in warned[0] and "127.0.0.3:" in warned[1]
    assert receiver.rejected == {"decode": 0, "community": 3}
