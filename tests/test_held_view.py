"""RunTable.held: a user's runs in hand, read once per transaction and kept current by the
table's own changes; on PostgreSQL the rows it read stay locked until the commit.  Every
test runs on both dialects (``dialect_store``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alcapctl.config import Job, Production
from alcapctl.errors import LockTimeout
from alcapctl.states import ACTIVE, RunState
from alcapctl.store import ProductionRecord, RunTable, Store

ALICE, BOB = ("alice", "h1"), ("bob", "h2")
C, S, R, F = RunState.CLAIMED, RunState.STAGED, RunState.RUNNING, RunState.FINISHED
NEXT = {C: S, S: R, R: F}
COLUMN = {C: "input", S: "job_id", R: "tree"}

owners = st.sampled_from([ALICE, BOB])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("claim"), owners, st.integers(0, 4)),
        st.tuples(st.just("move"), owners, st.sampled_from([C, S, R]), st.integers(1, 3)),
        st.tuples(st.just("fail"), owners, st.sampled_from([C, S, R]), st.integers(1, 2)),
        st.tuples(st.just("reset"), owners),
        st.tuples(st.just("renew"), owners),
    ),
    max_size=12,
)


class _RolledBack(Exception):
    """Raised at the end of an example so that its transaction leaves nothing behind."""


def _record(store: Store) -> ProductionRecord:
    prod = Production(type="alcapana", tag="held", job=Job(command="true"))
    return store.init(prod).record


def _apply(table: RunTable, op: tuple[Any, ...]) -> None:
    kind, owner = op[0], op[1]
    if kind == "claim":
        table.claim(op[2], owner)
    elif kind == "move":
        runs = table.held(owner, (op[2],))[: op[3]]
        changes = {r.run: {COLUMN[op[2]]: f"{op[2].value}-{r.run}"} for r in runs}
        table.move_each(changes, op[2], NEXT[op[2]], owner, lease=table.now)
    elif kind == "fail":
        for run in table.held(owner, (op[2],))[:1]:
            retry = S if op[2] is R else op[2]
            table.fail(run, step="test", reason="x", max_attempts=op[3], retry_state=retry)
    elif kind == "reset":
        table.reset(ACTIVE, owner=owner)
    else:
        table.renew_lease(owner)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_held_is_what_a_fresh_read_says_after_every_change(
    dialect_store: Store, ops: list[tuple[Any, ...]]
) -> None:
    record = _record(dialect_store)

    def check(table: RunTable) -> None:
        for op in ops:
            _apply(table, op)
            for owner in (ALICE, BOB):
                assert table.held(owner) == table.select(states=ACTIVE, owner=owner)
                assert table.held(owner, (S,)) == table.select(states=(S,), owner=owner)
        raise _RolledBack

    with pytest.raises(_RolledBack):
        dialect_store.runs(record, check, write=True)


def test_a_writer_holds_its_runs_locked_until_it_commits(store_url: str) -> None:
    """Another session cannot change the runs a writing transaction read with ``held``
    (PostgreSQL: FOR UPDATE; SQLite: the writer holds the whole database) until the
    commit; then it can."""
    first, second = Store.open(store_url), Store.open(store_url, 0.5)
    try:
        record = _record(first)
        claimed = first.runs(record, lambda t: t.claim(2, ALICE), write=True)

        def read_then_wait(table: RunTable) -> None:
            assert [r.run for r in table.held(ALICE)] == claimed
            with pytest.raises(LockTimeout):
                second.runs(record, lambda t: t.reset(ACTIVE, owner=ALICE), write=True)

        first.runs(record, read_then_wait, write=True)
        done = second.runs(record, lambda t: t.reset(ACTIVE, owner=ALICE), write=True)
        assert done == claimed
    finally:
        first.close()
        second.close()
