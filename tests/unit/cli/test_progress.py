"""A transaction followed into a pipe (issue 14 papercut): the final progress table is printed
once and ends with a newline, so whatever follows starts on its own line."""

from __future__ import annotations

from typing import Any

import pytest

from oss.cli import service
from oss.cli.output import Format


class FakeApi:
    """Answers the transaction's polls: running, then committed."""

    def __init__(self) -> None:
        self.states = ["running", "committed"]

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        device = {"device": "r1", "protocol": "netconf", "state": state, "step": "verify"}
        return {"id": 9, "kind": "create", "state": state, "devices": [device]}


def test_piped_progress_ends_with_a_newline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "POLL_S", 0.0)
    txn = service._follow(FakeApi(), 9, Format.TABLE)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert txn["state"] == "committed"
    assert out.endswith("\n")
    assert out.count("transaction 9 (create): committed") == 1
