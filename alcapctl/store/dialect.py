"""Where SQLite and PostgreSQL differ, decided in one place.

The user writes ``postgresql://user@host:port/db``; the project picks the driver (psycopg 3)
and sets the session's ``lock_timeout`` and ``statement_timeout`` from ``--lock-timeout``.
Errors of either driver are sorted here into what the engine does about them: wait and try
again (a held lock, a dropped connection), or stop with a clear message.  Passwords are never
shown: every URL in a message goes through ``display_url``.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from enum import Enum
from typing import Any

from sqlalchemy import BigInteger, Connection, Integer, Table
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeEngine, UserDefinedType

from alcapctl.errors import DatabaseError

__all__ = [
    "Fault",
    "LegacyInteger",
    "Timestamp",
    "begin_snapshot",
    "classify",
    "display_url",
    "insert_ignoring_duplicates",
    "is_postgresql",
    "postgresql_engine_args",
]

_INSTALL = "pip install 'alcapctl[postgres]'"
_CONNECT_TIMEOUT = 10  # seconds: a server that does not answer is down, not slow
_MIN_CONNECT_TIMEOUT = 2  # libpq takes any shorter connect_timeout as 2 s


class Timestamp(UserDefinedType[str]):
    """The legacy TIMESTAMP column: ISO text passed through untouched, as SQLite stores it.

    On PostgreSQL the column is TEXT, so that legacy values (zone-less, odd formats, empty
    strings) and ours come back exactly as written and compare as they do on SQLite.
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "TIMESTAMP"


@compiles(Timestamp, "postgresql")
def _timestamp_as_text(element: Timestamp, compiler: Any, **kw: Any) -> str:
    return "TEXT"


# SQLite's INTEGER holds 64 bits; PostgreSQL's only 32.
LegacyInteger: TypeEngine[int] = Integer().with_variant(BigInteger(), "postgresql")


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise DatabaseError(f"{url!r}: not a database URL") from None


def is_postgresql(url: str) -> bool:
    return url.startswith(("postgresql:", "postgres:", "postgresql+"))


def display_url(url: str) -> str:
    """The URL as messages show it: any password replaced by ``***``."""
    if "@" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("://", 1)[0] + "://***@" + url.rsplit("@", 1)[1]


def postgresql_engine_args(url: str, lock_timeout: float) -> tuple[URL, dict[str, Any]]:
    """The SQLAlchemy URL (psycopg 3 as driver) and ``create_engine`` arguments.

    The server waits for a row lock up to ``lock_timeout`` and for any statement twice
    that, so that a waiting command ends with exit 75 instead of hanging; a connection
    attempt to a host that does not answer gives up within ``lock_timeout`` too (libpq
    counts whole seconds, at least 2).
    """
    parsed = _parse(url)
    if parsed.drivername not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise DatabaseError(
            f"{display_url(url)}: use a plain postgresql:// URL; alcapctl chooses the driver"
        )
    if importlib.util.find_spec("psycopg") is None:
        raise DatabaseError(f"{display_url(url)}: the PostgreSQL driver is missing; {_INSTALL}")
    lock_ms = max(int(lock_timeout * 1000), 1)
    options = f"-c lock_timeout={lock_ms} -c statement_timeout={2 * lock_ms}"
    connect_timeout = min(_CONNECT_TIMEOUT, max(_MIN_CONNECT_TIMEOUT, math.ceil(lock_timeout)))
    args = {
        "pool_pre_ping": True,  # a connection the server dropped is replaced, not used
        "connect_args": {"connect_timeout": connect_timeout, "options": options},
    }
    return parsed.set(drivername="postgresql+psycopg"), args


def begin_snapshot(conn: Connection) -> None:
    """Make the transaction just begun one read-only snapshot for all its statements.

    SQLite's read transaction already is one (its shared lock is held to the end); on
    PostgreSQL each statement would otherwise see what others committed meanwhile, so a
    report's or status's several SELECTs could disagree.  REPEATABLE READ READ ONLY never
    fails for serialization.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def insert_ignoring_duplicates(conn: Connection, table: Table, key: str, **values: Any) -> None:
    """INSERT ... ON CONFLICT (key) DO NOTHING, in the connection's dialect."""
    module = "postgresql" if conn.dialect.name == "postgresql" else "sqlite"
    # imported on use: PostgreSQL's dialect costs 17 ms to import
    dialect_insert = importlib.import_module(f"sqlalchemy.dialects.{module}").insert
    conn.execute(
        dialect_insert(table).values(**values).on_conflict_do_nothing(index_elements=[key])
    )


class Fault(Enum):
    """What a database error means for the command that met it."""

    LOCKED = "locked"  # another session holds what we need: wait and try again
    TIMED_OUT = "timed out"  # the server waited for us up to --lock-timeout
    UNREACHABLE = "unreachable"  # server down or connection lost: reconnect and try again
    NO_DATABASE = "no database"
    REFUSED_LOGIN = "refused login"
    OTHER = "other"


_SQLSTATES = {
    "55P03": Fault.TIMED_OUT,  # lock_not_available: lock_timeout expired
    "57014": Fault.TIMED_OUT,  # query_canceled: statement_timeout expired
    "40P01": Fault.LOCKED,  # deadlock_detected: our transaction was the one rolled back
    "40001": Fault.LOCKED,  # serialization_failure
    "57P01": Fault.UNREACHABLE,  # admin_shutdown
    "57P02": Fault.UNREACHABLE,  # crash_shutdown
    "57P03": Fault.UNREACHABLE,  # cannot_connect_now: starting up or shutting down
    "3D000": Fault.NO_DATABASE,
    "28P01": Fault.REFUSED_LOGIN,
    "28000": Fault.REFUSED_LOGIN,
}
_SQLITE_LOCKED = ("database is locked", "database is busy", "could not obtain lock")
_LOGIN_REFUSED = ("password authentication failed", "no password supplied", "pg_hba.conf")


def classify(exc: Exception) -> Fault:
    """Sort a driver error (either dialect, raw or as SQLAlchemy wraps it) into a ``Fault``."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(orig).lower()
    if any(phrase in text for phrase in _SQLITE_LOCKED):
        return Fault.LOCKED
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _SQLSTATES:
        return _SQLSTATES[sqlstate]
    if sqlstate is not None and sqlstate.startswith("08"):
        return Fault.UNREACHABLE
    if type(orig).__module__.startswith("psycopg"):
        # libpq reports failures before the server answers without a SQLSTATE
        if "does not exist" in text and "database" in text:
            return Fault.NO_DATABASE
        if any(phrase in text for phrase in _LOGIN_REFUSED):
            return Fault.REFUSED_LOGIN
        if isinstance(exc, OperationalError) or getattr(exc, "connection_invalidated", False):
            return Fault.UNREACHABLE
    return Fault.OTHER
