"""Tables of the production database: the 2014 legacy layout plus alcapctl's additions.

The legacy tables (``datasets``, ``productions`` and one ``<type>_v<version>`` table per
production) keep their columns, types and meaning so that the old scripts and readers keep
working.  alcapctl only ever adds columns (``ALTER TABLE ... ADD COLUMN``) and indexes, and
its own tables; a schema version in ``alcapctl_meta`` says what has been added, and a
``database_id`` row (a UUID written when the database is created or migrated, kept by
backup and restore) says which database this is, whatever its path.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Index,
    MetaData,
    Table,
    Text,
    inspect,
    select,
    text,
)

from alcapctl.config import OUTPUT_NAMES
from alcapctl.errors import DatabaseError
from alcapctl.store.dialect import LegacyInteger, Timestamp

__all__ = [
    "SCHEMA_VERSION",
    "blobs",
    "database_id",
    "database_kind",
    "datasets",
    "failures",
    "meta",
    "metadata",
    "migrate",
    "production_table",
    "productions",
    "table_name",
]

SCHEMA_VERSION = 2  # 2: the database_id row
_ID_KEY = "database_id"
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


metadata = MetaData()

datasets = Table(
    "datasets",
    metadata,
    Column("run", LegacyInteger),
    Column("dataset", Text),
    Column("quality", Text),
)

productions = Table(
    "productions",
    metadata,
    Column("type", Text),
    Column("version", LegacyInteger),
    Column("software", Text),
    Column("start", Timestamp()),
    Column("stop", Timestamp()),
    Column("base", LegacyInteger),
    Column("selection", Text),  # added: JSON of the datasets and qualities it took
)

meta = Table(
    "alcapctl_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text),
)

blobs = Table(
    "alcapctl_blobs",
    metadata,
    Column("sha256", Text, primary_key=True),
    Column("content", Text, nullable=False),
)

failures = Table(
    "alcapctl_failures",
    metadata,
    Column("production", Text, nullable=False),
    Column("run", LegacyInteger, nullable=False),
    Column("attempt", LegacyInteger, nullable=False),
    Column("at", Timestamp(), nullable=False),
    Column("step", Text, nullable=False),
    Column("user", Text),
    Column("job_id", Text),
    Column("exit_code", LegacyInteger),
    Column("reason", Text),
    Index("ix_alcapctl_failures_production_run", "production", "run"),
)

Index("ix_datasets_run", datasets.c.run)
Index("ix_datasets_dataset", datasets.c.dataset, datasets.c.quality)

# Legacy columns first, in their order, then alcapctl's; (name, type, server default).
_LEGACY_RUN_COLUMNS: list[tuple[str, Any]] = [
    ("run", LegacyInteger),
    ("status", Text()),
    ("user", Text()),
    ("start", Timestamp()),
    ("stop", Timestamp()),
]
_ADDED_RUN_COLUMNS: list[tuple[str, Any, Any]] = [
    ("host", Text(), None),
    ("claimed", Timestamp(), None),
    ("lease", Timestamp(), None),
    ("attempts", LegacyInteger, text("0")),
    ("input", Text(), None),
    ("job_id", Text(), None),
    ("backend", Text(), None),
    ("error", Text(), None),
    ("modules_sha256", Text(), None),
]


def table_name(production_type: str, version: int) -> str:
    """``alcapana_v3``: only from a validated type and an integer version."""
    if not _TYPE_RE.match(production_type) or not isinstance(version, int) or version < 0:
        raise DatabaseError(f"invalid production {production_type!r} version {version!r}")
    return f"{production_type}_v{version}"


def _run_columns(production_type: str) -> list[Column[Any]]:
    cols: list[Column[Any]] = [Column(n, t) for n, t in _LEGACY_RUN_COLUMNS]
    cols += [Column(name, Text) for name in OUTPUT_NAMES[production_type]]
    cols.append(Column("modules", Text))
    cols += [Column(n, t, server_default=d) for n, t, d in _ADDED_RUN_COLUMNS]
    return cols


_tables: dict[str, Table] = {}


def production_table(production_type: str, version: int) -> Table:
    """The per-production run table (legacy columns plus ours), defined once per process."""
    name = table_name(production_type, version)
    if name not in _tables:
        _tables[name] = Table(
            name,
            MetaData(),
            *_run_columns(production_type),
            Index(f"ix_{name}_run", "run"),
            Index(f"ix_{name}_status", "status"),
            Index(f"ix_{name}_owner", "user", "host", "status"),
        )
    return _tables[name]


def _add_missing_columns(conn: Connection, table: Table) -> None:
    have = {c["name"] for c in inspect(conn).get_columns(table.name)}
    preparer = conn.dialect.identifier_preparer
    for column in table.columns:
        if column.name in have:
            continue
        ddl = column.type.compile(dialect=conn.dialect)
        default = column.server_default
        suffix = f" DEFAULT {default.arg}" if default is not None else ""  # type: ignore[attr-defined]
        conn.execute(
            text(
                f"ALTER TABLE {preparer.quote(table.name)} "
                f"ADD COLUMN {preparer.quote(column.name)} {ddl}{suffix}"
            )
        )


def production_table_current(conn: Connection, production_type: str, version: int) -> bool:
    """Whether the run table exists with every column and index alcapctl adds."""
    table = production_table(production_type, version)
    insp = inspect(conn)
    if not insp.has_table(table.name):
        return False
    columns = {c["name"] for c in insp.get_columns(table.name)}
    indexes = {i["name"] for i in insp.get_indexes(table.name)}
    return set(table.c.keys()) <= columns and {i.name for i in table.indexes} <= indexes


def ensure_production_table(conn: Connection, production_type: str, version: int) -> Table:
    """Create the run table, or add what an older writer left out; indexes included."""
    table = production_table(production_type, version)
    if inspect(conn).has_table(table.name):
        _add_missing_columns(conn, table)
        for index in table.indexes:
            index.create(conn, checkfirst=True)
    else:
        table.create(conn)
    return table


def schema_version(conn: Connection) -> int:
    if not inspect(conn).has_table(meta.name):
        return 0
    value = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(value or 0)


_LEGACY_TABLE_RE = re.compile(rf"^(datasets|productions|({'|'.join(OUTPUT_NAMES)})_v[0-9]+)$")


def database_kind(conn: Connection) -> str:
    """``alcapctl``, ``legacy`` (the 2014 scripts' tables), ``empty`` (no table) or
    ``foreign``."""
    names = set(inspect(conn).get_table_names()) - {"sqlite_sequence"}
    if meta.name in names:
        return "alcapctl"
    if not names:
        return "empty"
    if {datasets.name, productions.name} <= names or not _foreign(names):
        return "legacy"  # a 2014 database, which may hold tables of its users' own too
    return "foreign"


def foreign_tables(conn: Connection) -> list[str]:
    """Tables that are neither alcapctl's nor the 2014 scripts' (none once alcapctl has
    set the database up)."""
    names = set(inspect(conn).get_table_names())
    return [] if meta.name in names else _foreign(names)


def _foreign(names: set[str]) -> list[str]:
    return sorted(n for n in names if not _LEGACY_TABLE_RE.match(n) and n != "sqlite_sequence")


def database_id(conn: Connection) -> str | None:
    """The database's UUID, or None before its migration."""
    if not inspect(conn).has_table(meta.name):
        return None
    return conn.execute(select(meta.c.value).where(meta.c.key == _ID_KEY)).scalar()


def migrate(conn: Connection) -> bool:
    """Bring the database to SCHEMA_VERSION in place; True if anything changed."""
    if schema_version(conn) >= SCHEMA_VERSION:
        return False
    insp = inspect(conn)
    for table in (datasets, productions):
        if insp.has_table(table.name):
            _add_missing_columns(conn, table)
    metadata.create_all(conn)
    for index in datasets.indexes:
        index.create(conn, checkfirst=True)
    rows = conn.execute(select(productions.c.type, productions.c.version)).all()
    for ptype, version in rows:
        if ptype in OUTPUT_NAMES and version is not None:
            ensure_production_table(conn, ptype, int(version))
    if database_id(conn) is None:
        conn.execute(meta.insert().values(key=_ID_KEY, value=str(uuid.uuid4())))
    conn.execute(meta.delete().where(meta.c.key == "schema_version"))
    conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
    return True
