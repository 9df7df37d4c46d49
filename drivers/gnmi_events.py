"""gNMI notifications as canonical events: the hot path of streaming telemetry.

Subscription responses are decoded with *view* message types (`ResponseView`), wire-compatible
with gNMI's SubscribeResponse but declaring every Path as `bytes`: protobuf then hands a path
over as its serialized bytes instead of building Path, PathElem and key-map objects for each
update. Streams repeat the same few hundred paths, so the bytes are the key of a cache that
knows, per path, the container it belongs to, its leaf name and the event tags; a Path is only
decoded the first time it is seen. Values are decoded for real (`gnmi.TypedValue`).

One event per container: a notification's updates are grouped by everything but their last
path element, the values keyed by leaf name. Tags: device, path (the container, without a
leading '/'), and interface when the path carries a `[name=...]` key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from pygnmi.spec.v080 import gnmi_pb2 as pb

from oss.events import Event, Value, now_ns

EVENT_UPDATE = "gnmi.update"
EVENT_DELETE = "gnmi.delete"
_PATH_CACHE_LIMIT = 100_000  # learned paths per session; the cache starts over past this


def _view_types() -> Any:
    """Define (once per process) the view of SubscribeResponse; returns its message class.

    Field numbers are gNMI's: SubscribeResponse{update=1, sync_response=3},
    Notification{timestamp=1, prefix=2, update=4, delete=5}, Update{path=1, val=3}. Fields left
    out (alias, atomic, the deprecated `value`, duplicates, extensions) are skipped as unknown.
    """
    pool = descriptor_pool.Default()
    name = "oss.gnmi_view.ResponseView"
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
    except KeyError:
        pass  # not defined yet in this process
    field = descriptor_pb2.FieldDescriptorProto
    optional, repeated = field.LABEL_OPTIONAL, field.LABEL_REPEATED
    file = descriptor_pb2.FileDescriptorProto(
        name="oss/gnmi_view.proto",
        package="oss.gnmi_view",
        syntax="proto3",
        dependency=[pb.DESCRIPTOR.name],
    )
    update = file.message_type.add(name="UpdateView")
    update.field.add(name="path", number=1, type=field.TYPE_BYTES, label=optional)
    update.field.add(
        name="val", number=3, type=field.TYPE_MESSAGE, type_name=".gnmi.TypedValue", label=optional
    )
    notification = file.message_type.add(name="NotificationView")
    notification.field.add(name="timestamp", number=1, type=field.TYPE_INT64, label=optional)
    notification.field.add(name="prefix", number=2, type=field.TYPE_BYTES, label=optional)
    notification.field.add(
        name="update",
        number=4,
        type=field.TYPE_MESSAGE,
        type_name=".oss.gnmi_view.UpdateView",
        label=repeated,
    )
    notification.field.add(name="delete", number=5, type=field.TYPE_BYTES, label=repeated)
    response = file.message_type.add(name="ResponseView")
    response.field.add(
        name="update",
        number=1,
        type=field.TYPE_MESSAGE,
        type_name=".oss.gnmi_view.NotificationView",
        label=optional,
    )
    response.field.add(name="sync_response", number=3, type=field.TYPE_BOOL, label=optional)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


ResponseView = _view_types()


# --- values -------------------------------------------------------------------------------------

_TYPED_SCALARS = frozenset(
    ("uint_val", "int_val", "string_val", "bool_val", "double_val", "float_val", "ascii_val")
)


def scalar(val: Any) -> Value | dict[str, Value] | None:
    """A TypedValue as a Python scalar; a JSON container becomes {relative leaf path: scalar};
    None for no value or one this driver cannot read (`any_val`)."""
    kind = val.WhichOneof("value")
    if kind in _TYPED_SCALARS:
        value: Value = getattr(val, kind)
        return value
    if kind is None:
        return None
    if kind in ("json_ietf_val", "json_val"):
        decoded = json.loads(getattr(val, kind))
        if isinstance(decoded, dict | list):
            return dict(_flatten_json(decoded, ""))
        return _plain(decoded)
    if kind == "decimal_val":
        return float(val.decimal_val.digits) / float(10 ** int(val.decimal_val.precision))
    if kind == "leaflist_val":
        return ",".join(str(scalar(e)) for e in val.leaflist_val.element)
    if kind in ("bytes_val", "proto_bytes"):
        return bytes(getattr(val, kind)).hex()
    return None


def _plain(value: Any) -> Value:
    return value if isinstance(value, int | float | str | bool) else json.dumps(value)


def _flatten_json(value: Any, path: str) -> Iterable[tuple[str, Value]]:
    if isinstance(value, dict):
        for key, child in value.items():
            name = key.rpartition(":")[2]
            yield from _flatten_json(child, f"{path}/{name}" if path else name)
    elif isinstance(value, list):
        for entry in value:
            if isinstance(entry, dict) and "name" in entry:
                yield from _flatten_json(entry, f"{path}[name={entry['name']}]")
            else:
                yield path, _plain(entry)
    else:
        yield path, _plain(value)


# --- paths --------------------------------------------------------------------------------------


def path_text(elems: Iterable[Any]) -> str:
    return "/".join(e.name + "".join(f"[{k}={v}]" for k, v in sorted(e.key.items())) for e in elems)


def _interface(elems: Iterable[Any]) -> str | None:
    for elem in elems:
        name = elem.key.get("name")
        if name is not None:
            return str(name)
    return None


Where = tuple[str, str, Mapping[str, str]]  # (container path, leaf name, tags)


class EventMaker:
    """Turns notifications (`ResponseView(...).update`) into canonical events."""

    def __init__(self, device: str) -> None:
        self.device = device
        # prefix bytes -> (prefix elements, {path bytes -> Where})
        self._paths: dict[bytes, tuple[list[Any], dict[bytes, Where]]] = {}
        self._size = 0

    def _prefix(self, prefix_bytes: bytes) -> tuple[list[Any], dict[bytes, Where]]:
        entry = self._paths.get(prefix_bytes)
        if entry is None:
            if self._size >= _PATH_CACHE_LIMIT:
                self._paths.clear()
                self._size = 0
            elems = list(pb.Path.FromString(prefix_bytes).elem)
            entry = self._paths[prefix_bytes] = (elems, {})
        return entry

    def _learn(self, prefix: list[Any], path_bytes: bytes) -> Where:
        elems = [*prefix, *pb.Path.FromString(path_bytes).elem]
        container = path_text(elems[:-1])
        leaf = elems[-1].name if elems else ""
        self._size += 1
        return container, leaf, self._tags(container, _interface(elems))

    def events(self, notification: Any) -> list[Event]:
        timestamp = notification.timestamp or now_ns()
        prefix, known = self._prefix(notification.prefix)
        groups: dict[str, tuple[Mapping[str, str], dict[str, Value]]] = {}
        for update in notification.update:
            path_bytes = update.path
            where = known.get(path_bytes)
            if where is None:
                where = known[path_bytes] = self._learn(prefix, path_bytes)
            container, leaf, tags = where
            val = update.val
            kind = val.WhichOneof("value")
            value: Value
            if kind in _TYPED_SCALARS:
                value = getattr(val, kind)
            else:
                decoded = scalar(val)
                if decoded is None:
                    continue
                if isinstance(decoded, dict):
                    # A JSON subtree: the update's own path is the container.
                    subtree = f"{container}/{leaf}" if container else leaf
                    group = groups.get(subtree)
                    if group is None:
                        tree_tags = self._tags(subtree, tags.get("interface"))
                        group = groups[subtree] = (tree_tags, {})
                    group[1].update(decoded)
                    continue
                value = decoded
            group = groups.get(container)
            if group is None:
                group = groups[container] = (tags, {})
            group[1][leaf] = value
        out = [Event(EVENT_UPDATE, timestamp, tags, values) for tags, values in groups.values()]
        for deleted in notification.delete:
            elems = [*prefix, *pb.Path.FromString(deleted).elem]
            out.append(
                Event(EVENT_DELETE, timestamp, self._tags(path_text(elems), _interface(elems)))
            )
        return out

    def _tags(self, path: str, interface: str | None) -> Mapping[str, str]:
        # Shared by every event of the container: read-only, so no consumer can change another's.
        tags = {"device": self.device, "path": path}
        if interface is not None:
            tags["interface"] = interface
        return MappingProxyType(tags)
