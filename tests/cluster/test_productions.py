"""Whole productions on real Slurm and Grid Engine through the alcapctl CLI, in processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from alcapctl.states import RunState
from alcapctl.steps.context import StepContext
from alcapctl.store import DatasetRow, Store
from tests.cluster.conftest import Cluster
from tests.conftest import ALCAPCTL, GOLD_RUNS, run_process
from tests.daq import runs_of
from tests.fakes import install_recorder, recorded

pytestmark = pytest.mark.cluster

AL100 = [2119, 2120, 2121, 2122, 2123, 2124]  # the Al100 gold runs of the fixture run list


@pytest.fixture
def production(
    cluster: Cluster, make_production: Callable[..., Path], tmp_path: Path
) -> Callable[..., Path]:
    """A production on ``cluster`` reading raw files from a file:// archive, registered."""
    archive = tmp_path / "archive"
    archive.mkdir()
    for run in GOLD_RUNS:
        (archive / f"run{run:05d}.mid").write_text(f"raw data of run {run}\n")

    def make(command: str, resources: dict[str, Any] | None = None, **fields: Any) -> Path:
        prod = make_production(
            backend=cluster.backend.name,
            archive={"url": f"file://{archive}"},
            outputs={"hist": "", "odb": ""},
            job={"command": command, "resources": resources or {}},
            # grace: how long a failed job still listed may take to get its reason
            limits={"nproc": 20, "nprep": 20, "pause": 1, "grace": 10, "max_attempts": 2},
            **fields,
        )
        done = run_process("init", prod)
        assert done.returncode == 0, done.stderr
        return prod

    return make


def test_twenty_runs_submitted_by_one_process_reaped_by_another(
    cluster: Cluster,
    production: Callable[..., Path],
    context: Callable[[Path], StepContext],
    tmp_path: Path,
) -> None:
    prod = production("sleep 2; cat {input} > {tree}")
    done = run_process("run", prod, "--once")
    assert done.returncode == 0, done.stderr
    ctx = context(prod)
    submitted = runs_of(ctx)
    assert {r.status for r in submitted.values()} == {RunState.RUNNING}
    assert len(submitted) == len(GOLD_RUNS) == 20

    # one status query for the 20 jobs in flight, counted in front of the real command
    calls = tmp_path / "calls.log"
    install_recorder(tmp_path / "bin", calls, [cluster.status_command])
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    done = run_process("reap", prod, env={"PATH": path})
    assert done.returncode == 0, done.stderr
    assert recorded(calls, cluster.status_command) == 1

    done = run_process("run", prod, timeout=300)
    assert done.returncode == 0, done.stderr
    finished = runs_of(ctx)
    assert {r.status for r in finished.values()} == {RunState.FINISHED}
    for run, record in finished.items():
        assert record.backend == cluster.backend.name
        assert record.job_id == submitted[run].job_id and record.job_id
        tree = ctx.output_paths(run)["tree"]
        assert tree.read_text() == f"raw data of run {run}\n"
        assert record.outputs["tree"] == str(tree)


def test_failed_and_timed_out_jobs_are_retried_then_failed(
    cluster: Cluster, production: Callable[..., Path], context: Callable[[Path], StepContext]
) -> None:
    command = "case {run} in 2119) exit 3;; 2120) sleep 600;; esac; cat {input} > {tree}"
    prod = production(command, {"time": cluster.short_limit}, datasets=["Al100"])
    done = run_process("run", prod, timeout=400)
    assert done.returncode == 1, done.stderr  # finished, with runs failed for good
    runs = runs_of(context(prod))
    assert {run: runs[run].status for run in AL100} == {
        2119: RunState.FAILED,
        2120: RunState.FAILED,
        **{run: RunState.FINISHED for run in AL100[2:]},
    }
    assert runs[2119].attempts == runs[2120].attempts == 2
    separator = cluster.backend.task_separator  # the six went as one array, tasks apart
    assert all(separator in (runs[run].job_id or "") for run in AL100[2:])
    assert "exit code 3" in (runs[2119].error or "")
    assert cluster.timeout_reason in (runs[2120].error or "")


def test_ctrl_c_cancels_every_job(
    cluster: Cluster, production: Callable[..., Path], context: Callable[[Path], StepContext]
) -> None:
    prod = production("sleep 600")
    loop = subprocess.Popen(
        [*ALCAPCTL, "run", str(prod)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ctx = context(prod)
    try:
        deadline = time.monotonic() + 120
        while sum(r.status is RunState.RUNNING for r in runs_of(ctx).values()) < 20:
            assert loop.poll() is None and time.monotonic() < deadline, loop.stderr
            time.sleep(1)
        job_ids = {r.job_id for r in runs_of(ctx).values()}
        assert all(cluster.backend.task_separator in (job_id or "") for job_id in job_ids)
        loop.send_signal(signal.SIGINT)
        _, stderr = loop.communicate(timeout=120)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()
    assert loop.returncode == 130, stderr
    assert {r.status for r in runs_of(ctx).values()} == {RunState.NEW}
    for _ in range(30):  # jobs being killed stay listed for a moment
        if not job_ids & cluster.queued_ids():
            break
        time.sleep(1)
    assert not job_ids & cluster.queued_ids()


BIG = list(range(5001, 5041))  # 40 gold runs


@pytest.fixture
def forty_runs(
    cluster: Cluster, make_production: Callable[..., Path], db_path: Path, tmp_path: Path
) -> Path:
    """A registered production of 40 runs on ``cluster``, read from a file:// archive."""
    store = Store.open(f"sqlite:///{db_path}")
    store.import_datasets([DatasetRow(run, "Big", "gold") for run in BIG], "arrays")
    store.close()
    archive = tmp_path / "archive"
    archive.mkdir()
    for run in BIG:
        (archive / f"run{run:05d}.mid").write_text(f"raw data of run {run}\n")
    prod = make_production(
        backend=cluster.backend.name,
        datasets=["Big"],
        archive={"url": f"file://{archive}"},
        outputs={"hist": "", "odb": ""},
        job={"command": "cat {input} > {tree}"},
        limits={"nproc": 40, "nprep": 40, "pause": 1, "grace": 10, "transfers": 4},
    )
    done = run_process("init", prod)
    assert done.returncode == 0, done.stderr
    return prod


def test_forty_runs_go_in_a_few_scheduler_calls(
    cluster: Cluster,
    forty_runs: Path,
    context: Callable[[Path], StepContext],
    data_dir: Path,
    tmp_path: Path,
) -> None:
    calls = tmp_path / "calls.log"
    install_recorder(tmp_path / "bin", calls, [cluster.submit_command])
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    done = run_process("run", forty_runs, env={"PATH": path}, timeout=400)
    assert done.returncode == 0, done.stderr
    assert 1 <= recorded(calls, cluster.submit_command) <= 4

    ctx = context(forty_runs)
    runs = runs_of(ctx)
    assert {run: record.status for run, record in runs.items()} == {
        run: RunState.FINISHED for run in BIG
    }
    separator = cluster.backend.task_separator
    assert len({record.job_id for record in runs.values()}) == 40
    assert all(separator in (record.job_id or "") for record in runs.values())
    for run, record in runs.items():
        tree = data_dir / "tree" / f"v{ctx.record.version}" / f"tree{run:05d}.root"  # legacy
        assert record.outputs["tree"] == str(tree)
        assert tree.read_text() == f"raw data of run {run}\n"
