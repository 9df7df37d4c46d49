"""Node profiles: what software a namespace-lab node runs, as data (`lab/profiles/*.yaml`).

A profile names its daemons in start order, each with the launcher that knows how to run it
(`frr`: a daemon of /usr/lib/frr, `snmpd`, `lldpd`, `sshd`), the Jinja2 template of its
configuration (`lab/profiles/templates/`), whether it joins snmpd as an AgentX sub-agent
(FRR's `-M snmp`), and `when: bgp` for a daemon only a node with an AS number runs. Its match
rules (containerlab kind and image globs) pick it for nodes without an `oss.lab-profile` label:
the first profile by file name with a matching rule wins, else the plan's default (`frr`).

    description: FRR with OSPF, snmpd, lldpd, sshd
    igp: ospf
    match:
      - {kind: linux}
      - {image: "*frr*"}
    daemons:
      - {name: snmpd, run: snmpd, config: snmpd.conf.j2}
      - {name: zebra, run: frr, config: zebra.conf.j2, agentx: true}

A bad profile is refused with every problem located (`ConfigError`, file:line).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from oss.errors import ConfigError
from oss.yaml_lines import Loc, key_locations, parse_yaml
from topology.model import Device

LAUNCHERS = ("frr", "snmpd", "lldpd", "sshd")  # what lab.netns.node knows how to run
CONDITIONS = ("bgp",)  # `when:` values: bgp = the node has an AS number (oss.bgp-asn)
IGPS = ("ospf", "isis")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_PROFILE_KEYS = {"description", "igp", "match", "daemons"}
_DAEMON_KEYS = {"name", "run", "config", "agentx", "when"}
_MATCH_KEYS = {"kind", "image"}


def profiles_dir() -> Path:
    """The profiles shipped with the lab."""
    return Path(str(files("lab") / "profiles"))


def templates_dir(folder: Path | None = None) -> Path:
    return (folder or profiles_dir()) / "templates"


@dataclass(frozen=True)
class DaemonSpec:
    name: str  # "zebra": for `run: frr` also the binary in /usr/lib/frr
    run: str  # one of LAUNCHERS
    config: str  # a template file name in templates/
    agentx: bool = False  # an AgentX sub-agent of the node's snmpd
    when: str | None = None  # one of CONDITIONS, None: always


@dataclass(frozen=True)
class MatchRule:
    kind: str | None = None  # a glob on the clab kind ("linux", "*frr*")
    image: str | None = None  # a glob on the clab image

    def matches(self, kind: str, image: str) -> bool:
        return (self.kind is None or fnmatch.fnmatchcase(kind, self.kind)) and (
            self.image is None or fnmatch.fnmatchcase(image, self.image)
        )


@dataclass(frozen=True)
class Profile:
    name: str  # the file stem
    path: Path
    description: str
    igp: str  # "ospf" or "isis": what the templates render
    match: tuple[MatchRule, ...]
    daemons: tuple[DaemonSpec, ...]

    def daemons_for(self, has_asn: bool) -> tuple[DaemonSpec, ...]:
        """The daemons a node runs: those `when: bgp` only when it has an AS number."""
        return tuple(d for d in self.daemons if d.when != "bgp" or has_asn)


class _Problems:
    def __init__(self, path: Path, lines: dict[Loc, int]) -> None:
        self.path = path
        self.lines = lines
        self.found: list[str] = []

    def add(self, loc: Loc, reason: str) -> None:
        line = None
        while loc and line is None:
            line, loc = self.lines.get(loc), loc[:-1]
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        self.found.append(f"{where}: {reason}")


def load_profile(name: str, folder: Path | None = None) -> Profile:
    """The profile `name` (a file stem) from `folder` (default: the shipped profiles)."""
    folder = folder or profiles_dir()
    if not _NAME.match(name):
        raise ConfigError(f"node profile '{name}': not a profile name (a file stem in {folder})")
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
        raise ConfigError(f"node profile '{name}': no file {path} (profiles: {known})")
    return _parse(path, path.read_text(encoding="utf-8"), templates_dir(folder))


def load_profiles(folder: Path | None = None) -> tuple[Profile, ...]:
    """Every profile in `folder`, by file name."""
    folder = folder or profiles_dir()
    return tuple(load_profile(p.stem, folder) for p in sorted(folder.glob("*.yaml")))


@cache
def _shipped() -> tuple[Profile, ...]:
    return load_profiles()


def profile_of(device: Device, labels: Mapping[str, str]) -> str | None:
    """The first shipped profile (by file name) whose match rules take this node's kind and
    image; None leaves the choice to the plan's default. (The `oss.lab-profile` label, which
    overrides this, is the plan's to read.)"""
    kind, image = device.kind or "", device.image or ""
    for profile in _shipped():
        if any(rule.matches(kind, image) for rule in profile.match):
            return profile.name
    return None


def _parse(path: Path, text: str, templates: Path) -> Profile:
    node, data = parse_yaml(path, text)
    lines, repeated = key_locations(node)
    problems = _Problems(path, lines)
    for loc, first, _again in repeated:
        problems.add(loc, f"'{loc[-1]}' given twice (first on line {first})")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a profile is a mapping (description, igp, match, daemons)")
    for key in sorted(set(data) - _PROFILE_KEYS, key=str):
        problems.add((key,), f"unknown key '{key}' (known: {', '.join(sorted(_PROFILE_KEYS))})")
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.add(("description",), "description: a string")
    igp = data.get("igp", "ospf")
    if igp not in IGPS:
        problems.add(("igp",), f"igp '{igp}': one of {', '.join(IGPS)}")
    rules = _match_rules(data.get("match", []), problems)
    daemons = _daemons(data.get("daemons"), templates, problems)
    if problems.found:
        raise ConfigError(f"{path}: node profile refused:\n  " + "\n  ".join(problems.found))
    return Profile(path.stem, path, str(description), str(igp), rules, daemons)


def _match_rules(raw: Any, problems: _Problems) -> tuple[MatchRule, ...]:
    if not isinstance(raw, list):
        problems.add(("match",), "match: a list of {kind: GLOB, image: GLOB} rules")
        return ()
    rules = []
    for i, item in enumerate(raw):
        loc: Loc = ("match", i)
        if not isinstance(item, dict) or not item or set(item) - _MATCH_KEYS:
            problems.add(loc, "a match rule is {kind: GLOB} and/or {image: GLOB}")
            continue
        if not all(isinstance(v, str) and v for v in item.values()):
            problems.add(loc, "a match rule's kind and image are non-empty strings (globs)")
            continue
        rules.append(MatchRule(kind=item.get("kind"), image=item.get("image")))
    return tuple(rules)


def _daemons(raw: Any, templates: Path, problems: _Problems) -> tuple[DaemonSpec, ...]:
    if not isinstance(raw, list) or not raw:
        problems.add(("daemons",), "daemons: a non-empty list, in start order")
        return ()
    daemons: list[DaemonSpec] = []
    for i, item in enumerate(raw):
        loc: Loc = ("daemons", i)
        if not isinstance(item, dict):
            problems.add(loc, "a daemon is a mapping: {name, run, config[, agentx, when]}")
            continue
        for key in sorted(set(item) - _DAEMON_KEYS, key=str):
            problems.add(
                (*loc, key), f"unknown key '{key}' (known: {', '.join(sorted(_DAEMON_KEYS))})"
            )
        spec = _daemon(item, loc, templates, problems)
        if spec is None:
            continue
        if any(d.name == spec.name for d in daemons):
            problems.add((*loc, "name"), f"daemon '{spec.name}' is listed twice")
            continue
        daemons.append(spec)
    _check_set(daemons, problems)
    return tuple(daemons)


def _daemon(
    item: dict[str, Any], loc: Loc, templates: Path, problems: _Problems
) -> DaemonSpec | None:
    name, run, config = item.get("name"), item.get("run"), item.get("config")
    agentx, when = item.get("agentx", False), item.get("when")
    ok = True
    if not isinstance(name, str) or not _NAME.match(name):
        problems.add((*loc, "name"), f"name '{name}': a daemon name like zebra, ospfd, snmpd")
        ok = False
    if run not in LAUNCHERS:
        problems.add((*loc, "run"), f"run '{run}': one of {', '.join(LAUNCHERS)}")
        ok = False
    if not isinstance(config, str) or not (templates / config).is_file():
        problems.add((*loc, "config"), f"config '{config}': no such template in {templates}")
        ok = False
    if not isinstance(agentx, bool):
        problems.add((*loc, "agentx"), "agentx: true or false")
        ok = False
    if when is not None and when not in CONDITIONS:
        problems.add((*loc, "when"), f"when '{when}': one of {', '.join(CONDITIONS)}")
        ok = False
    if not ok:
        return None
    return DaemonSpec(str(name), str(run), str(config), bool(agentx), when)


def _check_set(daemons: list[DaemonSpec], problems: _Problems) -> None:
    runs = [d.run for d in daemons]
    for launcher in ("snmpd", "lldpd", "sshd"):
        if runs.count(launcher) > 1:
            problems.add(
                ("daemons",), f"one {launcher} per node (the profile lists {runs.count(launcher)})"
            )
    if "frr" in runs and not any(d.run == "frr" and d.name == "zebra" for d in daemons):
        problems.add(("daemons",), "FRR daemons need zebra (run: frr, name: zebra) before them")
    if any(d.agentx for d in daemons) and "snmpd" not in runs:
        problems.add(("daemons",), "an AgentX sub-agent needs snmpd (run: snmpd) as its master")
    if "snmpd" in runs:
        # sub-agents connect when they start: the master's socket must be there by then
        early = [d.name for d in daemons[: runs.index("snmpd")] if d.agentx]
        if early:
            problems.add(
                ("daemons",), f"snmpd (the AgentX master) must start before {', '.join(early)}"
            )
