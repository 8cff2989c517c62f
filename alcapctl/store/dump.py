"""Whole-database snapshots for backups: read every table in one transaction, write them back.

This is the only SQL of ``backup-dump`` and ``backup-restore``; the text format lives in
``alcapctl.backup``.  A snapshot holds the schema as SQLite keeps it (``sqlite_master``)
and every row of every table with its exact storage class: a TEXT that is not valid UTF-8
(legacy writers bound Latin-1 bytes as text) is kept as ``RawText`` bytes.  A server
database is read and built in the same form by ``pgdump``, so a dump moves between them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from sqlalchemy import Connection

from alcapctl.errors import DatabaseError, UsageError
from alcapctl.store.engine import Database

__all__ = [
    "RawText",
    "SchemaEntry",
    "Snapshot",
    "TableRows",
    "Value",
    "build_database",
    "build_server",
    "take_snapshot",
]

# Tables come first (rows are loaded before indexes are built and triggers exist).
SCHEMA_KINDS = ("table", "view", "index", "trigger")
_SHARED_TEXT = 1024  # bytes: legacy tables repeat the MODULES text in every run's row


@dataclass(frozen=True)
class RawText:
    """A TEXT value whose bytes are not valid UTF-8."""

    data: bytes


Value: TypeAlias = int | float | str | bytes | RawText | None


@dataclass(frozen=True)
class SchemaEntry:
    """One CREATE statement; ``origin`` (``schema.sql:12``) names where a dump had it."""

    kind: str
    name: str
    sql: str
    origin: str = ""


@dataclass(frozen=True)
class TableRows:
    """The rows of one table in dump order; row i came from ``origin`` line first_line + i."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Value, ...]]
    origin: str = ""
    first_line: int = 0


@dataclass(frozen=True)
class Snapshot:
    user_version: int
    schema: list[SchemaEntry]
    tables: list[TableRows] = field(default_factory=list)


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _TextDecoder:
    """sqlite3 text_factory: exact texts, a large text repeated in many rows held once."""

    def __init__(self) -> None:
        self.large: dict[bytes, str | RawText] = {}

    def __call__(self, data: bytes) -> str | RawText:
        if len(data) >= _SHARED_TEXT and data in self.large:
            return self.large[data]
        try:
            text: str | RawText = data.decode("utf-8")
        except UnicodeDecodeError:
            text = RawText(data)
        if len(data) >= _SHARED_TEXT:
            self.large[data] = text
        return text


def _schema(cur: sqlite3.Cursor) -> list[SchemaEntry]:
    rows = cur.execute(
        "SELECT type, name, sql FROM sqlite_master "
        "WHERE sql IS NOT NULL AND substr(name, 1, 7) != 'sqlite_'"
    ).fetchall()
    entries = [SchemaEntry(kind, name, sql) for kind, name, sql in rows]
    for entry in entries:
        if entry.sql.upper().startswith("CREATE VIRTUAL"):
            raise DatabaseError(f"table {entry.name} is a virtual table; backups do not hold those")
    return sorted(entries, key=lambda e: (SCHEMA_KINDS.index(e.kind), e.name))


def _order(columns: Sequence[tuple[str, int]]) -> list[str]:
    """Primary key, else ``run``, then every column: a total order that survives a restore."""
    names = [name for name, _ in columns]
    keys = [name for name, pk in sorted(columns, key=lambda c: c[1]) if pk]
    if not keys and "run" in names:
        keys = ["run"]
    ordered = keys + [n for n in names if n not in keys]
    # BINARY whatever the declared collation, and typeof() so that 1 and 1.0 never tie.
    return [f"{quote_name(n)} COLLATE BINARY, typeof({quote_name(n)})" for n in ordered]


def _table_rows(cur: sqlite3.Cursor, name: str) -> TableRows:
    info = cur.execute(f"PRAGMA table_info({quote_name(name)})").fetchall()
    columns = [(str(row[1]), int(row[5])) for row in info]
    names = tuple(n for n, _ in columns)
    select = ", ".join(quote_name(n) for n in names)
    query = f"SELECT {select} FROM {quote_name(name)} ORDER BY {', '.join(_order(columns))}"
    return TableRows(name, names, [tuple(row) for row in cur.execute(query)])


def read_snapshot(conn: Connection) -> Snapshot:
    """Everything in the database, read inside the caller's (read) transaction."""
    raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
    saved = raw.text_factory
    raw.text_factory = _TextDecoder()
    try:
        cur = raw.cursor()
        user_version = int(cur.execute("PRAGMA user_version").fetchone()[0])
        schema = _schema(cur)
        tables = [_table_rows(cur, e.name) for e in schema if e.kind == "table"]
        return Snapshot(user_version, schema, tables)
    finally:
        raw.text_factory = saved


def take_snapshot(url: str, lock_timeout: float = 60.0) -> Snapshot:
    """A consistent snapshot of a database, without migrating or otherwise changing it."""
    from alcapctl.store.pgdump import read_server_snapshot

    db = Database(url, lock_timeout=lock_timeout)
    try:
        return db.read(read_snapshot if db.is_sqlite else read_server_snapshot)
    finally:
        db.dispose()


def build_server(url: str, snapshot: Snapshot, lock_timeout: float = 60.0) -> None:
    """Write ``snapshot`` into the empty server database at ``url``, in one transaction."""
    from alcapctl.store.pgrestore import build_server_database

    db = Database(url, lock_timeout=lock_timeout, create=True)
    try:
        db.write(lambda conn: build_server_database(conn, snapshot))
    finally:
        db.dispose()


def _insert_sql(table: TableRows, row: tuple[Value, ...]) -> str:
    names = ", ".join(quote_name(c) for c in table.columns)
    marks = ", ".join("CAST(? AS TEXT)" if isinstance(v, RawText) else "?" for v in row)
    return f"INSERT INTO {quote_name(table.name)} ({names}) VALUES ({marks})"


def _load(conn: sqlite3.Connection, table: TableRows) -> None:
    for i, row in enumerate(table.rows):
        params = tuple(v.data if isinstance(v, RawText) else v for v in row)
        try:
            conn.execute(_insert_sql(table, row), params)
        except sqlite3.Error as exc:
            where = f"{table.origin}:{table.first_line + i}"
            raise UsageError(f"{where}: row refused by SQLite: {exc}") from None


def _create(conn: sqlite3.Connection, entry: SchemaEntry) -> None:
    try:
        conn.execute(entry.sql)
    except sqlite3.Error as exc:
        raise UsageError(f"{entry.origin}: {entry.kind} {entry.name} refused: {exc}") from None


def build_database(path: Path, snapshot: Snapshot) -> None:
    """Write ``snapshot`` into a new SQLite file at ``path`` in one transaction."""
    conn = sqlite3.connect(f"file:{path}?mode=rwc", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")
        tables = [e for e in snapshot.schema if e.kind == "table"]
        for entry in tables:
            _create(conn, entry)
        for table in snapshot.tables:
            _load(conn, table)
        for entry in snapshot.schema:
            if entry.kind != "table":
                _create(conn, entry)
        conn.execute(f"PRAGMA user_version = {int(snapshot.user_version)}")
        conn.execute("COMMIT")
    finally:
        conn.close()
