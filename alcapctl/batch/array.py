"""Job arrays: many runs' jobs in one scheduler call, each task running one run's wrapper.

An array gets a directory of its own under the production's work directory
(``arrays/<array name>/``) with an *index file*, one ``<task index> <job directory>`` line
per task, and a generated *array script*: the scheduler starts it once per task, it looks
its task index up in the index and runs that run's own wrapper in that run's own job
directory.  Exit files, logs, outputs and retries therefore stay per run, exactly as for a
single job.  A task whose index line is missing or unusable fails with a clear message in
its error file (``task-<index>.err`` in the array directory).

Each member job directory gets a small file naming its array and task, so that a submit
interrupted after the scheduler took the array can adopt every task by the array's name.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from alcapctl.batch.base import JobSpec
from alcapctl.batch.wrapper import SCRIPT_FILE

__all__ = [
    "ARRAY_SCRIPT",
    "INDEX_FILE",
    "MEMBER_FILE",
    "Array",
    "batches",
    "member_of",
    "split_tasks",
    "task_ranges",
    "write_array",
]

INDEX_FILE = "index"
ARRAY_SCRIPT = "array.sh"
MEMBER_FILE = "array"  # in a member's job directory: "<array name> <task index>"
FAILED_LOOKUP = 2  # a task's exit code when its index line cannot be used


@dataclass(frozen=True)
class Array:
    """One array as written to disk, ready for the scheduler."""

    name: str  # alcap-rootana8-array-<hash of the member names>
    directory: Path  # holds the index file, the array script and the scheduler's logs
    script: Path
    specs: tuple[JobSpec, ...]
    first: int  # the scheduler's first task index (Grid Engine counts from 1)

    @property
    def last(self) -> int:
        return self.first + len(self.specs) - 1

    def index_of(self, position: int) -> int:
        """The task index of the ``position``-th member."""
        return self.first + position


def batches(specs: Sequence[JobSpec], largest: int) -> Iterator[list[JobSpec]]:
    """``specs`` in submission order, cut into arrays of at most ``largest`` jobs; jobs
    asking for different resources never share an array."""
    for _, same in groupby(specs, key=lambda spec: spec.resources):
        group = list(same)
        for start in range(0, len(group), max(largest, 1)):
            yield group[start : start + max(largest, 1)]


def _array_name(specs: Sequence[JobSpec]) -> str:
    production = specs[0].name.rsplit("-", 2)[0]  # alcap-rootana8 of alcap-rootana8-02091-a1
    digest = hashlib.sha256("\n".join(spec.name for spec in specs).encode()).hexdigest()
    return f"{production}-array-{digest[:10]}"


def _array_script(name: str, index: Path, task_index: str) -> str:
    q = shlex.quote
    return "\n".join(
        [
            "#!/bin/sh",
            f"# alcapctl array {name} (generated): task N runs the job in the directory its",
            "# index line 'N DIR' names, through that job's own wrapper script",
            f"task={task_index}",
            f"index={q(str(index))}",
            f'fail() {{ echo "alcapctl array {name} task $task: $1" >&2; exit {FAILED_LOOKUP}; }}',
            '[ -n "$task" ] || fail "the scheduler set no task index"',
            '[ -r "$index" ] || fail "index file $index is missing or unreadable"',
            "dir=",
            'while read -r number path; do [ "$number" = "$task" ] && dir=$path && break; done'
            ' <"$index"',
            '[ -n "$dir" ] || fail "index file $index has no line for this task (garbled?)"',
            f'[ -f "$dir/{SCRIPT_FILE}" ] || fail "index file $index names $dir, which holds'
            f' no {SCRIPT_FILE}"',
            'cd "$dir" || fail "cannot enter $dir"',
            f"exec /bin/sh ./{SCRIPT_FILE}",
            "",
        ]
    )


def write_array(workdir: Path, specs: Sequence[JobSpec], first: int, task_index: str) -> Array:
    """Write the index file, the array script and each member's link to the array.

    ``task_index`` is the shell expression that yields the task's index inside the job
    (``$SLURM_ARRAY_TASK_ID``, ``$SGE_TASK_ID``, ``$1``); ``first`` is the scheduler's
    first index.  A job directory whose path holds a newline cannot have an index line.
    """
    name = _array_name(specs)
    directory = workdir / "arrays" / name
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for position, spec in enumerate(specs):
        if "\n" in str(spec.jobdir):
            raise ValueError(f"job directory {str(spec.jobdir)!r} holds a newline")
        lines.append(f"{first + position} {spec.jobdir}\n")
        (spec.jobdir / MEMBER_FILE).write_text(f"{name} {first + position}\n")
    index = directory / INDEX_FILE
    index.write_text("".join(lines))
    script = directory / ARRAY_SCRIPT
    script.write_text(_array_script(name, index, task_index))
    return Array(name, directory, script, tuple(specs), first)


def member_of(jobdir: Path) -> tuple[str, int] | None:
    """The array and task index a job directory was submitted in, or None (a plain job,
    or nothing readable)."""
    try:
        name, _, index = (jobdir / MEMBER_FILE).read_text().strip().partition(" ")
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (name, int(index)) if name and index.isdigit() else None


def split_tasks(job_ids: Iterable[str], separator: str) -> tuple[list[str], dict[str, list[int]]]:
    """Plain job ids, and the task indices asked for per array (``12345_7`` with ``_``)."""
    plain: list[str] = []
    tasks: dict[str, list[int]] = {}
    for job_id in job_ids:
        array, sep, index = job_id.partition(separator)
        if sep and index.isdigit():
            tasks.setdefault(array, []).append(int(index))
        else:
            plain.append(job_id)
    return plain, tasks


def task_ranges(indices: Iterable[int]) -> list[str]:
    """Task indices as sorted contiguous ranges: [5, 0, 1, 2] -> ["0-2", "5"]."""
    ranges: list[list[int]] = []
    for index in sorted(set(indices)):
        if ranges and index == ranges[-1][1] + 1:
            ranges[-1][1] = index
        else:
            ranges.append([index, index])
    return [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges]
