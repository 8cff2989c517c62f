"""The backends against real daemons: exit codes, cancel, find, query count.

Time limits are tested end to end in test_productions (Slurm needs a whole minute).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from alcapctl.batch.base import JobInfo, JobSpec, JobState
from alcapctl.config import Resources
from tests.cluster.conftest import Cluster, wait_until_finished
from tests.fakes import install_recorder, recorded

pytestmark = pytest.mark.cluster


def test_exit_codes_and_cancel(
    cluster: Cluster, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    backend = cluster.backend(tmp_path)
    specs = {
        "ok": make_job(1, "echo done", Resources(time="10", memory="100M")),
        "fail": make_job(2, "exit 3"),
        "cancel": make_job(4, "sleep 600"),
    }
    ids = {what: backend.submit(spec) for what, spec in specs.items()}
    assert len(set(ids.values())) == 3
    backend.cancel([ids["cancel"]])

    jobs = wait_until_finished(backend, list(ids.values()), gone_ok=[ids["cancel"]])

    assert jobs[ids["ok"]].state is JobState.ENDED
    failed = jobs[ids["fail"]]
    assert failed.exit_code == 3 or failed.reason == "FAILED (NonZeroExitCode)"
    assert jobs[ids["cancel"]].state in (JobState.FAILED, JobState.GONE)
    # the scheduler's own stdout/stderr went into each job's directory
    assert any(specs["ok"].jobdir.glob(f"{backend.name}*.out"))


def test_find_adopts_a_submitted_job(
    cluster: Cluster, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    backend = cluster.backend(tmp_path)
    spec, other = make_job(10, "sleep 600"), make_job(11, "true")
    job_id = backend.submit(spec)
    try:
        assert backend.find([spec.name, other.name]) == {spec.name: job_id}
    finally:
        backend.cancel([job_id])


@pytest.mark.parametrize("in_flight", [1, 20])
def test_one_status_query_per_poll(
    cluster: Cluster,
    make_job: Callable[..., JobSpec],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_flight: int,
) -> None:
    log = tmp_path / "calls.log"
    install_recorder(tmp_path / "bin", log, [cluster.status_command])
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    backend = cluster.backend(tmp_path)
    ids = [backend.submit(make_job(i, "sleep 600")) for i in range(in_flight)]
    try:
        jobs = backend.poll(ids)
        assert {info.state for info in jobs.values()} <= {JobState.QUEUED, JobState.RUNNING}
        assert recorded(log, cluster.status_command) == 1
    finally:
        backend.cancel(ids)
    jobs = wait_until_finished(backend, ids, gone_ok=ids)
    assert JobState.ENDED not in {info.state for info in jobs.values()}
    assert not set(ids) & cluster.queued_ids()


def test_jobs_the_queue_forgot_come_from_accounting(
    cluster: Cluster, make_job: Callable[..., JobSpec], tmp_path: Path
) -> None:
    """No slurmdbd here: sacct fails, and sacct -c reads the jobcomp file instead; Grid
    Engine answers from qacct.  A job no record knows is GONE, never an error."""
    backend = cluster.backend(tmp_path)
    job_id = backend.submit(make_job(1, "exit 4"))
    wait_until_finished(backend, [job_id])
    forgotten = str(int(job_id) + 100000)
    assert backend.poll([forgotten]) == {forgotten: JobInfo(JobState.GONE)}
    assert backend.accounting([job_id])[job_id].exit_code == 4


def test_an_array_is_one_call_and_its_tasks_stay_apart(
    cluster: Cluster,
    make_job: Callable[..., JobSpec],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "calls.log"
    install_recorder(tmp_path / "bin", log, [cluster.submit_command])
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    backend = cluster.backend(tmp_path)
    bodies = ["echo ran >ran", "exit 3", "sleep 600", "sleep 600", "echo ran >ran"]
    specs = [make_job(i, body) for i, body in enumerate(bodies)]
    ids = [job_id for _, job_id in backend.submit_many(specs, largest=3)]
    assert recorded(log, cluster.submit_command) == 2  # 3 tasks, then 2
    assert len(set(ids)) == 5
    assert len({job_id.split(backend.task_separator)[0] for job_id in ids}) == 2
    assert backend.find([spec.name for spec in specs]) == {
        spec.name: job_id for spec, job_id in zip(specs, ids, strict=True)
    }

    backend.cancel([ids[2]])  # that task only
    assert backend.poll([ids[3]])[ids[3]].state in (JobState.QUEUED, JobState.RUNNING)
    backend.cancel([ids[3]])
    jobs = wait_until_finished(backend, ids, gone_ok=ids[2:4])

    for position in (0, 4):
        assert jobs[ids[position]].state is JobState.ENDED
        assert (specs[position].jobdir / "ran").read_text() == "ran\n"
    failed = jobs[ids[1]]
    assert failed.exit_code == 3 or failed.reason == "FAILED (NonZeroExitCode)"
    assert not (specs[1].jobdir / "ran").exists()
    assert {jobs[ids[i]].state for i in (2, 3)} <= {JobState.FAILED, JobState.GONE}
    assert not set(ids) & cluster.queued_ids()
