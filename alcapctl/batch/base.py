"""The batch-backend interface: submit, one bulk poll, one bulk cancel, find by name.

A backend module says only what differs between schedulers: how to build each command,
how to parse what it prints, and a dict mapping native states to ours.  Success and
failure of the payload are read from the exit file the job wrapper writes, identically on
every backend; the scheduler is asked only about jobs that have no exit file yet.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import ClassVar

from alcapctl.batch.wrapper import HEARTBEAT_INTERVAL
from alcapctl.config import Resources
from alcapctl.errors import AlcapError

__all__ = ["Backend", "JobInfo", "JobSpec", "JobState", "SchedulerError"]


class JobState(str, Enum):
    """What the scheduler says of a job."""

    QUEUED = "queued"
    RUNNING = "running"
    ENDED = "ended"  # left the queue normally; the exit file says how it went
    FAILED = "failed"  # the scheduler ended it (time limit, memory, node failure, cancel)
    STUCK = "stuck"  # held in an error state that will not clear (SGE Eqw): never runs
    GONE = "gone"  # the scheduler does not know the job (yet, or any more)
    UNKNOWN = "unknown"  # a native state we do not map; treated as still in flight


@dataclass(frozen=True)
class JobInfo:
    state: JobState
    reason: str | None = None  # the scheduler's word: TIMEOUT, OUT_OF_MEMORY, "failed 37"
    exit_code: int | None = None  # the scheduler's record of the exit code, if any


@dataclass(frozen=True)
class JobSpec:
    """One job to submit: a generated wrapper script and where its files go."""

    name: str  # alcap-rootana8-02091-a1: production, run and attempt
    script: Path
    jobdir: Path  # the wrapper writes pid, heartbeat and exit files here
    resources: Resources = field(default_factory=Resources)


class SchedulerError(AlcapError):
    """A scheduler command failed or timed out; never read as a failed job."""

    def __init__(
        self, argv: Sequence[str], exit_code: int | None, stdout: str = "", stderr: str = ""
    ) -> None:
        self.argv = list(argv)
        self.returncode = exit_code
        self.stdout = stdout
        self.stderr = stderr
        what = "timed out" if exit_code is None else f"exited {exit_code}"
        super().__init__(f"{' '.join(self.argv)} {what}: {stderr.strip() or stdout.strip()}")


class Backend(ABC):
    """One batch system."""

    name: ClassVar[str]
    # True when submit and poll take milliseconds, so that a whole loop cycle may run in
    # one database transaction (the local backend); schedulers answer in tenths of seconds.
    instant: ClassVar[bool] = False
    # Seconds between touches of a running job's heartbeat file; None: no heartbeat helper,
    # for a backend that sees its jobs' processes itself.
    heartbeat: ClassVar[int | None] = HEARTBEAT_INTERVAL
    # False when jobs can be seen only from the host that started them (local processes):
    # another user's expired R runs are then taken over on that host alone.
    sees_all_hosts: ClassVar[bool] = True

    @abstractmethod
    def submit(self, spec: JobSpec) -> str:
        """Submit one job; return its id."""

    def submit_many(
        self, specs: Sequence[JobSpec], *, largest: int
    ) -> Iterator[tuple[JobSpec, str]]:
        """Submit every job; yield each spec with its job id as the scheduler accepts it,
        so that a failure part-way keeps the ids of the jobs already submitted.

        ``largest``: the most jobs one scheduler call may take (``[limits] array``; 0: one
        call per job).  Here: one call per job; schedulers with arrays do better.
        """
        for spec in specs:
            yield spec, self.submit(spec)

    @abstractmethod
    def poll(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """The state of every given job, in one scheduler call."""

    @abstractmethod
    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel the given jobs, in one scheduler call."""

    @abstractmethod
    def find(self, names: Sequence[str]) -> dict[str, str]:
        """Job ids of jobs with the given names (adopting an interrupted submit)."""

    def wait(self, timeout: float) -> None:
        """Block until a job may have ended or ``timeout`` seconds passed."""
        time.sleep(timeout)

    def started_here(self) -> list[str]:
        """Jobs this process started that may still run, recorded or not: an abort of
        this process's loop cancels them even when their record was never committed (a
        grouped cycle's COMMIT failed).  A scheduler's jobs are found from the database
        and the submit's intent markers instead."""
        return []

    def settled(self, job_ids: Sequence[str]) -> None:  # noqa: B027 (optional hook)
        """The reap step read these jobs' results: ``wait`` need not wake for their end."""
