"""Job wrapper scripts: one generated /bin/sh script per run and attempt, same on every backend.

The script exports every field as a variable and runs the production's ``[job] command``
with each field as that variable's quoted expansion (``alcapctl.templates``), sends its
stdout/stderr to the ``olog``/``elog`` outputs, on batch schedulers writes its PID to the
heartbeat file and touches that file while it runs, and writes the payload's exit code to
``exit`` at the end, also when the scheduler sends SIGTERM.  Backends never read
these files; the reap step does.  On the critical path the script forks only the payload
(and, off it, the heartbeat helper): directories are tested with the ``[`` builtin before
any ``mkdir`` and files are written by redirection.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alcapctl.templates import shell_command

__all__ = [
    "EXIT_FILE",
    "GONE_FILE",
    "HEARTBEAT_FILE",
    "HEARTBEAT_INTERVAL",
    "INTENT_FILE",
    "SCRIPT_FILE",
    "WRAPPER_LOG",
    "first_script_time",
    "job_dir",
    "job_name",
    "owner_token",
    "read_exit",
    "read_exit_reason",
    "render_script",
    "write_job",
    "written_for",
]

SCRIPT_FILE = "job.sh"
# The payload's exit code and a newline, written last; after a failure, a line more when
# the wrapper knows why the elog may not say (ENOSPC: the elog's file system is full).
EXIT_FILE = "exit"
# The wrapper's PID on its execution host; the file's mtime is its last sign of life.  One
# file for both: a new file can cost 0.1-0.25 ms (ext4 without a journal, as on this
# project's VMs), a tenth of a cheap job.
HEARTBEAT_FILE = "heartbeat"
WRAPPER_LOG = "wrapper.log"  # the wrapper's own errors (a mkdir that failed)
# Exists from before the scheduler is called until the job id is in the database; only
# its name counts.  A hard link to the job script: a link costs microseconds where a new
# file can cost 0.1-0.25 ms, and nothing ever writes to it.
INTENT_FILE = "submitting"
GONE_FILE = "gone"  # mtime: when reap first saw the job gone without an exit file
HEARTBEAT_INTERVAL = 60

_LOGS = ("olog", "elog")


def job_name(short: str, run: int, attempt: int) -> str:
    """``alcap-rootana8-02091-a1``: production, run and attempt, findable in any queue."""
    return f"alcap-{short}-{run:05d}-a{attempt}"


def owner_token(database_id: str) -> str:
    """Names the production database in job scripts by its ``database_id``, not its path:
    a database recreated at the same path is another database."""
    return hashlib.sha256(database_id.encode()).hexdigest()[:16]


def written_for(jobdir: Path, token: str) -> bool:
    """True if the job script in ``jobdir`` was generated for the database ``token`` names."""
    try:
        with (jobdir / SCRIPT_FILE).open() as fh:
            header = fh.readline() + fh.readline()
    except (FileNotFoundError, NotADirectoryError):
        return False
    return f"database {token}" in header


def first_script_time(
    workdir: Path, short: str, run: int, attempt: int, token: str
) -> float | None:
    """When this production's first attempt at ``run`` (up to ``attempt``) began: the mtime
    of the first job script in ``workdir`` made for the database ``token`` names; None
    when there is none."""
    for number in range(1, attempt + 1):
        jobdir = job_dir(workdir, job_name(short, run, number))
        if written_for(jobdir, token):
            return (jobdir / SCRIPT_FILE).stat().st_mtime
    return None


def job_dir(workdir: Path, name: str) -> Path:
    """Where a job's script and state files live, under the production's work directory."""
    return workdir / "jobs" / name


def render_script(
    name: str,
    jobdir: Path,
    command: str,
    fields: Mapping[str, Any],
    outputs: Mapping[str, Path],
    env: Mapping[str, str],
    token: str,
    heartbeat: int | None = HEARTBEAT_INTERVAL,
) -> str:
    """The wrapper script's text; ``fields`` and ``outputs`` fill the command template.

    ``token`` (see ``owner_token``) records which production database the job is for.
    ``heartbeat`` is the helper's interval in seconds; None leaves out the heartbeat file
    and its helper: the local backend sees its jobs in ``/proc``, and the file, the fork
    and the ``sleep`` cost half of a cheap job.
    """
    q = shlex.quote
    paths = {name: str(path) for name, path in outputs.items()}
    payload, variables = shell_command(command, {**fields, **paths})
    dirs = sorted({str(path.parent) for path in outputs.values()})
    helper, beat = ([], "") if heartbeat is None else (_helper(heartbeat), " $beat")
    lines = [
        "#!/bin/sh",
        f"# alcapctl job {name}, database {token} (generated; edits are lost at the next attempt)",
        f"cd {q(str(jobdir))} || exit 111",
        *([] if heartbeat is None else [f"echo $$ >{HEARTBEAT_FILE}"]),
        *(f"export {key}={q(value)}" for key, value in sorted(env.items())),
        *(f"export {key}={q(value)}" for key, value in variables.items()),
        f"finish() {{ {'kill $beat 2>/dev/null; ' if helper else ''}"
        f'printf \'%s\\n\' "$1" ${{2:+"$2"}} >{EXIT_FILE}; exit "$1"; }}',
        *helper,
        "trap 'finish 143' TERM INT HUP",
        *(f"[ -d {q(d)} ] || mkdir -p {q(d)} 2>>{WRAPPER_LOG} || finish $?" for d in dirs),
        "{",
        payload,
        f"}} </dev/null >{q(str(outputs['olog']))} 2>{q(str(outputs['elog']))} &",
        "job=$!",
        f"trap 'kill -TERM $job{beat} 2>/dev/null' TERM INT HUP",
        "wait $job",
        "status=$?",
        "# a trapped signal interrupts wait: wait again for the payload's own status",
        "while kill -0 $job 2>/dev/null; do wait $job; status=$?; done",
        *_full_disk_check(outputs["elog"]),
        'finish $status "$why"',
        "",
    ]
    return "\n".join(lines)


def _full_disk_check(elog: Path) -> list[str]:
    """Lines setting ``why`` after a failure when the elog's file system has no space left:
    the payload's own error ("No space left on device") could not be written there.  One
    ``df`` on the failure path only."""
    folder = shlex.quote(str(elog.parent))
    return [
        "why=",
        f"[ $status -eq 0 ] || [ \"$(df -Pk {folder} 2>/dev/null | awk 'NR == 2 {{print $4}}')\" "
        f'!= 0 ] || why="ENOSPC: no space left on the file system of the elog"',
    ]


def _helper(interval: int) -> list[str]:
    """Lines starting the heartbeat helper, which touches the heartbeat file while the job runs."""
    return [
        "# the heartbeat helper starts before any trap: a trap it inherited could swallow TERM",
        "(",
        "  # $! is set by the fork itself, and KILL reaches a nap that has not exec'd sleep yet",
        "  trap 'kill -KILL $! 2>/dev/null; exit 0' TERM",
        f"  while :; do sleep {interval} & wait $!; echo $$ >{HEARTBEAT_FILE}; done",
        ") </dev/null >/dev/null 2>&1 &",
        "beat=$!",
    ]


def write_job(jobdir: Path, script: str) -> Path:
    """Write a fresh job directory (older attempts' state removed); returns the script path.

    The script is ``job.sh``, with the intent marker beside it: a submit that dies after
    the scheduler accepted the job leaves the marker behind, and the next submit adopts
    the job.
    """
    if jobdir.is_dir():
        for entry in os.scandir(jobdir):
            os.unlink(entry.path)
    else:
        jobdir.mkdir(parents=True)
    path = jobdir / SCRIPT_FILE
    path.write_text(script)
    os.link(path, jobdir / INTENT_FILE)
    return path


def read_exit(jobdir: Path) -> int | None:
    """The exit code the wrapper wrote, or None while it is absent or still being written."""
    try:
        text = (jobdir / EXIT_FILE).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not text.endswith("\n"):
        return None
    try:
        return int(text.split("\n", 1)[0])
    except ValueError:
        return None


def read_exit_reason(jobdir: Path) -> str | None:
    """The wrapper's own reason for a failure (its exit file's second line), if any."""
    try:
        lines = (jobdir / EXIT_FILE).read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return lines[1] if len(lines) > 1 and lines[1] else None
