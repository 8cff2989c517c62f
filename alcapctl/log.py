"""One event stream: every message a command emits, for people on a terminal or for cron.

Every message is a structlog event.  A command's own events (a run claimed, a run
failed, nothing to do) carry ``change`` and go to stdout; diagnostics (a transfer's
progress, a lock wait), warnings and errors go to stderr.  On a terminal
(``--log-format console``) an event is its text, as the 2014 script printed it ("Claimed
run: 6008"); a diagnostic has its detail after it, and a problem reads ``alcapctl:
warning: ...``.  With ``--log-format json`` every line on stdout and stderr is one JSON
object with ``timestamp``, ``level`` and ``event``, plus ``production``, ``run``,
``reason``, ``job_id`` and ``attempt`` where they apply.  The production is bound once
per command (``AppContext.step_context``) and passed on by structlog's context variables.

``--quiet`` keeps only changes and problems: an info line passes only when it is marked
``change=True``; warnings and errors always pass.  When a command writes data on stdout
(``--json``), its events go to stderr instead.  No secret is ever rendered (keys naming a
password or token are masked).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["CONTEXT_KEYS", "configure_logging", "data_on_stdout"]

_SECRET_KEYS = ("password", "passwd", "secret", "token", "credential")
# Fields every event may carry; a readable line leaves them out (its text says them).
CONTEXT_KEYS = ("production", "run", "reason", "job_id", "attempt")
_HIDDEN = ("event", "timestamp", "level", "exception", *CONTEXT_KEYS)
_EVENT = "_event"


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_KEYS):
            event[key] = "***"
    return event


class _Events:
    """Tells a command's events (they carry ``change``) from diagnostics, and under
    ``--quiet`` drops the info lines that are not changes."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(
        self, _: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event[_EVENT] = "change" in event
        change = event.pop("change", False)
        if self.quiet and method in ("debug", "info") and not change:
            raise structlog.DropEvent
        return event


def _readable(method: str, event: MutableMapping[str, Any], is_event: bool) -> str:
    """An event's text as the 2014 script printed it (its fields are in it); a diagnostic's
    text with its detail after it, a problem reading ``alcapctl: warning: text``."""
    text = str(event.get("event", ""))
    exception = event.get("exception")
    extra = "" if is_event else ", ".join(f"{k}={v}" for k, v in event.items() if k not in _HIDDEN)
    line = f"{text} ({extra})" if extra else text
    if method not in ("debug", "info") and not is_event:
        line = "\n".join(f"alcapctl: {method}: {part}" for part in line.splitlines() or [""])
    return f"{line}\n{exception}" if exception else line


class _Router:
    """The last processor: renders the line and sends a command's event to stdout, every
    other line to stderr."""

    def __init__(self, fmt: str) -> None:
        self.json = structlog.processors.JSONRenderer(sort_keys=True) if fmt == "json" else None

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> tuple[tuple[str], dict[str, bool]]:
        is_event = bool(event.pop(_EVENT, False))
        line = (
            self.json(logger, method, event)
            if self.json is not None
            else _readable(method, event, is_event)
        )
        return (str(line),), {"stdout": is_event}


class _Streams:
    """Writes each line to the stream the router chose, looked up at each line (so that
    a test's captured streams are honoured); with data on stdout, everything to stderr."""

    def __init__(self, data_on_stdout: bool) -> None:
        self.data_on_stdout = data_on_stdout

    def msg(self, message: str, stdout: bool = False) -> None:
        stream = sys.stdout if stdout and not self.data_on_stdout else sys.stderr
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = error = critical = exception = msg


def configure_logging(fmt: str = "console", level: str = "info", quiet: bool = False) -> None:
    """Configure structlog once per command; safe to call again (tests do).  The context
    bound by an earlier command of this process is cleared."""
    structlog.contextvars.clear_contextvars()
    streams = _Streams(data_on_stdout=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _Events(quiet),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            _Router(fmt),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=lambda *_: streams,
        cache_logger_on_first_use=False,
    )


def data_on_stdout() -> None:
    """This command writes data (``--json``) on stdout: its info events move to stderr."""
    streams = _Streams(data_on_stdout=True)
    structlog.configure(logger_factory=lambda *_: streams)
