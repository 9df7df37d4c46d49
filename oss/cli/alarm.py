"""`oss alarm list|show|ack|clear|watch`: the TMF642 alarm resource from the command line.

`watch` follows the daemon's server-sent-events stream and prints each alarm change as it
happens (`-o json`: one JSON document per line, for scripts).
"""

import json
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from oss.cli.client import ApiClient, ClientError
from oss.cli.main import app, emit, get_context
from oss.cli.output import Format, console, table, text

BASE = "/tmf-api/alarm/v4/alarm"
COLUMNS = ["id", "severity", "state", "ack", "count", "parent", "root", "type", "object", "problem"]
# At 80 columns the free text wraps; severity, state and ids are always whole.
WHOLE = {"id", "severity", "state", "ack", "count", "parent", "root"}
# The stream sends a keepalive every 15 s: a minute of silence means the daemon is gone.
STREAM_READ_TIMEOUT_S = 60.0

alarm_app = typer.Typer(help="Alarms (TMF642): list, inspect, acknowledge, clear, watch.")
app.add_typer(alarm_app, name="alarm")


def row(doc: dict[str, Any]) -> dict[str, Any]:
    """One alarm as a table row."""
    parents = doc.get("parentAlarm") or []
    return {
        "id": doc.get("id"),
        "severity": doc.get("perceivedSeverity"),
        "state": doc.get("state"),
        "ack": "yes" if doc.get("ackState") == "acknowledged" else "no",
        "type": doc.get("alarmedObjectType"),
        "object": (doc.get("alarmedObject") or {}).get("id"),
        "problem": doc.get("specificProblem"),
        "count": doc.get("count"),
        "parent": parents[0]["id"] if parents else None,
        "root": "yes" if doc.get("isRootCause") else "no",
    }


@alarm_app.command("list")
def list_alarms(
    ctx: typer.Context,
    severity: Annotated[str | None, typer.Option(help="perceivedSeverity")] = None,
    state: Annotated[str | None, typer.Option(help="raised, updated or cleared")] = None,
    ack_state: Annotated[str | None, typer.Option("--ack-state")] = None,
    alarmed_object: Annotated[str | None, typer.Option("--object", help="r1, r1:eth1, 3")] = None,
    object_type: Annotated[str | None, typer.Option("--type", help="device, interface...")] = None,
    root: Annotated[bool, typer.Option("--root", help="root causes only")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    params = {
        "perceivedSeverity": severity,
        "state": state,
        "ackState": ack_state,
        "alarmedObject.id": alarmed_object,
        "alarmedObjectType": object_type,
        "isRootCause": "true" if root else None,
        "limit": limit,
    }
    with get_context(ctx).client() as api:
        docs: list[dict[str, Any]] = api.get(BASE, **params)
    if get_context(ctx).output is Format.JSON:
        emit(ctx, docs)
    else:
        table([row(d) for d in docs], COLUMNS, title="alarms", whole=WHOLE)


@alarm_app.command("show")
def show_alarm(ctx: typer.Context, alarm_id: int) -> None:
    with get_context(ctx).client() as api:
        emit(ctx, api.get(f"{BASE}/{alarm_id}"), title=f"alarm {alarm_id}")


@alarm_app.command("ack")
def ack_alarm(ctx: typer.Context, alarm_id: int) -> None:
    """Acknowledge an alarm (as the token's user)."""
    with get_context(ctx).client() as api:
        emit(ctx, api.patch(f"{BASE}/{alarm_id}", {"ackState": "acknowledged"}))


@alarm_app.command("clear")
def clear_alarm(ctx: typer.Context, alarm_id: int) -> None:
    """Clear an alarm and the alarms correlated under it."""
    with get_context(ctx).client() as api:
        emit(ctx, api.patch(f"{BASE}/{alarm_id}", {"state": "cleared"}))


@alarm_app.command("watch")
def watch(
    ctx: typer.Context,
    count: Annotated[int | None, typer.Option(min=1, help="stop after this many changes")] = None,
) -> None:
    """Print alarm changes live until interrupted (or after --count changes)."""
    c = get_context(ctx)
    out = console(soft_wrap=True)
    seen = 0
    try:
        for event, doc in stream(c.url, c.token):
            if c.output is Format.JSON:
                sys.stdout.write(json.dumps({"event": event, "alarm": doc}) + "\n")
                sys.stdout.flush()
            else:
                r = row(doc)
                out.print(
                    text(
                        f"{doc.get('alarmChangedTime', '')} {event:<8} #{r['id']} "
                        f"{r['severity']:<13} {r['type']} {r['object']}: {r['problem']}"
                        + (f" (under #{r['parent']})" if r["parent"] else "")
                        + (" [root cause]" if r["root"] == "yes" else "")
                    )
                )
            seen += 1
            if count is not None and seen >= count:
                return
    except KeyboardInterrupt:
        return


def stream(url: str, token: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, alarm) pairs from the daemon's alarm stream, as they come."""
    try:
        with ApiClient(url, token).stream(
            f"{BASE}/stream",
            accept="text/event-stream",
            connect_timeout=10.0,
            read_timeout=STREAM_READ_TIMEOUT_S,
        ) as response:
            if response.status_code >= 400:
                raise ClientError(f"the alarm stream refused: HTTP {response.status_code}")
            yield from parse_events(response.iter_lines())
    except OSError as exc:  # the daemon could not be reached or broke the stream
        raise ClientError(f"alarm stream from {url}: {exc}") from None


def parse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Server-sent events (event + data lines, a blank line ends one) to (event, alarm)."""
    event, data = "message", ""
    for line in lines:
        if not line:
            if event == "lost":
                raise ClientError("the daemon dropped this stream (too slow or stopping)")
            if data:
                yield event, json.loads(data)
            event, data = "message", ""
        elif line.startswith(":"):
            continue  # a comment: subscribed, keepalive
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
