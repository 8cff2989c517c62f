"""The SQLite driver fast path of the run loop's hot statements, behind one function.

Building a SQLAlchemy statement costs about 100 µs, and executing a built one through
SQLAlchemy about 40 µs, where SQLite's driver takes 3 µs for the same query; the run
loop issues a dozen every cycle.  ``Statements.rows`` therefore builds each statement
once per table and shape and, on SQLite, when the statement has no expanding parameter,
compiles it once and runs it on the driver directly.  Elsewhere (PostgreSQL, expanding
parameters) it runs the built statement through SQLAlchemy.  One ``Statements`` belongs
to one open ``Store``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

__all__ = ["Statements"]


@dataclass(frozen=True)
class _Built:
    stmt: Executable
    sql: str | None  # the driver's SQL text on SQLite, None where SQLAlchemy must run it
    names: tuple[str, ...]  # parameter names, in the order of the ``?`` placeholders
    defaults: Mapping[str, Any]  # values fixed when the statement was built


class Statements:
    """The hot-path statements of one database, each built at its first use."""

    def __init__(self) -> None:
        self._built: dict[tuple[Hashable, ...], _Built] = {}

    def rows(
        self,
        conn: Connection,
        key: tuple[Hashable, ...],
        build: Callable[[], Executable],
        params: Mapping[str, Any],
    ) -> Sequence[Sequence[Any]]:
        """The rows of the statement ``key`` names (built by ``build`` the first time)."""
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = _build(conn, build())
        if built.sql is None:
            result = conn.execute(built.stmt, dict(params))
            return result.all() if result.returns_rows else []
        values = [params[n] if n in params else built.defaults[n] for n in built.names]
        driver = conn.connection.dbapi_connection
        assert driver is not None
        try:
            rows: list[tuple[Any, ...]] = driver.execute(built.sql, values).fetchall()
        except sqlite3.Error as exc:  # as SQLAlchemy raises it: lock waits retry on these
            raise DBAPIError.instance(built.sql, values, exc, sqlite3.Error) from None
        return rows


def _build(conn: Connection, stmt: Executable) -> _Built:
    if conn.dialect.name != "sqlite":
        return _Built(stmt, None, (), {})
    assert isinstance(stmt, ClauseElement)
    compiled = stmt.compile(dialect=conn.dialect)
    assert isinstance(compiled, SQLCompiler)
    if compiled.post_compile_params or compiled.positiontup is None:
        return _Built(stmt, None, (), {})
    return _Built(stmt, compiled.string, tuple(compiled.positiontup), dict(compiled.params))
