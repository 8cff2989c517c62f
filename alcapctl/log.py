"""One event stream: every message a command emits, for people on a terminal or for cron.

Every message is a structlog event.  A command's own events (a run claimed, a job
finished, nothing to do) carry ``change`` and go to stdout; diagnostics (a transfer's
progress, a lock wait) go to stderr, with warnings and errors.  On a terminal
(``--log-format console``) an event is its text, as the 2014 script printed it ("Claimed
run: 6008"), with any detail beyond the production and run context after it, and a
problem reads ``alcapctl: warning: ...``.  With ``--log-format json`` every line on
stdout and stderr is one JSON object with ``timestamp``, ``level`` and ``event``, plus
``production``, ``run``, ``reason``, ``job_id`` and ``attempt`` where they apply.  The
production is bound once per command and passed on by structlog's context variables.

``--quiet`` keeps only changes and problems: an info line passes only when it is marked
``change=True``; warnings and errors always pass.  When a command writes data on stdout
(``--json``), its events go to stderr instead.  No secret is ever rendered (keys naming a
password or token are masked).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

__all__ = ["CONTEXT_KEYS", "configure_logging", "data_on_stdout"]

_SECRET_KEYS = ("password", "passwd", "secret", "token", "credential")
# Fields every event may carry; a readable line leaves them out (its text says them).
CONTEXT_KEYS = ("production", "run", "reason", "job_id", "attempt")
_HIDDEN = ("event", "timestamp", "level", "exception", *CONTEXT_KEYS)
_STDOUT = "_stdout"


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_KEYS):
            event[key] = "***"
    return event


class _Events:
    """Marks a command's events (they carry ``change``) for stdout, and under ``--quiet``
    drops the info lines that are not changes.  Other lines (diagnostics) go to stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(
        self, _: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        is_event = "change" in event
        change = event.pop("change", False)
        if self.quiet and method in ("debug", "info") and not change:
            raise structlog.DropEvent
        event[_STDOUT] = is_event and method == "info"
        return event


def _readable(_: Any, method: str, event: MutableMapping[str, Any]) -> str:
    """``text`` (info) or ``alcapctl: warning: text`` (problems), then extra detail."""
    text = str(event.get("event", ""))
    exception = event.get("exception")
    extra = ", ".join(f"{k}={v}" for k, v in event.items() if k not in _HIDDEN)
    line = f"{text} ({extra})" if extra else text
    if method not in ("debug", "info"):
        line = f"alcapctl: {method}: {line}"
    return f"{line}\n{exception}" if exception else line


class _Router:
    """The last processor: renders the line and says which stream it goes to."""

    def __init__(self, render: Callable[[Any, str, MutableMapping[str, Any]], str]) -> None:
        self.render = render

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> tuple[tuple[str], dict[str, bool]]:
        stdout = bool(event.pop(_STDOUT, False))
        return (self.render(logger, method, event),), {"stdout": stdout}


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
    """Configure structlog once per command; safe to call again (tests do)."""
    render: Any = (
        structlog.processors.JSONRenderer(sort_keys=True) if fmt == "json" else _readable
    )
    streams = _Streams(data_on_stdout=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _Events(quiet),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            _Router(render),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=lambda *_: streams,
        cache_logger_on_first_use=False,
    )


def data_on_stdout() -> None:
    """This command writes data (``--json``) on stdout: its info events move to stderr."""
    streams = _Streams(data_on_stdout=True)
    structlog.configure(logger_factory=lambda *_: streams)
