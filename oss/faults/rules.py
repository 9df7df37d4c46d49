"""Canonical events -> alarm signals.

- "interface": an oper-status change (down while admin up raises, up or admin down clears).
  Polls repeat the status every cycle; only a change (or the first sight) makes a signal.
- "snmp.trap": what a trap means comes from the table of well-known notifications
  (`configs/notifications.yaml`, oss.faults.notifications): linkDown/linkUp raise and clear the
  same alarm as the polled status (one key; a linkDown of an interface shut on purpose clears,
  as the poll would), an `alarm` notification raises an alarm on the device that its
  counterpart clears (nsNotifyShutdown, cleared by coldStart/warmStart), an `event` raises
  nothing. A trap not in the table is kept as a generic event alarm keyed by its OID.
- "device.reachability": "device unreachable" raised on loss, cleared on recovery.
- "device.auth": a device refusing the collector's credentials raises one authentication
  alarm per protocol, cleared once they are accepted.
- "kpi.interface", "kpi.service": threshold crossing alarms (TCA) with hysteresis and a
  minimum duration, the thresholds being data (`Threshold`): a threshold applies to the KPIs
  that carry its metric (a service's `latency-ms`, from the active probes, is one), and its
  alarm is on the interface or the service; a service's is not service-affecting (a slow
  service is not down: the SLA's availability does not count it, its latency term does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from oss.events import KPI_INTERFACE, KPI_SERVICE, Event
from oss.faults.notifications import Notification, Notifications, load_notifications
from oss.faults.reducer import Signal
from oss.settings import Threshold

LINK_DOWN_PREFIX = "linkDown:"
UNREACHABLE_PREFIX = "unreachable:"
AUTH_EVENT = "device.auth"  # values {"ok": bool, "reason": str}, tags {"device", "protocol"}
_ADMIN_DOWN = (2, "down")  # ifAdminStatus down(2), as a trap's varbind or a named status


def interface_down_key(device: str, interface: str) -> str:
    return f"{LINK_DOWN_PREFIX}{device}:{interface}"


def unreachable_key(device: str) -> str:
    return f"{UNREACHABLE_PREFIX}{device}"


def auth_failure_key(device: str, protocol: str) -> str:
    return f"authFailure:{protocol}:{device}"


def is_interface_down(s: Signal) -> bool:
    return s.object_type == "interface" and s.reduction_key.startswith(LINK_DOWN_PREFIX)


def is_unreachable(s: Signal) -> bool:
    return s.object_type == "device" and s.reduction_key.startswith(UNREACHABLE_PREFIX)


@dataclass
class _Crossing:
    """Where one (object, metric) stands: inside, above for a while (`since_ns`), or raised."""

    state: Literal["inside", "pending", "raised"] = "inside"
    since_ns: int = 0


class ThresholdWatch:
    """Threshold crossing alarms for one kind of KPI event."""

    def __init__(self, thresholds: Iterable[Threshold]) -> None:
        self.thresholds = list(thresholds)
        self._crossings: dict[tuple[str, str], _Crossing] = {}

    def signals(self, obj: str, object_type: str, event: Event) -> list[Signal]:
        out: list[Signal] = []
        for t in self.thresholds:
            raw = event.values.get(t.metric)
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                continue
            signal = self._step(t, obj, object_type, float(raw), event.timestamp_ns)
            if signal is not None:
                out.append(signal)
        return out

    def _step(
        self, t: Threshold, obj: str, object_type: str, value: float, now_ns: int
    ) -> Signal | None:
        c = self._crossings.setdefault((obj, t.metric), _Crossing())
        if c.state == "raised":
            if value < t.clear_below:
                c.state = "inside"
                return self._signal("clear", t, obj, object_type, value, now_ns)
            return None
        if value <= t.raise_above:
            c.state = "inside"
            return None
        if c.state == "inside":
            c.state, c.since_ns = "pending", now_ns
        if now_ns - c.since_ns >= t.min_duration_s * 1e9:
            c.state = "raised"
            return self._signal("raise", t, obj, object_type, value, now_ns)
        return None

    @staticmethod
    def _signal(
        kind: Literal["raise", "clear"],
        t: Threshold,
        obj: str,
        object_type: str,
        value: float,
        now_ns: int,
    ) -> Signal:
        return Signal(
            kind=kind,
            reduction_key=f"tca:{t.metric}:{obj}",
            alarm_type="qualityOfServiceAlarm",
            severity=t.severity,
            probable_cause="thresholdCrossed",
            specific_problem=f"{t.metric} above {t.raise_above:g} on {obj}",
            object_type=object_type,
            object=obj,
            time_ns=now_ns,
            details={
                "metric": t.metric,
                "value": value,
                "raiseAbove": t.raise_above,
                "clearBelow": t.clear_below,
            },
        )


InterfaceNamer = Callable[[str, str], str | None]  # (device, ifindex) -> interface name


class Rules:
    """Turns canonical events into signals; keeps the little state that needs (last seen
    statuses, threshold crossings), so use one instance per event stream."""

    def __init__(
        self,
        thresholds: Iterable[Threshold | Mapping[str, Any]] = (),
        *,
        interface_name: InterfaceNamer | None = None,
        notifications: Notifications | None = None,
    ) -> None:
        self.tca = ThresholdWatch(
            t if isinstance(t, Threshold) else Threshold.of(t) for t in thresholds
        )
        self._interface_name = interface_name
        self.notifications = notifications if notifications is not None else load_notifications()
        self._oper: dict[tuple[str, str], bool] = {}  # (device, interface) -> is down
        self._reachable: dict[str, bool] = {}
        self._auth_ok: dict[tuple[str, str], bool] = {}  # (device, protocol) -> accepted

    def forget_device(self, device: str) -> None:
        """The device left the inventory: what was last seen of it is no news any more, so a
        device added again (under the same name) gets its alarms raised afresh."""
        self._oper = {key: down for key, down in self._oper.items() if key[0] != device}
        self._reachable.pop(device, None)
        self._auth_ok = {key: ok for key, ok in self._auth_ok.items() if key[0] != device}

    def signals(self, event: Event) -> list[Signal]:
        if event.name == KPI_SERVICE:
            service = event.tags.get("service")
            return self.tca.signals(service, "service", event) if service else []
        device = event.tags.get("device")
        if device is None:
            return []
        if event.name == "interface":
            return self._interface(device, event)
        if event.name == "snmp.trap":
            return self._trap(device, event)
        if event.name == "device.reachability":
            return self._reachability(device, event)
        if event.name == AUTH_EVENT:
            return self._auth(device, event)
        if event.name == KPI_INTERFACE:
            interface = event.tags.get("interface")
            if interface is None:
                return []
            return self.tca.signals(f"{device}:{interface}", "interface", event)
        return []

    # --- interface status ---------------------------------------------------------------

    def _interface(self, device: str, event: Event) -> list[Signal]:
        interface = event.tags.get("interface")
        oper = event.values.get("oper-status")
        if interface is None or not isinstance(oper, str):
            return []
        admin = event.values.get("admin-status")
        # An interface shut on purpose is down without a fault.
        down = oper == "down" and admin != "down"
        if oper not in ("up", "down"):
            return []
        return self._status(device, interface, down, event.timestamp_ns, source="poll")

    def _status(
        self, device: str, interface: str, down: bool, time_ns: int, *, source: str
    ) -> list[Signal]:
        key = (device, interface)
        if self._oper.get(key) == down:
            return []
        self._oper[key] = down
        return [_link_signal("raise" if down else "clear", device, interface, time_ns, source)]

    # --- traps ---------------------------------------------------------------------------

    def _trap(self, device: str, event: Event) -> list[Signal]:
        oid = event.tags.get("trap_oid", "")
        name = event.tags.get("trap", "unknown")
        known = self.notifications.by_oid(oid) or self.notifications.by_name(name)
        if known is None:
            return [_generic_trap(device, name, oid, event)]
        if known.kind in ("link-down", "link-up"):
            return self._link_trap(device, known, oid, event)
        signals = []
        for cleared in known.clears:
            counterpart = self.notifications.by_name(cleared)
            if counterpart is not None:  # the loader checked it is there
                signals.append(_notification_signal("clear", counterpart, device, event))
        if known.kind == "alarm":
            signals.append(_notification_signal("raise", known, device, event))
        return signals

    def _link_trap(self, device: str, known: Notification, oid: str, event: Event) -> list[Signal]:
        interface = self._trap_interface(device, event)
        if interface is None:
            return [_generic_trap(device, known.name, oid, event)]
        # As polling has it: an interface shut on purpose (ifAdminStatus down) is down without
        # a fault, and an alarm raised while it was up clears.
        down = known.kind == "link-down" and not _admin_down(event)
        self._oper[(device, interface)] = down  # a later poll saying the same is no news
        kind: Literal["raise", "clear"] = "raise" if down else "clear"
        return [_link_signal(kind, device, interface, event.timestamp_ns, "trap")]

    def _trap_interface(self, device: str, event: Event) -> str | None:
        index = event.tags.get("ifindex")
        if index is None:
            return None
        for column in ("ifName", "ifDescr"):
            named = event.values.get(f"{column}.{index}")
            if isinstance(named, str) and named:
                return named
        if self._interface_name is not None:
            named = self._interface_name(device, index)
            if named:
                return named
        return f"ifIndex.{index}"

    # --- reachability --------------------------------------------------------------------

    def _reachability(self, device: str, event: Event) -> list[Signal]:
        reachable = event.values.get("reachable")
        if not isinstance(reachable, bool) or self._reachable.get(device) == reachable:
            return []
        self._reachable[device] = reachable
        return [
            Signal(
                kind="clear" if reachable else "raise",
                reduction_key=unreachable_key(device),
                alarm_type="communicationsAlarm",
                severity="critical",
                probable_cause="communicationsSubsystemFailure",
                specific_problem=f"device {device} unreachable",
                object_type="device",
                object=device,
                time_ns=event.timestamp_ns,
            )
        ]

    # --- credentials ---------------------------------------------------------------------

    def _auth(self, device: str, event: Event) -> list[Signal]:
        ok = event.values.get("ok")
        protocol = event.tags.get("protocol", "unknown")
        key = (device, protocol)
        if not isinstance(ok, bool) or self._auth_ok.get(key) == ok:
            return []
        self._auth_ok[key] = ok
        reason = event.values.get("reason")
        return [
            Signal(
                kind="clear" if ok else "raise",
                reduction_key=auth_failure_key(device, protocol),
                alarm_type="securityServiceOrMechanismViolation",
                severity="major",
                probable_cause="authenticationFailure",
                specific_problem=f"device {device} refuses the {protocol} credentials",
                object_type="device",
                object=device,
                time_ns=event.timestamp_ns,
                details={
                    "protocol": protocol,
                    **({"reason": reason[:200]} if isinstance(reason, str) else {}),
                },
            )
        ]


def _admin_down(event: Event) -> bool:
    """Whether a link trap says its interface is administratively down (ifAdminStatus)."""
    index = event.tags.get("ifindex")
    return index is not None and event.values.get(f"ifAdminStatus.{index}") in _ADMIN_DOWN


def _notification_signal(
    kind: Literal["raise", "clear"], known: Notification, device: str, event: Event
) -> Signal:
    """The alarm of an `alarm` notification, one per device (repeats are counted)."""
    return Signal(
        kind=kind,
        reduction_key=f"{known.name}:{device}",
        alarm_type=known.alarm_type,
        severity=known.severity,
        probable_cause=known.probable_cause,
        specific_problem=known.problem,
        object_type="device",
        object=device,
        time_ns=event.timestamp_ns,
        details=_trap_details(event),
    )


def _link_signal(
    kind: Literal["raise", "clear"], device: str, interface: str, time_ns: int, source: str
) -> Signal:
    return Signal(
        kind=kind,
        reduction_key=interface_down_key(device, interface),
        alarm_type="communicationsAlarm",
        severity="major",
        probable_cause="lossOfSignal",
        specific_problem=f"interface {device}:{interface} down",
        object_type="interface",
        object=f"{device}:{interface}",
        time_ns=time_ns,
        details={"source": source},
    )


def _generic_trap(device: str, name: str, oid: str, event: Event) -> Signal:
    return Signal(
        kind="raise",
        reduction_key=f"trap:{device}:{oid or name}",
        alarm_type="communicationsAlarm",
        severity="indeterminate",
        probable_cause="unknown",
        specific_problem=f"SNMP trap {name}" + (f" ({oid})" if oid and oid != name else ""),
        object_type="device",
        object=device,
        time_ns=event.timestamp_ns,
        details=_trap_details(event),
    )


def _trap_details(event: Event) -> dict[str, Any]:
    details: dict[str, Any] = {
        k: event.tags[k] for k in ("trap", "trap_oid", "source") if k in event.tags
    }
    # A handful of varbinds is enough to see what it was; a trap may carry many.
    for key in sorted(event.values)[:8]:
        value = event.values[key]
        details[key] = value if isinstance(value, int | float | bool) else str(value)[:200]
    return details
