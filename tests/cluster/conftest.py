"""Real Slurm and Grid Engine (started by `make test-cluster`); skipped when they are not up."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from alcapctl.batch.base import Backend, JobInfo, JobSpec, JobState
from alcapctl.batch.scheduler import SchedulerBackend
from alcapctl.batch.sge import SgeBackend, parse_qstat
from alcapctl.batch.slurm import SlurmBackend
from alcapctl.batch.wrapper import job_dir
from alcapctl.config import Resources

IN_FLIGHT = {JobState.QUEUED, JobState.RUNNING, JobState.UNKNOWN}


@dataclass(frozen=True)
class Cluster:
    """One real scheduler and what the tests need to know of it."""

    backend: type[SchedulerBackend]
    probe: tuple[str, ...]  # answers only when the daemons are up
    status_command: str  # the one status query of a poll
    submit_command: str
    short_limit: str  # the shortest time limit it enforces, in [job.resources] time form
    timeout_reason: str  # the scheduler's word for a job killed by its time limit
    queue_listing: tuple[str, ...]  # the jobs still queued, running or being killed, tasks apart

    def queued_ids(self) -> set[str]:
        """Ids of the jobs and array tasks the scheduler still lists as queued, running or
        being killed."""
        listing = subprocess.run(self.queue_listing, capture_output=True, text=True).stdout
        if listing.lstrip().startswith("<"):  # qstat -xml -g d
            return set(parse_qstat(listing))
        return set(listing.split())

    def up(self) -> bool:
        try:
            return subprocess.run(self.probe, capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False


CLUSTERS = [
    Cluster(
        SlurmBackend,
        ("sinfo", "-h"),
        "squeue",
        "sbatch",
        "1",
        "TIMEOUT",
        ("squeue", "-h", "-r", "-o", "%i"),
    ),
    # h_rt is enforced within seconds; Slurm's limits are whole minutes
    Cluster(
        SgeBackend,
        ("qstat",),
        "qstat",
        "qsub",
        "0:00:05",
        "failed 37",
        ("qstat", "-xml", "-g", "d"),
    ),
]


@pytest.fixture(params=CLUSTERS, ids=lambda cluster: cluster.backend.name)
def cluster(request: pytest.FixtureRequest) -> Cluster:
    chosen: Cluster = request.param
    if not chosen.up():
        pytest.skip(f"{chosen.backend.name} is not up (make test-cluster starts it)")
    return chosen


def job_script(path: Path, body: str) -> Path:
    """Not executable, like the job wrapper: backends must not need the x bit."""
    path.write_text(f"#!/bin/sh\n{body}\n")
    return path


@pytest.fixture
def make_job(tmp_path: Path) -> Callable[..., JobSpec]:
    """A JobSpec for ``run`` running ``body`` as a shell script, its files under tmp_path.
    Names are unique to the test: the queue remembers earlier tests' jobs."""
    production = uuid.uuid4().hex[:8]

    def make(run: int, body: str, resources: Resources | None = None) -> JobSpec:
        name = f"alcap-{production}-{run:05d}-a1"
        jobdir = job_dir(tmp_path, name)  # where find looks for an array task's link
        jobdir.mkdir(parents=True)
        script = job_script(jobdir / "job.sh", body)
        return JobSpec(name, script, jobdir, resources or Resources())

    return make


def wait_until_finished(
    backend: Backend, job_ids: Sequence[str], gone_ok: Sequence[str] = (), limit: float = 240
) -> dict[str, JobInfo]:
    """Poll (once every 2 s, as a reaper would) until no job is in flight; a job GONE (no
    record yet) is waited for unless it is in ``gone_ok`` (Grid Engine keeps no record of a
    job deleted before it ran).  Gives up after ``limit`` s: a stuck daemon fails the test."""
    deadline = time.monotonic() + limit
    while True:
        jobs = backend.poll(job_ids)
        waiting = [
            job_id
            for job_id, info in jobs.items()
            if info.state in IN_FLIGHT or (info.state is JobState.GONE and job_id not in gone_ok)
        ]
        if not waiting:
            return jobs
        if time.monotonic() > deadline:
            pytest.fail(f"jobs still in flight after {limit:g} s: {jobs}")
        time.sleep(2)
