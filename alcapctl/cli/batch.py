"""``submit``, ``reap`` and ``retry``: running jobs for a production's runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from alcapctl.cli.emit import emit_all, say
from alcapctl.cli.options import (
    AppContext,
    dry_run_option,
    emit_json,
    json_option,
    locked_step,
    production_argument,
    store_options,
)
from alcapctl.errors import EXIT_FAILURE, EXIT_TEMPFAIL
from alcapctl.runnumber import RunNumber
from alcapctl.states import RunState

if TYPE_CHECKING:
    from alcapctl.batch.base import Backend
    from alcapctl.steps.context import StepContext


def _backend(app: AppContext, ctx: StepContext) -> Backend:
    from alcapctl.batch import get_backend

    return get_backend(app.settings.backend, ctx.workdir)


@click.command()
@production_argument
@dry_run_option
@json_option
@store_options
@locked_step
def submit(app: AppContext, ctx: StepContext, dry_run: bool, as_json: bool) -> None:
    """Submit one job per staged run of this user: S -> R, at most nproc in flight.

    A submit interrupted after the scheduler accepted a job adopts that job the next
    time instead of submitting it again.  A run whose output already exists and is not
    this production's own earlier attempt is stopped (X) with the reason (exit 1).

    \b
    Examples:
      alcapctl submit productions/rootana_v8.toml
      alcapctl submit productions/rootana_v8.toml --dry-run
    """
    from alcapctl.steps.submit import submit as submit_runs

    result = submit_runs(ctx, _backend(app, ctx), dry_run=dry_run)
    if as_json:
        emit_json({"production": ctx.record.name, **result.to_dict()})
    else:
        emit_all(result.events)
        for run, job_id in result.adopted.items():
            say(f"Adopted run: {run} (job {job_id})", run=run, job_id=job_id)
        for run, reason in result.refused.items():
            say(f"Refused run: {run}: {reason}", run=run, reason=reason)
        if not (result.submitted or result.adopted or result.refused):
            say("No runs to submit", change=False)
    if result.refused:  # stopped for good (X)
        raise click.exceptions.Exit(EXIT_FAILURE)


@click.command()
@production_argument
@json_option
@store_options
@locked_step
def reap(app: AppContext, ctx: StepContext, as_json: bool) -> None:
    """Settle this user's jobs that ended: R -> F, or a failed attempt (S/C, X at the cap).

    One scheduler query per call, none for jobs whose exit file is there.  A job that
    left the queue without an exit code counts as lost only after limits.grace seconds.
    Exits 1 if a run failed for good (X), 75 if the scheduler could not be asked.

    \b
    Example:
      alcapctl reap productions/rootana_v8.toml --json
    """
    from alcapctl.steps.reap import reap as reap_runs

    result = reap_runs(ctx, _backend(app, ctx))
    if as_json:
        emit_json({"production": ctx.record.name, **result.to_dict()})
    else:
        emit_all(result.events)
        say(f"{result.running} jobs still running", change=False)
        if result.closed:
            say(f"Production {ctx.record.name} finished")
    if RunState.FAILED.value in result.failed.values():
        raise click.exceptions.Exit(EXIT_FAILURE)
    if result.poll_error:
        raise click.exceptions.Exit(EXIT_TEMPFAIL)


@click.command()
@production_argument
@click.option(
    "--run", "runs", multiple=True, type=RunNumber(), metavar="N", help="A run (repeatable)."
)
@click.option("--failed", is_flag=True, help="Every run that failed for good (X).")
@json_option
@store_options
@locked_step
def retry(
    app: AppContext, ctx: StepContext, runs: tuple[int, ...], failed: bool, as_json: bool
) -> None:
    """Put failed runs (X), or named X or F runs, back to N with their attempts reset.

    \b
    Examples:
      alcapctl retry productions/rootana_v8.toml --failed
      alcapctl retry productions/rootana_v8.toml --run 2091 --run 2092
    """
    from alcapctl.steps.retry import retry as retry_runs

    done = retry_runs(ctx, runs, failed)
    if as_json:
        emit_json({"production": ctx.record.name, "reset": done})
        return
    for run in done:
        say(f"Reset run: {run}", run=run)
    if not done:
        say("No runs to retry", change=False)
