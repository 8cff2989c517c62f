"""``db init`` and ``datasets import|list``: the database and its run list."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from alcapctl.cli.emit import say
from alcapctl.cli.options import AppContext, emit_json, json_option, store_options

F = TypeVar("F", bound=Callable[..., Any])


def _production_option(f: F) -> F:
    """--production: take the database (and site) a production TOML resolves to."""
    return click.option(
        "--production",
        "production_file",
        metavar="PROD.toml",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Use the database this production's site names, as every other command does.",
    )(f)


@click.group()
def db() -> None:
    """Create or upgrade the production database.

    \b
    Examples:
      alcapctl db init --production productions/rootana_v8.toml
      alcapctl db init --site ~/alcap/site.toml
      alcapctl db init --database ~/data/production.db
    """


@db.command("init")
@_production_option
@store_options
def db_init(app: AppContext) -> None:
    """Create the database (legacy tables plus alcapctl's), or upgrade an existing one.

    The database is the one --database, --site or --production's site names, found as
    every other command finds it.  An existing database made by the 2014 scripts is
    migrated in place: columns and indexes are added, nothing is rebuilt, old readers
    keep working.

    \b
    Examples:
      alcapctl db init --production productions/rootana_v8.toml
      alcapctl db init --database ~/data/production.db
    """
    from alcapctl.store import Store

    store, created = Store.create(app.settings.database, app.lock_timeout)
    verb = "Created" if created else "Up to date:"
    say(f"{verb} {store.location}", change=created)


@click.group()
def datasets() -> None:
    """Import and list which runs belong to which dataset.

    \b
    Examples:
      alcapctl datasets import runs.tsv --production productions/rootana_v8.toml
      alcapctl datasets list --site ~/alcap/site.toml --json
    """


@datasets.command("import")
@click.argument("runlist", metavar="FILE", type=click.Path(path_type=Path))
@_production_option
@store_options
def datasets_import(app: AppContext, runlist: Path) -> None:
    """Import a CSV or TSV run list: run, dataset, quality (header optional).

    The rows go to the database --database, --site or --production's site names.
    Importing the same rows again changes nothing; a row that contradicts the database
    (same run and dataset, other quality) is refused, naming its line.

    \b
    Examples:
      printf 'run\\tdataset\\tquality\\n2091\\tSiR2\\tgold\\n' > runs.tsv
      alcapctl datasets import runs.tsv --production productions/rootana_v8.toml
      alcapctl datasets import runs.tsv --site ~/alcap/site.toml
    """
    from alcapctl.runlist import read_runlist

    rows = read_runlist(runlist)
    added, unchanged = app.store.import_datasets(rows, str(runlist))
    say(
        f"Imported {added} rows from {runlist} into {app.store.location} "
        f"({unchanged} already present)",
        change=added > 0,
    )


@datasets.command("list")
@_production_option
@json_option
@store_options
def datasets_list(app: AppContext, as_json: bool) -> None:
    """Runs per dataset and quality.

    \b
    Example:
      alcapctl datasets list
    """
    rows = app.store.dataset_summary()
    if as_json:
        emit_json([{"dataset": d, "quality": q, "runs": n} for d, q, n in rows])
        return
    from alcapctl.display import render_datasets

    render_datasets(rows)
