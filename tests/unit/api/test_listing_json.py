"""The listings' JSON assembled from cached fragments is the document pydantic writes for the
route's `response_model`, and a changed object is never answered from the cache."""

from __future__ import annotations

from oss.api.listing import JsonFragments, devices_page, fragments, interfaces_page
from oss.api.schemas import DeviceWithInterfaces
from oss.web.paging import CursorPage, CursorPageParams
from topology.graph import InventoryGraph
from topology.model import Device, Interface, OperState


def graph() -> InventoryGraph:
    g = InventoryGraph()
    g.upsert_device(Device(name="r1", mgmt_address="10.0.0.1", credentials_ref="env:R1"))
    g.upsert_device(Device(name="r2", kind="nokia_srlinux"))
    for name in ("eth2", "eth10"):
        g.upsert_interface(Interface(device="r1", name=name, description='to "r2" — ü'))
    g.upsert_interface(Interface(device="r2", name="ethernet-1/1", speed_bps=10**10))
    return g


def window(items: list[Device], limit: int) -> CursorPage[Device]:
    page = CursorPageParams(limit=limit, offset=0, cursor=None)
    return CursorPage[Device].window(
        iter(items), page, total=len(items), listing="devices", key=lambda d: (d.name,)
    )


def test_pages_are_what_pydantic_writes() -> None:
    g = graph()
    for limit in (1, 5):
        found = window(g.devices(), limit)
        assert (found.next_cursor is None) == (limit == 5)
        plain = devices_page(found, g, with_interfaces=False)
        assert plain.body == found.model_dump_json().encode()
        with_interfaces = CursorPage[DeviceWithInterfaces](
            items=[
                DeviceWithInterfaces(**d.model_dump(), interfaces=g.interfaces(d.name))
                for d in found.items
            ],
            total=found.total,
            limit=found.limit,
            offset=found.offset,
            next_cursor=found.next_cursor,
        )
        joined = devices_page(found, g, with_interfaces=True)
        assert joined.body == with_interfaces.model_dump_json().encode()
    interfaces = CursorPage[Interface].window(
        iter(g.interfaces()),
        CursorPageParams(limit=2, offset=0, cursor=None),
        total=3,
        listing="interfaces",
        key=lambda i: (i.device, i.name),
    )
    assert interfaces_page(interfaces, g).body == interfaces.model_dump_json().encode()


def test_a_replaced_object_is_rendered_anew() -> None:
    g = graph()
    cache = fragments(g)
    before = cache.join(g.interfaces("r2"))
    g.upsert_interface(Interface(device="r2", name="ethernet-1/1", oper_state=OperState.DOWN))
    g.upsert_device(Device(name="r3"))  # a change to the devices: the cache carries over
    assert fragments(g) is cache
    after = cache.join(g.interfaces("r2"))
    assert b'"oper_state":"unknown"' in before and b'"oper_state":"down"' in after


def test_the_cache_is_bounded() -> None:
    cache = JsonFragments(bound=3)
    items = [Interface(device="r1", name=f"eth{n}") for n in range(10)]
    for item in items:
        assert cache.of(item) == item.model_dump_json().encode()
    assert len(cache._by_id) <= 3
