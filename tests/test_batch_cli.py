"""submit, reap and retry through the CLI, and jobs that outlive the process that started them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from alcapctl.batch import get_backend
from alcapctl.batch.local import LocalBackend
from alcapctl.errors import UsageError
from alcapctl.states import RunState
from alcapctl.steps.context import StepContext
from tests.batch_support import make_context, rows, stage, wait_for_jobs
from tests.conftest import run_process


@pytest.fixture
def ctx(make_production: Callable[..., Path], tmp_path: Path) -> Iterator[StepContext]:
    context = make_context(make_production, tmp_path)
    yield context
    context.store.close()


def _prod(ctx: StepContext) -> Path:
    assert ctx.settings.production_file is not None
    return ctx.settings.production_file


def test_jobs_outlive_the_submitting_process(ctx: StepContext) -> None:
    runs = stage(ctx, ["slow", "ok"])
    done = run_process("submit", _prod(ctx))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"Submitting run: {r}" for r in runs]
    records = rows(ctx)
    # the submitting process is gone; the slow job is not (or has written its exit file)
    watcher = LocalBackend(ctx.workdir)
    wait_for_jobs(ctx, watcher, runs)
    done = run_process("reap", _prod(ctx), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["finished"] == runs
    assert all(rows(ctx)[r].status is RunState.FINISHED for r in runs)
    assert {records[r].job_id for r in runs} == {rows(ctx)[r].job_id for r in runs}


def test_submit_dry_run_and_retry_json(ctx: StepContext, run_cli: Callable[..., Result]) -> None:
    [run] = stage(ctx, ["fail"])
    result = run_cli("submit", _prod(ctx), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["submitted"] == {str(run): f"alcap-alcapana1-{run:05d}-a1"}
    assert rows(ctx)[run].status is RunState.STAGED
    backend = LocalBackend(ctx.workdir)
    for code in (0, 1):  # a failed attempt, then X at max_attempts: exit 1
        assert run_cli("submit", _prod(ctx)).exit_code == 0
        wait_for_jobs(ctx, backend, [run])
        assert run_cli("reap", _prod(ctx)).exit_code == code
    assert rows(ctx)[run].status is RunState.FAILED
    result = run_cli("retry", _prod(ctx), "--run", str(run), "--json")
    assert json.loads(result.stdout) == {"production": "alcapana_v1", "reset": [run]}
    result = run_cli("retry", _prod(ctx))
    assert result.exit_code == 2 and "--failed" in result.stderr


def test_get_backend() -> None:
    assert isinstance(get_backend("local", Path("/tmp")), LocalBackend)
    with pytest.raises(UsageError, match="htcondor, local, sge, slurm"):
        get_backend("pbs", Path("/tmp"))
