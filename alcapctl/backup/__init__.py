"""Backups: a deterministic text dump of the production database for git, and its restore.

``dump`` takes one consistent snapshot, writes it as files made for ``git diff`` (see
``files``), removes files a previous dump left that no longer belong, and optionally commits
with a message that says which runs finished since the last dump.  ``restore`` checks a
whole dump before it builds a new database beside the target, then moves it into place;
on a server it fills an empty database in one transaction.  Either dialect dumps to the
same text, so a dump of one restores into the other and dumps back identically.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from alcapctl.backup.files import (
    BLOBS,
    TABLES,
    parse_dump,
    parse_table,
    read_lines,
    render,
    table_file,
)
from alcapctl.backup.git import commit_dump, require_work_tree
from alcapctl.errors import UsageError
from alcapctl.store.dialect import display_url
from alcapctl.store.dump import TableRows, build_database, build_server, take_snapshot
from alcapctl.store.pgrestore import server_schema

__all__ = ["DumpResult", "RestoreResult", "dump", "restore"]

log = structlog.get_logger("alcapctl.backup")
_PRODUCTION_TABLE = re.compile(r"[a-z][a-z0-9_]*_v[0-9]+")


@dataclass
class DumpResult:
    directory: Path
    rows: dict[str, int]
    blobs: int
    changed: list[str]
    finished: dict[str, list[int]]
    commit: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "rows": self.rows,
            "blobs": self.blobs,
            "changed": self.changed,
            "finished": self.finished,
            "commit": self.commit,
        }


@dataclass
class RestoreResult:
    database: str  # the file, or the server URL with any password masked
    rows: dict[str, int] = field(default_factory=dict)
    identical: bool | None = None  # dumps back to the same text; None: not built (dry run)


def _finished_runs(table: TableRows) -> set[int]:
    if not _PRODUCTION_TABLE.fullmatch(table.name) or not {"run", "status"} <= set(table.columns):
        return set()
    run, status = table.columns.index("run"), table.columns.index("status")
    runs = (row[run] for row in table.rows if row[status] == "F")
    return {r for r in runs if isinstance(r, int)}


def _previously_finished(directory: Path, label: str) -> set[int]:
    path = directory / label
    if not path.exists():
        return set()
    try:
        return _finished_runs(parse_table(read_lines(path, label), label))
    except UsageError:
        log.warning("previous dump unreadable; counting every finished run", file=str(path))
        return set()


def _changes(directory: Path, files: dict[str, bytes]) -> tuple[list[str], list[str]]:
    """(files to write because they differ, stale files a previous dump left)."""
    differ = []
    for label, data in sorted(files.items()):
        path = directory / label
        if not path.exists() or path.read_bytes() != data:
            differ.append(label)
    stale = [
        f"{sub}/{path.name}"
        for sub in (TABLES, BLOBS)
        for path in sorted((directory / sub).glob("*"))
        if path.is_file() and f"{sub}/{path.name}" not in files
    ]
    return differ, stale


def _write(directory: Path, files: dict[str, bytes], differ: list[str], stale: list[str]) -> None:
    for label in differ:
        path = directory / label
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.part")
        part.write_bytes(files[label])
        os.replace(part, path)  # a reader (git, a crash) never sees half a file
    for label in stale:
        (directory / label).unlink()


def _message(result: DumpResult) -> tuple[str, list[str]]:
    total = sum(len(runs) for runs in result.finished.values())
    subject = f"backup: {_runs(total)} finished" if total else "backup: database changed"
    body = []
    for name, runs in sorted(result.finished.items()):
        shown = ", ".join(str(r) for r in runs[:20]) + (", ..." if len(runs) > 20 else "")
        body.append(f"{name}: {_runs(len(runs))} finished ({shown})")
    return subject, [*body, ""] if body else []


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def dump(
    url: str,
    directory: Path,
    *,
    commit: bool = False,
    dry_run: bool = False,
    lock_timeout: float = 60.0,
) -> DumpResult:
    """Dump the database at ``url`` into ``directory``; commit there if asked and changed.

    With ``dry_run`` nothing is written or committed; the result says what would change.
    """
    directory = directory.expanduser().absolute()
    if commit:
        require_work_tree(directory)
    snapshot = take_snapshot(url, lock_timeout)
    files = render(snapshot)
    finished = {}
    for table in snapshot.tables:
        new = _finished_runs(table) - _previously_finished(directory, table_file(table.name))
        if new:
            finished[table.name] = sorted(new)
    differ, stale = _changes(directory, files)
    if not dry_run:
        directory.mkdir(parents=True, exist_ok=True)
        _write(directory, files, differ, stale)
    result = DumpResult(
        directory,
        {t.name: len(t.rows) for t in snapshot.tables},
        sum(1 for k in files if k.startswith(f"{BLOBS}/")),
        differ + stale,
        finished,
    )
    if commit and not dry_run:
        result.commit = commit_dump(directory, *_message(result))
    return result


def _first_difference(files: dict[str, bytes], directory: Path) -> str | None:
    """``file:line`` where the dump differs from ``files``, None when identical."""
    for label, data in sorted(files.items()):
        path = directory / label
        old = path.read_bytes() if path.exists() else b""
        if old != data:
            pairs = zip(old.split(b"\n"), data.split(b"\n"), strict=False)
            line = next((i for i, (a, b) in enumerate(pairs, start=1) if a != b), 1)
            return f"{label}:{line}"
    return None


def restore(
    directory: Path,
    database: Path | str,
    *,
    dry_run: bool = False,
    lock_timeout: float = 60.0,
) -> RestoreResult:
    """Build a new database from the dump in ``directory``: a new SQLite file at a path, or
    the contents of an empty server database at a ``postgresql://`` URL.

    With ``dry_run`` the whole dump is checked and nothing is written.  ``lock_timeout``
    bounds the waits for the database (a held lock, a server that is down) as it does
    for every command.
    """
    if isinstance(database, str):
        return _restore_server(directory, database, dry_run, lock_timeout)
    if database.exists():
        raise UsageError(f"{database}: already exists; restore only writes a new file")
    snapshot = parse_dump(directory)
    rows = {t.name: len(t.rows) for t in snapshot.tables}
    if dry_run:
        return RestoreResult(str(database), rows)
    database.parent.mkdir(parents=True, exist_ok=True)
    part = database.with_name(f".{database.name}.restore-{os.getpid()}")
    part.unlink(missing_ok=True)
    try:
        build_database(part, snapshot)
        again = take_snapshot(f"sqlite:///{part}", lock_timeout)
        try:
            os.link(part, database)  # unlike rename, never replaces a file made meanwhile
        except FileExistsError:
            raise UsageError(f"{database}: appeared while restoring; left untouched") from None
    finally:
        part.unlink(missing_ok=True)
    return _compared(directory, str(database), rows, render(again))


def _restore_server(directory: Path, url: str, dry_run: bool, lock_timeout: float) -> RestoreResult:
    snapshot = parse_dump(directory)
    rows = {t.name: len(t.rows) for t in snapshot.tables}
    if dry_run:
        server_schema(snapshot)  # refuses what a server cannot hold, as the restore would
        return RestoreResult(display_url(url), rows)
    build_server(url, snapshot, lock_timeout)
    again = take_snapshot(url, lock_timeout)
    return _compared(directory, display_url(url), rows, render(again))


def _compared(
    directory: Path, database: str, rows: dict[str, int], files: dict[str, bytes]
) -> RestoreResult:
    where = _first_difference(files, directory)
    if where is not None:
        log.warning("restored database does not dump back to the same text", first=where)
    return RestoreResult(database, rows, identical=where is None)
