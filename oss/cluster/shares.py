"""Device shares: which live instance polls which device. Pure planning, no I/O: the leader
(`leader.py`) reads the facts, calls `plan`, and writes the moves it returns.

The rules, as a cluster of collectors is expected to behave (gnmic's target distribution,
LibreNMS's poller groups):

- every device goes to exactly one live instance;
- a device whose owner is gone (its lease expired), or that has none yet, is assigned first,
  each to the least-loaded live instance (ties: the instance's name): the dead instance's
  devices before the new ones, so they wait the least;
- affinity (settings `cluster.affinity`, data): a device matching a rule (its site, or its
  role: the tag devices carry until they have tags of their own) goes to the rule's
  instances while one of them is live, and to any live instance otherwise (collection before
  placement); it goes back once one of the rule's instances has been live a lease period;
- a member that (re)joins gets devices from the others only once it has been live one lease
  period, and devices move only while the most loaded instance has more than one device more
  than the least loaded: a balanced cluster stays put, a member that flaps moves nothing;
- deterministic: the same facts give the same plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

UNASSIGNED = "unassigned"
REBALANCE = "rebalance"


@dataclass(frozen=True)
class DeviceFacts:
    """What placement needs of a device: its site and role."""

    name: str
    site: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Affinity:
    """Devices of `site` (or of `role`) go to `instances` while one of them is live."""

    instances: tuple[str, ...]
    site: str | None = None
    role: str | None = None

    def matches(self, device: DeviceFacts) -> bool:
        if self.site is None and self.role is None:
            return False
        site_ok = self.site is None or device.site == self.site
        role_ok = self.role is None or device.role == self.role
        return site_ok and role_ok

    def describe(self) -> str:
        what = [f"site {self.site}"] if self.site is not None else []
        what += [f"role {self.role}"] if self.role is not None else []
        return " ".join(what)


@dataclass(frozen=True)
class ShareChange:
    """Devices that moved together: from one source (None: they had no owner), for one
    reason, to these instances."""

    source: str | None
    reason: str
    targets: tuple[str, ...]
    count: int

    def describe(self) -> str:
        noun = "device" if self.count == 1 else "devices"
        to = ", ".join(self.targets)
        if self.source is None:
            return f"shares: {self.count} unassigned {noun} to {to}"
        return f"shares: {self.count} {noun} from {self.source} ({self.reason}) to {to}"


@dataclass(frozen=True)
class Plan:
    """The moves (device -> its new instance), grouped for the log, and each live instance's
    device count once they are made."""

    moves: Mapping[str, str] = field(default_factory=dict)
    changes: tuple[ShareChange, ...] = ()
    loads: Mapping[str, int] = field(default_factory=dict)


def plan(
    devices: Iterable[DeviceFacts],
    current: Mapping[str, str],
    live: Mapping[str, float],
    *,
    lease_s: float,
    affinity: Sequence[Affinity] = (),
    gone: Mapping[str, str] | None = None,
) -> Plan:
    """The moves that bring `current` (device -> instance) to the rules above.

    `live`: each live instance and for how long it has been live (seconds); `gone`: why an
    instance that still owns devices is not live ("lease expired 0.4 s ago"), for the log."""
    if not live:
        return Plan()  # nobody to give devices to: they wait for the first member
    planner = _Planner(live, lease_s, affinity)
    facts = sorted(devices, key=lambda d: d.name)
    dead: list[DeviceFacts] = []
    fresh: list[DeviceFacts] = []
    displaced: list[DeviceFacts] = []
    for device in facts:
        owner = current.get(device.name)
        if owner is None:
            fresh.append(device)
        elif owner not in live:
            dead.append(device)
        elif planner.displaced(device, owner):
            displaced.append(device)
        else:
            planner.keep(device, owner)
    reasons = dict(gone or {})
    dead.sort(key=lambda d: (current[d.name], d.name))
    for device in dead:
        owner = current[device.name]
        planner.assign(device, owner, reasons.get(owner, "not live"), planner.targets(device))
    for device in fresh:
        planner.assign(device, None, UNASSIGNED, planner.targets(device))
    for device in displaced:
        rule = planner.rule(device)
        assert rule is not None  # displaced only by a rule
        planner.assign(
            device,
            current[device.name],
            f"affinity: {rule.describe()} prefers {', '.join(rule.instances)}",
            planner.stable_preferred(device),
        )
    planner.rebalance()
    return planner.result()


class _Planner:
    def __init__(self, live: Mapping[str, float], lease_s: float, rules: Sequence[Affinity]):
        self.live = sorted(live)
        self.stable = sorted(i for i, age in live.items() if age >= lease_s)
        self.rules = rules
        self.load: dict[str, int] = {i: 0 for i in self.live}
        self.owned: dict[str, list[DeviceFacts]] = {i: [] for i in self.live}  # kept, by name
        self.moves: dict[str, str] = {}
        self._moved: list[tuple[str | None, str, str]] = []  # (source, reason, target)

    # --- affinity ---------------------------------------------------------------------------

    def rule(self, device: DeviceFacts) -> Affinity | None:
        return next((r for r in self.rules if r.matches(device)), None)

    def targets(self, device: DeviceFacts) -> list[str]:
        """Where an orphan may go: its rule's live instances, else any live one."""
        rule = self.rule(device)
        preferred = [i for i in self.live if rule is not None and i in rule.instances]
        return preferred or self.live

    def stable_preferred(self, device: DeviceFacts) -> list[str]:
        rule = self.rule(device)
        return [i for i in self.stable if rule is not None and i in rule.instances]

    def displaced(self, device: DeviceFacts, owner: str) -> bool:
        """A live owner outside the device's rule gives it up once one of the rule's
        instances has been live a lease period."""
        rule = self.rule(device)
        if rule is None or owner in rule.instances:
            return False
        return bool(self.stable_preferred(device))

    def _accepts(self, device: DeviceFacts, instance: str) -> bool:
        rule = self.rule(device)
        if rule is None or instance in rule.instances:
            return True
        return not any(i in rule.instances for i in self.live)  # its rule has nobody live

    # --- assignment -------------------------------------------------------------------------

    def keep(self, device: DeviceFacts, owner: str) -> None:
        self.load[owner] += 1
        self.owned[owner].append(device)

    def assign(
        self, device: DeviceFacts, source: str | None, reason: str, candidates: list[str]
    ) -> None:
        target = min(candidates, key=lambda i: (self.load[i], i))
        self.load[target] += 1
        self.moves[device.name] = target
        self._moved.append((source, reason, target))

    def rebalance(self) -> None:
        """Move kept devices from the most to the least loaded members live a lease period,
        while they differ by more than one (each move narrows the spread: it ends)."""
        if not self.stable:
            return
        while (step := self._next_move()) is not None:
            source, target, device = step
            self.owned[source].remove(device)
            self.load[source] -= 1
            self.load[target] += 1
            self.moves[device.name] = target
            self._moved.append((source, REBALANCE, target))

    def _next_move(self) -> tuple[str, str, DeviceFacts] | None:
        sources = sorted(self.live, key=lambda i: (-self.load[i], i))
        targets = sorted(self.stable, key=lambda i: (self.load[i], i))
        for source in sources:
            for target in targets:
                if self.load[source] - self.load[target] <= 1:
                    break
                # the last by name: what stays is the start of each member's list
                device = next(
                    (d for d in reversed(self.owned[source]) if self._accepts(d, target)), None
                )
                if device is not None:
                    return source, target, device
        return None

    def result(self) -> Plan:
        grouped: dict[tuple[str | None, str], dict[str, int]] = defaultdict(dict)
        for source, reason, target in self._moved:
            targets = grouped[(source, reason)]
            targets[target] = targets.get(target, 0) + 1
        changes = tuple(
            ShareChange(source, reason, tuple(sorted(targets)), sum(targets.values()))
            for (source, reason), targets in grouped.items()
        )
        return Plan(dict(self.moves), changes, dict(self.load))
