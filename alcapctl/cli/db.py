"""``db init`` and ``datasets import|list``: the database and its run list."""

from __future__ import annotations

from pathlib import Path

import click

from alcapctl.cli.options import AppContext, emit_json, json_option, store_options


@click.group()
def db() -> None:
    """Create or upgrade the production database.

    \b
    Example:
      alcapctl db init --database ~/data/production.db
    """


@db.command("init")
@store_options
def db_init(app: AppContext) -> None:
    """Create the database (legacy tables plus alcapctl's), or upgrade an existing one.

    An existing database made by the 2014 scripts is migrated in place: columns and
    indexes are added, nothing is rebuilt, old readers keep working.

    \b
    Example:
      alcapctl db init --database ~/data/production.db
    """
    from alcapctl.store import Store

    store, created = Store.create(app.settings.database, app.lock_timeout)
    verb = "Created" if created else "Up to date:"
    click.echo(f"{verb} {store.location}")


@click.group()
def datasets() -> None:
    """Import and list which runs belong to which dataset.

    \b
    Examples:
      alcapctl datasets import runs.tsv
      alcapctl datasets list --json
    """


@datasets.command("import")
@click.argument("runlist", metavar="FILE", type=click.Path(path_type=Path))
@store_options
def datasets_import(app: AppContext, runlist: Path) -> None:
    """Import a CSV or TSV run list: run, dataset, quality (header optional).

    Importing the same rows again changes nothing; a row that contradicts the database
    (same run and dataset, other quality) is refused, naming its line.

    \b
    Example:
      printf 'run\\tdataset\\tquality\\n2091\\tSiR2\\tgold\\n' > runs.tsv
      alcapctl datasets import runs.tsv
    """
    from alcapctl.runlist import read_runlist

    rows = read_runlist(runlist)
    added, unchanged = app.store.import_datasets(rows, str(runlist))
    click.echo(f"Imported {added} rows from {runlist} ({unchanged} already present)")


@datasets.command("list")
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
