"""reap: this user's finished jobs become F, or a failed attempt (S/C again, or X at the cap).

The exit file the wrapper writes decides; the scheduler is asked, in one ``poll`` call,
only about jobs without one or with a failed one (for its reason, such as TIMEOUT).  A job
gone from the queue without an exit file is lost only ``limits.grace`` seconds after reap
first saw it gone (shared file systems show files late).  A failed scheduler query changes
no run: the next reaps skip polling for a while, doubling the wait after each failure.
Every state change of one reap is one transaction.

Any user can finish a production: R runs whose holder's lease expired (their loop died
for good) are taken over first, in a guarded transaction of their own, and reaped like
this user's own, from their exit files and the scheduler's answer.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from alcapctl.batch.base import Backend, JobInfo, JobState, SchedulerError
from alcapctl.batch.wrapper import GONE_FILE, job_dir, job_name, read_exit, read_exit_reason
from alcapctl.events import Event
from alcapctl.jobenv import modules_text
from alcapctl.states import RunState
from alcapctl.steps.claim import lease_cutoff
from alcapctl.steps.context import StepContext
from alcapctl.steps.units import OwnTransactions, Units, hand_back
from alcapctl.store import RunRecord, RunTable

__all__ = ["ReapResult", "Settled", "reap", "settle"]

log = structlog.get_logger("alcapctl.reap")

_ELOG_LINES = 20
_ELOG_CHARS = 4000
_BACKOFF_FILE = "poll-backoff"
_BACKOFF_MAX = 600.0
_LOGS = ("olog", "elog")
_IN_FLIGHT = (JobState.QUEUED, JobState.RUNNING, JobState.UNKNOWN)


@dataclass
class ReapResult:
    finished: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # run -> new state letter
    running: int = 0
    reasons: dict[int, str] = field(default_factory=dict)  # failed run -> its reason's gist
    poll_error: str | None = None
    closed: bool = False
    events: list[Event] = field(default_factory=list)
    remove: list[Path] = field(default_factory=list)  # for after the unit's commit

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["events"], data["remove"]
        return data


@dataclass
class _Outcome:
    run: RunRecord
    exit_code: int | None
    reason: str | None = None  # the scheduler's word, or why the job counts as lost


def _exit_text(code: int) -> str:
    return f"killed by signal {code - 128}" if code > 128 else f"exit code {code}"


def _tail(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        with path.open("rb") as fh:
            fh.seek(max(path.stat().st_size - _ELOG_CHARS, 0))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-_ELOG_LINES:])


class _Backoff:
    """Skip polling after scheduler errors, across processes (cron) via a file."""

    def __init__(self, workdir: Path, pause: float) -> None:
        self.path = workdir / _BACKOFF_FILE
        self.pause = max(pause, 1.0)

    def due(self) -> bool:
        try:
            st = self.path.stat()
            failures = int(self.path.read_text() or 1)
        except (FileNotFoundError, ValueError):
            return True
        delay = min(self.pause * 2.0 ** (failures - 1), _BACKOFF_MAX)
        return time.time() >= st.st_mtime + delay

    def failed(self) -> None:
        try:
            failures = int(self.path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            failures = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(str(failures + 1))

    def succeeded(self) -> None:
        self.path.unlink(missing_ok=True)


def _gone_long_enough(jobdir: Path, grace: float) -> bool:
    """True once the job has been seen gone for ``grace`` seconds (the first sighting counts)."""
    marker = jobdir / GONE_FILE
    try:
        first = marker.stat().st_mtime
    except FileNotFoundError:
        jobdir.mkdir(parents=True, exist_ok=True)
        marker.touch()
        first = time.time()
    return time.time() - first >= grace


def _poll_pending(
    ctx: StepContext,
    backend: Backend,
    pending: list[tuple[RunRecord, int | None]],
    result: ReapResult,
) -> list[_Outcome]:
    """Outcomes of jobs without an exit file or with a failed one (with the exit code
    read before the poll), from one poll; empty when the poll fails."""
    backoff = _Backoff(ctx.workdir, ctx.limits.pause)
    if not backoff.due():
        result.running += len(pending)
        return []
    try:
        states = backend.poll([r.job_id or "" for r, _ in pending])
    except SchedulerError as exc:
        backoff.failed()
        log.warning("scheduler query failed; runs unchanged, retrying later", error=str(exc))
        result.poll_error = str(exc)
        result.running += len(pending)
        return []
    backoff.succeeded()
    outcomes = []
    take_down = []  # lost or stuck: cancelled before their runs may be tried again
    for run, code in pending:
        info = states.get(run.job_id or "", JobInfo(JobState.GONE))
        jobdir = job_dir(ctx.workdir, job_name(ctx.record.short, run.run, run.attempt))
        listed = info.state in _IN_FLIGHT
        if not listed and code is None:
            code = read_exit(jobdir)  # a job that left may have written it since we looked
        # A failed job the scheduler still lists (Slurm shows COMPLETING, not yet TIMEOUT,
        # while it kills a job at its time limit) waits up to grace for the final word.
        if code == 0 or (
            code is not None and (not listed or _gone_long_enough(jobdir, ctx.limits.grace))
        ):
            outcomes.append(_Outcome(run, code, info.reason))
        elif code is not None or listed or not _gone_long_enough(jobdir, ctx.limits.grace):
            result.running += 1
        else:
            why = f"lost: left the {backend.name} queue ({info.state.value}) without an exit code"
            if info.state is JobState.STUCK:
                why = f"stuck in the {backend.name} queue in an error state; job deleted"
            take_down.append(run.job_id or "")
            reason = f"{why}; scheduler says {info.reason}" if info.reason else why
            outcomes.append(_Outcome(run, info.exit_code, reason))
    _take_down(backend, take_down)
    return outcomes


def _take_down(backend: Backend, job_ids: list[str]) -> None:
    """Cancel lost jobs and jobs the scheduler holds in an error state, so that the retry
    is the only one: a payload that outlived its wrapper is killed, and the local backend
    returns only once it is gone."""
    if not job_ids:
        return
    try:
        backend.cancel(job_ids)
    except SchedulerError as exc:
        log.warning(
            "could not cancel lost or stuck jobs; cancel them by hand", jobs=job_ids, error=str(exc)
        )


def _missing_output(ctx: StepContext, run: int) -> str | None:
    """The first declared output that is absent, or empty (logs may be empty)."""
    for name, path in ctx.output_paths(run).items():
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return f"missing output {name}: {path}"
        if size == 0 and name not in _LOGS:
            return f"empty output {name}: {path}"
    return None


def _modules(ctx: StepContext, runs: RunTable) -> dict[str, str]:
    """The MODULES columns of a finished run: its text in the legacy ``modules`` column
    (as 2014 readers expect) and its key in the blob table, stored there if new.

    A file that cannot be read stops the reap (ConfigError, exit 2) before any run is
    finished without it.
    """
    if ctx.prod.job.modules is None:
        return {}
    text = modules_text(ctx.settings) or ""
    return {"modules_sha256": runs.put_blob(text), "modules": text}


@dataclass
class Settled:
    """Jobs found ended by one look (``settle``), not yet recorded in the database: the
    look needs no transaction of its own, its record (``record``) one write."""

    ctx: StepContext
    backend: Backend
    units: Units
    outcomes: list[_Outcome]
    result: ReapResult  # running and poll_error known; the rest filled by record()

    @property
    def running(self) -> int:
        """This user's jobs still in flight."""
        return self.result.running

    def record(self) -> ReapResult:
        """The ended jobs' runs become F, or a failed attempt; one write."""
        ctx, outcomes, result = self.ctx, self.outcomes, self.result
        if not outcomes:
            return result
        self.backend.settled([o.run.job_id for o in outcomes if o.run.job_id])
        succeeded = any(o.exit_code == 0 for o in outcomes)
        delete: list[Path] = []

        def write(runs: RunTable) -> None:
            modules = _modules(ctx, runs) if succeeded else {}
            finished: dict[int, dict[str, str]] = {}  # run -> its output paths
            for outcome in outcomes:
                run = outcome.run
                problem = None if outcome.exit_code != 0 else _missing_output(ctx, run.run)
                if outcome.exit_code == 0 and problem is None:
                    finished[run.run] = {k: str(v) for k, v in ctx.output_paths(run.run).items()}
                    continue
                new = _fail(ctx, runs, outcome, problem)
                if new is not None:
                    result.failed[run.run] = new.value
                    result.reasons[run.run] = _gist(ctx, outcome, problem)
                if new is RunState.FAILED:  # X: its raw input no longer counts against spacelim
                    delete.extend(_staged_input(ctx, run))
            R, F = RunState.RUNNING, RunState.FINISHED  # every F of one reap: one statement
            result.finished += runs.move_each(finished, R, F, ctx.owner, stop=runs.now, **modules)
            for outcome in outcomes:
                if outcome.run.run in result.finished:
                    delete.extend(_staged_input(ctx, outcome.run))

        self.units.write(write)
        result.remove = hand_back(self.units, delete)
        result.events = [
            *(Event(f"Finished run: {n}", fields={"run": n}) for n in result.finished),
            *(
                Event(
                    f"Failed run: {n} -> {state}",
                    level="warning",
                    fields={"run": n, "state": state, "reason": result.reasons[n]},
                )
                for n, state in result.failed.items()
            ),
        ]
        return result


def take_over_orphans(ctx: StepContext, backend: Backend) -> list[int]:
    """R runs whose holder's lease expired (a loop that died) become this user's, so that
    a reap here records their jobs; one read when there are none.  ``reap`` does this
    every call, the run loop at each lease renewal (see ``steps/run.py``)."""
    cutoff = lease_cutoff(ctx.limits.lease)
    same_host = not backend.sees_all_hosts
    units = OwnTransactions(ctx.store, ctx.record)
    if not units.read(lambda t: t.any_expired_elsewhere(ctx.owner, cutoff, same_host=same_host)):
        return []
    taken = units.write(lambda t: t.take_over_expired(ctx.owner, cutoff, same_host=same_host))
    log.warning("took over R runs whose holder's lease expired", runs=taken)
    return taken


def settle(ctx: StepContext, backend: Backend, units: Units | None = None) -> Settled:
    """Find which of this user's R runs' jobs ended: exit files first, then one poll."""
    units = units or OwnTransactions(ctx.store, ctx.record)
    result = ReapResult()
    flying = units.read(lambda runs: runs.held(ctx.owner, (RunState.RUNNING,)))
    outcomes, pending = [], []
    for run in flying:
        code = read_exit(job_dir(ctx.workdir, job_name(ctx.record.short, run.run, run.attempt)))
        if code == 0:
            outcomes.append(_Outcome(run, code))
        else:  # running, or failed: the same one poll gives the scheduler's reason (TIMEOUT)
            pending.append((run, code))
    if pending:
        outcomes += _poll_pending(ctx, backend, pending, result)
    return Settled(ctx, backend, units, outcomes, result)


def reap(ctx: StepContext, backend: Backend) -> ReapResult:
    """Settle this user's R runs whose jobs ended (one poll, one transaction); the
    production is closed once no run is left unfinished."""
    take_over_orphans(ctx, backend)
    result = settle(ctx, backend).record()
    if result.running == 0:
        result.closed = ctx.store.close_if_done(ctx.record)
    return result


def _first_part(outcome: _Outcome, problem: str | None) -> str:
    return problem or (_exit_text(outcome.exit_code) if outcome.exit_code is not None else "")


def _gist(ctx: StepContext, outcome: _Outcome, problem: str | None) -> str:
    """What failures alike share: the exit code (or problem) and the elog's first line."""
    tail = _tail(ctx.output_paths(outcome.run.run).get("elog"))
    return f"{_first_part(outcome, problem)}: {tail.splitlines()[0] if tail else ''}"


def _fail(
    ctx: StepContext, runs: RunTable, outcome: _Outcome, problem: str | None
) -> RunState | None:
    run = outcome.run
    parts = [_first_part(outcome, problem)]
    jobdir = job_dir(ctx.workdir, job_name(ctx.record.short, run.run, run.attempt))
    parts += [why for why in (read_exit_reason(jobdir), outcome.reason) if why]
    text = "; ".join(p for p in parts if p)
    tail = _tail(ctx.output_paths(run.run).get("elog"))
    if tail:
        text += f"\nlast lines of elog:\n{tail}"
    retry = RunState.STAGED if run.input and os.path.exists(run.input) else RunState.CLAIMED
    return runs.fail(
        run,
        step="reap",
        reason=text,
        max_attempts=ctx.limits.max_attempts,
        retry_state=retry,
        job_id=run.job_id,
        exit_code=outcome.exit_code,
    )


def _staged_input(ctx: StepContext, run: RunRecord) -> list[Path]:
    """The run's raw input, if it was staged for this production (never a base tree)."""
    if not run.input:
        return []
    path = Path(run.input)  # unlinked as it is: a symbolic link there goes, not its target
    return [path] if ctx.is_staged(path) else []
