"""How the command line shows a step's events: the one place to change for JSON or --quiet."""

from __future__ import annotations

from collections.abc import Iterable

import click

from alcapctl.events import Event

__all__ = ["emit", "emit_all"]


def emit(event: Event) -> None:
    click.echo(event.text)


def emit_all(events: Iterable[Event]) -> None:
    for event in events:
        emit(event)
