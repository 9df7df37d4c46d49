"""A generated NOC-sized inventory for the console bench: sites, devices, interfaces, links and
open alarms, written through the daemon's own store (its Alembic migrations, its tables, one
`Database.write` transaction of Core bulk inserts) into a fresh database.

The shape (defaults: 2,000 devices, 50 sites, 8,000 links, 500 open alarms):
- each site holds the same mix of roles (2 core, 4 aggregation, 10 pe, the rest access), named
  `s07-pe03`; every device has LINK_PORTS linked interfaces and SPARE_PORTS spare ones;
- links: inside a site, each device to its next, second and fifth neighbour around the site's
  ring (3 links per device); across sites, each device to its peer in the next site (1 per
  device): 4 links, 8 linked ports per device, the graph connected;
- open alarms of every severity, on devices, interfaces and links: failed links (a critical
  root cause with the two interface-down alarms correlated under it, both ends oper down),
  unreachable devices (critical), credential failures (major), utilisation threshold crossings
  (major / minor, on interfaces), SNMP notifications (minor / warning / indeterminate);
- the first `trap_sources` devices get a loopback management address (127.20.x.y) and no
  credentials: they are never polled, but their traps are accepted (the bench flaps their spare
  ports with linkDown / linkUp traps).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert

from oss.faults.correlate import link_root_key
from oss.faults.rules import auth_failure_key, interface_down_key, unreachable_key
from oss.store import Database
from oss.store.base import Base
from oss.store.tables import AlarmRow, DeviceRow, InterfaceRow, LinkRow, SiteRow

LINK_PORTS = 8
SPARE_PORTS = 2
ROLES = (("core", 2), ("aggregation", 4), ("pe", 10))  # the rest of a site: access
RING_STEPS = (1, 2, 5)  # in-site links: to the next, second and fifth device around the ring
SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate")
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def port_name(n: int) -> str:
    return f"et-0/0/{n:02d}"


def site_name(n: int) -> str:
    return f"s{n:02d}"


@dataclass(frozen=True)
class Shape:
    devices: int = 2000
    sites: int = 50
    alarms: int = 500
    trap_sources: int = 20

    def __post_init__(self) -> None:
        per_site = self.devices // self.sites
        if self.sites < 2 or self.devices % self.sites or per_site < 2 * max(RING_STEPS) + 1:
            raise ValueError(
                f"{self.devices} devices in {self.sites} sites: want a whole number per site"
                f" of at least {2 * max(RING_STEPS) + 1}, and 2 sites or more"
            )
        if not 0 <= self.trap_sources <= min(self.devices, 65_000):
            raise ValueError(f"trap_sources {self.trap_sources} out of 0..{self.devices}")

    @property
    def per_site(self) -> int:
        return self.devices // self.sites

    @property
    def links(self) -> int:
        return self.devices * (len(RING_STEPS) + 1)


@dataclass
class Generated:
    """What the bench needs to know of what was written."""

    shape: Shape
    devices: list[str] = field(default_factory=list)
    links: int = 0
    interfaces: int = 0
    alarms_by_severity: dict[str, int] = field(default_factory=dict)
    alarms_by_object: dict[str, int] = field(default_factory=dict)
    # (device, its trap source address, its spare ports), for the trap flaps
    trap_sources: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)


def device_names(shape: Shape) -> list[list[str]]:
    """The devices' names, site by site (role order inside a site)."""
    sites = []
    for s in range(shape.sites):
        names = []
        for role, count in (*ROLES, ("access", shape.per_site - sum(n for _, n in ROLES))):
            names += [f"{site_name(s)}-{role}{k + 1:02d}" for k in range(count)]
        sites.append(names)
    return sites


def role_of(name: str) -> str:
    return name.split("-", 1)[1].rstrip("0123456789")


def trap_address(n: int) -> str:
    return f"127.20.{n // 250}.{n % 250 + 1}"


def link_ends(sites: Sequence[Sequence[str]]) -> Iterator[tuple[str, str, str, str]]:
    """(a device, a port, b device, b port) of every link; each port used once."""
    used: dict[str, int] = {}

    def port(device: str) -> str:
        n = used.get(device, 0)
        used[device] = n + 1
        return port_name(n)

    for names in sites:
        for step in RING_STEPS:
            for i, a in enumerate(names):
                b = names[(i + step) % len(names)]
                yield a, port(a), b, port(b)
    for s, names in enumerate(sites):
        peers = sites[(s + 1) % len(sites)]
        for a, b in zip(names, peers, strict=True):
            yield a, port(a), b, port(b)


def _alarm(
    key: str, severity: str, cause: str, problem: str, object_type: str, obj: str, **extra: Any
) -> dict[str, Any]:
    return {
        "reduction_key": key,
        "open": True,
        "alarm_type": extra.pop("alarm_type", "communicationsAlarm"),
        "perceived_severity": severity,
        "probable_cause": cause,
        "specific_problem": problem,
        "alarmed_object_type": object_type,
        "alarmed_object": obj,
        "state": "raised",
        "ack_state": "unacknowledged",
        "service_affecting": False,
        "affected_services": [],
        "is_root_cause": False,
        "parent_id": None,  # every row names every column: an executemany takes the first's
        "count": 1,
        "sequence": 1,
        **extra,
    }


def alarm_rows(
    shape: Shape, devices: Sequence[str], links: Sequence[tuple[str, str, str, str]]
) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """The open alarms (ids numbered from 1, in order) and the interfaces they put oper down.

    A twelfth of the alarms are failed links (a root cause and its two children), the rest a
    rotation of device and interface problems over devices spread across the sites."""
    rows: list[dict[str, Any]] = []
    down: set[tuple[str, str]] = set()
    failed_links = shape.alarms // 36  # 3 alarms each: a twelfth of the alarms
    stride = max(1, len(links) // max(1, failed_links))
    for n in range(failed_links):
        link_id = n * stride + 1
        a, ap, b, bp = links[link_id - 1]
        root = len(rows) + 1
        rows.append(
            _alarm(
                link_root_key(link_id),
                "critical",
                "lossOfSignal",
                f"link {link_id} ({a}:{ap} -- {b}:{bp}) down",
                "link",
                str(link_id),
                is_root_cause=True,
                service_affecting=True,
            )
        )
        for device, port in ((a, ap), (b, bp)):
            down.add((device, port))
            rows.append(
                _alarm(
                    interface_down_key(device, port),
                    "major",
                    "lossOfSignal",
                    f"interface {device}:{port} down",
                    "interface",
                    f"{device}:{port}",
                    parent_id=root,
                )
            )
    kinds = itertools.cycle(range(10))
    spread = itertools.cycle(range(0, len(devices), 7))  # every 7th device, then around again
    seen: set[str] = set()
    while len(rows) < shape.alarms:
        kind, device = next(kinds), devices[next(spread)]
        port = port_name(len(rows) % LINK_PORTS)
        if kind == 0:
            row = _alarm(
                unreachable_key(device),
                "critical",
                "communicationsSubsystemFailure",
                f"device {device} unreachable",
                "device",
                device,
                is_root_cause=True,
            )
        elif kind in (1, 2):
            row = _alarm(
                auth_failure_key(device, "netconf" if kind == 1 else "snmp"),
                "major",
                "authenticationFailure",
                f"device {device} refuses the {'netconf' if kind == 1 else 'snmp'} credentials",
                "device",
                device,
                alarm_type="securityServiceOrMechanismViolation",
            )
        elif kind in (3, 4, 5):
            metric = "in-utilisation" if kind < 5 else "out-utilisation"
            obj = f"{device}:{port}"
            row = _alarm(
                f"tca:{metric}:{obj}",
                "major" if kind == 3 else "minor",
                "thresholdCrossed",
                f"{metric} above 0.9 on {obj}",
                "interface",
                obj,
                alarm_type="qualityOfServiceAlarm",
            )
        elif kind == 7:
            obj = f"{device}:{port}"
            row = _alarm(
                f"tca:in-errors:{obj}",
                "warning",
                "thresholdCrossed",
                f"in-errors above 100 on {obj}",
                "interface",
                obj,
                alarm_type="qualityOfServiceAlarm",
            )
        elif kind == 6:
            row = _alarm(
                f"nsNotifyShutdown:{device}",
                "minor",
                "nsNotifyShutdown",
                "SNMP agent shut down",
                "device",
                device,
            )
        elif kind == 8:
            row = _alarm(
                f"authenticationFailure:{device}",
                "warning",
                "authenticationFailure",
                "SNMP authentication failure",
                "device",
                device,
                alarm_type="securityServiceOrMechanismViolation",
            )
        else:
            oid = "1.3.6.1.4.1.9.9.41.2.0.1"
            row = _alarm(
                f"trap:{device}:{oid}",
                "indeterminate",
                "unknown",
                f"SNMP trap {oid}",
                "device",
                device,
            )
        if row["reduction_key"] in seen:  # one open alarm per key, as the reducer keeps it
            continue
        seen.add(row["reduction_key"])
        rows.append(row)
    return rows, down


def _insert(conn: Connection, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(model), rows)


async def generate(state_dir: Path, shape: Shape) -> Generated:
    """The inventory and alarms in `state_dir`'s SQLite database (created and migrated here)."""
    db = Database(f"sqlite+aiosqlite:///{state_dir / 'oss.db'}")
    try:
        await db.migrate()
        return await db.write(lambda conn: _write(conn, shape))
    finally:
        await db.close()


def _write(conn: Connection, shape: Shape) -> Generated:
    sites = device_names(shape)
    devices = [name for names in sites for name in names]
    out = Generated(shape, devices=devices)
    sources = {name: trap_address(n) for n, name in enumerate(devices[: shape.trap_sources])}
    _insert(
        conn,
        SiteRow,
        [{"name": site_name(s), "description": f"site {s}"} for s in range(shape.sites)],
    )
    _insert(
        conn,
        DeviceRow,
        [
            {
                "name": name,
                "role": role_of(name),
                "platform": "lab-sim",
                "site": name.split("-", 1)[0],
                "kind": "linux",
                "image": None,
                "mgmt_address": sources.get(name),  # no credentials: never polled
                "credentials_ref": None,
                "state": "active",
                "created_at": NOW,
                "updated_at": NOW,
            }
            for name in devices
        ],
    )
    links = list(link_ends(sites))
    alarms, down = alarm_rows(shape, devices, links)
    peer = {(a, ap): f"{b}:{bp}" for a, ap, b, bp in links} | {
        (b, bp): f"{a}:{ap}" for a, ap, b, bp in links
    }
    interfaces = [
        {
            "device": device,
            "name": port_name(p),
            "speed_bps": 10_000_000_000 if p < LINK_PORTS else 1_000_000_000,
            "admin_state": "up",
            "oper_state": "down" if (device, port_name(p)) in down else "up",
            "description": f"to {peer[(device, port_name(p))]}"
            if p < LINK_PORTS
            else "customer access",
        }
        for device in devices
        for p in range(LINK_PORTS + SPARE_PORTS)
    ]
    _insert(conn, InterfaceRow, interfaces)
    _insert(
        conn,
        LinkRow,
        [
            {
                "id": n,
                "a_device": a,
                "a_interface": ap,
                "b_device": b,
                "b_interface": bp,
                "capacity_bps": 10_000_000_000,
                "latency_us": 500 if a.split("-")[0] == b.split("-")[0] else 4000,
                "state": "up",
            }
            for n, (a, ap, b, bp) in enumerate(links, start=1)
        ],
    )
    _insert(
        conn,
        AlarmRow,
        [
            # raised over the last day, in id order
            {"id": n, "raised_time": at, "changed_time": at, **row}
            for n, row in enumerate(alarms, start=1)
            for at in (NOW - timedelta(seconds=(len(alarms) - n) * 173),)
        ],
    )
    out.links, out.interfaces = len(links), len(interfaces)
    for row in alarms:
        severity, kind = row["perceived_severity"], row["alarmed_object_type"]
        out.alarms_by_severity[severity] = out.alarms_by_severity.get(severity, 0) + 1
        out.alarms_by_object[kind] = out.alarms_by_object.get(kind, 0) + 1
    spare = tuple(port_name(p) for p in range(LINK_PORTS, LINK_PORTS + SPARE_PORTS))
    out.trap_sources = [(name, address, spare) for name, address in sources.items()]
    return out


if __name__ == "__main__":  # a look at what it writes: python -m bench.console_inventory DIR
    import sys

    made = asyncio.run(generate(Path(sys.argv[1]), Shape()))
    print(made.links, made.interfaces, made.alarms_by_severity, made.alarms_by_object)
