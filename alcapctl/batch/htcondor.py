"""HTCondor: condor_submit of a generated description, one condor_q -json per poll,
condor_history -json for jobs that left the queue, condor_rm.

Job ids are "cluster.proc".  The job name travels as the batch name (JobBatchName).
HTCondor has no queues; ``queue`` becomes ``+JobFlavour``, the CERN convention.  An array
is one cluster: its description's ``queue k`` makes procs 0 to k-1, each passed its
``$(Process)``, so a run's task id is "cluster.proc" like any job's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from alcapctl.batch.array import Array
from alcapctl.batch.base import JobInfo, JobSpec, JobState
from alcapctl.batch.command import run_command, run_parsed
from alcapctl.batch.native import lookup_state, walltime_seconds
from alcapctl.batch.scheduler import ResourceFormat, SchedulerBackend, interpreter
from alcapctl.config import Resources

__all__ = [
    "HTCondorBackend",
    "array_description",
    "parse_condor_json",
    "parse_submit",
    "submit_description",
]

ATTRIBUTES = "ClusterId,ProcId,JobStatus,ExitCode,HoldReason,RemoveReason,JobBatchName"

STATES: dict[str, JobState] = {
    "0": JobState.QUEUED,  # unexpanded
    "1": JobState.QUEUED,  # idle
    "2": JobState.RUNNING,
    "3": JobState.FAILED,  # removed
    "4": JobState.ENDED,  # completed
    "5": JobState.FAILED,  # held: a time limit, a missing file; it stays until released
    "6": JobState.RUNNING,  # transferring output
    "7": JobState.RUNNING,  # suspended
}
RESOURCES = ResourceFormat(
    cpus=lambda cpus: [f"request_cpus = {cpus}"],
    time=lambda time: [f"allowed_execute_duration = {walltime_seconds(time)}"],
    memory=lambda memory: [f"request_memory = {memory}"],
    queue=lambda queue: [f"+JobFlavour = {json.dumps(queue)}"],
)

Parsed = TypeVar("Parsed")
NO_ARRAY_CAP = 100_000  # HTCondor sets none (MAX_JOBS_PER_SUBMISSION is unlimited by default)
_REASONS = {"3": ("REMOVED", "RemoveReason"), "5": ("HELD", "HoldReason")}


def _description(
    name: str, directory: Path, logs: str, script: Path, resources: Resources, tail: str = ""
) -> str:
    """A submit description running ``script`` (with ``$(Process)`` after it for an array)."""
    lines = [
        "universe = vanilla",
        f"executable = {interpreter(script)}",  # the script need not be executable
        f"arguments = {script}{tail}",
        f"batch_name = {name}",
        f"initialdir = {directory}",
        f"output = {directory / (logs + '.out')}",
        f"error = {directory / (logs + '.err')}",
        f"log = {directory / 'condor.log'}",
        "should_transfer_files = NO",
        *RESOURCES.words(resources),
    ]
    return "\n".join(lines) + "\n"


def submit_description(spec: JobSpec) -> str:
    """The submit description for one job; HTCondor's own files go into the jobdir."""
    body = _description(spec.name, spec.jobdir, "condor", spec.script, spec.resources)
    return body + "queue\n"


def array_description(array: Array) -> str:
    """The submit description for an array: one proc per task, given its index; HTCondor's
    own files go into the array's directory."""
    resources = array.specs[0].resources
    logs = "task-$(Process)"
    body = _description(array.name, array.directory, logs, array.script, resources, " $(Process)")
    return body + f"queue {len(array.specs)}\n"


def parse_submit(stdout: str) -> str:
    """The job id from ``condor_submit -terse`` ("12.0 - 12.0")."""
    job_id = stdout.strip().split(" - ")[0]
    cluster, _, proc = job_id.partition(".")
    if not (cluster.isdigit() and proc.isdigit()):
        raise ValueError(f"condor_submit printed no job id: {stdout!r}")
    return job_id


def _ads(stdout: str) -> list[dict[str, Any]]:
    """condor_q/condor_history -json print a JSON array, or nothing when no job matches."""
    ads = json.loads(stdout) if stdout.strip() else []
    if not isinstance(ads, list):
        raise ValueError(f"expected a JSON array of job ads, got {type(ads).__name__}")
    return ads


def _job_id(ad: dict[str, Any]) -> str:
    return f"{ad['ClusterId']}.{ad['ProcId']}"


def parse_condor_json(stdout: str) -> dict[str, JobInfo]:
    """``condor_q -json`` or ``condor_history -json`` -> {job id: JobInfo}."""
    jobs = {}
    for ad in _ads(stdout):
        native = str(ad.get("JobStatus"))
        state = lookup_state(STATES, native, "htcondor")
        exit_code = ad.get("ExitCode")
        word, attribute = _REASONS.get(native, ("", ""))
        reason = f"{word}: {ad[attribute]}" if ad.get(attribute) else word or None
        jobs[_job_id(ad)] = JobInfo(state, reason=reason, exit_code=exit_code)
    return jobs


def parse_condor_names(stdout: str) -> dict[str, str]:
    """``condor_q -json`` -> {batch name: newest job id}."""
    ids: dict[str, str] = {}
    for ad in sorted(_ads(stdout), key=lambda ad: (ad["ClusterId"], ad["ProcId"])):
        ids[ad["JobBatchName"]] = _job_id(ad)
    return ids


def _match_ids(job_ids: Sequence[str]) -> str:
    """A ClassAd constraint matching exactly the given cluster.proc ids."""
    terms = []
    for job_id in job_ids:
        cluster, _, proc = job_id.partition(".")
        terms.append(f"(ClusterId == {int(cluster)} && ProcId == {int(proc or 0)})")
    return " || ".join(terms)


def _condor_submit(directory: Path, description: str) -> list[str]:
    path = directory / "condor.sub"
    path.write_text(description)
    return ["condor_submit", "-terse", str(path)]


class HTCondorBackend(SchedulerBackend):
    name = "htcondor"
    parse_submit = staticmethod(parse_submit)
    task_separator = "."
    task_index = "$1"

    def submit_argv(self, spec: JobSpec) -> list[str]:
        return _condor_submit(spec.jobdir, submit_description(spec))

    def array_argv(self, array: Array) -> list[str]:
        return _condor_submit(array.directory, array_description(array))

    def array_cap(self) -> int:
        return NO_ARRAY_CAP

    def _query(
        self, program: str, constraint: str, parse: Callable[[str], Parsed], *options: str
    ) -> Parsed:
        argv = [program, "-json", "-attributes", ATTRIBUTES, *options, "-constraint", constraint]
        return run_parsed(argv, parse)

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        if not job_ids:
            return {}
        jobs = self._query("condor_q", _match_ids(job_ids), parse_condor_json)
        left = [job_id for job_id in job_ids if job_id not in jobs]
        if left:
            jobs.update(self.accounting(left))
        return {job_id: jobs.get(job_id, JobInfo(JobState.GONE)) for job_id in job_ids}

    def accounting(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """What the history recorded of jobs that left the queue, in one condor_history call."""
        limit = ("-limit", str(len(job_ids)))
        return self._query("condor_history", _match_ids(job_ids), parse_condor_json, *limit)

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            run_command(["condor_rm", *job_ids])

    def find_names(self, names: Sequence[str]) -> dict[str, str]:
        constraint = " || ".join(f"JobBatchName == {json.dumps(name)}" for name in names)
        return self._query("condor_q", constraint, parse_condor_names)
