"""What the scheduler backends share: the resource mapping, the submit and array mechanics.

A scheduler module declares a ResourceFormat (how each ``[job.resources]`` key is spelled
for it) and a SchedulerBackend subclass with its argv builders and parsers.  Arrays (see
``array``) are cut, written and their task ids composed here; a scheduler says how to
submit one, its largest array, and how its task ids are spelled.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from alcapctl.batch.array import Array, batches, member_of, write_array
from alcapctl.batch.base import Backend, JobInfo, JobSpec
from alcapctl.batch.command import run_parsed
from alcapctl.batch.wrapper import job_dir
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

    # How a task of an array is spelled: array id, separator, task index (12345_7).
    task_separator: ClassVar[str]
    # The shell expression that yields a task's index inside the job, and the first index.
    task_index: ClassVar[str]
    first_task: ClassVar[int] = 0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._largest_array: int | None = None  # the scheduler's cap, asked once

    def submit(self, spec: JobSpec) -> str:
        spec.jobdir.mkdir(parents=True, exist_ok=True)
        return run_parsed(self.submit_argv(spec), self.parse_submit)

    def submit_many(
        self, specs: Sequence[JobSpec], *, largest: int
    ) -> Iterator[tuple[JobSpec, str]]:
        """Several jobs go as arrays of at most ``largest`` tasks and the scheduler's own cap;
        a job left alone in its batch goes as a plain job."""
        cap = min(largest, self.largest_array()) if largest and len(specs) > 1 else 1
        for batch in batches(specs, cap):
            if len(batch) == 1:
                yield batch[0], self.submit(batch[0])
                continue
            array = write_array(self.workdir, batch, self.first_task, self.task_index)
            array_id = run_parsed(self.array_argv(array), self.parse_submit)
            for position, spec in enumerate(batch):
                yield spec, self.task_id(array_id, array.index_of(position))

    def task_id(self, array_id: str, index: int) -> str:
        """The id of task ``index`` of the array whose submit printed ``array_id``."""
        return f"{array_id.split(self.task_separator)[0]}{self.task_separator}{index}"

    def largest_array(self) -> int:
        """The most tasks the scheduler takes in one array, asked once per backend."""
        if self._largest_array is None:
            self._largest_array = self.array_cap()
        return self._largest_array

    def find(self, names: Sequence[str]) -> dict[str, str]:
        """Plain jobs by their names; a job submitted as an array task by its array's name
        (read from its job directory) and its task index."""
        members = {name: member_of(job_dir(self.workdir, name)) for name in names}
        wanted = {member[0] if member else name for name, member in members.items()}
        found = self.find_names(sorted(wanted)) if wanted else {}
        ids = {}
        for name, member in members.items():
            if member is None and name in found:
                ids[name] = found[name]
            elif member is not None and member[0] in found:
                ids[name] = self.task_id(found[member[0]], member[1])
        return ids

    @abstractmethod
    def find_names(self, names: Sequence[str]) -> dict[str, str]:
        """{job name: newest job id} of the jobs or arrays with the given names."""

    @abstractmethod
    def array_argv(self, array: Array) -> list[str]:
        """The command that submits ``array`` (may write files into its directory first)."""

    @abstractmethod
    def array_cap(self) -> int:
        """The most tasks the scheduler allows in one array (asked of the scheduler)."""

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
