"""``init``, ``claim``, ``status`` and ``check``: registering and inspecting a production."""

from __future__ import annotations

import click

from alcapctl.cli.options import (
    AppContext,
    dataset_option,
    dry_run_option,
    emit_json,
    json_option,
    production_argument,
    productions_argument,
    store_options,
)


@click.command()
@production_argument
@json_option
@store_options
def init(app: AppContext, as_json: bool) -> None:
    """Register a production and give each of its runs an N row.

    The version is the TOML's, or the highest of its type plus one.  A rootana production
    takes only the runs finished in its base alcapana production.  Running init again with
    the same file changes nothing but adding runs imported since; a file that contradicts
    the database (same version, another tag) is refused.

    \b
    Example:
      alcapctl init productions/rootana_v8.toml
    """
    from alcapctl.jobenv import refuse_or_warn
    from alcapctl.steps.outputs import check_outputs

    assert app.settings.production is not None
    refuse_or_warn(app.settings)
    check_outputs(app.settings, app.store)
    result = app.store.init(app.settings.production)
    record = result.record
    if as_json:
        emit_json({"production": record.name, "created": result.created, "added": result.added})
        return
    if result.created:
        click.echo(f"INFO: Starting new production, version {record.version}")
    else:
        click.echo(f"INFO: Production {record.name} ({record.software}) already registered")
    click.echo(f"{record.name}: {result.added} runs added")


@click.command()
@production_argument
@click.option(
    "-n", "count", type=click.IntRange(min=0), help="Runs to claim (default: fill nproc + nprep)."
)
@dataset_option
@dry_run_option
@json_option
@store_options
def claim(
    app: AppContext, count: int | None, datasets: tuple[str, ...], dry_run: bool, as_json: bool
) -> None:
    """Claim unclaimed runs for this user, atomically: N -> C.

    Claims that nobody renewed within the lease (a dead machine, a killed cron job) are
    released first.  User and host are recorded ($ALCAPCTL_USER overrides the login name).

    \b
    Examples:
      alcapctl claim productions/rootana_v8.toml
      alcapctl claim productions/rootana_v8.toml -n 5 --dataset SiR2 --dry-run
    """
    from alcapctl.cli.emit import emit_all
    from alcapctl.steps.claim import claim as claim_runs
    from alcapctl.steps.claim import release_stale

    ctx = app.locked_step()
    if not dry_run:
        release_stale(ctx)
    result = claim_runs(ctx, count, datasets, dry_run=dry_run)
    claimed = result.claimed
    if as_json:
        emit_json({"production": ctx.record.name, "claimed": claimed, "dry_run": dry_run})
        return
    emit_all(result.events)
    if not claimed:
        click.echo("No runs to claim")


@click.command()
@productions_argument
@click.option(
    "--watch",
    type=click.FloatRange(min=0.1),
    is_flag=False,
    flag_value=2.0,
    metavar="[SECONDS]",
    help="Keep showing a live view, refreshed every SECONDS (default 2), until Ctrl-C.",
)
@json_option
@store_options
def status(app: AppContext, all_productions: bool, watch: float | None, as_json: bool) -> None:
    """Runs per dataset and state, totals, and why runs failed.

    \b
    Examples:
      alcapctl status productions/rootana_v8.toml
      alcapctl status productions/rootana_v8.toml --watch 5
      alcapctl status --all --json
    """
    from alcapctl.steps.status import production_status

    if watch is not None:
        _watch(app, watch)
        return
    store = app.store
    single = app.production_file is not None and not all_productions
    if single:
        records = [app.step_context().record]
    else:
        records = store.productions()
        for record in records:
            store.ensure(record)
    reports = [production_status(store, record) for record in records]
    if as_json:
        emit_json(reports[0].to_dict() if single else [r.to_dict() for r in reports])
        return
    from alcapctl.display import render_status

    for report in reports:
        render_status(report)
    if not reports:
        click.echo(f"No productions in {store.location}")


@click.command()
@production_argument
@json_option
@store_options
def check(app: AppContext, as_json: bool) -> None:
    """Validate a production TOML and show what would happen; changes nothing.

    Prints the resolved settings, the output paths of one sample run, and the runs
    that would be registered or claimed.

    \b
    Example:
      alcapctl check productions/rootana_v8.toml
    """
    from alcapctl.steps.check import check_production

    report = check_production(app.settings, app.store)
    if as_json:
        emit_json(report)
        return
    from alcapctl.display import render_check

    render_check(report)


def _watch(app: AppContext, seconds: float) -> None:
    """The live dashboard on a terminal; one summary line per refresh elsewhere."""
    import time

    from alcapctl.display import LiveDashboard
    from alcapctl.steps.status import production_status

    if app.production_file is None:
        raise click.UsageError("--watch needs a production: alcapctl status PROD.toml --watch")
    ctx = app.step_context()
    board = LiveDashboard()
    try:
        if not board.console.is_terminal:
            while True:
                report = production_status(ctx.store, ctx.record)
                totals = {s.value: n for s, n in report.totals.items()}
                click.echo(f"{time.strftime('%H:%M:%S')} {ctx.record.name} {totals}")
                time.sleep(seconds)
        with board:
            while True:
                board.show(production_status(ctx.store, ctx.record))
                time.sleep(seconds)
    except KeyboardInterrupt:
        return
