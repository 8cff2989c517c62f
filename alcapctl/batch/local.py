"""The local backend: jobs are detached processes on this machine that outlive the CLI.

A job id is ``<pid>-<start>``: the wrapper's PID and its start time in clock ticks since
boot (field 22 of ``/proc/<pid>/stat``), so a PID the kernel reused for another process is
never mistaken for the job.  Each job leads its own session and process group, which
``cancel`` signals as a whole, until no process of it is left: also a payload that
outlived its wrapper (killed with -9), so that a lost job never runs beside its retry.
``poll`` reads ``/proc`` and reaps our own children; it never spawns a process.  ``wait``
sleeps on pidfds so the run loop wakes as soon as a job ends.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from alcapctl.batch.base import Backend, JobInfo, JobSpec, JobState
from alcapctl.batch.wrapper import EXIT_FILE, SCRIPT_FILE, job_dir

__all__ = ["LocalBackend", "process_start"]


def _stat(pid: int) -> list[bytes] | None:
    """Fields 3 onwards of ``/proc/<pid>/stat`` (state first), or None if there is no such
    process.  The command name may hold spaces and parentheses: fields follow the last ')'."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(b")") + 2 :].split()


def process_start(pid: int) -> int | None:
    """The start time of a live (not zombie) process in clock ticks, or None."""
    fields = _stat(pid)
    if fields is None or fields[0] == b"Z":
        return None
    return int(fields[19])


def _wrappers(scripts: dict[bytes, str]) -> dict[str, str]:
    """Job ids of live wrappers running any of ``scripts`` (command line -> job name).

    One pass over ``/proc``.  The payload, forked by the wrapper, shows the same command
    line: the wrapper is the one that leads its session.
    """
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                name = scripts.get(fh.read())
        except OSError:  # gone meanwhile, or not ours to read
            continue
        fields = _stat(int(entry.name)) if name else None
        if name and fields and fields[0] != b"Z" and fields[3] == entry.name.encode():
            found[name] = f"{entry.name}-{int(fields[19])}"
    return found


def _group_members(pgid: int, since: int) -> list[int]:
    """Live processes of process group ``pgid`` started at tick ``since`` or later.

    The kernel does not give a PID to a new process while it still names a process
    group, so members found after the leader died are the job's own.
    """
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields and fields[0] != b"Z" and int(fields[2]) == pgid and int(fields[19]) >= since:
            members.append(int(entry.name))
    return members


_NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _boot_tick() -> int:
    """Now in the unit of a process start time: clock ticks of CLOCK_BOOTTIME, which is
    what the kernel stamps a new process with (``start_boottime``)."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) // _NS_PER_TICK


def _parse_id(job_id: str) -> tuple[int, int] | None:
    pid, _, start = job_id.partition("-")
    if not (pid.isdigit() and start.isdigit()):
        return None
    return int(pid), int(start)


def _command_line(workdir: Path, name: str) -> bytes:
    """``/proc/<pid>/cmdline`` of the wrapper of job ``name``, as submit starts it."""
    return f"/bin/sh\0{job_dir(workdir, name) / SCRIPT_FILE}\0".encode()


class LocalBackend(Backend):
    """Detached processes; at most nproc of them, which the submit step enforces."""

    name = "local"
    instant = True
    heartbeat = None  # poll and find read /proc: no heartbeat file, no helper process
    sees_all_hosts = False

    _GONE_WAIT = 10.0  # seconds cancel waits for a killed group's last process to exit

    def __init__(self, workdir: Path, *, cancel_grace: float = 3.0) -> None:
        self.workdir = workdir
        self.cancel_grace = cancel_grace
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._running: set[str] = set()  # ids seen alive at the last poll, for wait()
        self._settled: set[int] = set()  # children whose results reap already read

    def submit(self, spec: JobSpec) -> str:
        before = _boot_tick()
        child = subprocess.Popen(
            ["/bin/sh", str(spec.script)],  # the command line find() looks for
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # The kernel stamps the child's start while Popen forks it: when no clock tick
        # passed during the call, that is the tick, and reading /proc (which waits for the
        # child's exec to complete, a third of a millisecond) can be skipped.
        start = before if _boot_tick() == before else process_start(child.pid)
        self._children[child.pid] = child
        job_id = f"{child.pid}-{start if start is not None else 0}"
        self._running.add(job_id)
        return job_id

    def _alive(self, job_id: str) -> bool:
        parsed = _parse_id(job_id)
        if parsed is None:
            return False
        pid, start = parsed
        child = self._children.get(pid)
        if child is not None:  # an unreaped child keeps its PID: no reuse to guard against
            if child.poll() is None:
                return True
            del self._children[pid]
            self._settled.discard(pid)
            return False
        return process_start(pid) == start

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        result: dict[str, JobInfo] = {}
        for job_id in job_ids:
            alive = self._alive(job_id)
            result[job_id] = JobInfo(JobState.RUNNING if alive else JobState.GONE)
            if alive:
                self._running.add(job_id)
            else:
                self._running.discard(job_id)
        return result

    def cancel(self, job_ids: Sequence[str]) -> None:
        """TERM each job's process group, KILL what is left after the grace, and return
        once no process of them is left (or ``_GONE_WAIT`` more seconds passed)."""
        alive = [j for j in job_ids if self._group_alive(j)]
        self._signal(alive, signal.SIGTERM)
        deadline = time.monotonic() + self.cancel_grace
        while alive and time.monotonic() < deadline:
            self._wait_for(alive, min(deadline - time.monotonic(), 0.05))
            alive = [j for j in alive if self._group_alive(j)]
        self._signal(alive, signal.SIGKILL)
        deadline = time.monotonic() + self._GONE_WAIT
        while alive and time.monotonic() < deadline:
            time.sleep(0.01)
            alive = [j for j in alive if self._group_alive(j)]
        self._running.difference_update(job_ids)
        self._reap_children()

    def _group_alive(self, job_id: str) -> bool:
        """Whether the job's wrapper, or any process of its group, still runs; never a
        group whose leader's PID the kernel gave to another process."""
        parsed = _parse_id(job_id)
        if parsed is None:
            return False
        if self._alive(job_id):
            return True
        pid, start = parsed
        leader = process_start(pid)
        return (leader is None or leader == start) and bool(_group_members(pid, start))

    def _signal(self, job_ids: Iterable[str], sig: signal.Signals) -> None:
        for job_id in job_ids:
            parsed = _parse_id(job_id)
            if parsed is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(parsed[0], sig)

    def find(self, names: Sequence[str]) -> dict[str, str]:
        """Jobs of these names started here: a live wrapper, or one that wrote its exit file.

        No scheduler remembers local jobs; the kernel lists their wrappers by command line
        from the moment of the spawn.  A job that already ended is found by its exit file
        (id ``0-0``, never alive), so that reap reads its result instead of a rerun.
        """
        scripts = {_command_line(self.workdir, name): name for name in names}
        found = _wrappers(scripts)
        for name in names:
            if name not in found and (job_dir(self.workdir, name) / EXIT_FILE).exists():
                found[name] = "0-0"
        return found

    def started_here(self) -> list[str]:
        return sorted(job_id for job_id in self._running if self._alive(job_id))

    def settled(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self._running.discard(job_id)
            parsed = _parse_id(job_id)
            if parsed is not None and parsed[0] in self._children:
                self._settled.add(parsed[0])

    def wait(self, timeout: float) -> None:
        """Sleep until one of the jobs seen running ends, or ``timeout`` seconds.

        Returns at once when one of our children ended since the last call without reap
        having read its result (it ended after reap looked): its pidfd is gone by now.
        """
        if self._reap_children():
            return
        self._running = {job_id for job_id in self._running if self._alive(job_id)}
        if not self._wait_for(list(self._running), timeout):
            time.sleep(max(timeout, 0))

    def _reap_children(self) -> bool:
        """Collect our children that ended (no zombies left behind); True if any of them
        had not been settled by reap."""
        ended = {pid for pid, child in self._children.items() if child.poll() is not None}
        for pid in ended:
            del self._children[pid]
        unseen = ended - self._settled
        self._settled -= ended
        return bool(unseen)

    def _wait_for(self, job_ids: Sequence[str], timeout: float) -> bool:
        """Block on pidfds of the given jobs; False when none could be watched."""
        fds = []
        try:
            for job_id in job_ids:
                parsed = _parse_id(job_id)
                if parsed is None:
                    continue
                try:
                    fd = os.pidfd_open(parsed[0])
                except (OSError, AttributeError):
                    continue
                fds.append(fd)
                # Opened first, checked second: the pidfd cannot follow a reused PID.  (An
                # unreaped child keeps its PID, and /proc would make us wait for its exec.)
                if parsed[0] not in self._children and process_start(parsed[0]) != parsed[1]:
                    return True
            if not fds:
                return False
            select.select(fds, [], [], max(timeout, 0))
            return True
        finally:
            for fd in fds:
                os.close(fd)
