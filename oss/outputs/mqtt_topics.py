"""Every MQTT topic the daemon publishes to, built here (segments made MQTT-safe: `/`, `+`,
`#` and NUL become `_`):

    <prefix>/alarms/<severity>/<device>/<alarm-id>   an open alarm's TMF642 JSON, retained
    <prefix>/events/<event>/<device>/<alarm-id>      an alarm's raised|changed|cleared
    <prefix>/orders/<order-id>                       a TMF622 order state change
    <prefix>/telemetry/<event-name>/<device>[/<interface>]   a collected event
"""

from __future__ import annotations

import re
from typing import NamedTuple

# X.733 / TMF642 perceived severities: the topics a retained message of an alarm can live at.
SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate", "cleared")

_UNSAFE = re.compile("[/+#\0]")


def topic_segment(value: object) -> str:
    """One topic level: MQTT separators and wildcards would change the topic's meaning."""
    text = str(value)
    return _UNSAFE.sub("_", text) or "_"


class AlarmTopics(NamedTuple):
    """The topics of one change of an alarm."""

    state: str  # its retained state, at its severity
    event: str  # the change: raised, changed or cleared
    retained: frozenset[str]  # every topic a retained state of it can live at (`state` too)


def alarm_topics(prefix: str, severity: str, event: str, device: str, alarm_id: str) -> AlarmTopics:
    """An alarm's topics, its device and id segments made once (a storm batch has hundreds)."""
    tail = f"{topic_segment(device)}/{topic_segment(alarm_id)}"
    state = f"{prefix}/alarms/{topic_segment(severity.lower())}/{tail}"
    every = [f"{prefix}/alarms/{s}/{tail}" for s in SEVERITIES]
    every.append(state)
    return AlarmTopics(state, f"{prefix}/events/{topic_segment(event)}/{tail}", frozenset(every))


def order_topic(prefix: str, order_id: str) -> str:
    return f"{prefix}/orders/{topic_segment(order_id)}"


def telemetry_topic(prefix: str, name: str, *objects: str) -> str:
    """`objects`: the device, then what on it (an interface), one level each."""
    levels = "/".join(topic_segment(o) for o in objects)
    return f"{prefix}/telemetry/{topic_segment(name)}/{levels}"
