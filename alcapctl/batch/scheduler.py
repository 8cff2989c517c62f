"""What the scheduler backends share: the resource mapping and the submit mechanics.

A scheduler module declares a ResourceFormat (how each ``[job.resources]`` key is spelled
for it) and a SchedulerBackend subclass with its argv builders and parsers.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from alcapctl.batch.base import Backend, JobInfo, JobSpec
from alcapctl.batch.command import run_parsed
from alcapctl.config import Resources

__all__ = ["ResourceFormat", "SchedulerBackend", "interpreter"]

Words = Callable[[str], list[str]]


@dataclass(frozen=True)
class ResourceFormat:
    """How one scheduler spells each resource (time, memory and queue only when set)."""

    cpus: Callable[[int], list[str]]
    time: Words
    memory: Words
    queue: Words

    def words(self, resources: Resources) -> list[str]:
        """The scheduler's words for ``resources``; ``extra`` is passed on as it is."""
        words = self.cpus(resources.cpus)
        for value, spell in (
            (resources.time, self.time),
            (resources.memory, self.memory),
            (resources.queue, self.queue),
        ):
            if value:
                words += spell(value)
        return [*words, *resources.extra]


def interpreter(script: Path) -> str:
    """The program named on the script's ``#!`` line (``/bin/sh`` without one): schedulers
    that would execute the script in place get the interpreter instead, so the script need
    not be executable."""
    with script.open() as text:
        first = text.readline()
    words = first[2:].split() if first.startswith("#!") else []
    return words[0] if words else "/bin/sh"


class SchedulerBackend(Backend):
    """A backend whose jobs go to an external scheduler through command lines."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def submit(self, spec: JobSpec) -> str:
        spec.jobdir.mkdir(parents=True, exist_ok=True)
        return run_parsed(self.submit_argv(spec), self.parse_submit)

    @abstractmethod
    def submit_argv(self, spec: JobSpec) -> list[str]:
        """The command that submits ``spec`` (may write files into its jobdir first)."""

    @staticmethod
    @abstractmethod
    def parse_submit(stdout: str) -> str:
        """The job id the submit command printed."""

    @abstractmethod
    def accounting(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """What the scheduler's records say of jobs that left its queue; jobs without a
        record (yet) are left out."""
