"""State checks: what a device must show once its configuration is verified, within a bound
(a BGP session Established, not only its neighbor lines present).

A template set may hold `<stem>.checks.yaml.j2` beside a role's configuration template; it is
rendered with the same variables (merge mode only) into a list of checks:

    - command: show bgp neighbors {{ peer_ip }} json   # a command whose answer is JSON
      path: [{{ peer_ip | tojson }}, bgpState]        # keys (and list indexes) into the answer
      equals: Established                            # compared as text
      within_s: 60                                   # polled until it holds, at most this long

The engine's verify runs them after the configuration read back matches; one that does not
hold in time fails the transaction (and every device is rolled back).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oss.errors import DriverError, InvalidInput

_POLL_S = 1.0  # between two reads of a check that does not hold yet
_MAX_WITHIN_S = 300.0


class _CheckFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = Field(min_length=1)
    path: tuple[str | int, ...] = Field(min_length=1)
    equals: str | int | bool
    within_s: float = Field(default=30.0, gt=0, le=_MAX_WITHIN_S)


@dataclass(frozen=True)
class StateCheck:
    command: str
    path: tuple[str | int, ...]
    equals: str
    within_s: float

    def describe(self) -> str:
        return f"{self.command!r} {'/'.join(map(str, self.path))} == {self.equals}"


def parse_checks(text: str, template: str) -> tuple[StateCheck, ...]:
    """The checks a rendered `.checks.yaml.j2` template lists; errors name the template."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"template {template}: not YAML: {exc}") from None
    if data is None:
        return ()
    if not isinstance(data, list):
        raise InvalidInput(f"template {template}: a list of checks, not {type(data).__name__}")
    checks = []
    for i, item in enumerate(data):
        try:
            parsed = _CheckFile.model_validate(item)
        except ValidationError as exc:
            why = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'check'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidInput(f"template {template}: check {i + 1}: {why}") from None
        equals = parsed.equals
        text_value = ("true" if equals else "false") if isinstance(equals, bool) else str(equals)
        checks.append(StateCheck(parsed.command, parsed.path, text_value, parsed.within_s))
    return tuple(checks)


def _found(answer: str, path: Sequence[str | int]) -> str | None:
    """The value at `path` in a JSON answer, as text; None when the answer is not JSON or the
    path is not there (yet: a neighbor not known so far)."""
    try:
        value: Any = json.loads(answer)
    except json.JSONDecodeError:
        return None
    for key in path:
        if isinstance(value, dict) and str(key) in value:
            value = value[str(key)]
        elif isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
            value = value[key]
        else:
            return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if isinstance(value, dict | list) else str(value)


async def run_checks(
    checks: Sequence[StateCheck],
    command: Callable[[str], Awaitable[str]],
    *,
    device: str,
    protocol: str,
) -> None:
    """Each check polled until it holds, within its bound (the checks run one after another:
    the first one's wait usually covers the rest)."""
    for check in checks:
        deadline = time.monotonic() + check.within_s
        while True:
            seen = _found(await command(check.command), check.path)
            if seen == check.equals:
                break
            if time.monotonic() >= deadline:
                raise DriverError(
                    f"state check: {check.describe()} did not hold within {check.within_s:g} s"
                    f" (last seen: {seen if seen is not None else 'absent'})",
                    device=device,
                    protocol=protocol,
                )
            await asyncio.sleep(min(_POLL_S, max(deadline - time.monotonic(), 0.0)))
