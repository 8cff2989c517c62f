"""Translating scheduler-native values: state codes to JobState, wall times to seconds."""

from __future__ import annotations

import re
from collections.abc import Mapping

import structlog

from alcapctl.batch.base import JobState
from alcapctl.errors import ConfigError

__all__ = ["hms", "lookup_state", "walltime_seconds"]

log = structlog.get_logger("alcapctl.batch")

_HMS = re.compile(r"(?:(\d+)-)?(\d+):(\d{1,2}):(\d{1,2})")


def lookup_state(states: Mapping[str, JobState], native: str, scheduler: str) -> JobState:
    """Our state for a native code; a code we do not know is UNKNOWN (still in flight)."""
    state = states.get(native)
    if state is None:
        log.warning("unknown native job state", scheduler=scheduler, state=native)
        return JobState.UNKNOWN
    return state


def walltime_seconds(text: str) -> int:
    """``[job.resources] time`` in seconds: minutes ("90") or [D-]HH:MM:SS ("1-02:00:00")."""
    text = text.strip()
    if text.isdigit():
        return int(text) * 60
    match = _HMS.fullmatch(text)
    if match is None:
        raise ConfigError(f"job.resources.time: {text!r} is neither minutes nor HH:MM:SS")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def hms(seconds: int) -> str:
    """Seconds as H:MM:SS, the form Grid Engine reads (a bare number would be seconds)."""
    minutes, secs = divmod(seconds, 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
