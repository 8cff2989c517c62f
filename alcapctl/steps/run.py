"""run: the production loop — reap, claim, stage, submit, every ``pause`` seconds.

The loop only chains the idempotent steps; cron can chain them instead.  It ends when
every selected run is F or X, or after one cycle with ``once``.  Ctrl-C, SIGTERM or an
unexpected error abort this user's part of the production (the legacy behaviour) unless
``keep_jobs`` is set, in which case jobs keep running for a later ``reap``.
"""

from __future__ import annotations

import functools
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from alcapctl.archive import Progress
from alcapctl.batch.base import Backend
from alcapctl.errors import EXIT_FAILURE, EXIT_OK, EXIT_TEMPFAIL
from alcapctl.faults import Kind, backoff_delay, classify
from alcapctl.signals import Interrupted, signals_as_interrupt
from alcapctl.states import ACTIVE, RunState
from alcapctl.steplock import take_stop_request
from alcapctl.steps.abort import AbortResult, abort
from alcapctl.steps.claim import claim
from alcapctl.steps.context import StepContext
from alcapctl.steps.reap import settle
from alcapctl.steps.stage import stage
from alcapctl.steps.submit import prepare, submit
from alcapctl.store import RunTable

__all__ = ["CycleResult", "LoopObserver", "RunSummary", "run_production"]

log = structlog.get_logger("alcapctl.run")

_IDLE_WAIT = 0.2  # seconds an idle cycle waits when pause is 0
# Instant cycles that keep finding work share one transaction for up to this many seconds:
# a commit costs as much as a cycle, and the lock is not held for longer than a slow step.
_BATCH_WINDOW = 0.05
_YIELD = 0.05  # seconds without the lock after each cycle while another session waits for it
_OPEN = (RunState.NEW, *ACTIVE)


@dataclass
class CycleResult:
    reaped: int = 0
    finished: int = 0
    failed: int = 0
    claimed: int = 0
    staged: int = 0
    submitted: int = 0
    in_flight: int = 0  # this user's jobs left running
    open_runs: bool = True  # some selected run is not yet F or X, anyone's
    space_percent: float | None = None  # of the data file system, when staging looked
    fault: str | None = None  # a transient fault a step met and survived (nothing changed)
    reasons: list[str] = field(default_factory=list)  # gists of the failed attempts, in order
    cycles: int = 1

    def then(self, later: CycleResult) -> CycleResult:
        """This result followed by a later cycle's: counts added, states the later one's."""
        return CycleResult(
            reaped=self.reaped + later.reaped,
            finished=self.finished + later.finished,
            failed=self.failed + later.failed,
            claimed=self.claimed + later.claimed,
            staged=self.staged + later.staged,
            submitted=self.submitted + later.submitted,
            in_flight=later.in_flight,
            open_runs=later.open_runs,
            space_percent=self.space_percent
            if later.space_percent is None
            else later.space_percent,
            fault=later.fault or self.fault,
            reasons=self.reasons + later.reasons,
            cycles=self.cycles + later.cycles,
        )


@dataclass
class RunSummary:
    cycles: int = 0
    finished: int = 0
    failed: int = 0
    totals: dict[RunState, int] = field(default_factory=dict)
    failed_runs: list[int] = field(default_factory=list)
    interrupted: str | None = None
    signal_exit: int | None = None  # 128 + the signal that ended the loop
    aborted: AbortResult | None = None
    completed: bool = False  # ran until every selected run was F or X
    fault: str | None = None  # the last transient fault met (one cycle: it blocked progress)
    closed: bool = False  # this call set the production's stop: every run is F
    stopped: str | None = None  # "keep" or "abort": alcapctl stop ended the loop
    tripped: str | None = None  # the reason the breaker stopped new work for

    @property
    def exit_code(self) -> int:
        if self.signal_exit is not None:
            return self.signal_exit
        if self.interrupted or self.tripped:
            return EXIT_FAILURE
        if not self.completed and self.fault:
            return EXIT_TEMPFAIL
        return EXIT_FAILURE if self.completed and self.failed_runs else EXIT_OK


class LoopObserver(Protocol):
    """What the live dashboard (or a test) sees of the loop."""

    def message(self, text: str) -> None: ...

    def cycle(self, ctx: StepContext, result: CycleResult) -> None: ...


@dataclass
class _Cycle:
    """One pass of the four steps, with what carries over from cycle to cycle."""

    ctx: StepContext
    backend: Backend
    only_datasets: Sequence[str]
    say: Callable[[str], None]
    progress: Progress | None
    instant: bool  # the whole cycle is one transaction (see _instant)
    # Whether this user may have runs in C.  This process makes them (claims, and attempts
    # failed for want of their input); a cycle that finds nothing to do looks anyway, for
    # those a hand-run reap made.  Staging is skipped, a query saved, while there are none.
    claimed_waiting: bool = True
    tripped: bool = False  # the breaker stopped new work: jobs are only reaped

    def __call__(self, release: bool) -> CycleResult:
        """Jobs first: the ended ones are found, their slots refilled from the staged runs,
        and only then are they recorded, runs claimed and inputs staged, while the new jobs
        run.  Runs staged now fill slots still free at once, not a job end later.  With
        every slot busy, the next runs' job directories are written before a slot frees.
        When cycles are instant, runs are claimed only once those held run short, so that
        claim and stage do real work every few cycles rather than a little at each.
        """
        ctx, backend, say, only_datasets = self.ctx, self.backend, self.say, self.only_datasets
        result = CycleResult()
        settled = settle(ctx, backend, close=False)
        running = settled.running
        submitted = (
            {} if self.tripped else submit(ctx, backend, report=say, running=running).submitted
        )
        running += len(submitted)
        result.fault = settled.result.poll_error
        reaped = settled.record(report=say)
        result.reasons = list(reaped.reasons.values())
        if RunState.CLAIMED.value in reaped.failed.values():
            self.claimed_waiting = True
        result.finished = len(reaped.finished)
        result.failed = len(reaped.failed)
        result.reaped = result.finished + result.failed
        if self.tripped:
            result.in_flight = running
            result.open_runs = running > 0
            return result
        claimed, _ = claim(ctx, None, only_datasets, release=release, when_short=self.instant)
        for run in claimed:
            say(f"Claimed run: {run}")
        result.claimed = len(claimed)
        if claimed or self.claimed_waiting:
            staged = stage(ctx, report=say, progress=self.progress)
            result.staged = len(staged.staged)
            result.space_percent = staged.space_percent
            result.fault = staged.unavailable or result.fault
            self.claimed_waiting = staged.left > 0
        if (result.staged or result.failed) and running < ctx.limits.nproc:  # new S runs
            more = submit(ctx, backend, report=say, running=running).submitted
            submitted = {**submitted, **more}
            running += len(more)
        if running >= ctx.limits.nproc:  # the next slot to free gets a job written already
            prepare(ctx, backend, ctx.limits.nproc)
        result.submitted = len(submitted)
        result.in_flight = running
        if not (result.claimed or result.staged or result.reaped or result.submitted):
            self.claimed_waiting = True
        # Runs this cycle moved or left in flight are open, without asking the database
        # (which a dataset selection must: those runs may belong to other datasets).
        moved = result.claimed or result.staged or result.submitted or reaped.running
        result.open_runs = (bool(moved) and not only_datasets) or ctx.store.runs(
            ctx.record, lambda runs: runs.any(_OPEN, only_datasets=only_datasets), write=False
        )
        return result

    def batch(self, release: bool) -> CycleResult:
        """Cycles in the caller's transaction while they find work, for ``_BATCH_WINDOW``.

        Between two cycles the loop waits for a job to end, as it would between
        transactions.  It stops batching when a cycle found nothing to do, no job is left
        to wait for, or another session announced that it waits for the lock.
        """
        deadline = time.monotonic() + _BATCH_WINDOW
        result = self(release)
        while (
            (result.reaped or result.submitted)
            and result.in_flight
            and result.open_runs
            and time.monotonic() < deadline
            and not self.ctx.store.someone_waiting()
        ):
            self.backend.wait(deadline - time.monotonic())
            result = result.then(self(release=False))
        return result


def _instant(ctx: StepContext, backend: Backend) -> bool:
    """A cycle takes milliseconds (local jobs, inputs that need no network): one transaction.

    Otherwise each step commits on its own, so that nobody waits for the database while
    a scheduler answers or a file crosses the network.
    """
    remote = ctx.record.type == "alcapana" and not (ctx.settings.archive.url or "").startswith(
        "file:"
    )
    return backend.instant and not remote


def run_production(
    ctx: StepContext,
    backend: Backend,
    *,
    once: bool = False,
    only_datasets: Sequence[str] = (),
    keep_jobs: bool = False,
    observer: LoopObserver | None = None,
    report: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Drive the production until every selected run is F or X (or one cycle)."""
    ctx.store.validate_datasets(tuple(only_datasets))

    def say(text: str) -> None:
        if report:
            report(text)
        if observer:
            observer.message(text)

    summary = RunSummary()
    pause = ctx.limits.pause
    instant = _instant(ctx, backend)
    cycle = _Cycle(ctx, backend, only_datasets, say, progress, instant)
    last_lease = last_release = time.monotonic()
    upkeep = min(60.0, ctx.limits.lease / 4)  # seconds between lease renewals and releases
    faults_in_row = 0
    breaker = _Breaker(ctx.limits.breaker)
    take_stop_request(ctx.workdir, ctx.settings.user)  # one asked of an earlier loop
    try:
        with signals_as_interrupt():
            while True:
                ctx.store.db.renew_lock_budget()  # --lock-timeout bounds each cycle
                release = summary.cycles == 0 or time.monotonic() - last_release > upkeep
                if release:
                    last_release = time.monotonic()
                try:
                    if instant:
                        result = ctx.store.one_transaction(functools.partial(cycle.batch, release))
                    else:
                        result = cycle(release)
                except Exception as exc:
                    if classify(exc) is not Kind.TRANSIENT:
                        raise
                    result = CycleResult(fault=str(exc))
                if result.fault:
                    faults_in_row += 1
                    summary.fault = result.fault
                    delay = backoff_delay(faults_in_row, pause)
                    log.warning(
                        "transient fault: no run changed, no attempt counted; trying again",
                        fault=result.fault,
                        retry_in_seconds=delay,
                    )
                else:
                    faults_in_row, delay = 0, 0.0
                summary.cycles += result.cycles
                streak = breaker.note(result.reasons, result.finished)
                if streak and not cycle.tripped:
                    cycle.tripped = True
                    summary.tripped = streak
                    say(
                        f"Breaker: {ctx.limits.breaker} failed attempts in a row ({streak}); "
                        "no new work taken, running jobs reaped to the end"
                    )
                summary.finished += result.finished
                summary.failed += result.failed
                if observer:
                    observer.cycle(ctx, result)
                if once or not result.open_runs:
                    break
                request = take_stop_request(ctx.workdir, ctx.settings.user)
                if request is not None:
                    summary.stopped = request
                    say(f"Stopping on request ({request}): alcapctl stop")
                    summary.aborted = _stop(ctx, backend, request == "keep", say)
                    break
                if time.monotonic() - last_lease > upkeep:
                    ctx.store.runs(ctx.record, lambda t: t.renew_lease(ctx.owner), write=True)
                    last_lease = time.monotonic()
                if instant and ctx.store.someone_waiting():
                    time.sleep(_YIELD)  # back-to-back transactions would starve the waiter
                if delay:
                    time.sleep(delay)  # jobs keep running; nothing waits on this process
                else:
                    # Every step ran: only an ended job can bring new work before the pause
                    # is over, and the local backend's wait returns the moment one does.
                    backend.wait(pause or _IDLE_WAIT)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        log.warning("interrupted", production=ctx.record.name, signal=signal.Signals(signum).name)
        summary.interrupted = signal.Signals(signum).name
        summary.signal_exit = 128 + signum
        summary.aborted = _stop(ctx, backend, keep_jobs, say)
    except Exception as exc:  # the legacy "uncaught exception. Aborting..."
        log.error("uncaught exception; aborting", error=str(exc))
        summary.interrupted = type(exc).__name__
        summary.aborted = _stop(ctx, backend, keep_jobs, say)
        raise
    summary.completed = not once
    _finish(ctx, summary, only_datasets, say)
    return summary


@dataclass
class _Breaker:
    """Counts failed attempts in a row that share one reason; a success breaks the row."""

    limit: int
    reason: str | None = None
    streak: int = 0

    def note(self, reasons: list[str], successes: int) -> str | None:
        """The shared reason once ``limit`` attempts in a row failed with it, else None."""
        if successes:
            self.reason, self.streak = None, 0
        for reason in reasons:
            self.streak = self.streak + 1 if reason == self.reason else 1
            self.reason = reason
        return self.reason if self.streak >= self.limit else None


def _stop(
    ctx: StepContext, backend: Backend, keep_jobs: bool, say: Callable[[str], None]
) -> AbortResult | None:
    if keep_jobs:
        say("Stopping; jobs keep running (--keep-jobs): reap them later")
        return None
    with ctx.store.patient():  # the abort waits for the lock as long as it takes
        return abort(ctx, backend, report=say)


def _finish(
    ctx: StepContext,
    summary: RunSummary,
    only_datasets: Sequence[str],
    say: Callable[[str], None],
) -> None:
    def read(runs: RunTable) -> tuple[dict[RunState, int], list[int]]:
        failed = runs.select(states=(RunState.FAILED,))
        if only_datasets:
            members = runs.members(only_datasets)
            failed = [r for r in failed if r.run in members]
        return runs.state_counts(), [r.run for r in failed]

    summary.totals, summary.failed_runs = ctx.store.runs(ctx.record, read, write=False)
    if not summary.interrupted and ctx.store.close_if_done(ctx.record):
        summary.closed = True
        say(f"INFO: Finishing production {ctx.record.name}")
