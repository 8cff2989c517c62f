"""The store's API on both dialects through one fixture (``dialect_store``: a SQLite file, then a
PostgreSQL server, each holding conftest's RUNLIST): the same calls give the same answers."""

from __future__ import annotations

import pytest

from alcapctl.config import Job, Production
from alcapctl.errors import UsageError
from alcapctl.states import RunState
from alcapctl.store import DatasetRow, RunTable, Store
from tests.conftest import GOLD_RUNS, RUNLIST


def _production(**fields: object) -> Production:
    return Production.model_validate(
        {"type": "alcapana", "tag": "t", "job": Job(command="true"), **fields}
    )


def test_datasets_import_again_changes_nothing(dialect_store: Store) -> None:
    before = dialect_store.dataset_summary()
    assert dialect_store.import_datasets(RUNLIST, "again") == (0, len(RUNLIST))
    assert dialect_store.dataset_summary() == before
    assert ("Common", None, 1) in before and ("SiR2", "silver", 1) in before


def test_a_conflicting_quality_is_refused_and_nothing_written(dialect_store: Store) -> None:
    before = dialect_store.dataset_summary()
    with pytest.raises(UsageError):
        dialect_store.import_datasets(
            [DatasetRow(2091, "SiR2", "bad"), DatasetRow(9, "New", "gold")], "x"
        )
    assert dialect_store.dataset_summary() == before


def test_init_takes_the_gold_runs_and_numbers_versions(dialect_store: Store) -> None:
    first = dialect_store.init(_production())
    second = dialect_store.init(_production(tag="t2"))
    assert (first.record.version, second.record.version) == (1, 2)
    assert first.added == len(GOLD_RUNS)
    assert [p.version for p in dialect_store.productions()] == [1, 2]
    counts = dialect_store.runs(first.record, RunTable.state_counts, write=False)
    assert counts[RunState.NEW] == len(GOLD_RUNS)
    again = dialect_store.init(_production(version=1))
    assert (again.created, again.added) == (False, 0)


def test_claims_take_each_run_once_lowest_first(dialect_store: Store) -> None:
    record = dialect_store.init(_production()).record
    alice = dialect_store.runs(record, lambda t: t.claim(5, ("alice", "h1")), write=True)
    bob = dialect_store.runs(record, lambda t: t.claim(100, ("bob", "h2")), write=True)
    assert alice == GOLD_RUNS[:5]
    assert sorted(alice + bob) == GOLD_RUNS
    by_dataset = dialect_store.runs(record, RunTable.counts_by_dataset, write=False)
    assert by_dataset["SiR2"][RunState.CLAIMED] == len(
        [r for r in GOLD_RUNS if r < 2110 or r == 3200]
    )
    released = dialect_store.runs(
        record, lambda t: t.reset([RunState.CLAIMED], user="bob"), write=True
    )
    assert sorted(released) == sorted(bob)


def test_run_numbers_and_texts_keep_their_values(dialect_store: Store) -> None:
    """64-bit run numbers (SQLite's INTEGER; bigint on the server) and unicode texts."""
    big = 2**62 + 7
    dialect_store.import_datasets([DatasetRow(big, "Üñï", "gold")], "edges")
    assert ("Üñï", "gold", 1) in dialect_store.dataset_summary()
    record = dialect_store.init(_production(datasets=["Üñï"])).record
    assert dialect_store.runs(record, lambda t: t.claim(1, ("a", "h")), write=True) == [big]
