"""Building a server database from a dump's ``Snapshot`` (the form is ``pgdump``'s).

The SQLite CREATE statements are run in a scratch in-memory SQLite database first, so that
SQLite itself says what each table's columns, types, defaults and keys are; the
PostgreSQL DDL is written from that, and every row is checked against its column's type
before anything reaches the server.  Rows go in with COPY, in the caller's transaction.
"""

from __future__ import annotations

import json
import re
import sqlite3

from sqlalchemy import Connection

from alcapctl.errors import UsageError
from alcapctl.store.dump import RawText, SchemaEntry, Snapshot, TableRows, Value, quote_name
from alcapctl.store.pgdump import (
    BIGINT,
    BYTEA,
    REAL,
    RELATIONS,
    TEXT,
    affinity_type,
    to_server_text,
)

__all__ = ["build_server_database", "server_schema"]

_MAX_NAME = 63  # bytes: PostgreSQL truncates longer identifiers
_CLASS = {int: "an integer", float: "a real", str: "a text", RawText: "a text", bytes: "a blob"}
_FITS: dict[str, tuple[type, ...]] = {
    BIGINT: (int,),
    TEXT: (str, RawText, bytes, int, float),
    REAL: (float,),
    BYTEA: (bytes,),
}


class ServerTable:
    """One table as PostgreSQL will hold it: its DDL, comment and column types."""

    def __init__(self, entry: SchemaEntry, scratch: sqlite3.Connection) -> None:
        self.entry = entry
        info = scratch.execute(f"PRAGMA table_info({quote_name(entry.name)})").fetchall()
        self.columns = [str(r[1]) for r in info]
        self.types: list[str] = []
        parts = []
        for _, column, declared, notnull, default, _pk in info:
            pgtype = affinity_type(declared)
            if pgtype is None:
                raise UsageError(
                    f"{entry.origin}: table {entry.name}, column {column} is declared "
                    f"{declared or 'without a type'!r}; a PostgreSQL column needs one of "
                    "INTEGER, REAL, TEXT, BLOB or TIMESTAMP"
                )
            self.types.append(pgtype)
            extra = (" NOT NULL" if notnull else "") + (
                f" DEFAULT {default}" if default is not None else ""
            )
            parts.append(f"{quote_name(column)} {pgtype}{extra}")
        keys = [str(r[1]) for r in sorted(info, key=lambda r: r[5]) if r[5]]
        if keys:
            parts.append(f"PRIMARY KEY ({', '.join(quote_name(k) for k in keys)})")
        for _, iname, _, origin, _ in scratch.execute(
            f"PRAGMA index_list({quote_name(entry.name)})"
        ).fetchall():
            if origin == "u":
                cols = scratch.execute(f"PRAGMA index_info({quote_name(iname)})").fetchall()
                parts.append(f"UNIQUE ({', '.join(quote_name(str(c[2])) for c in cols)})")
        self.ddl = f"CREATE TABLE {quote_name(entry.name)} ({', '.join(parts)})"
        comment = {"columns": self.columns, "sqlite": entry.sql}
        self.comment = json.dumps(comment, ensure_ascii=False)
        self.rows: list[tuple[Value, ...]] = []  # as the server takes them, once checked

    def check(self, table: TableRows) -> None:
        """Keep the rows as the server takes them; UsageError at the first that does not fit."""
        if list(table.columns) != self.columns:
            raise UsageError(f"{table.origin}:1: columns differ from {self.entry.origin}")
        out = []
        for i, row in enumerate(table.rows):
            values: list[Value] = []
            for value, column, pgtype in zip(row, self.columns, self.types, strict=True):
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, _FITS[pgtype])
                ):
                    raise UsageError(
                        f"{table.origin}:{table.first_line + i}: column {column} holds "
                        f"{_CLASS[type(value)]}, which a PostgreSQL {pgtype} column cannot "
                        "hold (a SQLite column may mix types)"
                    )
                if pgtype == TEXT:
                    value = to_server_text(value)
                values.append(value)
            out.append(tuple(values))
        self.rows = out


def _index_ddl(entry: SchemaEntry, scratch: sqlite3.Connection) -> str:
    row = scratch.execute("SELECT tbl_name FROM sqlite_master WHERE name = ?", (entry.name,))
    table = str(row.fetchone()[0])
    listed = scratch.execute(f"PRAGMA index_list({quote_name(table)})").fetchall()
    unique, partial = next((r[2], r[4]) for r in listed if r[1] == entry.name)
    keys = [r for r in scratch.execute(f"PRAGMA index_xinfo({quote_name(entry.name)})") if r[5]]
    if partial or any(r[1] < 0 for r in keys):
        raise UsageError(
            f"{entry.origin}: index {entry.name} is partial or on expressions; "
            "a PostgreSQL restore takes indexes on columns"
        )
    cols = ", ".join(quote_name(str(r[2])) + (" DESC" if r[3] else "") for r in keys)
    head = "CREATE UNIQUE INDEX" if unique else "CREATE INDEX"
    return f"{head} {quote_name(entry.name)} ON {quote_name(table)} ({cols})"


def server_schema(
    snapshot: Snapshot,
) -> tuple[dict[str, ServerTable], list[tuple[str, str, str]]]:
    """The tables (rows checked) and (index name, DDL, comment) of ``snapshot`` on
    PostgreSQL; refuses what a server cannot hold before anything is written."""
    scratch = sqlite3.connect(":memory:")
    try:
        tables: dict[str, ServerTable] = {}
        indexes: list[tuple[str, str, str]] = []
        for entry in snapshot.schema:
            if entry.kind not in ("table", "index"):
                raise UsageError(
                    f"{entry.origin}: {entry.kind} {entry.name} is SQLite SQL; a PostgreSQL "
                    "restore takes tables and indexes"
                )
            if len(entry.name.encode("utf-8")) > _MAX_NAME:
                raise UsageError(
                    f"{entry.origin}: the name {entry.name!r} is too long for PostgreSQL"
                )
            try:
                scratch.execute(entry.sql)
            except sqlite3.Error as exc:
                raise UsageError(
                    f"{entry.origin}: {entry.kind} {entry.name} refused: {exc}"
                ) from None
        for entry in snapshot.schema:
            if entry.kind == "table":
                tables[entry.name] = ServerTable(entry, scratch)
            else:
                comment = json.dumps({"sqlite": entry.sql}, ensure_ascii=False)
                indexes.append((entry.name, _index_ddl(entry, scratch), comment))
        for table in snapshot.tables:
            tables[table.name].check(table)
        return tables, indexes
    finally:
        scratch.close()


_COPY_LINE = re.compile(r"COPY \S+, line ([0-9]+)")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def build_server_database(conn: Connection, snapshot: Snapshot) -> None:
    """Write ``snapshot`` into the empty server database, inside the caller's transaction."""
    import psycopg

    tables, indexes = server_schema(snapshot)
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    held = cur.execute(RELATIONS).fetchall()
    if held:
        names = ", ".join(str(r[1]) for r in held[:5])
        raise UsageError(f"the database already holds tables ({names}); restore into an empty one")
    cur.execute("SET LOCAL statement_timeout = 0")  # a large restore is one long COPY
    for table in tables.values():
        cur.execute(table.ddl)
        cur.execute(f"COMMENT ON TABLE {quote_name(table.entry.name)} IS {_literal(table.comment)}")
    for rows in snapshot.tables:
        server = tables[rows.name]
        names = ", ".join(quote_name(c) for c in server.columns)
        try:
            with cur.copy(f"COPY {quote_name(rows.name)} ({names}) FROM STDIN") as copy:
                copy.set_types(server.types)
                for row in server.rows:
                    copy.write_row(row)
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
            _refused(rows, exc)
    for name, ddl, comment in indexes:
        cur.execute(ddl)
        cur.execute(f"COMMENT ON INDEX {quote_name(name)} IS {_literal(comment)}")
    if snapshot.user_version:
        comment = json.dumps({"user_version": snapshot.user_version})
        schema = cur.execute("SELECT current_schema()").fetchone()[0]
        cur.execute(f"COMMENT ON SCHEMA {quote_name(schema)} IS {_literal(comment)}")


def _refused(table: TableRows, exc: Exception) -> None:
    context = getattr(getattr(exc, "diag", None), "context", None) or ""
    line = _COPY_LINE.search(context)
    where = f"{table.origin}:{table.first_line + int(line[1]) - 1}" if line else table.origin
    message = str(exc).splitlines()[0]
    raise UsageError(f"{where}: row refused by PostgreSQL: {message}") from None
