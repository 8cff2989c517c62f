"""``backup-dump`` and ``backup-restore``: the database as text in git, and back."""

from __future__ import annotations

from pathlib import Path

import click

from alcapctl.cli.emit import say
from alcapctl.cli.options import (
    AppContext,
    dry_run_option,
    emit_json,
    json_option,
    lock_timeout_option,
    store_options,
)


@click.command("backup-dump")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Dump directory (default: <data>/backup, <data> being the site's data root).",
)
@click.option("--commit", is_flag=True, help="git add and commit in the dump directory.")
@dry_run_option
@json_option
@store_options
def backup_dump(
    app: AppContext, out: Path | None, commit: bool, dry_run: bool, as_json: bool
) -> None:
    """Write the whole database as text made for git: one row a line, stable order.

    The snapshot is consistent even while others claim and finish runs.  Writing the
    same database twice gives identical files; one finished run changes one line.
    With --commit the directory must be a git work tree; nothing is committed when
    nothing changed, and the message lists the runs finished since the last dump.

    \b
    Example:
      git init ~/alcap-db-backup
      alcapctl backup-dump --out ~/alcap-db-backup --commit
    """
    from alcapctl.backup import dump

    directory = out if out is not None else app.settings.data / "backup"
    result = dump(
        app.settings.database,
        directory,
        commit=commit,
        dry_run=dry_run,
        lock_timeout=app.lock_timeout,
    )
    if as_json:
        emit_json(result.to_dict())
        return
    rows = sum(result.rows.values())
    say(f"Dumped {len(result.rows)} tables, {rows} rows to {result.directory}", change=False)
    for name, runs in sorted(result.finished.items()):
        say(f"{name}: {len(runs)} runs finished since the last dump", production=name)
    verb = "would change" if dry_run else "changed"
    say(f"{len(result.changed)} files {verb}", change=bool(result.changed))
    if commit and not dry_run:
        say(
            f"Committed {result.commit}" if result.commit else "Nothing to commit",
            change=bool(result.commit),
        )


@click.command("backup-restore")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--database",
    "target",
    required=True,
    metavar="NEW",
    help="The database file to create (an existing file is refused), or the URL of an "
    "empty PostgreSQL database to fill.",
)
@lock_timeout_option
@dry_run_option
@json_option
def backup_restore(
    directory: Path, target: str, lock_timeout: float, dry_run: bool, as_json: bool
) -> None:
    """Rebuild a database from a dump written by backup-dump.

    The whole dump is checked first (a file cut short or edited so that it no longer
    parses is refused, naming file and line); the database is built beside NEW and only
    then moved into place, so a failure leaves nothing behind.  On PostgreSQL, NEW is an
    existing empty database, filled in one transaction; a server that is down is
    waited for up to --lock-timeout, then the command exits 75.  A dump of either
    dialect restores into the other.

    \b
    Example:
      alcapctl backup-restore ~/alcap-db-backup --database ~/data/production-restored.db --dry-run
      alcapctl backup-restore ~/alcap-db-backup --database ~/data/production-restored.db
      alcapctl backup-restore ~/alcap-db-backup --database postgresql://alcap@db/production
    """
    from alcapctl.backup import restore
    from alcapctl.config import database_url
    from alcapctl.store import sqlite_path

    url = database_url(target)
    path = sqlite_path(url)
    result = restore(
        directory, url if path is None else path, dry_run=dry_run, lock_timeout=lock_timeout
    )
    if as_json:
        emit_json({"database": result.database, "rows": result.rows, "identical": result.identical})
        return
    verb = "Would restore" if dry_run else "Restored"
    rows = sum(result.rows.values())
    say(f"{verb} {len(result.rows)} tables, {rows} rows into {result.database}")
