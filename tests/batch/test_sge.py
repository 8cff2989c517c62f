"""Grid Engine: argv builder and parsers on captured real outputs, the backend against a fake."""

from __future__ import annotations

from pathlib import Path

import pytest

from alcapctl.batch.base import JobInfo, JobSpec, JobState, SchedulerError
from alcapctl.batch.sge import (
    SgeBackend,
    parse_qacct,
    parse_qstat,
    parse_qstat_names,
    parse_qsub,
    qsub_argv,
)
from alcapctl.config import Resources
from tests.batch.conftest import captured
from tests.fakes import FakeScheduler


def test_qsub_argv_maps_every_resource(tmp_path: Path, script: Path) -> None:
    resources = Resources(time="90", memory="2G", cpus=4, queue="long.q", extra=("-P", "alcap"))
    spec = JobSpec("alcap-rootana8-02091-a1", script, tmp_path / "job", resources)
    assert qsub_argv(spec) == [
        "qsub", "-terse", "-N", "alcap-rootana8-02091-a1", "-wd", f"{tmp_path}/job",
        "-o", f"{tmp_path}/job/sge.out", "-e", f"{tmp_path}/job/sge.err", "-S", "/bin/bash",
        "-pe", "smp", "4", "-l", "h_rt=1:30:00", "-l", "h_vmem=2G", "-q", "long.q",
        "-P", "alcap", f"{tmp_path}/job.sh",
    ]  # fmt: skip


def test_parse_qsub() -> None:
    assert parse_qsub(captured("sge/qsub-terse.txt")) == "1"
    assert parse_qsub("4711.1-10:1\n") == "4711"
    with pytest.raises(ValueError):
        parse_qsub(captured("sge/qsub-plain.txt"))


def test_parse_qstat_states() -> None:
    running = parse_qstat(captured("sge/qstat-running.xml"))
    assert [running[i].state for i in ("9", "10", "11")] == [
        JobState.RUNNING,
        JobState.RUNNING,
        JobState.QUEUED,
    ]
    early = parse_qstat(captured("sge/qstat-early.xml"))
    assert early["2"].state is JobState.RUNNING  # "t": transferring
    assert early["3"].state is JobState.QUEUED
    assert early["5"].state is JobState.QUEUED  # "hqw": held
    assert parse_qstat(captured("sge/qstat-error.xml"))["8"] == JobInfo(
        JobState.STUCK, "error state Eqw"
    )
    assert parse_qstat(captured("sge/qstat-empty.xml")) == {}


def test_parse_qacct() -> None:
    assert parse_qacct(captured("sge/qacct-exit0.txt")) == JobInfo(JobState.ENDED, exit_code=0)
    assert parse_qacct(captured("sge/qacct-exit3.txt")) == JobInfo(JobState.ENDED, exit_code=3)
    assert parse_qacct(captured("sge/qacct-h_rt.txt")) == JobInfo(
        JobState.FAILED,
        "failed 37 : qmaster enforced h_rt, h_cpu, or h_vmem limit",
        exit_code=137,
    )
    deleted = parse_qacct(captured("sge/qacct-qdel-running.txt"))
    assert deleted.state is JobState.FAILED
    assert deleted.reason is not None and deleted.reason.startswith("failed 100")


def test_parse_qstat_names() -> None:
    names = parse_qstat_names(captured("sge/qstat-early.xml"))
    assert names["alcap-rootana8-02095-a1"] == "5"


def test_missing_accounting_record_is_gone(fake_scheduler: FakeScheduler, tmp_path: Path) -> None:
    fake_scheduler.add_jobs({"1": ("a", "r", True), "2": ("b", "r", False)})
    jobs = SgeBackend(tmp_path).poll(["1", "2", "7"])
    assert jobs == {
        "1": JobInfo(JobState.RUNNING),
        "2": JobInfo(JobState.ENDED, exit_code=0),
        "7": JobInfo(JobState.GONE),
    }
    assert [call[0] for call in fake_scheduler.calls()] == ["qstat", "qacct", "qacct"]


@pytest.mark.parametrize("answer", ["sge/qacct-missing.err", "sge/qacct-no-accounting-file.err"])
def test_no_accounting_record_yet(
    fake_scheduler: FakeScheduler, tmp_path: Path, answer: str
) -> None:
    fake_scheduler.answer("qacct", stderr=captured(answer), exit=1)
    assert SgeBackend(tmp_path).poll(["7"]) == {"7": JobInfo(JobState.GONE)}


def test_garbled_qacct_is_a_scheduler_error(fake_scheduler: FakeScheduler, tmp_path: Path) -> None:
    fake_scheduler.answer("qacct", stdout="jobnumber 7\nfailed banana\n")
    with pytest.raises(SchedulerError, match="unreadable"):
        SgeBackend(tmp_path).poll(["7"])


def test_broken_qacct_is_a_scheduler_error(fake_scheduler: FakeScheduler, tmp_path: Path) -> None:
    fake_scheduler.answer("qacct", stderr="error: can't open accounting file\n", exit=1)
    with pytest.raises(SchedulerError, match="accounting file"):
        SgeBackend(tmp_path).poll(["7"])


def test_cancel_tolerates_jobs_already_gone(fake_scheduler: FakeScheduler, tmp_path: Path) -> None:
    fake_scheduler.answer("qdel", stdout=captured("sge/qdel-unknown.txt"), exit=1)
    SgeBackend(tmp_path).cancel(["8", "999"])
    assert fake_scheduler.calls("qdel") == [["qdel", "8", "999"]]


def test_cancel_refused_is_a_scheduler_error(fake_scheduler: FakeScheduler, tmp_path: Path) -> None:
    refused = 'alice - you do not have the necessary privileges to delete the job "8"\n'
    fake_scheduler.answer("qdel", stderr=refused, exit=1)
    with pytest.raises(SchedulerError, match="privileges"):
        SgeBackend(tmp_path).cancel(["8"])


def test_submit_and_find(fake_scheduler: FakeScheduler, tmp_path: Path, script: Path) -> None:
    backend = SgeBackend(tmp_path)
    job_id = backend.submit(JobSpec("alcap-x-00001-a1", script, tmp_path / "j"))
    assert backend.find(["alcap-x-00001-a1", "alcap-x-00002-a1"]) == {"alcap-x-00001-a1": job_id}
    assert backend.poll([job_id]) == {job_id: JobInfo(JobState.QUEUED)}
