"""Slurm: argv builder and parsers on captured real outputs, the backend against a fake."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from alcapctl.batch.base import JobInfo, JobSpec, JobState, SchedulerError
from alcapctl.batch.slurm import (
    SlurmBackend,
    parse_sacct,
    parse_sbatch,
    parse_squeue,
    parse_squeue_names,
    sbatch_argv,
)
from alcapctl.config import Resources
from tests.batch.conftest import captured
from tests.fakes import FakeScheduler


def test_sbatch_argv_maps_every_resource(tmp_path: Path, script: Path) -> None:
    resources = Resources(time="90", memory="2G", cpus=4, queue="long", extra=("--qos=low",))
    spec = JobSpec("alcap-rootana8-02091-a1", script, tmp_path / "job", resources)
    assert sbatch_argv(spec) == [
        "sbatch",
        "--parsable",
        "--job-name=alcap-rootana8-02091-a1",
        f"--chdir={tmp_path}/job",
        f"--output={tmp_path}/job/slurm-%j.out",
        f"--error={tmp_path}/job/slurm-%j.err",
        "--cpus-per-task=4",
        "--time=90",
        "--mem=2G",
        "--partition=long",
        "--qos=low",
        f"{tmp_path}/job.sh",
    ]


def test_parse_sbatch() -> None:
    assert parse_sbatch(captured("slurm/sbatch-parsable.txt")) == "1"
    assert parse_sbatch("4711;cluster2\n") == "4711"
    with pytest.raises(ValueError):
        parse_sbatch(captured("slurm/sbatch-plain.txt"))


def test_parse_squeue_every_state() -> None:
    jobs = parse_squeue(captured("slurm/squeue-all.txt"))
    assert jobs["1"] == JobInfo(JobState.ENDED)
    assert jobs["2"] == JobInfo(JobState.FAILED, "FAILED (NonZeroExitCode)")
    assert jobs["3"] == JobInfo(JobState.FAILED, "TIMEOUT")
    assert jobs["4"] == JobInfo(JobState.FAILED, "CANCELLED")
    assert jobs["5"].state is JobState.QUEUED  # held
    assert jobs["6"] == JobInfo(JobState.FAILED, "FAILED (BadConstraints)")
    assert jobs["8"].state is JobState.RUNNING
    assert jobs["10"].state is JobState.QUEUED  # waiting for resources


def test_parse_squeue_cancelled_while_pending() -> None:
    jobs = parse_squeue(captured("slurm/squeue-final.txt"))
    assert {jobs[i].reason for i in ("5", "7", "10")} == {"CANCELLED"}


def test_parse_sacct_from_jobcomp() -> None:
    jobs = parse_sacct(captured("slurm/sacct-c.txt"))
    assert jobs["1"] == JobInfo(JobState.ENDED, exit_code=0)
    assert jobs["2"] == JobInfo(JobState.FAILED, "FAILED", exit_code=3)
    assert jobs["3"] == JobInfo(JobState.FAILED, "TIMEOUT", exit_code=0)
    assert jobs["4"].reason == "CANCELLED"
    assert parse_sacct("12|CANCELLED by 0|0:15|x\n")["12"].reason == "CANCELLED"


def test_parse_squeue_names_keeps_newest() -> None:
    assert parse_squeue_names(captured("slurm/squeue-name.txt")) == {
        "alcap-rootana8-02110-a1": "8",
        "alcap-rootana8-02112-a1": "10",
    }
    assert parse_squeue_names("3|COMPLETED|None|a\n12|PENDING|None|a\n") == {"a": "12"}


def test_unknown_state_is_unknown_with_warning() -> None:
    with capture_logs() as logs:
        jobs = parse_squeue("9|HYPERSPACE|None|x\n")
    assert jobs["9"].state is JobState.UNKNOWN
    assert logs[0]["state"] == "HYPERSPACE"


def test_poll_asks_accounting_only_for_forgotten_jobs(
    fake_scheduler: FakeScheduler, tmp_path: Path
) -> None:
    fake_scheduler.add_jobs({"1": ("a", "RUNNING", True), "2": ("b", "TIMEOUT", False)})
    jobs = SlurmBackend(tmp_path).poll(["1", "2", "3"])
    assert jobs == {
        "1": JobInfo(JobState.RUNNING),
        "2": JobInfo(JobState.FAILED, "TIMEOUT", exit_code=0),
        "3": JobInfo(JobState.GONE),
    }
    assert [call[0] for call in fake_scheduler.calls()] == ["squeue", "sacct"]
    assert "2,3" in fake_scheduler.calls("sacct")[0]


def test_single_forgotten_id_is_not_an_error(fake_scheduler: FakeScheduler, tmp_path: Path) -> None:
    fake_scheduler.answer("squeue", stderr=captured("slurm/squeue-invalid-id.err"), exit=1)
    assert SlurmBackend(tmp_path).poll(["1"]) == {"1": JobInfo(JobState.GONE)}


def test_controller_down_is_a_scheduler_error(
    fake_scheduler: FakeScheduler, tmp_path: Path
) -> None:
    error = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
    fake_scheduler.answer("squeue", stderr=error, exit=1)
    with pytest.raises(SchedulerError, match="Unable to contact") as raised:
        SlurmBackend(tmp_path).poll(["1"])
    assert raised.value.returncode == 1
    assert fake_scheduler.calls("sacct") == []


def test_submit_find_cancel(fake_scheduler: FakeScheduler, tmp_path: Path, script: Path) -> None:
    backend = SlurmBackend(tmp_path)
    spec = JobSpec("alcap-rootana8-02091-a1", script, tmp_path / "job")
    job_id = backend.submit(spec)
    assert (tmp_path / "job").is_dir()
    assert backend.find(["alcap-rootana8-02091-a1", "alcap-rootana8-02092-a1"]) == {
        "alcap-rootana8-02091-a1": job_id
    }
    backend.cancel([job_id, "99"])
    assert fake_scheduler.calls("scancel") == [["scancel", job_id, "99"]]
    assert backend.poll([job_id])[job_id].reason == "CANCELLED"


def test_submit_refused(fake_scheduler: FakeScheduler, tmp_path: Path, script: Path) -> None:
    fake_scheduler.answer("sbatch", stderr=captured("slurm/sbatch-bad-partition.err"), exit=1)
    spec = JobSpec("alcap-x-00001-a1", script, tmp_path / "job")
    with pytest.raises(SchedulerError, match="Invalid partition"):
        SlurmBackend(tmp_path).submit(spec)
