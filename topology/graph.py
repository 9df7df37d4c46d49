"""The live inventory graph: devices, interfaces and links in memory, with path and impact queries.

`InventoryGraph` wraps a `networkx.MultiGraph` (parallel links between two devices are normal in
real networks). Devices are nodes, links are edges keyed by their database id. The networkx object
stays private: callers only ever get the immutable model objects from `topology.model` or the small
frozen result types defined here, so nobody can change the graph behind the inventory's back.

The inventory (`oss.inventory`) writes the database first and then mirrors the change here; the
mutators still check consistency and raise `oss.errors` so that a bug shows up as a clear error
instead of a silently wrong graph. Indexes others derive from the graph (placement's search
index) are kept here, with the graph whose lifetime they share (`derived`).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import islice, pairwise
from typing import Any, Literal, TypeVar

import networkx as nx

from oss.errors import Conflict, InvalidInput, NoPath, NotFound
from topology.model import Device, Endpoint, Interface, Link, LinkState, OperState, Site

_DIGITS = re.compile(r"(\d+)")
_T = TypeVar("_T")


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders `eth2` before `eth10` (and `r9` before `r10`)."""
    parts = _DIGITS.split(text)
    return tuple((1, int(p)) if i % 2 else (0, p) for i, p in enumerate(parts))


@lru_cache(maxsize=8192)  # bisecting the kept orders asks for the same few names again
def listing_key(name: str) -> tuple[tuple[tuple[int, int | str], ...], str]:
    """The order of every listing (`natural_key`, then the name itself: `eth01` and `eth1`
    differ), a total order, so a listing can be resumed after any name (keyset paging)."""
    return natural_key(name), name


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

    @classmethod
    def through(cls, devices: list[str], links: list[Link]) -> Path:
        """The path over `links`, where `links[i]` joins `devices[i]` and `devices[i + 1]`."""
        return cls(
            devices=list(devices),
            links=[lk.id or 0 for lk in links],  # links in the graph always have an id
            latency_us=sum(lk.latency_us for lk in links),
            capacity_bps=min(lk.capacity_bps for lk in links),
        )

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


@dataclass(frozen=True)
class GraphChange:
    """One object added, changed or removed, as the graph applied it. A removed device's
    links are announced removed before it; its interfaces go with it unannounced."""

    kind: Literal["site", "device", "interface", "link"]
    op: Literal["added", "changed", "removed"]
    object: Site | Device | Interface | Link


class InventoryGraph:
    """The in-memory inventory graph; see the module docstring for the ownership rules."""

    def __init__(self) -> None:
        # Told of every change once applied (the inventory's live stream); None: nobody.
        self.on_change: Callable[[GraphChange], None] | None = None
        self._g: Any = nx.MultiGraph()
        self._sites: dict[str, Site] = {}
        self._links: dict[int, Link] = {}
        self._carrier: dict[Endpoint, int] = {}  # interface -> id of the link it carries
        self._simple_cache: dict[bool, Any] = {}
        self._version = 0  # counts the changes to devices and links
        self._revision = 0  # counts every change (sites, devices, interfaces, links)
        self._derived: dict[str, tuple[int, Any]] = {}  # key -> (version built at, value)
        # Device names in `listing_key` order, each node's interface names likewise ("order"),
        # kept on every change (bisect; no keys stored): a listing never sorts, and a page
        # resumed after a name costs O(log n + page) (the REST API's cursors).
        self._device_order: list[str] = []
        self._interface_count = 0
        self._oper_down: set[tuple[str, str]] = set()  # (device, interface) operationally down

    # ---------------------------------------------------------------- mutations

    def upsert_site(self, site: Site) -> None:
        op: Literal["added", "changed"] = "changed" if site.name in self._sites else "added"
        self._sites[site.name] = site
        self._revision += 1
        self._tell(GraphChange("site", op, site))

    def remove_site(self, name: str) -> None:
        self.site(name)
        users = [d.name for d in self.devices() if d.site == name]
        if users:
            raise Conflict(f"site '{name}' still has devices: {', '.join(users)}")
        site = self._sites.pop(name)
        self._revision += 1
        self._tell(GraphChange("site", "removed", site))

    def upsert_device(self, device: Device) -> None:
        if device.site is not None and device.site not in self._sites:
            raise NotFound(f"site '{device.site}' not found (device '{device.name}')")
        if device.name in self._g:
            self._g.nodes[device.name]["device"] = device
            op: Literal["added", "changed"] = "changed"
        else:
            self._g.add_node(device.name, device=device, interfaces={}, order=[])
            insort(self._device_order, device.name, key=listing_key)
            op = "added"
        self._changed()
        self._tell(GraphChange("device", op, device))

    def remove_device(self, name: str) -> None:
        """Remove the device with its interfaces and every link that touches it."""
        device = self.device(name)
        links = self.links(name)
        for link in links:
            self._drop_link(link)
        self._interface_count -= len(self._interfaces_of(name))
        self._oper_down.difference_update((name, i) for i in self._interfaces_of(name))
        del self._device_order[bisect_left(self._device_order, listing_key(name), key=listing_key)]
        self._g.remove_node(name)
        self._changed()
        for link in links:
            self._tell(GraphChange("link", "removed", link))
        self._tell(GraphChange("device", "removed", device))

    def upsert_interface(self, interface: Interface) -> None:
        interfaces = self._interfaces_of(interface.device)
        op: Literal["added", "changed"] = "changed"
        if interface.name not in interfaces:
            order = self._g.nodes[interface.device]["order"]
            insort(order, interface.name, key=listing_key)
            self._interface_count += 1
            op = "added"
        interfaces[interface.name] = interface
        if interface.oper_state is OperState.DOWN:
            self._oper_down.add((interface.device, interface.name))
        else:
            self._oper_down.discard((interface.device, interface.name))
        self._revision += 1
        self._tell(GraphChange("interface", op, interface))

    def remove_interface(self, device: str, name: str) -> None:
        interface = self.interface(device, name)
        link_id = self._carrier.get(Endpoint(device=device, interface=name))
        if link_id is not None:
            raise Conflict(f"interface {device}:{name} still carries link {link_id}")
        del self._interfaces_of(device)[name]
        self._oper_down.discard((device, name))
        order = self._g.nodes[device]["order"]
        del order[bisect_left(order, listing_key(name), key=listing_key)]
        self._interface_count -= 1
        self._revision += 1
        self._tell(GraphChange("interface", "removed", interface))

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
        self._tell(GraphChange("link", "added" if old is None else "changed", link))

    def remove_link(self, link_id: int) -> None:
        link = self.link(link_id)
        self._drop_link(link)
        self._changed()
        self._tell(GraphChange("link", "removed", link))

    def clear(self) -> None:
        self._g.clear()
        self._sites.clear()
        self._links.clear()
        self._carrier.clear()
        self._device_order.clear()
        self._interface_count = 0
        self._oper_down.clear()
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
        nodes = self._g.nodes
        return [nodes[n]["device"] for n in self._device_order]

    def devices_after(self, after: str | None = None) -> Iterator[Device]:
        """The devices in listing order, from the first one after the name `after` (which
        need not exist any more), or from the first. Do not change the graph while iterating."""
        order = self._device_order
        start = 0 if after is None else bisect_right(order, listing_key(after), key=listing_key)
        nodes = self._g.nodes
        return (nodes[order[i]]["device"] for i in range(start, len(order)))

    def interface(self, device: str, name: str) -> Interface:
        try:
            return self._interfaces_of(device)[name]
        except KeyError:
            raise NotFound(f"interface '{device}:{name}' not found") from None

    def interfaces(self, device: str | None = None) -> list[Interface]:
        if device is not None:
            self.device(device)
            return list(self._interfaces_in_order(device, None))
        return list(self.interfaces_after())

    def interfaces_after(
        self, after: tuple[str, str] | None = None, device: str | None = None
    ) -> Iterator[Interface]:
        """The interfaces in listing order (device, then interface name), from the first one
        after `after` = (device, interface), which need not exist any more, or from the
        first; only `device`'s when given (it must exist). Do not change the graph while
        iterating."""
        if device is not None:
            self.device(device)
            if after is not None and listing_key(after[0]) > listing_key(device):
                return iter(())
            resume = after is not None and after[0] == device
            return self._interfaces_in_order(device, after[1] if resume and after else None)
        return self._all_interfaces_after(after)

    def interface_count(self) -> int:
        return self._interface_count

    def oper_down(self) -> AbstractSet[tuple[str, str]]:
        """(device, interface) of every interface operationally down, kept on every change (a
        live view: do not change the graph while using it)."""
        return self._oper_down

    def _all_interfaces_after(self, after: tuple[str, str] | None) -> Iterator[Interface]:
        order = self._device_order
        start = 0
        if after is not None:
            start = bisect_left(order, listing_key(after[0]), key=listing_key)
            if start < len(order) and order[start] == after[0]:
                yield from self._interfaces_in_order(after[0], after[1])
                start += 1
        for i in range(start, len(order)):
            yield from self._interfaces_in_order(order[i], None)

    def _interfaces_in_order(self, device: str, after: str | None) -> Iterator[Interface]:
        node = self._g.nodes[device]
        interfaces, order = node["interfaces"], node["order"]
        start = 0 if after is None else bisect_right(order, listing_key(after), key=listing_key)
        return (interfaces[order[i]] for i in range(start, len(order)))

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

    @property
    def revision(self) -> int:
        """Moves on with every change, an interface's oper_state included: what a reader
        caches from the graph is current while this is unchanged."""
        return self._revision

    @property
    def structure_revision(self) -> int:
        """Moves on with every change to devices and links only (not interfaces' states, not
        sites): what a reader derives from them alone stays current while it is unchanged."""
        return self._version

    def around(self, device: str, hops: int) -> set[str]:
        """The device and every device within `hops` links of it, down links included (a map's
        neighbourhood shows what is cut off too)."""
        self.device(device)
        within: dict[str, int] = nx.single_source_shortest_path_length(self._g, device, hops)
        return set(within)

    def counts(self) -> dict[str, int]:
        return {
            "sites": len(self._sites),
            "devices": self._g.number_of_nodes(),
            "interfaces": self._interface_count,
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

    def check_ends(self, src: str, dst: str) -> None:
        """The two ends of a path query exist (NotFound) and differ (InvalidInput)."""
        self.device(src)
        self.device(dst)
        if src == dst:
            raise InvalidInput(f"source and destination are the same device ({src})")

    def derived(self, key: str, build: Callable[[_T | None], _T]) -> _T:
        """An index derived from the devices and links elsewhere (`topology.placement` keeps
        its search index here), built once and kept with the graph until it next changes.

        `build` gets the value built before that change (None the first time): parts of it
        that the change cannot have made wrong may be reused; checking that is the builder's
        job. A value is never returned for a state other than the one it was built from.
        """
        version, value = self._derived.get(key, (-1, None))
        if version != self._version:
            value = build(value)
            self._derived[key] = (self._version, value)
        found: _T = value
        return found

    # ---------------------------------------------------------------- internals

    def _tell(self, change: GraphChange) -> None:
        if self.on_change is not None:
            self.on_change(change)

    def _changed(self) -> None:
        self._simple_cache.clear()
        self._version += 1
        self._revision += 1

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
        self.check_ends(src, dst)
        return self._simple(include_down)

    @staticmethod
    def _no_path(src: str, dst: str, include_down: bool) -> NoPath:
        return NoPath(f"no path from {src} to {dst}{'' if include_down else ' over up links'}")

    @staticmethod
    def _path(g: Any, nodes: list[str]) -> Path:
        links: list[Link] = [g.edges[u, v]["link"] for u, v in pairwise(nodes)]
        return Path.through(nodes, links)

    def _up_multigraph(self) -> Any:
        g = nx.MultiGraph()
        g.add_nodes_from(self._g.nodes)
        g.add_edges_from(
            (lk.a.device, lk.b.device, lk.id) for lk in self._usable(include_down=False)
        )
        return g


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
