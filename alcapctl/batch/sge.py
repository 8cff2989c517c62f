"""Grid Engine: qsub -terse, one qstat -xml per poll, qacct -j for jobs that left qstat, qdel.

qstat forgets a job the moment it ends; qacct then has its ``failed`` and ``exit_status``
once the accounting file is flushed.  Until the record appears the job is GONE, an
ordinary case the caller retries, never an error.  An array is one ``qsub -t 1-k``; its
tasks are ``12345.7`` (``qstat -g d`` lists them one by one, ``qacct -j 12345`` has a
record per task, ``qdel 12345.1-6`` cancels a range).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from alcapctl.batch.array import Array, split_tasks, task_ranges
from alcapctl.batch.base import JobInfo, JobSpec, JobState, SchedulerError
from alcapctl.batch.command import run_command, run_parsed
from alcapctl.batch.native import hms, lookup_state, walltime_seconds
from alcapctl.batch.scheduler import ResourceFormat, SchedulerBackend, interpreter
from alcapctl.config import Resources

__all__ = [
    "SgeBackend",
    "parse_max_aj_tasks",
    "parse_qacct",
    "parse_qacct_tasks",
    "parse_qstat",
    "parse_qsub",
    "qdel_argv",
    "qsub_argv",
    "qsub_array_argv",
]

PARALLEL_ENVIRONMENT = "smp"  # asked for when a job needs more than one slot
UNLIMITED_TASKS = 75_000  # max_aj_tasks 0 means no limit; this is Grid Engine's default

STATES: dict[str, JobState] = {
    "qw": JobState.QUEUED,
    "hqw": JobState.QUEUED,
    "hRwq": JobState.QUEUED,
    "Rq": JobState.QUEUED,
    "r": JobState.RUNNING,
    "t": JobState.RUNNING,
    "Rr": JobState.RUNNING,
    "Rt": JobState.RUNNING,
    "s": JobState.RUNNING,
    "ts": JobState.RUNNING,
    "S": JobState.RUNNING,
    "tS": JobState.RUNNING,
    "T": JobState.RUNNING,
    "tT": JobState.RUNNING,
    "dr": JobState.RUNNING,
    "dt": JobState.RUNNING,
    "dRr": JobState.RUNNING,
    "dqw": JobState.QUEUED,
    "dhqw": JobState.QUEUED,
    # E: the job could not start (unwritable output path, missing script) and sits in
    # the queue until someone clears or deletes it: reap deletes it when it gives up.
    "Eqw": JobState.STUCK,
    "Ehqw": JobState.STUCK,
    "EhRqw": JobState.STUCK,
}

RESOURCES = ResourceFormat(
    cpus=lambda cpus: ["-pe", PARALLEL_ENVIRONMENT, str(cpus)] if cpus > 1 else [],
    time=lambda time: ["-l", f"h_rt={hms(walltime_seconds(time))}"],  # a bare number is s
    memory=lambda memory: ["-l", f"h_vmem={memory}"],
    queue=lambda queue: ["-q", queue],
)

_NOT_FOUND = ("not found", "does not exist")
# qacct on a cell where no job has ended yet: there is no accounting file at all
_NO_RECORD = (*_NOT_FOUND, "accounting: No such file or directory")


def _qsub(
    name: str, directory: Path, logs: str, script: Path, resources: Resources, *options: str
) -> list[str]:
    return [
        "qsub",
        "-terse",
        "-N",
        name,
        *options,
        "-wd",
        str(directory),
        "-o",
        str(directory / f"{logs}.out"),
        "-e",
        str(directory / f"{logs}.err"),
        # the script's own interpreter, not the queue's shell (its #! line is ignored)
        "-S",
        interpreter(script),
        *RESOURCES.words(resources),
        str(script),
    ]


def qsub_argv(spec: JobSpec) -> list[str]:
    """The qsub command line for one job; the scheduler's own logs go into the jobdir."""
    return _qsub(spec.name, spec.jobdir, "sge", spec.script, spec.resources)


def qsub_array_argv(array: Array) -> list[str]:
    """The qsub command line for an array (tasks 1 to k); each task's scheduler logs go
    into the array's directory."""
    resources = array.specs[0].resources
    tasks = ("-t", f"{array.first}-{array.last}")
    return _qsub(array.name, array.directory, "task-$TASK_ID", array.script, resources, *tasks)


def qdel_argv(job_ids: Sequence[str]) -> list[str]:
    """One qdel for plain jobs and array tasks (``12345.1-6``, ``12345.9``)."""
    plain, tasks = split_tasks(job_ids, ".")
    ranges = [
        f"{array}.{span}" for array, indices in tasks.items() for span in task_ranges(indices)
    ]
    return ["qdel", *plain, *ranges]


def parse_max_aj_tasks(stdout: str) -> int:
    """The most tasks of one array from ``qconf -sconf`` (``max_aj_tasks 75000``; 0 is no
    limit)."""
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "max_aj_tasks":
            return int(value.strip()) or UNLIMITED_TASKS
    raise ValueError("qconf -sconf printed no max_aj_tasks")


def parse_qsub(stdout: str) -> str:
    """The job id from ``qsub -terse`` ("123", or "123.1-10:1" for an array)."""
    job_id = stdout.strip().split(".")[0]
    if not job_id.isdigit():
        raise ValueError(f"qsub printed no job id: {stdout!r}")
    return job_id


def _job_lists(xml_text: str) -> list[ET.Element]:
    return ET.fromstring(xml_text).findall(".//job_list")


def parse_qstat(xml_text: str) -> dict[str, JobInfo]:
    """``qstat -xml -g d`` -> {job id: JobInfo} for every job it lists; an array's tasks
    as ``12345.7``."""
    jobs = {}
    for job in _job_lists(xml_text):
        native = job.findtext("state", "")
        state = lookup_state(STATES, native, "sge")
        reason = f"error state {native}" if state is JobState.STUCK else None
        job_id, task = job.findtext("JB_job_number", ""), job.findtext("tasks")
        jobs[f"{job_id}.{task}" if task else job_id] = JobInfo(state, reason=reason)
    return jobs


def parse_qstat_names(xml_text: str) -> dict[str, str]:
    """``qstat -xml`` -> {job name: newest job id}."""
    ids: dict[str, str] = {}
    for job in _job_lists(xml_text):
        name, job_id = job.findtext("JB_name", ""), job.findtext("JB_job_number", "")
        if name not in ids or int(job_id) > int(ids[name]):
            ids[name] = job_id
    return ids


def parse_qacct(stdout: str) -> JobInfo:
    """``qacct -j ID`` -> JobInfo: ``failed`` 0 is ENDED, anything else FAILED ("failed 37
    : qmaster enforced h_rt, h_cpu, or h_vmem limit"); the newest record wins."""
    record: dict[str, str] = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in ("failed", "exit_status"):
            record[key] = value.strip()
    if record.keys() != {"failed", "exit_status"}:
        raise ValueError(f"qacct printed no failed/exit_status: {stdout[:200]!r}")
    failed = record["failed"]
    exit_code = int(record["exit_status"].split()[0])
    if failed.split()[0] == "0":
        return JobInfo(JobState.ENDED, exit_code=exit_code)
    return JobInfo(
        JobState.FAILED, reason=f"failed {' '.join(failed.split())}", exit_code=exit_code
    )


def parse_qacct_tasks(stdout: str) -> dict[str, JobInfo]:
    """``qacct -j ID`` -> {task index ("undefined" for a plain job): JobInfo}; records are
    separated by lines of ``=`` and the newest of a task wins."""
    tasks = {}
    for record in re.split(r"^=+[ \t]*$", stdout, flags=re.MULTILINE):
        if record.strip():
            task = re.search(r"^taskid\s+(\S+)", record, flags=re.MULTILINE)
            tasks[task.group(1) if task else "undefined"] = parse_qacct(record)
    if not tasks:
        raise ValueError(f"qacct printed no record: {stdout[:200]!r}")
    return tasks


class SgeBackend(SchedulerBackend):
    name = "sge"
    parse_submit = staticmethod(parse_qsub)
    task_separator = "."
    task_index = "$SGE_TASK_ID"
    first_task = 1

    def submit_argv(self, spec: JobSpec) -> list[str]:
        return qsub_argv(spec)

    def array_argv(self, array: Array) -> list[str]:
        return qsub_array_argv(array)

    def array_cap(self) -> int:
        return run_parsed(["qconf", "-sconf"], parse_max_aj_tasks)

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        if not job_ids:
            return {}
        jobs = run_parsed(["qstat", "-xml", "-g", "d"], parse_qstat)
        jobs.update(self.accounting([job_id for job_id in job_ids if job_id not in jobs]))
        return {job_id: jobs.get(job_id, JobInfo(JobState.GONE)) for job_id in job_ids}

    def accounting(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """What accounting recorded of finished jobs: one qacct call per job or array (it
        takes one id)."""
        plain, tasks = split_tasks(job_ids, ".")
        records = {}
        for job_id in plain:
            if found := self._accounted(job_id):
                records[job_id] = found.get("undefined", next(iter(found.values())))
        for array, indices in tasks.items():
            found = self._accounted(array) or {}
            records.update({f"{array}.{i}": found[str(i)] for i in indices if str(i) in found})
        return records

    def _accounted(self, job_id: str) -> dict[str, JobInfo] | None:
        argv = ["qacct", "-j", job_id]
        result = run_command(argv, ok_codes=(0, 1))
        if result.exit_code == 0:
            try:
                return parse_qacct_tasks(result.stdout)
            except ValueError as error:
                raise SchedulerError(
                    argv, 0, result.stdout, f"unreadable output: {error}"
                ) from None
        if any(words in result.stderr for words in _NO_RECORD):
            return None  # not flushed yet, or never ran (deleted while queued)
        raise SchedulerError(argv, 1, result.stdout, result.stderr)

    def cancel(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        argv = qdel_argv(job_ids)
        result = run_command(argv, ok_codes=(0, 1))
        # qdel exits 1 when any job or task is unknown ('denied: job "7" does not exist',
        # 'job "1" task "4" does not exist'); jobs already gone are cancelled enough.
        output = (result.stdout + result.stderr).splitlines()
        gone = [line for line in output if any(words in line for words in _NOT_FOUND)]
        refused = [line for line in output if line.startswith("denied") and line not in gone]
        if result.exit_code and (refused or not gone):
            raise SchedulerError(argv, result.exit_code, result.stdout, result.stderr)

    def find_names(self, names: Sequence[str]) -> dict[str, str]:
        wanted = set(names)
        found = run_parsed(["qstat", "-xml"], parse_qstat_names)
        return {name: job_id for name, job_id in found.items() if name in wanted}
