"""Every backend: one status query per poll for 1 or 500 jobs, and a failed query (timeout,
non-zero exit, garbage) raises SchedulerError instead of reading as failed jobs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alcapctl.batch import command
from alcapctl.batch.base import JobState, SchedulerError
from alcapctl.batch.htcondor import HTCondorBackend
from alcapctl.batch.scheduler import SchedulerBackend
from alcapctl.batch.sge import SgeBackend
from alcapctl.batch.slurm import SlurmBackend
from tests.fakes import FakeScheduler


@dataclass(frozen=True)
class Scheduler:
    backend: type[SchedulerBackend]
    status_command: str
    running: Any  # the native running state the fake reports
    job_id_suffix: str = ""


SCHEDULERS = [
    Scheduler(SlurmBackend, "squeue", "RUNNING"),
    Scheduler(SgeBackend, "qstat", "r"),
    Scheduler(HTCondorBackend, "condor_q", 2, ".0"),
]


@pytest.fixture(params=SCHEDULERS, ids=lambda scheduler: scheduler.backend.name)
def scheduler(request: pytest.FixtureRequest) -> Scheduler:
    chosen: Scheduler = request.param
    return chosen


@pytest.mark.parametrize("in_flight", [1, 500])
def test_one_status_query_per_poll(
    scheduler: Scheduler, fake_scheduler: FakeScheduler, tmp_path: Path, in_flight: int
) -> None:
    fake_scheduler.add_jobs(
        {str(i): (f"alcap-p-{i:05d}-a1", scheduler.running, True) for i in range(1, in_flight + 1)}
    )
    ids = [f"{i}{scheduler.job_id_suffix}" for i in range(1, in_flight + 1)]
    jobs = scheduler.backend(tmp_path).poll(ids)
    assert {info.state for info in jobs.values()} == {JobState.RUNNING}
    assert len(jobs) == in_flight
    assert len(fake_scheduler.calls()) == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"exit": 1, "stderr": "error: cannot reach the controller\n"},
        {"exit": 0, "stdout": "\x00garbage|<<<{[\n"},
        {"exit": 0, "sleep": 3},
        {"exit": 137},
    ],
    ids=["non-zero", "garbage", "timeout", "killed"],
)
def test_failed_query_is_a_scheduler_error(
    scheduler: Scheduler,
    fake_scheduler: FakeScheduler,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: dict[str, Any],
) -> None:
    monkeypatch.setattr(command, "DEFAULT_TIMEOUT", 1.0)
    fake_scheduler.add_jobs({"1": ("alcap-p-00001-a1", scheduler.running, True)})
    fake_scheduler.answer(scheduler.status_command, **answer)
    with pytest.raises(SchedulerError) as raised:
        scheduler.backend(tmp_path).poll([f"1{scheduler.job_id_suffix}"])
    assert raised.value.argv[0] == scheduler.status_command
    if answer.get("sleep"):
        assert raised.value.returncode is None
    # nothing else was asked: a broken query never falls through to accounting
    assert len(fake_scheduler.calls()) == 1


def test_nothing_to_poll_asks_nothing(
    scheduler: Scheduler, fake_scheduler: FakeScheduler, tmp_path: Path
) -> None:
    backend = scheduler.backend(tmp_path)
    assert backend.poll([]) == {}
    assert backend.find([]) == {}
    backend.cancel([])
    assert fake_scheduler.calls() == []
