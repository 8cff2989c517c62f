"""RunTable.move_each: many runs, each with its own input path, in few statements."""

from __future__ import annotations

from pathlib import Path

from alcapctl.config import Job, Production
from alcapctl.states import RunState
from alcapctl.store import DatasetRow, RunTable, Store

OWNER = ("tester", "testhost")


def test_move_each_across_chunks_guards_state_and_owner(tmp_path: Path) -> None:
    store, _ = Store.create(f"sqlite:///{tmp_path / 'big.db'}")
    store.import_datasets([DatasetRow(r, "A", "gold") for r in range(1, 1201)], "test")
    prod = Production(type="alcapana", tag="t", job=Job(command="true"))
    record = store.init(prod).record

    def stage_all(runs: RunTable) -> list[int]:
        runs.claim(1100, OWNER)
        inputs = {run: {"input": f"/staging/run{run:05d}.mid"} for run in range(1, 1201)}
        return runs.move_each(inputs, RunState.CLAIMED, RunState.STAGED, OWNER)

    moved = store.runs(record, stage_all, write=True)
    assert moved == list(range(1, 1101))  # 1101.. were never claimed: left alone
    rows = store.runs(record, lambda runs: runs.select(), write=False)
    assert all(r.input == f"/staging/run{r.run:05d}.mid" for r in rows if r.run <= 1100)
    assert {r.status for r in rows if r.run > 1100} == {RunState.NEW}
    assert all(r.input is None for r in rows if r.run > 1100)
    store.close()
