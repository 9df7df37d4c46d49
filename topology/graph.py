"""The live inventory graph: devices, interfaces and links in memory, with path and impact queries.

`InventoryGraph` wraps a `networkx.MultiGraph` (parallel links between two devices are normal in
real networks). Devices are nodes, links are edges keyed by their database id. The networkx object
stays private: callers only ever get the immutable model objects from `topology.model` or the small
frozen result types defined here, so nobody can change the graph behind the inventory's back.

The inventory service writes the database first and then mirrors the change here; the mutators
still check consistency and raise `oss.errors` so that a bug shows up as a clear error instead of
a silently wrong graph.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from itertools import islice, pairwise
from typing import Any, Literal, TypeVar

import networkx as nx

from oss.errors import Conflict, InvalidInput, NoPath, NotFound
from topology.model import Device, Endpoint, Interface, Link, LinkState, Site

_DIGITS = re.compile(r"(\d+)")
_T = TypeVar("_T")


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders `eth2` before `eth10` (and `r9` before `r10`)."""
    parts = _DIGITS.split(text)
    return tuple((1, int(p)) if i % 2 else (0, p) for i, p in enumerate(parts))


@dataclass(frozen=True)
class Neighbour:
    """A device adjacent to another over one link (one entry per parallel link)."""

    device: str
    local_interface: str
    remote_interface: str
    link_id: int
    state: LinkState
    latency_us: int
    capacity_bps: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data


@dataclass(frozen=True)
class Path:
    """A loopless path: `devices[i]` and `devices[i + 1]` are joined by link `links[i]`."""

    devices: list[str]
    links: list[int]
    latency_us: int
    capacity_bps: int  # bottleneck: the smallest capacity along the path

    @property
    def hops(self) -> int:
        return len(self.links)

    def to_dict(self) -> dict[str, Any]:
        return {
            "devices": list(self.devices),
            "links": list(self.links),
            "latency_us": self.latency_us,
            "capacity_bps": self.capacity_bps,
            "hops": self.hops,
        }


@dataclass(frozen=True)
class Impact:
    """What depends on a device or link: what goes down with it and who gets cut off.

    The graph knows no services: `services` and `customers` are empty here and filled in by
    the API from the service inventory (services hold their links and devices as resources).
    """

    target: str
    links: list[int]
    interfaces: list[str]
    devices: list[str]
    isolated_devices: list[str]
    partitioned: bool
    services: list[str]
    customers: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class InventoryGraph:
    """The in-memory inventory graph; see the module docstring for the ownership rules."""

    def __init__(self) -> None:
        self._g: Any = nx.MultiGraph()
        self._sites: dict[str, Site] = {}
        self._links: dict[int, Link] = {}
        self._carrier: dict[Endpoint, int] = {}  # interface -> id of the link it carries
        self._simple_cache: dict[bool, Any] = {}

    # ---------------------------------------------------------------- mutations

    def upsert_site(self, site: Site) -> None:
        self._sites[site.name] = site

    def remove_site(self, name: str) -> None:
        self.site(name)
        users = [d.name for d in self.devices() if d.site == name]
        if users:
            raise Conflict(f"site '{name}' still has devices: {', '.join(users)}")
        del self._sites[name]

    def upsert_device(self, device: Device) -> None:
        if device.site is not None and device.site not in self._sites:
            raise NotFound(f"site '{device.site}' not found (device '{device.name}')")
        if device.name in self._g:
            self._g.nodes[device.name]["device"] = device
        else:
            self._g.add_node(device.name, device=device, interfaces={})
        self._changed()

    def remove_device(self, name: str) -> None:
        """Remove the device with its interfaces and every link that touches it."""
        self.device(name)
        for link in self.links(name):
            self._drop_link(link)
        self._g.remove_node(name)
        self._changed()

    def upsert_interface(self, interface: Interface) -> None:
        self._interfaces_of(interface.device)[interface.name] = interface

    def remove_interface(self, device: str, name: str) -> None:
        self.interface(device, name)
        link_id = self._carrier.get(Endpoint(device=device, interface=name))
        if link_id is not None:
            raise Conflict(f"interface {device}:{name} still carries link {link_id}")
        del self._interfaces_of(device)[name]

    def upsert_link(self, link: Link) -> None:
        """Add or replace a link; both interfaces must exist and carry no other link."""
        if link.id is None:
            raise InvalidInput(f"link {link.a} -- {link.b} has no id; store it first")
        for end in link.ends():
            self.interface(end.device, end.interface)
            other = self._carrier.get(end)
            if other is not None and other != link.id:
                raise Conflict(f"interface {end} already carries link {other}")
        old = self._links.get(link.id)
        if old is not None:
            self._drop_link(old)
        self._g.add_edge(link.a.device, link.b.device, key=link.id, link=link)
        self._links[link.id] = link
        for end in link.ends():
            self._carrier[end] = link.id
        self._changed()

    def remove_link(self, link_id: int) -> None:
        self._drop_link(self.link(link_id))
        self._changed()

    def clear(self) -> None:
        self._g.clear()
        self._sites.clear()
        self._links.clear()
        self._carrier.clear()
        self._changed()

    # -------------------------------------------------------------------- reads

    def site(self, name: str) -> Site:
        try:
            return self._sites[name]
        except KeyError:
            raise NotFound(f"site '{name}' not found") from None

    def sites(self) -> list[Site]:
        return [self._sites[n] for n in sorted(self._sites, key=natural_key)]

    def device(self, name: str) -> Device:
        if name not in self._g:
            raise NotFound(f"device '{name}' not found")
        device: Device = self._g.nodes[name]["device"]
        return device

    def devices(self) -> list[Device]:
        return [self.device(n) for n in sorted(self._g.nodes, key=natural_key)]

    def interface(self, device: str, name: str) -> Interface:
        try:
            return self._interfaces_of(device)[name]
        except KeyError:
            raise NotFound(f"interface '{device}:{name}' not found") from None

    def interfaces(self, device: str | None = None) -> list[Interface]:
        names = [device] if device is not None else [d.name for d in self.devices()]
        result: list[Interface] = []
        for name in names:
            ifaces = self._interfaces_of(name)
            result.extend(ifaces[i] for i in sorted(ifaces, key=natural_key))
        return result

    def link(self, link_id: int) -> Link:
        try:
            return self._links[link_id]
        except KeyError:
            raise NotFound(f"link {link_id} not found") from None

    def links(self, device: str | None = None) -> list[Link]:
        if device is None:
            return [self._links[i] for i in sorted(self._links)]
        self.device(device)
        ids = {key for _, _, key in self._g.edges(device, keys=True)}
        return [self._links[i] for i in sorted(ids)]

    def link_at(self, endpoint: Endpoint) -> Link | None:
        """The link on this interface; None when it has none or is not in the inventory."""
        link_id = self._carrier.get(endpoint)
        return None if link_id is None else self._links[link_id]

    def counts(self) -> dict[str, int]:
        return {
            "sites": len(self._sites),
            "devices": self._g.number_of_nodes(),
            "interfaces": sum(len(d["interfaces"]) for _, d in self._g.nodes(data=True)),
            "links": len(self._links),
        }

    def to_json(self) -> dict[str, Any]:
        devices = []
        for device in self.devices():
            data = device.model_dump(mode="json")
            data["interfaces"] = [i.model_dump(mode="json") for i in self.interfaces(device.name)]
            devices.append(data)
        return {
            "sites": [s.model_dump(mode="json") for s in self.sites()],
            "devices": devices,
            "links": [link.model_dump(mode="json") for link in self.links()],
        }

    # ------------------------------------------------------------------ queries

    def neighbours(self, device: str) -> list[Neighbour]:
        """Every link of the device with what is on the other end, down links included."""
        result = []
        for link in self.links(device):
            local, remote = (link.a, link.b) if link.a.device == device else (link.b, link.a)
            result.append(
                Neighbour(
                    device=remote.device,
                    local_interface=local.interface,
                    remote_interface=remote.interface,
                    link_id=link.id or 0,
                    state=link.state,
                    latency_us=link.latency_us,
                    capacity_bps=link.capacity_bps,
                )
            )
        result.sort(key=lambda n: (natural_key(n.device), natural_key(n.local_interface)))
        return result

    def shortest_path(self, src: str, dst: str, *, include_down: bool = False) -> Path:
        """The lowest-latency path; between parallel links the lowest-latency one is used."""
        g = self._checked_simple(src, dst, include_down)
        try:
            nodes: list[str] = nx.shortest_path(g, src, dst, weight="latency")
        except nx.NetworkXNoPath:
            raise self._no_path(src, dst, include_down) from None
        return self._path(g, nodes)

    def k_shortest_paths(
        self, src: str, dst: str, k: int, *, include_down: bool = False
    ) -> list[Path]:
        """Up to `k` loopless paths ordered by latency (Yen's algorithm on the reduced graph)."""
        if k < 1:
            raise InvalidInput(f"k must be at least 1, got {k}")
        g = self._checked_simple(src, dst, include_down)
        try:
            found = list(islice(nx.shortest_simple_paths(g, src, dst, weight="latency"), k))
        except nx.NetworkXNoPath:
            raise self._no_path(src, dst, include_down) from None
        return [self._path(g, nodes) for nodes in found]

    def disjoint_pair(
        self,
        src: str,
        dst: str,
        mode: Literal["link", "node"] = "link",
        *,
        include_down: bool = False,
    ) -> tuple[Path, Path]:
        """The two disjoint paths with the least total latency, primary (lower latency) first.

        Solved as a min-cost flow of two units (equivalent to Suurballe), so it finds the optimal
        pair even where "shortest path, remove it, search again" finds none or a worse one.
        `link` mode: no link is shared (parallel links are distinct links). `node` mode: no device
        other than `src` and `dst` is shared.
        """
        if mode not in ("link", "node"):
            raise InvalidInput(f"mode must be 'link' or 'node', got {mode!r}")
        self._checked_simple(src, dst, include_down)
        flow_graph, ports = self._flow_graph(src, dst, mode, include_down)
        flow: dict[Any, dict[Any, int]] = nx.max_flow_min_cost(flow_graph, _SOURCE, dst)
        if flow[_SOURCE][src] < 2:
            up = "" if include_down else " over up links"
            raise NoPath(f"no {mode}-disjoint pair of paths from {src} to {dst}{up}")
        arcs = self._net_arcs(flow, ports)
        pair = sorted(
            [self._walk(src, dst, arcs), self._walk(src, dst, arcs)],
            key=lambda p: (p.latency_us, p.hops, p.links),
        )
        return pair[0], pair[1]

    def impact(self, *, device: str | None = None, link_id: int | None = None) -> Impact:
        """What fails with a device or a link, and which devices lose the rest of the network.

        A device is isolated when, after the failure, it can no longer reach (over up links) the
        largest remaining part of the component it was in; on a tie, the part holding the
        first device name in natural order counts as the largest. `services` and `customers`
        are left empty: the service inventory (oss.provisioning) fills them in.
        """
        if (device is None) == (link_id is None):
            raise InvalidInput("give exactly one of device or link_id")
        up = self._up_multigraph()
        if device is not None:
            self.device(device)
            links = self.links(device)
            target = f"device {device}"
            interfaces = {f"{device}:{i.name}" for i in self.interfaces(device)}
            devices = {device} | {n.device for n in self.neighbours(device)}
            survivors = nx.node_connected_component(up, device) - {device}
            up.remove_node(device)
        else:
            assert link_id is not None  # narrowed by the check above
            link = self.link(link_id)
            links = [link]
            target = f"link {link_id}"
            interfaces = set()
            devices = {link.a.device, link.b.device}
            survivors = nx.node_connected_component(up, link.a.device)
            if up.has_edge(link.a.device, link.b.device, key=link_id):
                up.remove_edge(link.a.device, link.b.device, key=link_id)
        for lk in links:
            interfaces.update(str(end) for end in lk.ends())
        isolated = _cut_off(up, survivors)
        return Impact(
            target=target,
            links=[lk.id or 0 for lk in links],
            interfaces=sorted(interfaces, key=natural_key),
            devices=sorted(devices, key=natural_key),
            isolated_devices=isolated,
            partitioned=bool(isolated),
            services=[],
            customers=[],
        )

    def derived(self, key: str, build: Callable[[], _T]) -> _T:
        """`build()`'s result, built once and kept until the graph next changes: for indexes
        derived from the graph elsewhere (`topology.placement` keeps its search index here).

        It is stored with the reduced graph of all links, which every change discards, so it
        can never outlive the state it was built from.
        """
        store: dict[str, Any] = self._simple(True).graph.setdefault("derived", {})
        if key not in store:
            store[key] = build()
        found: _T = store[key]
        return found

    # ---------------------------------------------------------------- internals

    def _changed(self) -> None:
        self._simple_cache.clear()

    def _interfaces_of(self, device: str) -> dict[str, Interface]:
        self.device(device)
        interfaces: dict[str, Interface] = self._g.nodes[device]["interfaces"]
        return interfaces

    def _drop_link(self, link: Link) -> None:
        self._g.remove_edge(link.a.device, link.b.device, key=link.id)
        for end in link.ends():
            self._carrier.pop(end, None)
        self._links.pop(link.id or 0, None)

    def _usable(self, include_down: bool) -> Iterable[Link]:
        return (lk for lk in self.links() if include_down or lk.state is LinkState.UP)

    def _simple(self, include_down: bool) -> Any:
        """A simple Graph keeping, for each device pair, the best link (latency, then capacity)."""
        cached = self._simple_cache.get(include_down)
        if cached is not None:
            return cached
        g = nx.Graph()
        g.add_nodes_from(sorted(self._g.nodes, key=natural_key))
        for lk in self._usable(include_down):
            u, v = lk.a.device, lk.b.device
            if u == v:
                continue  # a loop never helps a path
            best = g.get_edge_data(u, v)
            if best is None or _better(lk, best["link"]):
                g.add_edge(u, v, latency=lk.latency_us, link=lk)
        self._simple_cache[include_down] = g
        return g

    def _checked_simple(self, src: str, dst: str, include_down: bool) -> Any:
        self.device(src)
        self.device(dst)
        if src == dst:
            raise InvalidInput(f"source and destination are the same device ({src})")
        return self._simple(include_down)

    @staticmethod
    def _no_path(src: str, dst: str, include_down: bool) -> NoPath:
        return NoPath(f"no path from {src} to {dst}{'' if include_down else ' over up links'}")

    @staticmethod
    def _path(g: Any, nodes: list[str]) -> Path:
        links: list[Link] = [g.edges[u, v]["link"] for u, v in pairwise(nodes)]
        return _make_path(nodes, links)

    def _flow_graph(
        self, src: str, dst: str, mode: Literal["link", "node"], include_down: bool
    ) -> tuple[Any, dict[int, _Ports]]:
        """DiGraph for the 2-unit min-cost flow, and where each link enters and leaves it.

        Each link becomes its own middle node (so parallel links are distinct arcs), entered from
        either end at the link's cost and left towards either end for free. In node mode each
        device other than src/dst is split into (dev, "in") -> (dev, "out") with capacity 1.
        """

        def split(dev: str) -> bool:
            return mode == "node" and dev not in (src, dst)

        d = nx.DiGraph()
        d.add_edge(_SOURCE, src, capacity=2, weight=0)
        d.add_node(dst)  # even when no usable link reaches it
        for dev in self._g.nodes:
            if split(dev):
                d.add_edge((dev, "in"), (dev, "out"), capacity=1, weight=0)
        ports: dict[int, _Ports] = {}
        for lk in self._usable(include_down):
            u, v = lk.a.device, lk.b.device
            if u == v:
                continue
            p = _Ports(
                mid=("link", lk.id),
                out_u=(u, "out") if split(u) else u,
                in_u=(u, "in") if split(u) else u,
                out_v=(v, "out") if split(v) else v,
                in_v=(v, "in") if split(v) else v,
            )
            d.add_edge(p.out_u, p.mid, capacity=1, weight=lk.latency_us)
            d.add_edge(p.out_v, p.mid, capacity=1, weight=lk.latency_us)
            d.add_edge(p.mid, p.in_u, capacity=1, weight=0)
            d.add_edge(p.mid, p.in_v, capacity=1, weight=0)
            ports[lk.id or 0] = p
        return d, ports

    def _net_arcs(
        self, flow: dict[Any, dict[Any, int]], ports: dict[int, _Ports]
    ) -> list[tuple[str, str, int]]:
        """Per link, the net direction of flow (opposite flows on one link cancel out)."""
        arcs = []
        for link_id, p in sorted(ports.items()):
            lk = self._links[link_id]
            # Net flow u -> v: what leaves the link towards v minus what enters it from v.
            net = flow[p.mid][p.in_v] - flow[p.out_v][p.mid]
            if net > 0:
                arcs.append((lk.a.device, lk.b.device, link_id))
            elif net < 0:
                arcs.append((lk.b.device, lk.a.device, link_id))
        return arcs

    def _walk(self, src: str, dst: str, arcs: list[tuple[str, str, int]]) -> Path:
        """Take one unit of flow out of `arcs` (consumed) as a path, cutting any loops."""
        nodes: list[str] = [src]
        link_ids: list[int] = []
        while nodes[-1] != dst:
            arc = next(a for a in arcs if a[0] == nodes[-1])
            arcs.remove(arc)
            if arc[1] in nodes:  # zero-latency cycles can appear in the flow: drop the loop
                cut = nodes.index(arc[1])
                del nodes[cut + 1 :], link_ids[cut:]
            else:
                nodes.append(arc[1])
                link_ids.append(arc[2])
        return _make_path(nodes, [self._links[i] for i in link_ids])

    def _up_multigraph(self) -> Any:
        g = nx.MultiGraph()
        g.add_nodes_from(self._g.nodes)
        g.add_edges_from(
            (lk.a.device, lk.b.device, lk.id) for lk in self._usable(include_down=False)
        )
        return g


_SOURCE = ("source",)  # super source feeding exactly two units into src


@dataclass(frozen=True)
class _Ports:
    """Flow-graph nodes of one link: its middle node and its ends' out/in nodes."""

    mid: Any
    out_u: Any
    in_u: Any
    out_v: Any
    in_v: Any


def _cut_off(after: Any, component: set[str]) -> list[str]:
    """Devices of a formerly connected set that lose its largest part once `after` applies.

    On a tie for the largest part, the one holding the first name in natural order wins, so
    the answer is deterministic.
    """
    parts = [set(c) for c in nx.connected_components(after.subgraph(component))]
    if len(parts) <= 1:
        return []
    main = min(parts, key=lambda p: (-len(p), min(natural_key(n) for n in p)))
    return sorted(component - main, key=natural_key)


def _better(candidate: Link, current: Link) -> bool:
    def rank(lk: Link) -> tuple[int, int, int]:
        return (lk.latency_us, -lk.capacity_bps, lk.id or 0)

    return rank(candidate) < rank(current)


def _make_path(nodes: list[str], links: list[Link]) -> Path:
    return Path(
        devices=list(nodes),
        links=[lk.id or 0 for lk in links],
        latency_us=sum(lk.latency_us for lk in links),
        capacity_bps=min(lk.capacity_bps for lk in links),
    )
