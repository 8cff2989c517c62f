"""Dumps on PostgreSQL: the same ``Snapshot`` as on SQLite, so that a dump moves both ways.

A dump is SQLite's text (its CREATE statements, its storage classes); this module reads a
server database into that form, and ``pgrestore`` builds one from it.  Three choices
make a SQLite -> PostgreSQL -> SQLite trip give back identical files:

* **The schema.**  A table or index restored from a dump keeps its SQLite CREATE statement
  as its PostgreSQL comment (JSON ``{"sqlite": ..., "columns": [...]}``): the comment lives
  and dies with the object and needs no table of our own.  A dump writes that statement
  while the table still has those columns; for anything else (a database made on the
  server, a column a migration added) it writes a CREATE statement from the catalog.
  Column types follow SQLite's affinity rules: INT -> bigint (SQLite integers are 64-bit),
  TEXT/CHAR/CLOB -> text, REAL/FLOA/DOUB -> double precision, BLOB -> bytea, and the 2014
  TIMESTAMP (ISO text) -> text.  A SQLite column may mix types; PostgreSQL's cannot, so a
  value that does not fit its column is refused naming file and line, before anything is
  written.  Views and triggers are SQLite SQL and are refused.  A non-zero ``PRAGMA
  user_version`` is kept in the schema's comment.
* **Text that PostgreSQL cannot hold.**  A 2014 TEXT may hold bytes that are not UTF-8
  (``RawText``), and SQLite text may hold NUL, which PostgreSQL text refuses.  Such a value
  is stored in its own column as U+FFFF followed by the hex of its bytes (a text that
  itself begins with U+FFFF is stored that way too, so the form is unambiguous).  A text
  column holding what SQLite let it hold besides text (a TIMESTAMP column's ``0``, a blob)
  is kept the same way, U+FFFF then ``i``, ``r`` or ``x`` and the value.  We chose this
  over a bytea side column or side table because the legacy tables keep exactly their
  columns (2014 readers and ``SELECT *`` see no change), the value moves with its row
  (legacy tables have no key a side table could use), and a reader sees a marked value
  rather than text silently mangled; a dump turns it back into the exact value.
* **Row order.**  A dump sorts rows as SQLite's ``ORDER BY ... COLLATE BINARY, typeof()``
  does (``sqlite_order``): NULL, numbers, texts by their bytes, blobs.  The server's own
  collation and NULL placement play no part.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from alcapctl.errors import DatabaseError
from alcapctl.store.dump import RawText, SchemaEntry, Snapshot, TableRows, Value, quote_name

__all__ = [
    "BIGINT",
    "BYTEA",
    "REAL",
    "RELATIONS",
    "TEXT",
    "affinity_type",
    "from_server_text",
    "read_server_snapshot",
    "sqlite_order",
    "to_server_text",
]

_MARK = "\uffff"
BIGINT, TEXT, REAL, BYTEA = "bigint", "text", "double precision", "bytea"
_TO_SQLITE = {
    "bigint": "INTEGER",
    "integer": "INTEGER",
    "smallint": "INTEGER",
    "text": "TEXT",
    "character varying": "TEXT",
    "double precision": "REAL",
    "real": "REAL",
    "bytea": "BLOB",
}
_LITERAL_DEFAULT = re.compile(r"(-?[0-9.]+|'(?:[^']|'')*')(?:::[a-z ]+)?")


def affinity_type(declared: str) -> str | None:
    """The PostgreSQL type for a SQLite declared type (SQLite's affinity rules), or None."""
    upper = declared.upper()
    if "INT" in upper:
        return BIGINT
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return TEXT
    if "BLOB" in upper:
        return BYTEA
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return REAL
    if upper in ("TIMESTAMP", "DATETIME", "DATE"):  # ISO text, as the 2014 scripts wrote
        return TEXT
    return None


# --- values ---------------------------------------------------------------------------


def to_server_text(value: Value) -> str | None:
    """The text PostgreSQL stores for a value of a SQLite text column (module docstring)."""
    if value is None or (isinstance(value, str) and "\0" not in value and value[:1] != _MARK):
        return value
    if isinstance(value, str):
        return _MARK + value.encode("utf-8").hex()
    if isinstance(value, RawText):
        return _MARK + value.data.hex()
    if isinstance(value, bytes):
        return _MARK + "x" + value.hex()
    return _MARK + ("i" + str(value) if isinstance(value, int) else "r" + repr(value))


def from_server_text(text: str) -> Value:
    if not text.startswith(_MARK):
        return text
    tag, rest = text[1:2], text[2:]
    try:
        if tag == "i":
            return int(rest)
        if tag == "r":
            return float(rest)
        data = bytes.fromhex(rest if tag == "x" else text[1:])
    except ValueError:
        return text  # not our form: a text that merely begins with U+FFFF
    if tag == "x":
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return RawText(data)


def _value_key(value: Value) -> tuple[Any, ...]:
    if value is None:
        return (0, 0, "null")
    if isinstance(value, int):
        return (1, value, "integer")
    if isinstance(value, float):
        return (1, value, "real")
    if isinstance(value, str):
        return (2, value.encode("utf-8"), "text")
    if isinstance(value, RawText):
        return (2, value.data, "text")
    return (3, value, "blob")


def sqlite_order(
    rows: list[tuple[Value, ...]], columns: Sequence[str], keys: Sequence[str]
) -> list[tuple[Value, ...]]:
    """Rows in the order ``store.dump`` reads them from SQLite: keys first, then every column."""
    order = [columns.index(k) for k in keys] + [i for i, c in enumerate(columns) if c not in keys]
    return sorted(rows, key=lambda row: [_value_key(row[i]) for i in order])


# --- reading a server database ----------------------------------------------------------

RELATIONS = """
SELECT c.oid, c.relname, obj_description(c.oid, 'pg_class'), c.relkind FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY c.relname
"""
_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, NULL), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
_PRIMARY_KEY = """
SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord), pg_attribute a
WHERE i.indrelid = %s AND i.indisprimary AND a.attrelid = i.indrelid AND a.attnum = k.attnum
ORDER BY k.ord
"""
_INDEXES = """
SELECT ci.relname, obj_description(ci.oid, 'pg_class'), i.indisunique,
       i.indexprs IS NOT NULL OR i.indpred IS NOT NULL,
       ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE k.ord <= i.indnkeyatts ORDER BY k.ord)
FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
WHERE i.indrelid = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = ci.oid)
"""


def _comment(text: str | None, key: str = "sqlite", kind: type = str) -> dict[str, Any]:
    """Our JSON comment on an object if it has one (with ``key`` of type ``kind``), else {}."""
    try:
        found = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) and isinstance(found.get(key), kind) else {}


def _sqlite_default(table: str, column: str, expr: str | None) -> str:
    if expr is None:
        return ""
    literal = _LITERAL_DEFAULT.fullmatch(expr)
    if literal is None:
        raise DatabaseError(
            f"table {table}, column {column}: default {expr!r} has no SQLite form; not dumped"
        )
    return f" DEFAULT {literal[1]}"


def _table_sql(name: str, columns: list[tuple[str, str, bool, str | None]], keys: list[str]) -> str:
    parts = []
    for column, pgtype, notnull, default in columns:
        sqlite_type = _TO_SQLITE.get(pgtype)
        if sqlite_type is None:
            raise DatabaseError(
                f"table {name}, column {column}: type {pgtype} has no SQLite form; "
                "backups take integer, text, double precision and bytea columns"
            )
        null = " NOT NULL" if notnull and column not in keys else ""
        parts.append(
            f"{quote_name(column)} {sqlite_type}{null}{_sqlite_default(name, column, default)}"
        )
    if keys:
        parts.append(f"PRIMARY KEY ({', '.join(quote_name(k) for k in keys)})")
    return f"CREATE TABLE {quote_name(name)} (\n\t" + ",\n\t".join(parts) + "\n)"


def read_server_snapshot(conn: Connection) -> Snapshot:
    """Everything in the server database as a SQLite snapshot, inside the caller's read."""
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    schema: list[SchemaEntry] = []
    tables: list[TableRows] = []
    for oid, name, comment, kind in cur.execute(RELATIONS).fetchall():
        if kind not in ("r", "p"):
            raise DatabaseError(f"{name} is a view or foreign table; backups hold tables only")
        columns = cur.execute(_COLUMNS, (oid,)).fetchall()
        keys = [row[0] for row in cur.execute(_PRIMARY_KEY, (oid,)).fetchall()]
        names = tuple(str(c[0]) for c in columns)
        stored = _comment(comment)
        same = stored.get("columns") == list(names)
        sql = stored["sqlite"] if same else _table_sql(name, columns, keys)
        schema.append(SchemaEntry("table", name, sql))
        for index, icomment, unique, partial, exprs in cur.execute(_INDEXES, (oid,)).fetchall():
            isql = _comment(icomment).get("sqlite")
            if isql is None:
                if partial:
                    raise DatabaseError(f"index {index}: partial or on expressions; not dumped")
                head = "CREATE UNIQUE INDEX" if unique else "CREATE INDEX"
                cols = ", ".join(quote_name(e) for e in exprs)
                isql = f"{head} {quote_name(index)} ON {quote_name(name)} ({cols})"
            schema.append(SchemaEntry("index", index, isql))
        tables.append(_server_rows(cur, name, names, [c[1] for c in columns], keys))
    stored = _comment(cur.execute(_SCHEMA_COMMENT).fetchone()[0], "user_version", int)
    version = stored.get("user_version", 0)
    schema.sort(key=lambda e: (e.kind != "table", e.name))
    return Snapshot(int(version), schema, sorted(tables, key=lambda t: t.name))


def _server_rows(
    cur: Any, name: str, columns: tuple[str, ...], types: list[str], keys: list[str]
) -> TableRows:
    select = ", ".join(quote_name(c) for c in columns)
    text = [t in ("text", "character varying") for t in types]
    rows: list[tuple[Value, ...]] = []
    for row in cur.execute(f"SELECT {select} FROM {quote_name(name)}"):
        rows.append(
            tuple(
                from_server_text(v) if t and v is not None else v
                for v, t in zip(row, text, strict=True)
            )
        )
    order = keys or (["run"] if "run" in columns else [])
    return TableRows(name, columns, sqlite_order(rows, columns, order))


_SCHEMA_COMMENT = (
    "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = current_schema()"
)
