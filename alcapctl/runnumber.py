"""Run numbers: what the database can hold, and the click type of ``--run N`` options.

Kept apart from the run-list reader so that the CLI's modules import it without SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

import click

__all__ = ["MAX_RUN", "RunNumber"]

MAX_RUN = 2**63 - 1  # the database's INTEGER is 64 bits


class RunNumber(click.ParamType):  # type: ignore[type-arg, unused-ignore]
    """A run number on the command line: an integer from 0 to ``MAX_RUN``."""

    name = "run"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            run = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a run number", param, ctx)
        if not 0 <= run <= MAX_RUN:
            self.fail(f"{run} is not a run number (0 to {MAX_RUN})", param, ctx)
        return run
