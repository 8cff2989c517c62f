"""``stage``: fetch the inputs of this user's claimed runs (C -> S)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

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
from alcapctl.errors import EXIT_FAILURE

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
    Nothing is fetched while the data file system is above spacelim.  Exits 1 if a run's
    attempt failed (it stays claimed for another try, or becomes X at max_attempts).

    \b
    Examples:
      alcapctl stage productions/alcapana_v4.toml
      alcapctl stage productions/alcapana_v4.toml --nprep 10 --dry-run --json
    """
    from alcapctl.steps.stage import stage as stage_inputs

    if sys.stdout.isatty() and not as_json:
        from alcapctl.display import TransferBars

        with TransferBars() as bars:
            result = stage_inputs(ctx, dry_run=dry_run, report=bars.print, progress=bars)
    else:
        from alcapctl.archive.progress import LogProgress

        report = None if as_json else click.echo
        result = stage_inputs(ctx, dry_run=dry_run, report=report, progress=LogProgress())
    if as_json:
        emit_json({"production": ctx.record.name, **result.to_dict()})
    elif result.waiting_for_space:
        used = "unknown" if result.space_percent is None else f"{result.space_percent}%"
        click.echo(
            f"Waiting for space: data file system use {used}, spacelim {ctx.limits.spacelim:g}%"
        )
    elif not (result.staged or result.failed or result.unavailable):
        click.echo("No runs to stage")
    if result.failed or result.unavailable:
        click.get_current_context().exit(EXIT_FAILURE)
