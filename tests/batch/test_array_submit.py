"""The submit step handing its ready runs to a scheduler as arrays (a fake Slurm on PATH
for what no real daemon here is needed for: a refused array, an interrupted submit)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from alcapctl.batch.base import JobSpec, SchedulerError
from alcapctl.batch.slurm import SlurmBackend
from alcapctl.states import RunState
from alcapctl.steps.context import StepContext
from alcapctl.steps.submit import submit
from tests.batch_support import make_context, rows, stage
from tests.fakes import FakeScheduler

REFUSED = "sbatch: error: Batch job submission failed: Invalid job array specification\n"


def _context(
    make_production: Callable[..., Path], tmp_path: Path, fake: FakeScheduler, **limits: int
) -> StepContext:
    fake.answer("scontrol", stdout="MaxArraySize            = 2\nMinJobAge = 300 sec\n")
    return make_context(make_production, tmp_path, **limits)


def _array_calls(fake: FakeScheduler) -> list[str]:
    return [
        next((a for a in call if a.startswith("--array=")), "") for call in fake.calls("sbatch")
    ]


def test_arrays_are_cut_by_the_schedulers_cap(
    make_production: Callable[..., Path], tmp_path: Path, fake_scheduler: FakeScheduler
) -> None:
    ctx = _context(make_production, tmp_path, fake_scheduler, nproc=5)
    runs = stage(ctx, ["ok"] * 5)
    result = submit(ctx, SlurmBackend(ctx.workdir))
    assert _array_calls(fake_scheduler) == ["--array=0-1", "--array=0-1", ""]
    assert [result.submitted[run] for run in runs] == ["1_0", "1_1", "2_0", "2_1", "3"]
    assert {run: record.job_id for run, record in rows(ctx).items() if run in runs} == {
        run: result.submitted[run] for run in runs
    }
    assert len(fake_scheduler.calls("scontrol")) == 1
    ctx.store.close()


def test_limits_array_zero_submits_one_job_per_run(
    make_production: Callable[..., Path], tmp_path: Path, fake_scheduler: FakeScheduler
) -> None:
    ctx = _context(make_production, tmp_path, fake_scheduler, array=0)
    stage(ctx, ["ok"] * 3)
    submit(ctx, SlurmBackend(ctx.workdir))
    assert _array_calls(fake_scheduler) == ["", "", ""]
    ctx.store.close()


def test_a_refused_array_fails_no_run(
    make_production: Callable[..., Path], tmp_path: Path, fake_scheduler: FakeScheduler
) -> None:
    ctx = _context(make_production, tmp_path, fake_scheduler)
    runs = stage(ctx, ["ok", "ok"])
    before = rows(ctx)
    fake_scheduler.answer("sbatch", stderr=REFUSED, exit=1)
    with pytest.raises(SchedulerError, match="Invalid job array specification"):
        submit(ctx, SlurmBackend(ctx.workdir))
    assert {run: rows(ctx)[run] for run in runs} == {run: before[run] for run in runs}
    assert all(before[run].status is RunState.STAGED for run in runs)
    ctx.store.close()


class _KilledAfterSubmit(SlurmBackend):
    """Dies right after the scheduler took the array, before any id reached the database."""

    def submit_many(
        self, specs: Sequence[JobSpec], *, largest: int
    ) -> Iterator[tuple[JobSpec, str]]:
        list(super().submit_many(specs, largest=largest))
        raise KeyboardInterrupt
        yield  # a generator, like the real one


def test_an_interrupted_array_submit_is_adopted_task_by_task(
    make_production: Callable[..., Path], tmp_path: Path, fake_scheduler: FakeScheduler
) -> None:
    ctx = _context(make_production, tmp_path, fake_scheduler)
    runs = stage(ctx, ["ok", "ok"])
    with pytest.raises(KeyboardInterrupt):
        submit(ctx, _KilledAfterSubmit(ctx.workdir))
    assert {rows(ctx)[run].status for run in runs} == {RunState.STAGED}

    result = submit(ctx, SlurmBackend(ctx.workdir))
    assert result.adopted == {runs[0]: "1_0", runs[1]: "1_1"}
    assert len(fake_scheduler.calls("sbatch")) == 1  # nothing submitted twice
    assert {run: rows(ctx)[run].job_id for run in runs} == result.adopted
    ctx.store.close()
