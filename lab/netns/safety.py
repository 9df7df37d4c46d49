"""The lab is a closed world: no namespace of it has a way out. Checked before any traffic.

In every namespace of the lab, every route (IPv4 and IPv6, every table) must lie inside the
lab's prefixes (`LabPlan.prefixes()`) or be one the kernel keeps for the host itself (local,
broadcast, loopback, link-local, multicast); a default route is refused outright. And every
veth of the lab must have its peer in another namespace of the lab: a peer in the root
namespace (or anyone else's) would be a cable out of it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lab.netns import iproute
from lab.netns.plan import LabPlan
from oss.errors import OssError

_HOST_TYPES = {"local", "broadcast", "multicast", "anycast"}
_HOST_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128", "fe80::/10", "ff00::/8")
)
_MULTICAST_V4 = ipaddress.ip_network("224.0.0.0/4")


class LabUnsafe(OssError, RuntimeError):
    """A namespace of the lab could reach outside it (the message names namespace and route)."""


def route_problem(route: Mapping[str, Any], allowed: Iterable[str], family: int) -> str | None:
    """Why a route (an entry of `ip -j route show table all`) is a way out; None: it is not."""
    dst = str(route.get("dst", ""))
    if dst == "default":
        return "a default route"
    if route.get("type") in _HOST_TYPES:
        return None
    try:
        network = ipaddress.ip_network(dst if "/" in dst else _host(dst, family), strict=False)
    except ValueError:
        return f"a route to '{dst}' that is not a prefix"
    if network.prefixlen == 0:
        return "a default route"
    if any(_inside(network, ipaddress.ip_network(p)) for p in (*_HOST_NETWORKS, _MULTICAST_V4)):
        return None
    if any(_inside(network, ipaddress.ip_network(p)) for p in allowed):
        return None
    return "outside the lab's prefixes"


def _host(dst: str, family: int) -> str:
    return f"{dst}/{32 if family == 4 else 128}"


def _inside(network: ipaddress.IPv4Network | ipaddress.IPv6Network, outer: Any) -> bool:
    return network.version == outer.version and network.subnet_of(outer)


def describe(route: Mapping[str, Any]) -> str:
    parts = [str(route.get("dst", "?"))]
    for key in ("gateway", "dev", "table", "protocol"):
        if route.get(key):
            parts.append(f"{key} {route[key]}")
    return " ".join(parts)


def namespace_problems(plan: LabPlan, namespace: str) -> list[str]:
    """Every way out of one namespace of the lab, as readable lines."""
    problems = []
    for family in (4, 6):
        for route in iproute.ip_json(
            f"-{family}", "route", "show", "table", "all", netns=namespace
        ):
            why = route_problem(route, plan.prefixes(), family)
            if why is not None:
                problems.append(f"{namespace}: route {describe(route)}: {why}")
    lab = set(plan.namespaces())
    names = {
        int(entry["nsid"]): str(entry.get("name", ""))
        for entry in iproute.ip_json("netns", "list-id", netns=namespace)
        if "nsid" in entry
    }
    for link in iproute.ip_json("link", "show", netns=namespace):
        if "link_netnsid" not in link:
            continue  # its peer (if any) is in this namespace
        peer = names.get(int(link["link_netnsid"]), "")
        if peer not in lab:
            where = f"namespace '{peer}'" if peer else "a namespace outside the lab (the root?)"
            problems.append(f"{namespace}: {link.get('ifname')} is a cable to {where}")
    return problems


def assert_contained(plan: LabPlan) -> None:
    """Raise LabUnsafe naming every namespace and route that leads out of the lab."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda ns: namespace_problems(plan, ns), plan.namespaces()))
    problems = [p for per_namespace in found for p in per_namespace]
    if problems:
        raise LabUnsafe("the lab is not closed:\n  " + "\n  ".join(problems))
