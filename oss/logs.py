"""Logging set-up: readable lines for people, JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, Literal

# Attributes every LogRecord has; anything else was passed through `extra=` and is context.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = {
            k: v
            for k, v in vars(record).items()
            if k not in _STANDARD_ATTRS and not k.startswith("_")
        }
        if context:
            pairs = " ".join(f"{k}={v}" for k, v in context.items())
            head, sep, tail = line.partition("\n")
            line = f"{head} [{pairs}]{sep}{tail}"
        return line


CHATTY_LIBRARIES = ("alembic", "ncclient", "paramiko")


def configure_logging(fmt: Literal["text", "json"], level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn logs through its own loggers; route them through ours, keep access logs terse.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # These libraries narrate every step at INFO (alembic each migration plugin; ncclient and
    # paramiko every NETCONF message and SSH session): the daemon logs the outcome itself, and
    # their chatter buried its own lines (170 in a few minutes of `make run`).
    for chatty in CHATTY_LIBRARIES:
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
