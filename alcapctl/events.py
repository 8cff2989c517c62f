"""What a step did, as values: steps return events, the command line decides how to show them.

A step never prints.  It returns its events with its result, and the caller emits them
once the transaction that did the work has committed, so that no line is ever shown for
work that was rolled back.  ``change=False`` marks lines that say nothing happened ("No
runs to stage"), which a quiet mode may drop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Emit", "Event"]


@dataclass(frozen=True)
class Event:
    text: str
    level: str = "info"
    change: bool = True
    fields: Mapping[str, Any] = field(default_factory=dict)  # run, reason, job_id, attempt...


Emit = Callable[[Event], None]
