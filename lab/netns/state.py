"""What a namespace lab made, recorded before it is made, so `down` can undo it after a crash.

`<state_dir>/netns-lab.json` holds the plan (so status, faults and down need no topology file),
every namespace BEFORE it is created (veths need no record: they are made inside their
namespaces and go with them, see lab.netns.build), and every process as soon as it is started
(before anyone waits on it). The file is replaced whole
(tmp + rename), so a crash leaves the previous complete version, never half of one.

The lab's secrets (SNMP community, SSH login) are generated per lab and written to
`<state_dir>/credentials.yaml` (0600) in the format of `drivers/credentials.py`, so the daemon
reads them with `credentials_ref: file:<state_dir>/credentials.yaml`. They never go into the
state file, a log or an error.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.files import write_private
from lab.netns.plan import LabPlan, plan_from_json, plan_to_json
from oss.errors import OssError

STATE_FILE = "netns-lab.json"
CREDENTIALS_FILE = "credentials.yaml"
KNOWN_HOSTS_FILE = "known_hosts"  # the nodes' sshd host keys, which the credentials name
RUN_DIR = "run"  # per-node files: run/<node>/ (FRR config, sockets, pid files, ...)
LAB_SSH_USER = "osslab"  # the SSH login whose session is vtysh (see lab.netns.node)
FORMAT = 1
ROOT_NAMESPACE = ""  # ProcessRecord.namespace of a process of the root namespace (the forwarder)


class LabStateError(OssError, RuntimeError):
    """The state file cannot be read (another program's file, a newer format, damage)."""


@dataclass(frozen=True)
class ProcessRecord:
    """A process the lab started: ended by pid, after checking it is still that process."""

    node: str  # a node's name, or "mgmt" for the management namespace's processes
    daemon: str  # "zebra", "snmpd", "oss-serve", ...
    pid: int
    namespace: str  # where it runs (ROOT_NAMESPACE: the root namespace)
    argv0: str  # its /proc/<pid>/cmdline must still start with this


@dataclass(frozen=True)
class LabSecrets:
    snmp_community: str = field(repr=False)
    ssh_user: str
    ssh_password: str = field(repr=False)

    @classmethod
    def generate(cls, ssh_user: str = LAB_SSH_USER) -> LabSecrets:
        return cls(
            snmp_community="lab-" + secrets.token_urlsafe(12),
            ssh_user=ssh_user,
            ssh_password=secrets.token_urlsafe(18),
        )

    def credentials(self) -> dict[str, Any]:
        """The mapping `drivers.credentials` reads (a `file:` credentials_ref)."""
        return {
            "username": self.ssh_user,
            "password": self.ssh_password,
            "snmp": {"version": "2c", "community": self.snmp_community},
        }

    def write(self, state_dir: Path) -> Path:
        """The credentials file, naming the lab's known_hosts (the CLI driver verifies host
        keys; `build.up` writes the nodes' once their sshd keys exist)."""
        path = credentials_file(state_dir)
        held = {**self.credentials(), "known_hosts": str(known_hosts_file(state_dir).absolute())}
        write_private(path, yaml.safe_dump(held, sort_keys=False))
        return path

    @classmethod
    def load(cls, state_dir: Path) -> LabSecrets:
        path = credentials_file(state_dir)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls(
                snmp_community=str(data["snmp"]["community"]),
                ssh_user=str(data["username"]),
                ssh_password=str(data["password"]),
            )
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            # The reason names the file and the problem, never a value from it.
            raise LabStateError(
                f"{path}: not the lab's credentials ({type(exc).__name__})"
            ) from None


def state_file(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def credentials_file(state_dir: Path) -> Path:
    return state_dir / CREDENTIALS_FILE


def known_hosts_file(state_dir: Path) -> Path:
    return state_dir / KNOWN_HOSTS_FILE


def run_dir(state_dir: Path) -> Path:
    return state_dir / RUN_DIR


@dataclass
class LabState:
    """The state file's content; every change is saved before the resource it announces."""

    state_dir: Path
    plan: LabPlan
    topology: str = ""  # the file it was planned from
    builder_pid: int = 0  # the `up` that made it
    phase: str = "building"  # building -> up -> stopping
    started_at: str = ""
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    # Faults in force: "link:<endpoint>" -> "down", "netem:<endpoint>" -> "delay 20ms loss 1%",
    # "node:<name>" -> "down".
    faults: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the mgmt daemon's URL
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @classmethod
    def new(cls, state_dir: Path, plan: LabPlan, topology: str = "") -> LabState:
        return cls(
            state_dir=state_dir,
            plan=plan,
            topology=topology,
            builder_pid=os.getpid(),
            started_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )

    # -- intent first: each of these saves before the caller makes the resource

    def add_namespaces(self, names: Iterable[str]) -> None:
        with self._lock:
            self.namespaces.extend(n for n in names if n not in self.namespaces)
            self.save()

    def record(self, process: ProcessRecord) -> None:
        """The `record` callback of `lab.netns.node.start_node` (thread-safe)."""
        with self._lock:
            self.processes.append(process)
            self.save()

    def forget_processes(self, pids: Iterable[int]) -> None:
        gone = set(pids)
        with self._lock:
            self.processes = [p for p in self.processes if p.pid not in gone]
            self.save()

    def set_fault(self, key: str, value: str | None) -> None:
        with self._lock:
            if value is None:
                self.faults.pop(key, None)
            else:
                self.faults[key] = value
            self.save()

    def set_phase(self, phase: str) -> None:
        with self._lock:
            self.phase = phase
            self.save()

    def processes_of(self, node: str) -> list[ProcessRecord]:
        with self._lock:
            return [p for p in self.processes if p.node == node]

    # -- the file

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "format": FORMAT,
                "kind": "netns",
                "name": self.plan.name,
                "topology": self.topology,
                "builder_pid": self.builder_pid,
                "phase": self.phase,
                "started_at": self.started_at,
                "namespaces": list(self.namespaces),
                "processes": [p.__dict__.copy() for p in self.processes],
                "faults": dict(self.faults),
                "extra": dict(self.extra),
                "plan": plan_to_json(self.plan),
            }

    def save(self) -> None:
        with self._lock:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)  # see build.up
            write_private(state_file(self.state_dir), json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, state_dir: Path) -> LabState | None:
        """The lab recorded in `state_dir`, or None when there is none."""
        path = state_file(state_dir)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise LabStateError(f"{path}: unreadable: {exc}") from None
        if not isinstance(data, dict) or data.get("kind") != "netns":
            raise LabStateError(f"{path}: not a namespace lab's state file")
        if data.get("format") != FORMAT:
            raise LabStateError(f"{path}: format {data.get('format')!r}, expected {FORMAT}")
        try:
            return cls(
                state_dir=state_dir,
                plan=plan_from_json(data["plan"]),
                topology=str(data.get("topology", "")),
                builder_pid=int(data.get("builder_pid", 0)),
                phase=str(data.get("phase", "building")),
                started_at=str(data.get("started_at", "")),
                namespaces=[str(n) for n in data.get("namespaces", [])],
                processes=[ProcessRecord(**p) for p in data.get("processes", [])],
                faults={str(k): str(v) for k, v in data.get("faults", {}).items()},
                extra=dict(data.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LabStateError(f"{path}: damaged ({type(exc).__name__}: {exc})") from None

    def remove(self) -> None:
        state_file(self.state_dir).unlink(missing_ok=True)
