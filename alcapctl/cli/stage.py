"""``stage``: fetch the inputs of this user's claimed runs (C -> S)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from alcapctl.cli.emit import emit_all, say
from alcapctl.cli.options import (
    AppContext,
    dry_run_option,
    emit_json,
    json_option,
    limit_options,
    locked_step,
    production_argument,
    store_options,
)
from alcapctl.errors import EXIT_FAILURE, EXIT_TEMPFAIL

if TYPE_CHECKING:
    from alcapctl.steps.context import StepContext


@click.command()
@production_argument
@limit_options
@dry_run_option
@json_option
@store_options
@locked_step
def stage(app: AppContext, ctx: StepContext, dry_run: bool, as_json: bool) -> None:
    """Fetch inputs of this user's claimed runs until nprep are ready: C -> S.

    Raw files come from the archive URL (ftp:// with ~/.netrc credentials, or file://),
    recalled from tape first when a recall command is set, checked for size and adler32,
    into the staging directory.  A rootana production checks its base production's trees.
    Nothing is fetched while the data file system is above spacelim, and claimed runs
    beyond those this user could stage go back to N for others.  A failed attempt leaves
    its run claimed for another try; exits 1 if a run failed for good (X at
    max_attempts), 75 if the archive could not be reached.

    \b
    Examples:
      alcapctl stage productions/alcapana_v4.toml
      alcapctl stage productions/alcapana_v4.toml --nprep 10 --dry-run --json
    """
    from alcapctl.steps.stage import stage as stage_inputs

    if sys.stdout.isatty() and not as_json:
        from alcapctl.display import TransferBars

        with TransferBars() as bars:
            result = stage_inputs(ctx, dry_run=dry_run, progress=bars)
    else:
        from alcapctl.archive.progress import LogProgress

        result = stage_inputs(ctx, dry_run=dry_run, progress=LogProgress())
    if as_json:
        emit_json({"production": ctx.record.name, **result.to_dict()})
    else:
        emit_all(result.events)
        if result.waiting_for_space:
            used = "unknown" if result.space_percent is None else f"{result.space_percent}%"
            limit = f"spacelim {ctx.limits.spacelim:g}%"
            say(f"Waiting for space: data file system use {used}, {limit}", change=False)
        elif not (result.staged or result.failed or result.unavailable):
            say("No runs to stage", change=False)
    if result.exhausted:
        raise click.exceptions.Exit(EXIT_FAILURE)
    if result.unavailable:
        raise click.exceptions.Exit(EXIT_TEMPFAIL)
