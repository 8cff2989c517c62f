"""A hypothesis state machine over import, init, claim and release, checked against a model,
on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import create_engine, inspect, text

from alcapctl.config import Job, Production
from alcapctl.errors import UsageError
from alcapctl.states import RunState
from alcapctl.store import DatasetRow, RunTable, Store
from alcapctl.store.productions import EmptySelection

DATASETS = ("A", "B", "C")
QUALITIES = ("gold", "silver", None)
USERS = ("alice", "bob", "carol")
LEGACY = [
    "run",
    "status",
    "user",
    "start",
    "stop",
    "tree",
    "hist",
    "odb",
    "olog",
    "elog",
    "modules",
]

rows_strategy = st.lists(
    st.tuples(st.integers(1, 40), st.sampled_from(DATASETS), st.sampled_from(QUALITIES)),
    min_size=1,
    max_size=15,
)


def _production(version: int, datasets: tuple[str, ...], quality: tuple[str, ...]) -> Production:
    return Production(
        type="alcapana",
        tag=f"tag{version}",
        version=version,
        datasets=datasets,
        quality=quality,
        job=Job(command="true"),
    )


class ProductionMachine(RuleBasedStateMachine):
    def __init__(self, new_database: Callable[[], str]) -> None:
        super().__init__()
        self.new_database = new_database

    @initialize()
    def create(self) -> None:
        self.store, _ = Store.create(self.new_database())
        self.membership: dict[tuple[int, str], str | None] = {}
        self.productions: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self.expected_runs: dict[int, set[int]] = {}
        self.claimed: dict[int, dict[int, str]] = {}

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()

    def _selected(self, datasets: tuple[str, ...], quality: tuple[str, ...]) -> set[int]:
        return {
            run
            for (run, ds), q in self.membership.items()
            if (not datasets or ds in datasets) and (not quality or q in quality)
        }

    @rule(rows=rows_strategy)
    def import_rows(self, rows: list[tuple[int, str, str | None]]) -> None:
        batch = [DatasetRow(r, d, q, i + 1) for i, (r, d, q) in enumerate(rows)]
        seen: dict[tuple[int, str], str | None] = {}
        conflict = False
        for r, d, q in rows:
            known = self.membership.get((r, d), seen.get((r, d), q))
            conflict |= known != q
            seen[(r, d)] = q
        try:
            self.store.import_datasets(batch, "generated")
        except UsageError:
            assert conflict
            return
        assert not conflict
        self.membership.update(seen)

    @rule(
        version=st.integers(1, 3),
        datasets=st.lists(st.sampled_from(DATASETS), unique=True, max_size=2).map(tuple),
        quality=st.sampled_from([("gold",), (), ("gold", "silver")]),
    )
    def init(self, version: int, datasets: tuple[str, ...], quality: tuple[str, ...]) -> None:
        if version in self.productions:
            datasets, quality = self.productions[version]
        known = {d for _, d in self.membership}
        empty = version not in self.productions and not self._selected(datasets, quality)
        try:
            self.store.init(_production(version, datasets, quality))
        except EmptySelection:  # a new production must select some run
            assert empty and set(datasets) <= known
            return
        except UsageError:
            assert not set(datasets) <= known
            return
        assert not empty
        self.productions[version] = (datasets, quality)
        self.expected_runs.setdefault(version, set()).update(self._selected(datasets, quality))
        self.claimed.setdefault(version, {})

    @rule(version=st.integers(1, 3), user=st.sampled_from(USERS), n=st.integers(0, 8))
    def claim(self, version: int, user: str, n: int) -> None:
        if version not in self.productions:
            return
        record = self.store.find(self._prod(version))
        got = self.store.runs(record, lambda t: t.claim(n, (user, "h")), write=True)
        free = self.expected_runs[version] - set(self.claimed[version])
        assert len(got) == min(n, len(free))
        assert set(got) <= free
        assert got == sorted(free)[: len(got)]  # lowest runs first
        self.claimed[version].update(dict.fromkeys(got, user))

    @rule(version=st.integers(1, 3), user=st.sampled_from(USERS))
    def release(self, version: int, user: str) -> None:
        if version not in self.productions:
            return
        record = self.store.find(self._prod(version))

        def reset(t: RunTable) -> list[int]:
            return t.reset([RunState.CLAIMED], user=user)

        released = self.store.runs(record, reset, write=True)
        mine = {r for r, u in self.claimed[version].items() if u == user}
        assert set(released) == mine
        for run in mine:
            del self.claimed[version][run]

    def _prod(self, version: int) -> Production:
        return _production(version, *self.productions[version])

    @invariant()
    def table_matches_model(self) -> None:
        if not hasattr(self, "store"):
            return
        with self.store.db.engine.connect() as conn:
            for version, runs in self.expected_runs.items():
                table = f"alcapana_v{version}"
                cols = [c["name"] for c in inspect(conn).get_columns(table)]
                assert cols[: len(LEGACY)] == LEGACY
                rows = conn.execute(text(f'SELECT run, status, "user" FROM {table}')).all()
                assert len(rows) == len({r for r, _, _ in rows})  # no run in two rows
                assert {r for r, _, _ in rows} == runs  # counts conserved
                for run, status, user in rows:
                    if run in self.claimed[version]:
                        assert (status, user) == ("C", self.claimed[version][run])
                    else:
                        assert (status, user) == ("N", None)


MACHINE_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def test_production_machine(database_url: str) -> None:
    """Each example starts from an empty database: a new file, or an emptied server schema."""
    examples = iter(range(10**6))

    def new_database() -> str:
        n = next(examples)
        if database_url.startswith("sqlite:"):
            return database_url.replace("production.db", f"p{n}.db")
        engine = create_engine(database_url.replace("postgresql:", "postgresql+psycopg:"))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        return database_url

    # A server round trip costs ten times a file's: fewer examples keep the suite's time.
    chosen = (
        MACHINE_SETTINGS
        if database_url.startswith("sqlite:")
        else settings(MACHINE_SETTINGS, max_examples=40)
    )

    # run_state_machine_as_test takes any factory, yet is annotated to take a class
    class FreshMachine(ProductionMachine):
        def __init__(self) -> None:
            super().__init__(new_database)

    run_state_machine_as_test(FreshMachine, settings=chosen)
