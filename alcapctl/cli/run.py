"""``run``, ``abort`` and ``recover``: driving a production, and cleaning up after one."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from alcapctl.cli.emit import emit, emit_all, say
from alcapctl.cli.options import (
    AppContext,
    dataset_option,
    emit_json,
    json_option,
    limit_options,
    locked_step,
    production_argument,
    store_options,
)
from alcapctl.runnumber import RunNumber
from alcapctl.states import ACTIVE, RunState

if TYPE_CHECKING:
    from alcapctl.steps.context import StepContext
    from alcapctl.steps.run import RunSummary


@click.command()
@production_argument
@dataset_option
@click.option("--once", is_flag=True, help="One cycle (reap, claim, stage, submit), then exit.")
@click.option(
    "--display", is_flag=True, help="A live dashboard (log lines when stdout is no terminal)."
)
@click.option(
    "--keep-jobs", is_flag=True, help="On Ctrl-C, stop but leave jobs running for a later reap."
)
@limit_options
@json_option
@store_options
@locked_step
def run(
    app: AppContext,
    ctx: StepContext,
    datasets: tuple[str, ...],
    once: bool,
    display: bool,
    keep_jobs: bool,
    as_json: bool,
) -> None:
    """Run a production: reap, claim, stage and submit every PAUSE seconds until done.

    Ends when every selected run is F or X: exit 0, or 1 if any run failed for good.
    A transient fault (scheduler, archive, database lock, disk full) changes no run: the
    step it blocks backs off while the others go on; with --once it exits 75.  A
    configuration fault found mid-run (the archive refusing the login three times) drains:
    no new claims or stagings, running jobs reaped, exit 2.  Ctrl-C, SIGTERM, SIGHUP or an
    unexpected error cancels this user's jobs of the production, returns its unfinished
    runs to N and deletes staged and partial files, as the 2014 script did (exit 130,
    143, 129, or 1); finished runs are never touched.

    \b
    Examples:
      alcapctl run productions/rootana_v8.toml
      alcapctl run productions/alcapana_v4.toml --dataset SiR2 --nproc 50 --display
      alcapctl run productions/alcapana_v4.toml --once     # from cron
    """
    from alcapctl.batch import get_backend
    from alcapctl.jobenv import refuse_or_warn
    from alcapctl.steps.run import run_production

    refuse_or_warn(app.settings)
    backend = get_backend(ctx.settings.backend, ctx.workdir)
    if display and sys.stdout.isatty():
        from alcapctl.display import LiveDashboard

        with LiveDashboard() as board:
            summary = run_production(
                ctx,
                backend,
                once=once,
                only_datasets=datasets,
                keep_jobs=keep_jobs,
                observer=board,
                progress=board,
            )
    else:
        summary = run_production(
            ctx,
            backend,
            once=once,
            only_datasets=datasets,
            keep_jobs=keep_jobs,
            emit=emit,
        )
    totals = {s.value: n for s, n in summary.totals.items()}
    if as_json:
        emit_json(
            {
                "production": ctx.record.name,
                "cycles": summary.cycles,
                "finished": summary.finished,
                "failed_attempts": summary.failed,
                "totals": totals,
                "failed_runs": summary.failed_runs,
                "interrupted": summary.interrupted,
            }
        )
    else:
        _say_summary(ctx.record.name, summary, once)
    raise click.exceptions.Exit(summary.exit_code)


def _say_summary(name: str, summary: RunSummary, once: bool) -> None:
    """The call's totals (a change only if a run finished or failed in it), and the runs
    that failed for good: after a whole run, or once, in the call whose runs ended last."""
    totals = {s.value: n for s, n in summary.totals.items()}
    moved = bool(summary.finished or summary.failed)
    state = "interrupted" if summary.interrupted else ("cycle done" if once else "done")
    say(f"{name} {state}: {totals}", change=moved or bool(summary.interrupted))
    ended = not any(summary.totals.get(s) for s in (RunState.NEW, *ACTIVE))
    if summary.failed_runs and (not once or (moved and ended)):
        say(
            f"Failed runs: {summary.failed_runs} (alcapctl status shows why)",
            runs=summary.failed_runs,
        )


@click.command()
@production_argument
@click.option("--run", "runs", type=RunNumber(), multiple=True, help="Only this run (repeatable).")
@click.option("--user", help="Abort another user's runs (any host) instead of your own.")
@json_option
@store_options
@locked_step
def abort(
    app: AppContext, ctx: StepContext, runs: tuple[int, ...], user: str | None, as_json: bool
) -> None:
    """Cancel your jobs of a production, return your unfinished runs to N, clean up.

    The same as Ctrl-C on `run`, as a step: for cron, or for cleaning up after a process
    that died.  Finished runs and their files are never touched.

    \b
    Examples:
      alcapctl abort productions/rootana_v8.toml
      alcapctl abort productions/rootana_v8.toml --run 2091 --run 2092
      alcapctl abort productions/rootana_v8.toml --user quirk_j
    """
    from alcapctl.batch import get_backend
    from alcapctl.steps.abort import abort as abort_runs

    backend = get_backend(ctx.settings.backend, ctx.workdir)
    result = abort_runs(ctx, backend, runs=runs or None, user=user)
    if not as_json:
        emit_all(result.events)
    if as_json:
        emit_json(
            {
                "production": ctx.record.name,
                "cancelled": result.cancelled,
                "aborted": result.aborted,
                "removed": result.removed,
                "kept": result.kept,
                "finished": result.finished,
                "kept_running": result.kept_running,
            }
        )
    elif not result.aborted and not result.cancelled:
        say("Nothing to abort", change=False)
    if result.kept_running:
        raise click.exceptions.Exit(1)


@click.command()
@production_argument
@click.option("--lease", type=click.FloatRange(min=0), help="Seconds (default: limits.lease).")
@json_option
@store_options
@locked_step
def recover(app: AppContext, ctx: StepContext, lease: float | None, as_json: bool) -> None:
    """Return runs whose claim lease expired (a dead machine, a killed cron job) to N.

    Runs in C or S whose holder has not renewed its lease go back to N and their staged
    inputs are deleted; R runs are left to reap, which polls their job. `claim` does the
    same by itself before claiming.

    \b
    Example:
      alcapctl recover productions/rootana_v8.toml --lease 600
    """
    from alcapctl.steps.recover import recover as recover_runs

    released = recover_runs(ctx, lease)
    if as_json:
        emit_json({"production": ctx.record.name, "released": [r.run for r in released]})
        return
    for run in released:
        say(f"Released run: {run.run} (held by {run.user}@{run.host})", run=run.run)
    if not released:
        say("No stale claims", change=False)


@click.command()
@production_argument
@click.option(
    "--abort", "full_abort", is_flag=True, help="Make it abort (as Ctrl-C) instead of leaving jobs."
)
@store_options
def stop(app: AppContext, full_abort: bool) -> None:
    """Ask your running `run` of a production to end its loop within one cycle.

    Its jobs keep running for a later reap or run (as --keep-jobs); with --abort it does
    the full abort instead.  Exits 1 if no alcapctl of yours works on the production here.

    \b
    Examples:
      alcapctl stop productions/rootana_v8.toml
      alcapctl stop productions/rootana_v8.toml --abort
    """
    from alcapctl.steplock import request_stop

    ctx = app.step_context()
    holder = request_stop(ctx.workdir, ctx.settings.user, abort=full_abort)
    if holder is None:
        say(f"No alcapctl of yours is working on {ctx.record.name} here", level="error")
        raise click.exceptions.Exit(1)
    say(f"Asked to {'abort' if full_abort else 'stop'}: {holder}")
