"""Run-state changes of one production, each a guarded UPDATE that names the old state.

A ``RunTable`` is bound to one connection inside one transaction; the step that uses it
decides how many changes go into that transaction.  Every change checks the state it
expects (``WHERE run=? AND status=?``) so two processes can never both win.

A user's runs in hand (C, S, R: at most nproc + nprep of them) are read once per
transaction, by ``held``; in a writing transaction that read locks them (``FOR UPDATE``
on PostgreSQL; SQLite's writer holds the whole database), so nobody else can change them
before the commit.  Every change made through the table returns the rows it changed and
keeps that view current, so the run loop's steps, one after another in one unit of work,
read their runs without another statement.  A change that does not return its rows
drops the view, and the next ``held`` reads again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Executable,
    Text,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from alcapctl.clock import now_iso
from alcapctl.config import OUTPUT_NAMES
from alcapctl.states import ACTIVE, RunState, check_transition
from alcapctl.store.dialect import insert_ignoring_duplicates
from alcapctl.store.fastpath import Statements
from alcapctl.store.records import Failure, ProductionRecord, RunRecord
from alcapctl.store.schema import blobs, datasets, failures, production_table

__all__ = ["Owner", "RunTable"]

Owner = tuple[str, str]  # (user, host)

_CHUNK = 500  # runs per statement: well inside SQLite's limit on bound parameters

# What a run forgets when it goes back to N (abort, recover, retry).
_RESET = dict.fromkeys(
    (
        "user",
        "host",
        "start",
        "stop",
        "claimed",
        "lease",
        "input",
        "job_id",
        "backend",
        "error",
        "modules",
        "modules_sha256",
    )
)


def _in_states(column: Any, letters: Sequence[str]) -> Any:
    """``status IN (...)`` with one fixed parameter per state, not an expanding one, so
    that the statement compiles once to plain SQL (see ``fastpath``)."""
    return column.in_([literal(letter, Text) for letter in letters])


class RunTable:
    """Queries and guarded changes on one production's run table."""

    def __init__(
        self,
        conn: Connection,
        production: ProductionRecord,
        statements: Statements | None = None,  # the Store's; a one-off table builds its own
        *,
        writing: bool = False,  # inside a write transaction: ``held`` locks what it reads
    ) -> None:
        self.conn = conn
        self.statements = statements or Statements()
        self.production = production
        self.table = production.table
        self.writing = writing
        self._held: dict[Owner, dict[int, RunRecord]] = {}  # see the module docstring

    @property
    def now(self) -> str:
        """The time of the change being made: read per change, not per transaction, since
        the run loop's one transaction may span several passes of its steps."""
        return now_iso()

    def _owned(self, owner: Owner | None) -> list[Any]:
        """Conditions on the run's holder, as parameters ``o_user`` and ``o_host``."""
        if owner is None:
            return []
        return [self.table.c.user == bindparam("o_user"), self.table.c.host == bindparam("o_host")]

    def _rows(
        self,
        kind: str,
        shape: tuple[Any, ...],
        build: Callable[[], Executable],
        params: Mapping[str, Any],
    ) -> Sequence[Sequence[Any]]:
        """A hot-path statement of this table, through the driver fast path."""
        return self.statements.rows(self.conn, (self.table.name, kind, *shape), build, params)

    @staticmethod
    def _owner(owner: Owner | None) -> dict[str, str]:
        return {} if owner is None else {"o_user": owner[0], "o_host": owner[1]}

    def _records(self, rows: Iterable[Sequence[Any]]) -> list[RunRecord]:
        ptype, names = self.production.type, self.table.columns.keys()
        return [RunRecord.from_row(ptype, dict(zip(names, row, strict=True))) for row in rows]

    def _changed(self, rows: Iterable[Sequence[Any]]) -> list[int]:
        """The numbers of the runs a change returned (all their columns), each held view
        brought up to date with them."""
        records = self._records(rows)
        for owner, view in self._held.items():
            for record in records:
                if record.status in ACTIVE and (record.user, record.host) == owner:
                    view[record.run] = record
                else:
                    view.pop(record.run, None)
        return sorted(r.run for r in records)

    # -- reading -------------------------------------------------------------------------

    def select(
        self,
        states: Iterable[RunState] | None = None,
        owner: Owner | None = None,
        runs: Iterable[int] | None = None,
        user: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        t = self.table
        letters = None if states is None else tuple(s.value for s in states)
        shape = (letters, owner is not None, runs is not None, user is not None, limit is not None)

        def build() -> Executable:
            query = select(t).order_by(t.c.run)
            if letters is not None:
                query = query.where(_in_states(t.c.status, letters))
            if runs is not None:
                query = query.where(t.c.run.in_(bindparam("runs", expanding=True)))
            if user is not None:
                query = query.where(t.c.user == bindparam("user"))
            query = query.where(*self._owned(owner))
            return query.limit(bindparam("limit")) if limit is not None else query

        params = {"runs": list(runs or ()), "user": user, "limit": limit, **self._owner(owner)}
        return self._records(self._rows("select", shape, build, params))

    def held(self, owner: Owner, states: Iterable[RunState] = ACTIVE) -> list[RunRecord]:
        """``owner``'s runs in ``states`` (some of C, S, R), lowest first: read, and in a
        writing transaction locked, at the first call; kept current by this table's
        changes after it (see the module docstring)."""
        view = self._held.get(owner)
        if view is None:
            t, letters = self.table, tuple(sorted(s.value for s in ACTIVE))

            def build() -> Executable:
                query = select(t).where(_in_states(t.c.status, letters), *self._owned(owner))
                return query.with_for_update() if self.writing else query

            rows = self._rows("held", (letters, self.writing), build, self._owner(owner))
            view = self._held[owner] = {r.run: r for r in self._records(rows)}
        wanted = set(states)
        return [record for _, record in sorted(view.items()) if record.status in wanted]

    def members(self, only_datasets: Sequence[str]) -> set[int]:
        """Runs of this production that belong to any of the given datasets."""
        t = self.table
        query = select(t.c.run).where(
            t.c.run.in_(select(datasets.c.run).where(datasets.c.dataset.in_(list(only_datasets))))
        )
        return {int(r) for r in self.conn.execute(query).scalars()}

    def count(
        self,
        states: Iterable[RunState],
        owner: Owner | None = None,
        only_datasets: Sequence[str] = (),
    ) -> int:
        t = self.table
        letters = tuple(s.value for s in states)

        def build() -> Executable:
            query = select(func.count()).select_from(t).where(_in_states(t.c.status, letters))
            query = query.where(*self._owned(owner))
            if only_datasets:
                chosen = datasets.c.dataset.in_(bindparam("datasets", expanding=True))
                query = query.where(t.c.run.in_(select(datasets.c.run).where(chosen)))
            return query

        shape = (letters, owner is not None, bool(only_datasets))
        params = {"datasets": list(only_datasets), **self._owner(owner)}
        return int(self._rows("count", shape, build, params)[0][0])

    def any(self, states: Iterable[RunState], only_datasets: Sequence[str] = ()) -> bool:
        """Whether any run is in ``states``: stops at the first, whatever the table's size."""
        t = self.table
        letters = tuple(s.value for s in states)

        def build() -> Executable:
            query = select(t.c.run).where(_in_states(t.c.status, letters))
            if only_datasets:
                chosen = datasets.c.dataset.in_(bindparam("datasets", expanding=True))
                query = query.where(t.c.run.in_(select(datasets.c.run).where(chosen)))
            return query.limit(1)

        params = {"datasets": list(only_datasets)}
        return bool(self._rows("any", (letters, bool(only_datasets)), build, params))

    def state_counts(self) -> dict[RunState, int]:
        t = self.table
        rows = self.conn.execute(select(t.c.status, func.count()).group_by(t.c.status))
        return {RunState(s): int(n) for s, n in rows if s in RunState._value2member_map_}

    def counts_by_dataset(self) -> dict[str, dict[RunState, int]]:
        """Runs per dataset and state; a run in two datasets counts in both."""
        t = self.table
        members = select(datasets.c.run, datasets.c.dataset).distinct()
        prod = self.production
        if prod.datasets:
            members = members.where(datasets.c.dataset.in_(prod.datasets))
        if prod.quality:
            members = members.where(datasets.c.quality.in_(prod.quality))
        sub = members.subquery()
        query = (
            select(func.coalesce(sub.c.dataset, "(none)"), t.c.status, func.count())
            .select_from(t.outerjoin(sub, sub.c.run == t.c.run))
            .group_by(sub.c.dataset, t.c.status)
        )
        result: dict[str, dict[RunState, int]] = defaultdict(dict)
        for dataset, status, n in self.conn.execute(query):
            if status in RunState._value2member_map_:
                result[dataset][RunState(status)] = int(n)
        return dict(result)

    def failures(self, runs: Iterable[int] | None = None) -> list[Failure]:
        f = failures
        query = select(f).where(f.c.production == self.production.name)
        if runs is not None:
            query = query.where(f.c.run.in_(list(runs)))
        query = query.order_by(f.c.run, f.c.attempt)
        return [
            Failure(r.run, r.attempt, r.at, r.step, r.user, r.job_id, r.exit_code, r.reason)
            for r in self.conn.execute(query)
        ]

    def base_outputs(self, name: str, runs: Iterable[int]) -> dict[int, str]:
        """The ``name`` output (e.g. ``tree``) of these runs, finished in the base production."""
        if self.production.base is None:
            return {}
        base = production_table("alcapana", self.production.base)
        column = base.c[name]
        query = select(base.c.run, column).where(
            base.c.run.in_(list(runs)),
            base.c.status == RunState.FINISHED.value,
            column.is_not(None),
        )
        return {int(run): str(path) for run, path in self.conn.execute(query)}

    # -- changing ------------------------------------------------------------------------

    def claim(self, n: int, owner: Owner, only_datasets: Sequence[str] = ()) -> list[int]:
        """Atomically move up to ``n`` runs from N to C for ``owner``, lowest runs first:
        one statement, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL."""
        if n <= 0:
            return []
        t = self.table

        def build() -> Executable:
            candidates = select(t.c.run).where(t.c.status == RunState.NEW.value)
            if only_datasets:
                chosen = datasets.c.dataset.in_(bindparam("datasets", expanding=True))
                candidates = candidates.where(t.c.run.in_(select(datasets.c.run).where(chosen)))
            # PostgreSQL: rows another claimer is taking are passed over, not waited for
            # (SQLite takes the database lock instead and renders no FOR UPDATE).
            picked = (
                candidates.order_by(t.c.run)
                .limit(bindparam("n"))
                .with_for_update(skip_locked=True)
                .cte("candidates")  # evaluated once: a sub-select's LIMIT may be rescanned
            )
            return (
                update(t)
                .where(t.c.status == RunState.NEW.value, t.c.run.in_(select(picked.c.run)))
                .values(
                    status="C",
                    user=bindparam("c_user"),
                    host=bindparam("c_host"),
                    claimed=bindparam("c_now"),
                    lease=bindparam("c_now"),
                )
                .returning(*t.c)
            )

        params: dict[str, Any] = {"n": n, "c_user": owner[0], "c_host": owner[1], "c_now": self.now}
        if only_datasets:
            params["datasets"] = list(only_datasets)
        return self._changed(self._rows("claim", (bool(only_datasets),), build, params))

    def move(
        self,
        runs: Sequence[int],
        old: RunState,
        new: RunState,
        owner: Owner | None = None,
        **values: Any,
    ) -> list[int]:
        """Move the given runs that are in ``old`` (and held by ``owner``) to ``new``."""
        return self.move_each({run: {} for run in runs}, old, new, owner, **values)

    def move_each(
        self,
        changes: Mapping[int, Mapping[str, Any]],
        old: RunState,
        new: RunState,
        owner: Owner | None = None,
        **common: Any,
    ) -> list[int]:
        """As ``move``, also setting each run's own column values (the same columns for
        every run): one statement for up to 500 runs, and for one run a statement built
        once and prepared (the run loop's usual case)."""
        check_transition(old, new)
        if len(changes) == 1:
            ((run, own),) = changes.items()
            return self._move_one(run, old, new, owner, {**own, **common})
        t = self.table
        items = list(changes.items())
        moved: list[int] = []
        for start in range(0, len(items), _CHUNK):
            chunk = dict(items[start : start + _CHUNK])
            own = {
                column: case({run: values[column] for run, values in chunk.items()}, value=t.c.run)
                for column in next(iter(chunk.values()))
            }
            stmt = (
                update(t)
                .where(t.c.run.in_(list(chunk)), t.c.status == old.value, *self._owned(owner))
                .values({"status": new.value, **own, **common})
                .returning(*t.c)
            )
            moved += self._changed(self.conn.execute(stmt, self._owner(owner)))
        return sorted(moved)

    def _move_one(
        self, run: int, old: RunState, new: RunState, owner: Owner | None, values: dict[str, Any]
    ) -> list[int]:
        t = self.table
        names = tuple(sorted(values))

        def build() -> Executable:
            return (
                update(t)
                .where(
                    t.c.run == bindparam("one_run"), t.c.status == old.value, *self._owned(owner)
                )
                .values(status=new.value, **{k: bindparam(f"set_{k}") for k in names})
                .returning(*t.c)
            )

        params: dict[str, Any] = {"one_run": run, **self._owner(owner)}
        params.update({f"set_{k}": v for k, v in values.items()})
        shape = (old, new, owner is not None, names)
        return self._changed(self._rows("move", shape, build, params))

    def fail(
        self,
        run: RunRecord,
        *,
        step: str,
        reason: str,
        max_attempts: int,
        retry_state: RunState,
        job_id: str | None = None,
        exit_code: int | None = None,
        **values: Any,
    ) -> RunState | None:
        """Record a failed attempt: back to ``retry_state`` or X at the cap; None if lost race."""
        attempts = run.attempts + 1
        new = RunState.FAILED if attempts >= max_attempts else retry_state
        check_transition(run.status, new)
        t = self.table
        stmt = update(t).where(
            t.c.run == run.run, t.c.status == run.status.value, t.c.attempts == run.attempts
        )
        now = self.now  # the X run's stop is its last failure's time: reports pair them
        changes = {"status": new.value, "attempts": attempts, "error": reason, **values}
        if new is RunState.FAILED:
            changes["stop"] = now
        if not self._changed(self.conn.execute(stmt.values(**changes).returning(*t.c))):
            return None
        self.conn.execute(
            insert(failures).values(
                production=self.production.name,
                run=run.run,
                attempt=attempts,
                at=now,
                step=step,
                user=run.user,
                job_id=job_id,
                exit_code=exit_code,
                reason=reason,
            )
        )
        return new

    def reset(
        self,
        states: Iterable[RunState],
        *,
        owner: Owner | None = None,
        user: str | None = None,
        runs: Iterable[int] | None = None,
        attempts: bool = True,
    ) -> list[int]:
        """Return runs in ``states`` to N as never claimed (abort, recover, retry)."""
        t = self.table
        names = [s.value for s in states]
        for s in states:
            check_transition(s, RunState.NEW)
        stmt = update(t).where(t.c.status.in_(names), *self._owned(owner))
        if user is not None:
            stmt = stmt.where(t.c.user == user)
        if runs is not None:
            stmt = stmt.where(t.c.run.in_(list(runs)))
        values = self._reset_values()
        if not attempts:
            del values["attempts"]
        stmt = stmt.values(**values).returning(*t.c)
        return self._changed(self.conn.execute(stmt, self._owner(owner)))

    def _reset_values(self) -> dict[str, Any]:
        outputs = dict.fromkeys(OUTPUT_NAMES[self.production.type])
        return {"status": "N", "attempts": 0, **_RESET, **outputs}

    def release_stale(self, cutoff: str) -> list[RunRecord]:
        """Runs in C or S whose lease is older than ``cutoff``, returned to N."""
        t = self.table
        held = [RunState.CLAIMED.value, RunState.STAGED.value]
        is_stale = and_(t.c.status.in_(held), func.coalesce(t.c.lease, t.c.claimed, "") < cutoff)
        ptype = self.production.type
        stale = [
            RunRecord.from_row(ptype, r._mapping)
            for r in self.conn.execute(select(t).where(is_stale))
        ]
        if stale:
            self.conn.execute(update(t).where(is_stale).values(**self._reset_values()))
            self._held.clear()  # a held view may hold some of them
        return stale

    def _expired_elsewhere(self, owner: Owner, cutoff: str, same_host: bool) -> list[Any]:
        """R runs of other holders whose lease is older than ``cutoff`` (their loop died);
        ``same_host``: only those held on ``owner``'s host."""
        t = self.table
        expired = [
            t.c.status == RunState.RUNNING.value,
            func.coalesce(t.c.lease, t.c.claimed, "") < cutoff,
            or_(t.c.user.is_(None), t.c.host.is_(None), t.c.user != owner[0], t.c.host != owner[1]),
        ]
        return [*expired, t.c.host == owner[1]] if same_host else expired

    def any_expired_elsewhere(self, owner: Owner, cutoff: str, *, same_host: bool) -> bool:
        stmt = select(self.table.c.run).where(*self._expired_elsewhere(owner, cutoff, same_host))
        return self.conn.execute(stmt.limit(1)).first() is not None

    def take_over_expired(self, owner: Owner, cutoff: str, *, same_host: bool) -> list[int]:
        """Those runs become ``owner``'s, so that its reap records their jobs (local jobs are
        seen on their host alone: ``same_host``)."""
        stmt = (
            update(self.table)
            .where(*self._expired_elsewhere(owner, cutoff, same_host))
            .values(user=owner[0], host=owner[1], lease=self.now)
            .returning(*self.table.c)
        )
        return self._changed(self.conn.execute(stmt))

    def renew_lease(self, owner: Owner) -> int:
        t = self.table
        stmt = (
            update(t)
            .where(t.c.status.in_([s.value for s in ACTIVE]), *self._owned(owner))
            .values(lease=self.now)
            .returning(*t.c)
        )
        return len(self._changed(self.conn.execute(stmt, self._owner(owner))))

    def put_blob(self, content: str) -> str:
        """Store a large text once, keyed by its sha256; returns the key."""
        digest = hashlib.sha256(content.encode()).hexdigest()
        insert_ignoring_duplicates(self.conn, blobs, "sha256", sha256=digest, content=content)
        return digest
