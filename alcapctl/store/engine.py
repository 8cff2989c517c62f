"""Connections and transactions: BEGIN IMMEDIATE for writes, lock waits with backoff, exit 75.

On PostgreSQL (``postgresql://``, see ``dialect``) the server waits for row locks itself up
to ``lock_timeout``; a server that is down or drops the connection is waited for here the
same way as a held lock, then reported as transient (exit 75).

SQLite is opened without ever creating a file implicitly (``mode=rw``), in its rollback
journal mode (WAL is unsafe on network file systems), with a short driver busy timeout;
longer waits happen here so that the user is told who is waiting for what.  Every
transaction is a function so that a lock error can re-run it whole.  ``--lock-timeout``
is a budget for the whole command: the waits of all its transactions add up to it.

A database is what it claims to be: every command but ``db init`` refuses a file that is
empty, not SQLite, or holds neither alcapctl's nor the 2014 scripts' tables; ``db init``
refuses a non-empty file that is neither.  Nothing is written to a refused file.
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
from sqlalchemy.exc import DBAPIError

from alcapctl.errors import DatabaseError, DatabaseUnavailable, LockTimeout
from alcapctl.store.dialect import (
    Fault,
    begin_snapshot,
    classify,
    display_url,
    postgresql_engine_args,
)
from alcapctl.store.schema import database_id, database_kind, foreign_tables

__all__ = ["Database", "sqlite_path"]

T = TypeVar("T")
log = structlog.get_logger("alcapctl.store")

_DRIVER_BUSY_TIMEOUT = 0.25  # seconds the sqlite3 driver waits by itself before we take over
# Between tries the driver's own busy handler polls; the pause between them stays short,
# since a busy run loop leaves the lock free only for moments (see steps/run.py).
_MAX_RETRY_DELAY = 0.25
_SAY_WAITING_AFTER = 1.0  # ordinary contention is silent; a held lock is announced
_MIN_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING
_SQLITE_HEADER = b"SQLite format 3\0"
_OURS = ("alcapctl", "legacy")


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL, or None for other databases."""
    if not url.startswith("sqlite:"):
        return None
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    if not rest or rest == ":memory:":
        raise DatabaseError(f"{url}: an in-memory database cannot be shared; give a file")
    return Path(urllib.parse.unquote(rest.split("?", 1)[0]))


class _LockWaiter:
    """Backoff while another session holds the lock: says so once, gives up at the deadline."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.tried = time.monotonic()  # when the latest try began
        self.first: float | None = None  # when the first try that met the lock began
        self.delay = 0.02

    def attempt(self) -> None:
        self.tried = time.monotonic()

    def waited(self) -> float:
        """Seconds this transaction has spent waiting for the lock so far."""
        return 0.0 if self.first is None else time.monotonic() - self.first

    def wait(self, fault: Fault = Fault.LOCKED) -> None:
        db = self.db
        now = time.monotonic()
        if self.first is None:
            self.first = self.tried
        deadline = self.first + db.lock_budget
        if now >= deadline and fault is Fault.UNREACHABLE:
            raise DatabaseUnavailable(
                f"{db.location}: the database server could not be reached for "
                f"{db.lock_timeout:g} s; nothing was changed. Try again later."
            )
        if now >= deadline:
            raise LockTimeout(
                f"{db.location}: another session held the database lock "
                f"for more than {db.lock_timeout:g} s; nothing was changed. "
                "Try again, or raise --lock-timeout."
            )
        if not db.waiting_said and now - self.first >= _SAY_WAITING_AFTER:
            log.warning(
                "database server unreachable; trying again"
                if fault is Fault.UNREACHABLE
                else "database locked by another session; waiting",
                database=db.location,
                up_to_seconds=db.lock_timeout,
            )
            db.waiting_said = True
        time.sleep(min(self.delay * (0.5 + random.random()), max(deadline - now, 0.0)))
        self.delay = min(self.delay * 2, _MAX_RETRY_DELAY)


class Database:
    """One database: an engine plus read and write transactions that survive lock waits."""

    def __init__(self, url: str, *, lock_timeout: float = 60.0, create: bool = False) -> None:
        self.url = url
        self.lock_timeout = lock_timeout
        self.lock_budget = lock_timeout  # what is left of it for this command's waits
        self.path = sqlite_path(url)
        fresh = self._check_file(create)
        self.engine = self._engine(create)
        self.waiting_said = False
        self._id: str | None = None
        self._check_contents(create, fresh)

    @property
    def location(self) -> str:
        """The file, or the URL with any password masked: what messages show."""
        return str(self.path) if self.path is not None else display_url(self.url)

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    def _check_file(self, create: bool) -> bool:
        """Refuse an SQLite file that cannot be a database before opening it (opening
        one can write to it); True if it is missing or empty: ``db init`` may make it."""
        path = self.path
        if path is None:
            return False
        if not create and not path.exists():
            raise DatabaseError(
                f"{path}: no such database. Create it with: alcapctl db init --database {path}"
            )
        if path.is_dir():
            raise DatabaseError(f"{path}: is a directory, not a database file")
        try:
            with path.open("rb") as fh:
                header = fh.read(len(_SQLITE_HEADER))
        except FileNotFoundError:
            return True
        except OSError as exc:
            raise DatabaseError(f"{path}: cannot read the database ({exc.strerror})") from None
        if not header and not create:
            raise DatabaseError(
                f"{path}: the file is empty, not a production database; nothing was written. "
                f"Restore it from a backup, or create a new one with: alcapctl db init "
                f"--database {path}"
            )
        if header and header != _SQLITE_HEADER:
            raise DatabaseError(f"{path}: not an SQLite database; nothing was written")
        return not header

    def _check_contents(self, create: bool, fresh: bool) -> None:
        """Refuse a database that holds neither alcapctl's nor the 2014 tables; ``db init``
        accepts one with no table at all where it creates the file or on a server."""
        kind, self._id = self.read(lambda conn: (database_kind(conn), database_id(conn)))
        if kind in _OURS or (create and kind == "empty" and (fresh or self.path is None)):
            return
        where = self.location
        if create:
            foreign = self.read(foreign_tables)
            raise DatabaseError(
                f"{where}: holds other data ({', '.join(foreign[:5]) or 'no table'}), not an "
                "alcapctl or 2014 production database; nothing was written. Give alcapctl a "
                "database of its own"
            )
        raise DatabaseError(
            f"{where}: not a production database (neither alcapctl's nor the 2014 scripts' "
            "tables); nothing was written. Check --database, or create one with: "
            "alcapctl db init"
        )

    def identity(self) -> str:
        """The database's UUID (``alcapctl_meta``), read when it was opened, or once after
        its migration (never inside a transaction)."""
        if self._id is None:
            found = self.read(database_id)
            if found is None:
                raise DatabaseError(f"{self.location}: has no database_id; run db init")
            self._id = found
        return self._id

    def _engine(self, create: bool) -> Engine:
        path = self.path
        if path is None:
            url, args = postgresql_engine_args(self.url, self.lock_timeout)
            return create_engine(url, future=True, **args)
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise DatabaseError(
                f"SQLite {sqlite3.sqlite_version} is too old; alcapctl needs 3.35 or newer"
            )
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        mode = "rwc" if create else "rw"
        uri = f"file:{urllib.parse.quote(str(path))}?mode={mode}"

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=_DRIVER_BUSY_TIMEOUT,
                isolation_level=None,  # we issue BEGIN ourselves (see _begin)
                check_same_thread=False,
            )
            # Still a rollback journal (WAL is unsafe on network file systems), truncated
            # rather than deleted at each commit: a quarter less time per commit.
            conn.execute("PRAGMA journal_mode=TRUNCATE").fetchall()
            return conn

        engine = create_engine("sqlite://", creator=connect, future=True)

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql(conn.get_execution_options().get("alcap_begin", "BEGIN"))

        return engine

    def _run(self, fn: Callable[[Connection], T], begin: str) -> T:
        waiter = _LockWaiter(self)
        try:
            return self._attempt(fn, begin, waiter)
        finally:
            self.lock_budget = max(self.lock_budget - waiter.waited(), 0.0)

    def renew_lock_budget(self) -> None:
        """Give the next transactions the whole --lock-timeout again (a long-running loop
        does at each cycle: its budget bounds one cycle, not days)."""
        self.lock_budget = self.lock_timeout

    def _attempt(self, fn: Callable[[Connection], T], begin: str, waiter: _LockWaiter) -> T:
        while True:
            waiter.attempt()
            try:
                with self.engine.connect() as raw:
                    conn = raw.execution_options(alcap_begin=begin)
                    trans = conn.begin()
                    try:
                        result = fn(conn)
                        self._commit(conn, waiter)
                    except BaseException:
                        trans.rollback()
                        raise
                    trans.commit()
                    return result
            except DBAPIError as exc:
                fault = classify(exc)
                if fault not in (Fault.LOCKED, Fault.UNREACHABLE):
                    raise self._translate(exc, fault) from None
                waiter.wait(fault)

    def _commit(self, conn: Connection, waiter: _LockWaiter) -> None:
        """COMMIT, waiting while readers hold the database; ``fn`` is never run twice.

        A COMMIT refused with SQLITE_BUSY leaves the transaction open, so it is retried
        by itself: the work done in the transaction, and whatever it did outside the
        database (a job submitted, a file linked), is not repeated.
        """
        if not self.is_sqlite:
            return
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        while True:
            try:
                dbapi.commit()
                return
            except sqlite3.OperationalError as exc:
                if classify(exc) is not Fault.LOCKED:
                    raise
                waiter.wait()

    def _translate(self, exc: DBAPIError, fault: Fault) -> Exception:
        text = str(exc.orig).strip()
        where = self.location
        if fault is Fault.TIMED_OUT:
            return LockTimeout(
                f"{where}: the server waited more than {self.lock_timeout:g} s for another "
                "session's lock; nothing was changed. Try again, or raise --lock-timeout."
            )
        if fault is Fault.NO_DATABASE:
            return DatabaseError(
                f"{where}: no such database on the server; alcapctl never creates one. "
                "Ask for an empty database (createdb), then: alcapctl db init"
            )
        if fault is Fault.REFUSED_LOGIN:
            return DatabaseError(
                f"{where}: the server refused the login ({text.splitlines()[-1]}); "
                "put the password in ~/.pgpass or $PGPASSWORD"
            )
        if "not a database" in text or "file is encrypted" in text:
            return DatabaseError(f"{where}: not an SQLite database ({text})")
        if "malformed" in text:
            return DatabaseError(
                f"{where}: the database file is damaged, cut short or "
                f"corrupt ({text}); restore it from a backup (alcapctl backup-restore)"
            )
        if "unable to open" in text:
            return DatabaseError(f"{where}: cannot open the database ({text})")
        if "readonly" in text or "read-only" in text:
            return DatabaseError(f"{where}: the database is read-only ({text})")
        return exc

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a read transaction: one consistent snapshot, on either dialect."""

        def snapshot(conn: Connection) -> T:
            begin_snapshot(conn)
            return fn(conn)

        return self._run(snapshot, "BEGIN")

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction holding the lock from its first statement."""
        return self._run(fn, "BEGIN IMMEDIATE" if self.is_sqlite else "BEGIN")

    def dispose(self) -> None:
        self.engine.dispose()
