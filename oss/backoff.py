"""Reconnect and retry pacing, written once: exponential backoff with jitter, and the one
warning per outage (a streak of failures), not one per attempt. Every loop that retries a peer
(the MQTT publishers, the InfluxDB writer, the gNMI subscriptions) paces itself with it.
Imports nothing of the project (kernel)."""

from __future__ import annotations

import random


class Backoff:
    """The pause before the next attempt: `initial_s`, doubled after every failed attempt up to
    `max_s`, each pause jittered by +-`jitter` (peers that dropped together do not return
    together); back to `initial_s` once an attempt works."""

    def __init__(
        self,
        initial_s: float,
        max_s: float,
        *,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        self.initial_s, self.max_s, self.jitter = initial_s, max_s, jitter
        self.delay_s = initial_s
        self.failing = False  # in an outage: failed since the last success
        self._uniform = rng.uniform if rng is not None else random.uniform

    def failed(self) -> bool:
        """An attempt failed; True when it begins an outage (the moment to log it)."""
        began = not self.failing
        self.failing = True
        return began

    def succeeded(self) -> bool:
        """An attempt worked: the next pause is the initial one again. True when it ends an
        outage."""
        ended = self.failing
        self.failing = False
        self.reset()
        return ended

    def reset(self) -> None:
        """The next pause is the initial one (the peer worked for a while)."""
        self.delay_s = self.initial_s

    def pause(self) -> float:
        """The seconds to wait now; the next pause doubles (up to `max_s`)."""
        pause = self.delay_s
        if self.jitter:
            pause *= self._uniform(1 - self.jitter, 1 + self.jitter)
        self.delay_s = min(self.delay_s * 2, self.max_s)
        return pause
