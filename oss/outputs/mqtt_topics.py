"""Every MQTT topic the daemon publishes to, built here (segments made MQTT-safe: `/`, `+`,
`#` and NUL become `_`):

    <prefix>/alarms/<severity>/<device>/<alarm-id>   an open alarm's TMF642 JSON, retained
    <prefix>/events/<event>/<device>/<alarm-id>      an alarm's raised|changed|cleared
    <prefix>/orders/<order-id>                       a TMF622 order state change
    <prefix>/telemetry/<event-name>/<device>[/<interface>]   a collected event
"""

from __future__ import annotations

import re

# X.733 / TMF642 perceived severities: the topics a retained message of an alarm can live at.
SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate", "cleared")

_UNSAFE = re.compile("[/+#\0]")


def topic_segment(value: object) -> str:
    """One topic level: MQTT separators and wildcards would change the topic's meaning."""
    text = str(value)
    return _UNSAFE.sub("_", text) or "_"


def alarm_state_topic(prefix: str, severity: str, device: str, alarm_id: str) -> str:
    return f"{prefix}/alarms/{topic_segment(severity.lower())}/{_alarm_tail(device, alarm_id)}"


def alarm_event_topic(prefix: str, event: str, device: str, alarm_id: str) -> str:
    return f"{prefix}/events/{topic_segment(event)}/{_alarm_tail(device, alarm_id)}"


def alarm_state_topics(prefix: str, device: str, alarm_id: str) -> frozenset[str]:
    """Every topic a retained state of this alarm can live at (one per severity)."""
    tail = _alarm_tail(device, alarm_id)
    return frozenset(f"{prefix}/alarms/{s}/{tail}" for s in SEVERITIES)


def order_topic(prefix: str, order_id: str) -> str:
    return f"{prefix}/orders/{topic_segment(order_id)}"


def telemetry_topic(prefix: str, name: str, *objects: str) -> str:
    """`objects`: the device, then what on it (an interface), one level each."""
    levels = "/".join(topic_segment(o) for o in objects)
    return f"{prefix}/telemetry/{topic_segment(name)}/{levels}"


def _alarm_tail(device: str, alarm_id: str) -> str:
    return f"{topic_segment(device)}/{topic_segment(alarm_id)}"
