"""The component that turns telemetry into usage records every `usage_interval_s`.

Wired by `oss.app` as
`runtime.add_component(UsageCollector(daemon.bss.usage, settings.bss.usage_interval_s))`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError

from bss_bridge.usage import UsageLedger
from oss.components import Stage
from oss.errors import Fenced, OssError

log = logging.getLogger(__name__)


class UsageCollector:
    name = "usage-collector"
    stage = Stage.WORKERS

    def __init__(self, ledger: UsageLedger, interval_s: float) -> None:
        self.ledger = ledger
        self.interval_s = interval_s
        self.passes = 0
        self.failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.collect_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)

    async def collect_once(self) -> int:
        """One pass; a database problem is logged and retried on the next pass (the records of
        a pass that failed half-way are complete records: each is its own transaction)."""
        self.passes += 1
        try:
            written = await self.ledger.collect()
        except Fenced:
            raise  # its lease is lost (a cluster's singleton): the holder stops it, not a retry
        except (SQLAlchemyError, OssError) as exc:
            self.failures += 1
            log.warning("usage collection failed; retrying in %.0fs: %s", self.interval_s, exc)
            return 0
        if written:
            log.info("usage records written: %d", written)
        return written
