"""reap keeps the scheduler's reason for a failed job, asked in the same one query."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alcapctl.batch.base import Backend
from alcapctl.batch.sge import SgeBackend
from alcapctl.batch.slurm import SlurmBackend
from alcapctl.batch.wrapper import EXIT_FILE, job_dir, job_name
from alcapctl.states import RunState
from alcapctl.steps.context import StepContext
from alcapctl.steps.reap import reap
from alcapctl.steps.submit import submit
from tests.batch_support import make_context, rows, stage
from tests.fakes import FakeScheduler


@pytest.fixture
def ctx(make_production: Callable[..., Path], tmp_path: Path) -> Iterator[StepContext]:
    context = make_context(make_production, tmp_path, grace=600)
    yield context
    context.store.close()


def _submitted(ctx: StepContext, backend: Backend) -> tuple[int, str, Path]:
    """One staged run submitted to ``backend``: (run, job id, job directory)."""
    [run] = stage(ctx, ["hang"])
    submit(ctx, backend)
    job_id = rows(ctx)[run].job_id
    assert job_id is not None
    return run, job_id, job_dir(ctx.workdir, job_name(ctx.record.short, run, 1))


def test_time_limit_kill_waits_for_the_scheduler_reason(
    ctx: StepContext, fake_scheduler: FakeScheduler
) -> None:
    backend = SlurmBackend(ctx.workdir)
    run, job_id, jobdir = _submitted(ctx, backend)
    # Slurm's SIGTERM at the time limit: the wrapper wrote 143 while Slurm still kills the job
    (jobdir / EXIT_FILE).write_text("143\n")
    fake_scheduler.add_jobs({job_id: (jobdir.name, "COMPLETING", True)})
    reap(ctx, backend)
    assert rows(ctx)[run].status is RunState.RUNNING

    fake_scheduler.add_jobs({job_id: (jobdir.name, "TIMEOUT", True)})
    reap(ctx, backend)
    record = rows(ctx)[run]
    assert record.status is RunState.STAGED  # attempt 1 of 2 failed
    assert record.error is not None and "TIMEOUT" in record.error
    assert "killed by signal 15" in record.error
    assert len(fake_scheduler.calls("squeue")) == 2


def test_job_stuck_in_an_error_state_is_deleted_and_retried(
    make_production: Callable[..., Path], tmp_path: Path, fake_scheduler: FakeScheduler
) -> None:
    """SGE keeps a job that cannot start (Eqw) queued forever: reap gives up after grace,
    deletes it, and the run is retried as a new attempt."""
    ctx = make_context(make_production, tmp_path, grace=0)
    backend = SgeBackend(ctx.workdir)
    run, job_id, jobdir = _submitted(ctx, backend)
    fake_scheduler.add_jobs({job_id: (jobdir.name, "Eqw", True)})
    reap(ctx, backend)  # first sight of the error: grace starts
    reap(ctx, backend)
    record = rows(ctx)[run]
    assert record.status is RunState.STAGED and record.attempts == 1
    assert record.error is not None and "stuck in the sge queue" in record.error
    assert [call[-1] for call in fake_scheduler.calls("qdel")] == [job_id]
    ctx.store.close()
