"""Slurm: sbatch --parsable, one squeue -t all per poll, sacct for jobs squeue forgot, scancel.

squeue keeps finished jobs for MinJobAge seconds (300 by default), so a poll normally needs
that one call.  Jobs it no longer lists are looked up with one sacct call; on clusters
without slurmdbd sacct -c reads the jobcomp/filetxt file instead.  An array is one
``sbatch --array=0-(k-1)``; its tasks are ``12345_7`` everywhere (squeue -r lists pending
tasks one by one), and scancel takes them as ``12345_[0-6,9]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alcapctl.batch.array import Array, split_tasks, task_ranges
from alcapctl.batch.base import JobInfo, JobSpec, JobState, SchedulerError
from alcapctl.batch.command import run_command, run_parsed
from alcapctl.batch.native import lookup_state
from alcapctl.batch.scheduler import ResourceFormat, SchedulerBackend
from alcapctl.config import Resources

__all__ = [
    "SlurmBackend",
    "parse_max_array_size",
    "parse_sacct",
    "parse_sbatch",
    "parse_squeue",
    "sbatch_argv",
    "sbatch_array_argv",
    "scancel_argv",
]

SQUEUE_FORMAT = "%i|%T|%r|%j"  # id, long state, reason, name
SACCT_FIELDS = "JobID,State,ExitCode,JobName"

STATES: dict[str, JobState] = {
    "PENDING": JobState.QUEUED,
    "CONFIGURING": JobState.QUEUED,
    "REQUEUED": JobState.QUEUED,
    "REQUEUE_HOLD": JobState.QUEUED,
    "REQUEUE_FED": JobState.QUEUED,
    "RESV_DEL_HOLD": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "COMPLETED": JobState.ENDED,
    "FAILED": JobState.FAILED,
    "TIMEOUT": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED,
    "CANCELLED": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "DEADLINE": JobState.FAILED,
    "PREEMPTED": JobState.FAILED,
    "REVOKED": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
}

RESOURCES = ResourceFormat(
    cpus=lambda cpus: [f"--cpus-per-task={cpus}"],
    time=lambda time: [f"--time={time}"],  # Slurm reads minutes and [D-]HH:MM:SS as they are
    memory=lambda memory: [f"--mem={memory}"],
    queue=lambda queue: [f"--partition={queue}"],
)

_NO_SUCH_JOB = "Invalid job id specified"  # squeue -j with one id it has forgotten
_NO_ACCOUNTING = "accounting storage is disabled"


def _sbatch(
    name: str, directory: Path, logs: str, script: Path, resources: Resources, *options: str
) -> list[str]:
    return [
        "sbatch",
        "--parsable",
        f"--job-name={name}",
        *options,
        f"--chdir={directory}",
        f"--output={directory / (logs + '.out')}",
        f"--error={directory / (logs + '.err')}",
        *RESOURCES.words(resources),
        str(script),
    ]


def sbatch_argv(spec: JobSpec) -> list[str]:
    """The sbatch command line for one job; the scheduler's own logs go into the jobdir."""
    return _sbatch(spec.name, spec.jobdir, "slurm-%j", spec.script, spec.resources)


def sbatch_array_argv(array: Array) -> list[str]:
    """The sbatch command line for an array; each task's scheduler logs go into the
    array's directory (the run's own logs are its wrapper's)."""
    resources = array.specs[0].resources
    indices = f"--array={array.first}-{array.last}"
    return _sbatch(array.name, array.directory, "task-%a", array.script, resources, indices)


def scancel_argv(job_ids: Sequence[str]) -> list[str]:
    """One scancel for plain jobs and array tasks, the tasks of an array as one range list."""
    plain, tasks = split_tasks(job_ids, "_")
    spans = [f"{array}_[{','.join(task_ranges(indices))}]" for array, indices in tasks.items()]
    return ["scancel", *plain, *spans]


def parse_max_array_size(stdout: str) -> int:
    """The number of tasks an array may have from ``scontrol show config``
    (``MaxArraySize = 1001``: task indices 0 to 1000)."""
    for line in stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize":
            return int(value.strip())
    raise ValueError("scontrol show config printed no MaxArraySize")


def parse_sbatch(stdout: str) -> str:
    """The job id from ``sbatch --parsable`` ("123" or "123;cluster")."""
    job_id = stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise ValueError(f"sbatch printed no job id: {stdout!r}")
    return job_id


def _info(native: str, reason: str | None, exit_code: int | None = None) -> JobInfo:
    native = native.split()[0] if native.strip() else native  # "CANCELLED by 0"
    state = lookup_state(STATES, native, "slurm")
    if state is not JobState.FAILED:
        return JobInfo(state, exit_code=exit_code)
    detail = f" ({reason})" if native == "FAILED" and reason not in (None, "None") else ""
    return JobInfo(state, reason=native + detail, exit_code=exit_code)


def parse_squeue(stdout: str) -> dict[str, JobInfo]:
    """``squeue -h -o SQUEUE_FORMAT`` lines -> {job id: JobInfo}."""
    jobs = {}
    for line in stdout.splitlines():
        if line.strip():
            job_id, native, reason, _name = line.split("|", 3)
            jobs[job_id] = _info(native, reason)
    return jobs


def parse_squeue_names(stdout: str) -> dict[str, str]:
    """``squeue -h -o SQUEUE_FORMAT`` lines -> {job name: newest job id}."""
    ids: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.strip():
            task_id, _native, _reason, name = line.split("|", 3)
            job_id = task_id.split("_")[0]  # an array's tasks: 12345_7, 12345_[8-39]
            if name not in ids or int(job_id) > int(ids[name]):
                ids[name] = job_id
    return ids


def parse_sacct(stdout: str) -> dict[str, JobInfo]:
    """``sacct -X -n -P -o SACCT_FIELDS`` lines -> {job id: JobInfo} (exit code from "3:0")."""
    jobs = {}
    for line in stdout.splitlines():
        if line.strip():
            job_id, native, exit_code, _name = line.split("|", 3)
            code = exit_code.split(":")[0]
            jobs[job_id] = _info(native, None, int(code) if code.isdigit() else None)
    return jobs


class SlurmBackend(SchedulerBackend):
    name = "slurm"
    parse_submit = staticmethod(parse_sbatch)
    task_separator = "_"
    task_index = "$SLURM_ARRAY_TASK_ID"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self._sacct_flags: list[str] = []  # becomes ["-c"] once slurmdbd turns out absent

    def submit_argv(self, spec: JobSpec) -> list[str]:
        return sbatch_argv(spec)

    def array_argv(self, array: Array) -> list[str]:
        return sbatch_array_argv(array)

    def array_cap(self) -> int:
        return run_parsed(["scontrol", "show", "config"], parse_max_array_size)

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        if not job_ids:
            return {}
        argv = ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(job_ids), "-o", SQUEUE_FORMAT]
        try:
            jobs = run_parsed(argv, parse_squeue)
        except SchedulerError as error:
            if _NO_SUCH_JOB not in error.stderr:
                raise
            jobs = {}
        forgotten = [job_id for job_id in job_ids if job_id not in jobs]
        if forgotten:
            jobs.update(self.accounting(forgotten))
        return {job_id: jobs.get(job_id, JobInfo(JobState.GONE)) for job_id in job_ids}

    def accounting(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """What accounting recorded of finished jobs, in one sacct call."""
        query = ["-X", "-n", "-P", "-j", ",".join(job_ids), "-o", SACCT_FIELDS]
        try:
            return run_parsed(["sacct", *self._sacct_flags, *query], parse_sacct)
        except SchedulerError as error:
            if self._sacct_flags or _NO_ACCOUNTING not in error.stderr:
                raise
        self._sacct_flags = ["-c"]
        return run_parsed(["sacct", "-c", *query], parse_sacct)

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            run_command(scancel_argv(job_ids))

    def find_names(self, names: Sequence[str]) -> dict[str, str]:
        argv = ["squeue", "-h", "-t", "all", f"--name={','.join(names)}", "-o", SQUEUE_FORMAT]
        return run_parsed(argv, parse_squeue_names)
