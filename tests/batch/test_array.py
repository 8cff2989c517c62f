"""Array mechanics without a scheduler: cutting batches, the index file, the array script
run as a task would run it, task ids and their ranges."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from alcapctl.batch.array import (
    INDEX_FILE,
    batches,
    member_of,
    split_tasks,
    task_ranges,
    write_array,
)
from alcapctl.batch.base import JobSpec
from alcapctl.config import Resources


def _specs(tmp_path: Path, count: int, resources: Resources | None = None) -> list[JobSpec]:
    specs = []
    for run in range(count):
        name = f"alcap-rootana8-{2091 + run:05d}-a1"
        jobdir = tmp_path / "work" / "jobs with space" / name
        jobdir.mkdir(parents=True)
        script = jobdir / "job.sh"
        script.write_text(f"#!/bin/sh\necho run {2091 + run} in $(pwd) >out\nexit {run}\n")
        specs.append(JobSpec(name, script, jobdir, resources or Resources()))
    return specs


def _run_task(script: Path, variable: str, index: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, variable: str(index)}
    return subprocess.run(["/bin/sh", str(script)], capture_output=True, text=True, env=env)


def test_batches_respect_the_cap_and_keep_resources_apart(tmp_path: Path) -> None:
    specs = _specs(tmp_path, 5) + _specs(tmp_path / "b", 2, Resources(memory="2G"))
    sizes = [[s.jobdir.parent.parent.parent.name for s in batch] for batch in batches(specs, 2)]
    assert [len(batch) for batch in sizes] == [2, 2, 1, 2]
    assert sizes[-1] == ["b", "b"]
    assert [len(b) for b in batches(specs[:5], 1000)] == [5]


def test_each_task_runs_its_own_runs_wrapper_in_its_job_directory(tmp_path: Path) -> None:
    specs = _specs(tmp_path, 3)
    array = write_array(tmp_path / "work", specs, 1, "$SGE_TASK_ID")
    assert array.directory.parent == tmp_path / "work" / "arrays"
    assert (array.first, array.last) == (1, 3)
    for position, spec in enumerate(specs):
        done = _run_task(array.script, "SGE_TASK_ID", array.index_of(position))
        assert done.returncode == position, done.stderr
        assert (spec.jobdir / "out").read_text() == f"run {2091 + position} in {spec.jobdir}\n"
        assert member_of(spec.jobdir) == (array.name, position + 1)


def test_a_task_with_a_missing_or_garbled_index_fails_with_a_clear_message(
    tmp_path: Path,
) -> None:
    specs = _specs(tmp_path, 2)
    array = write_array(tmp_path / "work", specs, 0, "$SLURM_ARRAY_TASK_ID")
    index = array.directory / INDEX_FILE

    index.write_text("0 /nonexistent/dir\ngarbage\n")
    done = _run_task(array.script, "SLURM_ARRAY_TASK_ID", 1)
    assert done.returncode == 2
    assert f"task 1: index file {index} has no line for this task" in done.stderr
    done = _run_task(array.script, "SLURM_ARRAY_TASK_ID", 0)
    assert done.returncode == 2
    assert "names /nonexistent/dir, which holds no job.sh" in done.stderr

    index.unlink()
    done = _run_task(array.script, "SLURM_ARRAY_TASK_ID", 0)
    assert done.returncode == 2
    assert f"index file {index} is missing or unreadable" in done.stderr
    assert not (specs[0].jobdir / "out").exists()


def test_a_job_directory_not_in_an_array_is_a_plain_job(tmp_path: Path) -> None:
    assert member_of(tmp_path) is None
    (tmp_path / "array").write_text("garbled\n")
    assert member_of(tmp_path) is None


def test_task_ids_split_and_ranges() -> None:
    plain, tasks = split_tasks(["12", "13_4", "13_0", "13_1", "14_[2-3]", "13_2"], "_")
    assert plain == ["12", "14_[2-3]"]
    assert tasks == {"13": [4, 0, 1, 2]}
    assert task_ranges([5, 0, 1, 2, 9, 8]) == ["0-2", "5", "8-9"]


@pytest.mark.parametrize("largest", [0, 1])
def test_no_arrays_when_turned_off(tmp_path: Path, largest: int) -> None:
    assert [len(b) for b in batches(_specs(tmp_path, 3), largest)] == [1, 1, 1]
