"""Slurm and Grid Engine array outputs, captured from the real daemons (tests/data)."""

from __future__ import annotations

from pathlib import Path

from alcapctl.batch.base import JobInfo, JobState
from alcapctl.batch.sge import (
    SgeBackend,
    parse_max_aj_tasks,
    parse_qacct_tasks,
    parse_qstat,
    parse_qstat_names,
    parse_qsub,
    qdel_argv,
)
from alcapctl.batch.slurm import (
    parse_max_array_size,
    parse_squeue,
    parse_squeue_names,
    scancel_argv,
)
from tests.batch.conftest import captured
from tests.fakes import FakeScheduler


def test_squeue_lists_every_task_of_an_array() -> None:
    jobs = parse_squeue(captured("slurm/squeue-array.txt"))
    assert jobs == {
        "1_0": JobInfo(JobState.ENDED),
        "1_1": JobInfo(JobState.ENDED),
        "1_2": JobInfo(JobState.FAILED, "FAILED (NonZeroExitCode)"),
        "1_3": JobInfo(JobState.FAILED, "CANCELLED"),
        "1_4": JobInfo(JobState.FAILED, "CANCELLED"),
    }
    pending = parse_squeue(captured("slurm/squeue-array-pending.txt"))
    assert set(pending) == {f"1_{task}" for task in range(5)}


def test_an_array_is_found_by_its_name_whatever_its_tasks_show() -> None:
    assert parse_squeue_names(captured("slurm/squeue-array-name.txt")) == {"arrtest": "1"}


def test_scancel_cancels_exactly_the_tasks_asked_for_in_one_call() -> None:
    argv = scancel_argv(["7", "12_3", "12_0", "12_1", "12_2", "12_9", "13_4"])
    assert argv == ["scancel", "7", "12_[0-3,9]", "13_[4]"]


def test_largest_arrays() -> None:
    assert parse_max_array_size(captured("slurm/scontrol-config.txt")) == 1001
    assert parse_max_aj_tasks(captured("sge/qconf-sconf.txt")) == 75000
    assert parse_max_aj_tasks("max_aj_tasks 0\n") == 75000  # 0: no limit


def test_qstat_g_d_lists_every_task_of_an_array() -> None:
    jobs = parse_qstat(captured("sge/qstat-array.xml"))
    assert jobs == {
        "1.1": JobInfo(JobState.RUNNING),
        "1.2": JobInfo(JobState.RUNNING),
        **{f"1.{task}": JobInfo(JobState.QUEUED) for task in (3, 4, 5)},
    }
    assert parse_qstat_names(captured("sge/qstat-array-grouped.xml")) == {"arrtest": "1"}
    assert parse_qsub(captured("sge/qsub-array-terse.txt")) == "1"


def test_qacct_has_a_record_per_task() -> None:
    tasks = parse_qacct_tasks(captured("sge/qacct-array.txt"))
    assert tasks["1"] == JobInfo(JobState.ENDED, exit_code=0)
    assert tasks["2"] == JobInfo(JobState.ENDED, exit_code=3)
    assert tasks["3"] == JobInfo(
        JobState.FAILED, reason="failed 100 : assumedly after job", exit_code=137
    )
    assert set(tasks) == {"1", "2", "3", "4", "5"}
    assert set(parse_qacct_tasks(captured("sge/qacct-exit3.txt"))) == {"undefined"}


def test_qdel_takes_task_ranges() -> None:
    assert qdel_argv(["7", "12.3", "12.1", "12.2", "12.9"]) == ["qdel", "7", "12.1-3", "12.9"]


def test_a_task_already_gone_is_cancelled_enough(fake_scheduler: FakeScheduler) -> None:
    fake_scheduler.answer("qdel", stdout=captured("sge/qdel-task-gone.txt"), exit=1)
    SgeBackend(Path(".")).cancel(["1.4"])
    assert fake_scheduler.calls("qdel") == [["qdel", "1.4"]]
