"""HTCondor: submit description and parsers on documented outputs, the backend against a fake."""

from __future__ import annotations

from pathlib import Path

import pytest

from alcapctl.batch.base import JobInfo, JobSpec, JobState
from alcapctl.batch.htcondor import (
    HTCondorBackend,
    parse_condor_json,
    parse_condor_names,
    parse_submit,
    submit_description,
)
from alcapctl.config import Resources
from tests.batch.conftest import captured
from tests.fakes import FakeScheduler


def test_submit_description_maps_every_resource(tmp_path: Path, script: Path) -> None:
    resources = Resources(time="01:30:00", memory="2G", cpus=4, queue="workday", extra=("+X = 1",))
    spec = JobSpec("alcap-rootana8-02091-a1", script, tmp_path / "job", resources)
    lines = submit_description(spec).splitlines()
    assert lines[:4] == ["universe = vanilla", "executable = /bin/bash",
                         f"arguments = {tmp_path}/job.sh",
                         "batch_name = alcap-rootana8-02091-a1"]  # fmt: skip
    assert lines[-7:] == [
        "should_transfer_files = NO",
        "request_cpus = 4",
        "allowed_execute_duration = 5400",
        "request_memory = 2G",
        '+JobFlavour = "workday"',
        "+X = 1",
        "queue",
    ]


def test_parse_submit() -> None:
    assert parse_submit(captured("htcondor/condor_submit-terse.txt")) == "12.0"
    with pytest.raises(ValueError):
        parse_submit("Submitting job(s).\n1 job(s) submitted to cluster 12.\n")


def test_parse_condor_q() -> None:
    jobs = parse_condor_json(captured("htcondor/condor_q.json"))
    assert jobs["12.0"] == JobInfo(JobState.RUNNING)
    assert jobs["13.0"] == JobInfo(JobState.QUEUED)
    assert jobs["14.0"] == JobInfo(
        JobState.FAILED, "HELD: The job exceeded allowed execute duration of 0+00:01:00"
    )
    assert jobs["15.0"] == JobInfo(JobState.FAILED, "REMOVED: via condor_rm (by user alcap)")
    assert parse_condor_json("") == {}


def test_parse_condor_history() -> None:
    jobs = parse_condor_json(captured("htcondor/condor_history.json"))
    assert jobs["10.0"] == JobInfo(JobState.ENDED, exit_code=0)
    assert jobs["11.0"] == JobInfo(JobState.ENDED, exit_code=3)
    assert jobs["9.0"].state is JobState.FAILED


def test_parse_condor_names() -> None:
    assert (
        parse_condor_names(captured("htcondor/condor_q.json"))["alcap-rootana8-02092-a1"] == "13.0"
    )


def test_backend_round_trip(fake_scheduler: FakeScheduler, tmp_path: Path, script: Path) -> None:
    backend = HTCondorBackend(tmp_path)
    job_id = backend.submit(JobSpec("alcap-x-00001-a1", script, tmp_path / "j"))
    assert (tmp_path / "j" / "condor.sub").read_text() == submit_description(
        JobSpec("alcap-x-00001-a1", script, tmp_path / "j")
    )
    fake_scheduler.add_jobs({"7": ("alcap-x-00007-a1", 4, False)})
    assert backend.poll([job_id, "7.0"]) == {
        job_id: JobInfo(JobState.QUEUED),
        "7.0": JobInfo(JobState.ENDED),
    }
    assert backend.find(["alcap-x-00001-a1"]) == {"alcap-x-00001-a1": job_id}
    backend.cancel([job_id])
    assert fake_scheduler.calls("condor_rm") == [["condor_rm", job_id]]
    history = " ".join(fake_scheduler.calls("condor_history")[0])
    assert history.endswith("-constraint (ClusterId == 7 && ProcId == 0)")


def _array_specs(tmp_path: Path, script: Path, count: int) -> list[JobSpec]:
    specs = []
    for run in range(count):
        jobdir = tmp_path / "jobs" / f"alcap-x-{run:05d}-a1"
        jobdir.mkdir(parents=True)
        specs.append(JobSpec(jobdir.name, script, jobdir, Resources(memory="2G")))
    return specs


def test_an_array_is_one_cluster_whose_procs_get_their_index(
    fake_scheduler: FakeScheduler, tmp_path: Path, script: Path
) -> None:
    backend = HTCondorBackend(tmp_path)
    specs = _array_specs(tmp_path, script, 3)
    fake_scheduler.answer("condor_submit", stdout="67.0 - 67.2\n")
    ids = [job_id for _, job_id in backend.submit_many(specs, largest=1000)]
    assert ids == ["67.0", "67.1", "67.2"]
    assert len(fake_scheduler.calls("condor_submit")) == 1
    (description,) = (tmp_path / "arrays").glob("*/condor.sub")
    directory = description.parent
    assert description.read_text().splitlines() == [
        "universe = vanilla",
        "executable = /bin/sh",
        f"arguments = {directory / 'array.sh'} $(Process)",
        f"batch_name = {directory.name}",
        f"initialdir = {directory}",
        f"output = {directory / 'task-$(Process).out'}",
        f"error = {directory / 'task-$(Process).err'}",
        f"log = {directory / 'condor.log'}",
        "should_transfer_files = NO",
        "request_cpus = 1",
        "request_memory = 2G",
        "queue 3",
    ]
    assert "task=$1" in (directory / "array.sh").read_text().splitlines()

    # an interrupted submit adopts each task by the array's batch name
    fake_scheduler.add_jobs({"67": (directory.name, 2, True)})
    assert backend.find([spec.name for spec in specs] + ["alcap-x-09999-a1"]) == {
        spec.name: f"67.{proc}" for proc, spec in enumerate(specs)
    }
    backend.cancel(["67.1", "67.2"])
    assert fake_scheduler.calls("condor_rm") == [["condor_rm", "67.1", "67.2"]]


def test_one_job_or_arrays_turned_off_submit_plain_jobs(
    fake_scheduler: FakeScheduler, tmp_path: Path, script: Path
) -> None:
    backend = HTCondorBackend(tmp_path)
    specs = _array_specs(tmp_path, script, 2)
    assert len(list(backend.submit_many(specs[:1], largest=1000))) == 1
    assert len(list(backend.submit_many(specs, largest=0))) == 2
    assert len(fake_scheduler.calls("condor_submit")) == 3
    assert not (tmp_path / "arrays").exists()
