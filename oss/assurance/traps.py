"""The trap collector: SNMP notifications from the inventory's devices, received on
`assurance.traps_host:traps_port` (none when the port is 0), as "snmp.trap" events.

The receiver knows every device by its management address (credentials or not) and accepts
the configured communities plus each device's own, whatever its telemetry protocol. It binds
at start-up (`bind`, called by the daemon's build) so a busy port is a ConfigError there.

Traps reach the sink in batches of what is queued, up to TRAP_BATCH: under a storm the batches
grow (and linger TRAP_LINGER_S for more), so the per-batch costs (one alarm transaction, one MQTT
round) are shared by many traps; after a quiet moment (TRAP_IDLE_S) a lone trap goes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from drivers.snmp_traps import TrapReceiver
from oss.assurance.collectors import CollectorContext, Sink, Targets, register_collector
from oss.components import cannot_listen
from oss.events import Event
from oss.settings import AssuranceSettings

log = logging.getLogger(__name__)

# Traps per sink() call at most. Under a storm a batch takes what is queued, so the fixed costs
# of one alarm transaction (a dozen statements: begin, look-ups, bulk writes, commit) are shared
# by up to this many traps, and repeats within it fold into one change per alarm. The bound keeps
# one transaction's hold on the database's write lock short (tens of ms: the NOC publisher marks
# rows sent meanwhile) and its memory small.
TRAP_BATCH = 1000
TRAP_LINGER_S = 0.004  # under a storm, a batch short of TRAP_BATCH waits this long for more
# A batch that comes this long after the last one ended (the path was idle) goes at once: a lone
# trap pays no linger, a storm's batches (back to back) still share their fixed costs.
TRAP_IDLE_S = 0.05
TRAP_COUNTS = (
    "traps_received",
    "traps_dropped",
    "traps_kernel_dropped",
    "udp_rcvbuf_errors",
    "traps_receive_buffer_bytes",
)


class TrapCollector:
    name = "traps"

    def __init__(self, settings: AssuranceSettings, sink: Sink) -> None:
        self.settings = settings
        self.sink = sink
        self.receiver: TrapReceiver | None = None
        self.handled = 0  # traps through the sink (alarms committed), since start
        self._idle_since = float("-inf")  # loop time the last batch was through the sink
        self._targets = Targets()

    # --- the collector contract -------------------------------------------------------------

    def follow(self, targets: Targets) -> None:
        self._targets = targets
        if self.receiver is not None:
            self._update(self.receiver)

    def restarted(self, device: str) -> None:
        return  # a trap has no counters to start again

    def counts(self) -> Mapping[str, int]:
        """Traps received, and lost: `traps_dropped` by the daemon's full queue,
        `traps_kernel_dropped` by the kernel for this socket (its receive buffer full),
        `udp_rcvbuf_errors` the same for every UDP socket of the host (read on each scrape);
        `traps_receive_buffer_bytes`, the socket's buffer as the kernel granted it."""
        receiver = self.receiver
        if receiver is None:
            return dict.fromkeys(TRAP_COUNTS, 0)
        return {
            "traps_received": receiver.received,
            "traps_dropped": receiver.dropped,
            "traps_kernel_dropped": receiver.kernel_dropped,
            "udp_rcvbuf_errors": receiver.host_rcvbuf_errors(),
            "traps_receive_buffer_bytes": receiver.receive_buffer,
        }

    @property
    def rejected(self) -> Mapping[str, int]:
        """Datagrams dropped unread, by reason (see TrapReceiver.rejected)."""
        return self.receiver.rejected if self.receiver else {}

    def bind(self) -> None:
        """Take the trap port now, at start-up (when traps are configured): a busy one stops
        the daemon with a ConfigError naming the setting and the address, not a crash later."""
        if not self.settings.traps_port or self.receiver is not None:
            return
        receiver = self._new_receiver()
        try:
            receiver.bind()
        except OSError as exc:
            host, port = self.settings.traps_host, self.settings.traps_port
            raise cannot_listen("assurance.traps_port", host, port, "udp", exc) from None
        self.receiver = receiver

    async def run(self, stop: asyncio.Event) -> None:
        if not self.settings.traps_port:
            return
        if self.receiver is None:
            self.receiver = self._new_receiver()  # not bound at start-up: start() binds
        receiver = self.receiver
        self._update(receiver)  # the devices' own communities
        async with receiver:
            log.info("assurance: receiving traps on %s:%s", receiver.host, receiver.port)
            waiter = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    if receiver.queue_depth:  # no wait: no task to race against `stop`
                        await self._deliver(receiver, await receiver.get_batch(TRAP_BATCH))
                        continue
                    getter = asyncio.ensure_future(receiver.get_batch(TRAP_BATCH))
                    done, _ = await asyncio.wait(
                        {getter, waiter}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter in done:
                        await self._deliver(receiver, getter.result())
                    else:
                        getter.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await getter
            finally:
                waiter.cancel()

    # --- inside -------------------------------------------------------------------------------

    def _new_receiver(self) -> TrapReceiver:
        return TrapReceiver(
            self.settings.traps_host,
            self.settings.traps_port,
            communities=self.settings.trap_communities,
            devices=self._targets.sources,
            queue_size=self.settings.traps_queue_size,
            receive_buffer_bytes=self.settings.traps_receive_buffer_bytes,
        )

    def _update(self, receiver: TrapReceiver) -> None:
        # A device's traps carry its own community, whatever its telemetry protocol.
        communities = {
            t.host: t.credentials.snmp.community
            for t in self._targets.all()
            if t.credentials.snmp is not None and t.credentials.snmp.community
        }
        receiver.update_sources(self._targets.sources, communities.values(), expecting=communities)

    async def _deliver(self, receiver: TrapReceiver, batch: list[Event]) -> None:
        loop = asyncio.get_running_loop()
        if len(batch) < TRAP_BATCH and loop.time() - self._idle_since < TRAP_IDLE_S:
            # A storm: let the batch fill for a moment, one alarm transaction and one MQTT
            # round per few traps rather than per trap (each costs ~1 ms of CPU), for
            # TRAP_LINGER_S of latency.
            await asyncio.sleep(TRAP_LINGER_S)
            if receiver.queue_depth:
                batch += await receiver.get_batch(TRAP_BATCH - len(batch))
        await self.sink(batch)
        self.handled += len(batch)
        self._idle_since = loop.time()


@register_collector("traps")
def _traps(context: CollectorContext) -> TrapCollector:
    return TrapCollector(context.settings, context.sink)
