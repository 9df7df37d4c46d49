"""The one reconnect pacing (oss.backoff): doubling pauses up to the maximum, jittered, back to
the initial pause after a success, and an outage begun and ended once."""

from __future__ import annotations

import random

from oss.backoff import Backoff


def test_pauses_double_up_to_the_maximum_and_start_over_after_a_success() -> None:
    backoff = Backoff(1.0, 5.0, jitter=0)
    assert [backoff.pause() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.succeeded()
    assert backoff.pause() == 1.0
    backoff.reset()
    assert backoff.pause() == 1.0


def test_each_pause_is_jittered_within_its_bounds() -> None:
    backoff = Backoff(10.0, 1000.0, rng=random.Random(7))
    expected = random.Random(7)
    for delay in (10.0, 20.0, 40.0, 80.0):
        pause = backoff.pause()
        assert pause == delay * expected.uniform(0.8, 1.2)
        assert 0.8 * delay <= pause <= 1.2 * delay


def test_an_outage_begins_at_the_first_failure_and_ends_at_the_next_success() -> None:
    backoff = Backoff(1.0, 60.0)
    assert backoff.succeeded() is False  # nothing to end
    assert [backoff.failed() for _ in range(3)] == [True, False, False]
    assert backoff.failing
    assert backoff.succeeded() is True
    assert not backoff.failing
    assert backoff.failed() is True  # the next outage is logged again
