"""Connections and transactions: BEGIN IMMEDIATE for writes, lock waits with backoff, exit 75.

SQLite is opened without ever creating a file implicitly (``mode=rw``), in its rollback
journal mode (WAL is unsafe on network file systems), with a short driver busy timeout;
longer waits happen here so that the user is told who is waiting for what.  Every
transaction is a function so that a lock error can re-run it whole.
"""

from __future__ import annotations

import random
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import structlog
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError

from alcapctl.errors import DatabaseError, LockTimeout

__all__ = ["Database", "sqlite_path"]

T = TypeVar("T")
log = structlog.get_logger("alcapctl.store")

_DRIVER_BUSY_TIMEOUT = 0.25  # seconds the sqlite3 driver waits by itself before we take over
_SAY_WAITING_AFTER = 1.0  # ordinary contention is silent; a held lock is announced
_MIN_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL, or None for other databases."""
    if not url.startswith("sqlite:"):
        return None
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    if not rest or rest == ":memory:":
        raise DatabaseError(f"{url}: an in-memory database cannot be shared; give a file")
    return Path(urllib.parse.unquote(rest.split("?", 1)[0]))


def _is_lock_error(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return (
        "database is locked" in text
        or "database is busy" in text
        or "could not obtain lock" in text
    )


class Database:
    """One database: an engine plus read and write transactions that survive lock waits."""

    def __init__(self, url: str, *, lock_timeout: float = 60.0, create: bool = False) -> None:
        self.url = url
        self.lock_timeout = lock_timeout
        self.path = sqlite_path(url)
        self.engine = self._engine(create)
        self._waiting_said = False

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    def _engine(self, create: bool) -> Engine:
        path = self.path
        if path is None:
            return create_engine(self.url, future=True, pool_pre_ping=True)
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise DatabaseError(
                f"SQLite {sqlite3.sqlite_version} is too old; alcapctl needs 3.35 or newer"
            )
        if not create and not path.exists():
            raise DatabaseError(
                f"{path}: no such database. Create it with: alcapctl db init --database {path}"
            )
        if path.is_dir():
            raise DatabaseError(f"{path}: is a directory, not a database file")
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        mode = "rwc" if create else "rw"
        uri = f"file:{urllib.parse.quote(str(path))}?mode={mode}"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(
                uri,
                uri=True,
                timeout=_DRIVER_BUSY_TIMEOUT,
                isolation_level=None,  # we issue BEGIN ourselves (see _begin)
                check_same_thread=False,
            )

        engine = create_engine("sqlite://", creator=connect, future=True)

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql(conn.get_execution_options().get("alcap_begin", "BEGIN"))

        return engine

    def _run(self, fn: Callable[[Connection], T], begin: str) -> T:
        started = time.monotonic()
        deadline = started + self.lock_timeout
        delay = 0.02
        while True:
            try:
                with self.engine.connect() as raw:
                    conn = raw.execution_options(alcap_begin=begin)
                    with conn.begin():
                        return fn(conn)
            except OperationalError as exc:
                if not _is_lock_error(exc):
                    raise self._translate(exc) from None
                now = time.monotonic()
                if now >= deadline:
                    raise LockTimeout(
                        f"{self.path or self.url}: another session held the database lock "
                        f"for more than {self.lock_timeout:g} s; nothing was changed. "
                        "Try again, or raise --lock-timeout."
                    ) from None
                if not self._waiting_said and now - started >= _SAY_WAITING_AFTER:
                    log.warning(
                        "database locked by another session; waiting",
                        database=str(self.path or self.url),
                        up_to_seconds=self.lock_timeout,
                    )
                    self._waiting_said = True
                time.sleep(min(delay * (0.5 + random.random()), max(deadline - now, 0.0)))
                delay = min(delay * 2, 1.0)
            except DBAPIError as exc:
                raise self._translate(exc) from None

    def _translate(self, exc: DBAPIError) -> Exception:
        text = str(exc.orig)
        if "not a database" in text or "file is encrypted" in text:
            return DatabaseError(f"{self.path or self.url}: not an SQLite database ({text})")
        if "unable to open" in text:
            return DatabaseError(f"{self.path or self.url}: cannot open the database ({text})")
        if "readonly" in text or "read-only" in text:
            return DatabaseError(f"{self.path or self.url}: the database is read-only ({text})")
        return exc

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a read transaction (a consistent snapshot on SQLite)."""
        return self._run(fn, "BEGIN")

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction holding the lock from its first statement."""
        return self._run(fn, "BEGIN IMMEDIATE" if self.is_sqlite else "BEGIN")

    def dispose(self) -> None:
        self.engine.dispose()
