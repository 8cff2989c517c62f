"""``init``, ``claim``, ``status`` and ``check``: registering and inspecting a production."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from alcapctl.cli.emit import emit_all, say
from alcapctl.cli.options import (
    AppContext,
    dataset_option,
    dry_run_option,
    emit_json,
    json_option,
    locked_step,
    production_argument,
    productions_argument,
    store_options,
)

if TYPE_CHECKING:
    from alcapctl.steps.context import StepContext
    from alcapctl.steps.status import ProductionStatus


@click.command()
@production_argument
@json_option
@store_options
@locked_step(registering=True)
def init(app: AppContext, as_json: bool) -> None:
    """Register a production and give each of its runs an N row.

    The version is the TOML's, or the highest of its type plus one.  A rootana production
    takes only the runs finished in its base alcapana production.  Running init again with
    the same file changes nothing but adding runs imported since; a file that contradicts
    the database (same version, another tag, other datasets or quality) is refused, and so
    is a selection that matches no run of the database (exit 2, nothing written).

    \b
    Example:
      alcapctl init productions/rootana_v8.toml
    """
    from alcapctl.jobenv import refuse_or_warn
    from alcapctl.steps.outputs import check_outputs
    from alcapctl.store.productions import EmptySelection

    prod = app.settings.production
    assert prod is not None
    refuse_or_warn(app.settings)
    check_outputs(app.settings, app.store)
    try:
        result = app.store.init(prod)
    except EmptySelection:
        raise EmptySelection(prod, app.store.location) from None
    record = result.record
    if as_json:
        emit_json({"production": record.name, "created": result.created, "added": result.added})
        return
    if result.created:
        say(f"INFO: Starting new production, version {record.version}", production=record.name)
    else:
        say(
            f"INFO: Production {record.name} ({record.software}) already registered",
            change=False,
            production=record.name,
        )
    say(f"{record.name}: {result.added} runs added", change=result.added > 0)


@click.command()
@production_argument
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=0),
    help="Runs to claim (default: fill nproc + nprep, once half of nprep are missing).",
)
@dataset_option
@dry_run_option
@json_option
@store_options
@locked_step
def claim(
    app: AppContext,
    ctx: StepContext,
    count: int | None,
    datasets: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
) -> None:
    """Claim unclaimed runs for this user, atomically: N -> C.

    Claims that nobody renewed within the lease (a dead machine, a killed cron job) are
    released first.  User and host are recorded ($ALCAPCTL_USER overrides the login name).

    \b
    Examples:
      alcapctl claim productions/rootana_v8.toml
      alcapctl claim productions/rootana_v8.toml -n 5 --dataset SiR2 --dry-run
    """
    from alcapctl.steps.claim import claim as claim_runs
    from alcapctl.steps.claim import release_stale

    if not dry_run:
        release_stale(ctx)
    result = claim_runs(ctx, count, datasets, dry_run=dry_run)
    claimed = result.claimed
    if as_json:
        emit_json({"production": ctx.record.name, "claimed": claimed, "dry_run": dry_run})
        return
    emit_all(result.events)
    if not claimed:
        say("No runs to claim", change=False)


class _WatchCommand(click.Command):
    """``--watch`` takes an optional SECONDS: a next word that is not a number (the TOML)
    is left to be the argument, so ``--watch PROD.toml`` and ``--watch 5 PROD.toml`` work."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--":
                break
            if arg == "--watch" and not (i + 1 < len(args) and _is_number(args[i + 1])):
                args[i] = f"--watch={_WATCH_DEFAULT}"
        return super().parse_args(ctx, args)


_WATCH_DEFAULT = 2.0


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@click.command(cls=_WatchCommand)
@productions_argument
@click.option(
    "--watch",
    type=click.FloatRange(min=0.1),
    metavar="[SECONDS]",
    help=f"Keep showing the live view of run --display, refreshed every SECONDS (default "
    f"{_WATCH_DEFAULT:g}), until Ctrl-C.",
)
@click.option("--failed", "detail", is_flag=True, help="One line per failed run and attempt.")
@json_option
@store_options
def status(
    app: AppContext, all_productions: bool, watch: float | None, detail: bool, as_json: bool
) -> None:
    """Per production: runs per dataset and state, throughput, ETA, failures by reason.

    Throughput counts the runs finished in the last hour (or since the production
    started); the ETA is what is left at that pace.  Failures with one reason are shown
    once, with their runs and elog paths; --failed lists every failed run and attempt.
    When stdout is not a terminal, every row is one tab-separated line for grep and awk
    (see README, "Status"):

    \b
      production NAME TAG TOTAL N C S R F X RUNS_PER_HOUR ETA_SECONDS
      dataset    NAME DATASET TOTAL N C S R F X
      failure    NAME X|retried RUNS RUN,... ELOG,... REASON
      failed     NAME RUN ATTEMPTS USER ELOG ERROR          (--failed)
      attempt    NAME RUN ATTEMPT STEP AT EXIT_CODE ELOG REASON  (--failed)

    \b
    Examples:
      alcapctl status productions/rootana_v8.toml
      alcapctl status productions/rootana_v8.toml --failed
      alcapctl status --watch 5 productions/rootana_v8.toml
      alcapctl status --all | awk -F'\\t' '$1 == "production" {print $2, $9}'
      alcapctl status --all --json
    """
    if watch is not None:
        _watch(app, watch)
        return
    reports = _reports(app, all_productions)
    if as_json:
        single = app.production_file is not None and not all_productions
        emit_json(reports[0].to_dict() if single else [r.to_dict() for r in reports])
        return
    if not reports:
        say(f"No productions in {app.store.location}", change=False)
    elif sys.stdout.isatty():
        from alcapctl.display import render_status

        for report in reports:
            render_status(report, detail=detail)
    else:
        from alcapctl.status_lines import status_lines

        for report in reports:
            for line in status_lines(report, detail=detail):
                click.echo(line)


def _reports(app: AppContext, all_productions: bool) -> list[ProductionStatus]:
    """The status of the TOML's production (elog paths from its templates), or of all."""
    from alcapctl.steps.status import production_status

    store = app.store
    if app.production_file is not None and not all_productions:
        ctx = app.step_context()
        return [production_status(store, ctx.record, elog_of=_elog_of(ctx))]
    records = store.productions()
    for record in records:
        store.ensure(record)
    return [production_status(store, record) for record in records]


def _elog_of(ctx: StepContext) -> Callable[[int], str | None]:
    def elog(run: int) -> str | None:
        path = ctx.output_paths(run).get("elog")
        return str(path) if path else None

    return elog


@click.command()
@production_argument
@json_option
@store_options
def check(app: AppContext, as_json: bool) -> None:
    """Validate a production TOML and show what would happen; changes nothing.

    Prints the resolved settings, the output paths of one sample run, and the runs
    that would be registered or claimed.  Exits 1 when the selection (datasets,
    quality) matches no run of the database.

    \b
    Example:
      alcapctl check productions/rootana_v8.toml
    """
    from alcapctl.steps.check import check_production

    report = check_production(app.settings, app.store)
    if as_json:
        emit_json(report)
    else:
        from alcapctl.display import render_check

        render_check(report)
    if not report["matches"]:
        from alcapctl.errors import AlcapError
        from alcapctl.store.productions import EmptySelection

        assert app.settings.production is not None
        raise AlcapError(str(EmptySelection(app.settings.production, app.store.location)))


def _watch(app: AppContext, seconds: float) -> None:
    """The live dashboard on a terminal, fed from the database; elsewhere one
    ``production`` line (see status_lines) per refresh, after the time."""
    import time

    from alcapctl.display import LiveDashboard
    from alcapctl.status_lines import status_lines
    from alcapctl.steps.status import production_status

    if app.production_file is None:
        raise click.UsageError("--watch needs a production: alcapctl status --watch PROD.toml")
    ctx = app.step_context()
    elog_of = _elog_of(ctx)
    board = LiveDashboard()
    try:
        if not board.console.is_terminal:
            while True:
                report = production_status(ctx.store, ctx.record, elog_of=elog_of)
                click.echo(f"{time.strftime('%H:%M:%S')}\t{next(status_lines(report))}")
                time.sleep(seconds)
        with board:
            while True:
                board.show(production_status(ctx.store, ctx.record, elog_of=elog_of))
                time.sleep(seconds)
    except KeyboardInterrupt:
        return
