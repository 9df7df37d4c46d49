"""Impairment words as `oss lab fault link ... delay 20ms jitter 2ms loss 1%` gives them."""

from __future__ import annotations

import pytest

from lab.netns.faults import Impairment, parse_impairment
from oss.errors import InvalidInput


def test_delay_jitter_loss_and_their_netem_spelling() -> None:
    impairment = parse_impairment(["delay", "20ms", "jitter", "2ms", "loss", "1%"])
    assert impairment == Impairment(delay_ms=20.0, jitter_ms=2.0, loss_pct=1.0)
    assert impairment.netem_args() == ["delay", "20ms", "2ms", "loss", "1%"]
    assert impairment.words() == "delay 20ms jitter 2ms loss 1%"
    assert parse_impairment(["latency", "500us"]) == Impairment(delay_ms=0.5)
    assert parse_impairment(["loss", "0.5"]).netem_args() == ["delay", "0ms", "loss", "0.5%"]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([], "expected pairs"),
        (["delay"], "expected pairs"),
        (["delay", "20"], "not a time like 20ms"),
        (["delay", "11s"], "more than 10 s"),
        (["loss", "120%"], "between 0% and 100%"),
        (["loss", "much"], "not a percentage"),
        (["rate", "1G"], "unknown impairment 'rate'"),
        (["delay", "1ms", "jitter", "2ms"], "jitter larger than the delay"),
        (["delay", "1ms", "latency", "2ms"], "given twice"),
    ],
)
def test_bad_words_are_refused_with_what_is_wrong(words: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_impairment(words)
