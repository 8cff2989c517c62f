"""How the command line shows events: each one a line of the one event stream (see log.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog

from alcapctl.events import Event

__all__ = ["emit", "emit_all", "say"]

_log = structlog.get_logger("alcapctl")


def emit(event: Event) -> None:
    getattr(_log, event.level)(event.text, change=event.change, **event.fields)


def say(text: str, *, change: bool = True, level: str = "info", **fields: Any) -> None:
    """One event of the command itself ("No runs to retry", change=False)."""
    emit(Event(text, level=level, change=change, fields=fields))


def emit_all(events: Iterable[Event]) -> None:
    for event in events:
        emit(event)
