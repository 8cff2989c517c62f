"""run: the production loop — reap, claim, stage, submit, every ``pause`` seconds.

The loop only chains the idempotent steps; cron can chain them instead.  It ends when
every selected run is F or X, or after one cycle with ``once``.  Ctrl-C, SIGTERM or an
unexpected error abort this user's part of the production (the legacy behaviour) unless
``keep_jobs`` is set, in which case jobs keep running for a later ``reap``.

Where transactions begin and end is decided here, in ``_Cycle.run``: a cycle that takes
milliseconds (local jobs, inputs that need no network) is ONE unit of work; otherwise
every step's reads and writes commit on their own, so that nobody waits for the
database while a scheduler answers or a file crosses the network.  Between cycles the
database lock is free.  What a cycle did (lines to print, files to remove) is acted on
only once its writes are committed.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import structlog

from alcapctl.archive import Progress
from alcapctl.batch.base import Backend
from alcapctl.errors import EXIT_FAILURE, EXIT_OK, EXIT_TEMPFAIL, EXIT_USAGE
from alcapctl.events import Emit, Event
from alcapctl.faults import Kind, StepFaults, classify
from alcapctl.files import remove_all
from alcapctl.signals import Interrupted, deferred_signals, signals_after, signals_as_interrupt
from alcapctl.states import ACTIVE, RunState
from alcapctl.steplock import take_stop_request
from alcapctl.steps.abort import AbortResult, abort
from alcapctl.steps.claim import claim, hand_back, release_stale
from alcapctl.steps.context import StepContext
from alcapctl.steps.reap import settle, take_over_orphans
from alcapctl.steps.stage import stage
from alcapctl.steps.submit import submit
from alcapctl.steps.units import InUnit, OwnTransactions, Units
from alcapctl.store import RunTable

__all__ = ["CycleResult", "LoopObserver", "RunSummary", "run_production"]

log = structlog.get_logger("alcapctl.run")

T = TypeVar("T")
_IDLE_WAIT = 0.2  # seconds an idle cycle waits when pause is 0
_GROUP_WINDOW = 0.05  # seconds an instant cycle goes on in its transaction (see _Cycle.run)
# After a grouped cycle the lock is left free for this share of the time it was held:
# SQLite is not fair, and another session's busy handler, polling every few to 100 ms,
# must find the lock free now and then, however busy this loop is.
_FAIR_SHARE = 0.05  # so at most 5 % of the loop's speed
_OPEN = (RunState.NEW, *ACTIVE)


@dataclass
class CycleResult:
    reaped: int = 0
    finished: int = 0
    failed: int = 0
    exhausted: list[int] = field(default_factory=list)  # runs that became X in this cycle
    claimed: int = 0
    staged: int = 0
    submitted: int = 0
    in_flight: int = 0  # this user's jobs left running
    open_runs: bool = True  # some selected run is not yet F or X, anyone's
    space_percent: float | None = None  # of the data file system, when staging looked
    space_full: bool = False  # staging found the data file system at spacelim
    fault: str | None = None  # a transient fault a step met (it changed nothing)
    drain: str | None = None  # a configuration fault: no new work, jobs reaped to the end
    failures: list[tuple[int, str]] = field(default_factory=list)  # (run, gist), in order
    events: list[Event] = field(default_factory=list)  # to emit once the cycle committed
    remove: list[Path] = field(default_factory=list)  # to remove once the cycle committed
    error: BaseException | None = None  # raised once what the cycle did is committed


@dataclass
class RunSummary:
    cycles: int = 0
    finished: int = 0
    failed: int = 0
    exhausted: list[int] = field(default_factory=list)  # runs that became X in this call
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
    drained: str | None = None  # the configuration fault that drained the production

    @property
    def exit_code(self) -> int:
        if self.signal_exit is not None:
            return self.signal_exit
        if self.drained:
            return EXIT_USAGE
        if self.interrupted or self.tripped:
            return EXIT_FAILURE
        if self.completed:
            return EXIT_FAILURE if self.failed_runs else EXIT_OK
        if self.exhausted:
            return EXIT_FAILURE
        return EXIT_TEMPFAIL if self.fault else EXIT_OK


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
    progress: Progress | None
    instant: bool  # the whole cycle is one transaction (see _instant)
    faults: StepFaults  # which steps a transient fault blocks, and until when
    breaker: _Breaker  # looks at every reap's failures before new work is taken
    tripped: str | None = None  # why the breaker stopped new work: jobs are only reaped
    drain: str | None = None  # a configuration fault stopped new work: jobs are reaped
    drain_step: str | None = None  # the step that met it
    space_full: bool = False  # the last staging found no space: nothing more is claimed

    def run(self) -> CycleResult:
        """One cycle in the units of work this loop chose.  A failure inside it is kept
        in ``error`` and the cycle's writes are committed anyway, so that the abort that
        follows sees, and cancels, every job the cycle started."""
        ctx, result = self.ctx, CycleResult()

        def steps(units: Units) -> None:
            try:
                self.steps(units, result)
            except BaseException as exc:  # raised again once the cycle is committed
                result.error = exc

        def grouped(unit: RunTable) -> None:
            """Passes of the steps in one transaction while jobs keep ending, for up to
            ``_GROUP_WINDOW``: with local jobs of milliseconds, a commit costs more than
            a pass, and nobody waits for the lock longer than a window."""
            units, deadline = InUnit(unit), time.monotonic() + _GROUP_WINDOW
            moved = -1  # jobs reaped and submitted before the last pass
            while result.error is None and moved < result.reaped + result.submitted:
                if moved >= 0:  # another pass, while jobs run and the window lasts
                    left = deadline - time.monotonic()
                    if left <= 0 or not (result.in_flight and result.open_runs):
                        return
                    self.backend.wait(left)  # returns the moment a job ends
                moved = result.reaped + result.submitted
                steps(units)

        if self.instant:  # the cycle is one transaction, committed when it returns
            began = time.monotonic()
            # Obeyed inside the unit, a signal would roll back the record of the jobs it
            # started, and of their runs, claimed in it: abort would not know them.
            try:
                with signals_after():
                    ctx.store.runs(ctx.record, grouped, write=True)
            except Interrupted as exc:
                if exc.__context__ is not None:  # the unit failed: nothing of it committed
                    raise
                result.error = result.error or exc  # raised once the cycle is acted on
            time.sleep((time.monotonic() - began) * _FAIR_SHARE)  # others' turn
        else:  # every read and write of every step commits on its own
            steps(OwnTransactions(ctx.store, ctx.record))
        return result

    def steps(self, units: Units, result: CycleResult) -> None:
        """Reap, then (unless the breaker tripped, which it may do at this reap) claim,
        stage and submit."""
        ctx, backend = self.ctx, self.backend
        settled = self._step("reap", result, lambda: settle(ctx, backend, units))
        reaped = settled and self._step("reap", result, settled.record, lambda r: r.poll_error)
        if reaped:
            result.events += reaped.events
            result.remove += reaped.remove
            result.finished += len(reaped.finished)
            result.failed += len(reaped.failed)
            result.reaped += len(reaped.finished) + len(reaped.failed)
            failures = [(run, reaped.reasons[run]) for run in reaped.failed]
            result.failures += failures
            self.tripped = self.tripped or self.breaker.note(failures, len(reaped.finished))
            result.exhausted += [r for r, s in reaped.failed.items() if s == RunState.FAILED]
            result.in_flight = reaped.running
        if not self.tripped:
            self._new_work(units, result)
        if self.tripped or self.drain:  # go on while jobs run and reap can reap them
            result.open_runs = self.drain_step != "reap" and (not reaped or result.in_flight > 0)
            return
        result.open_runs = result.in_flight > 0 or units.read(
            lambda runs: runs.any(_OPEN, only_datasets=self.only_datasets)
        )

    def _new_work(self, units: Units, result: CycleResult) -> None:
        """Claim and stage (not while draining, nor claim while space is short), submit."""
        ctx, backend, only = self.ctx, self.backend, self.only_datasets
        claimed = staged = None
        if not (self.space_full or self.drain):
            claimed = self._step("claim", result, lambda: claim(ctx, None, only, units=units))
        if claimed:
            result.claimed += len(claimed.claimed)
            result.events += claimed.events
        if not self.drain:
            staged = self._step(
                "stage",
                result,
                lambda: stage(ctx, progress=self.progress, units=units),
                lambda s: s.unavailable,
            )
        if staged:
            result.staged += len(staged.staged)
            result.exhausted += staged.exhausted
            result.space_percent = staged.space_percent
            self.space_full = result.space_full = staged.waiting_for_space
            result.events += staged.events
        if self.drain_step == "reap":  # nobody would reap what it started
            return
        submitted = self._step("submit", result, lambda: submit(ctx, backend, units=units))
        if submitted:
            result.submitted += len(submitted.submitted)
            result.exhausted += list(submitted.refused)
            result.in_flight += len(submitted.submitted)
            result.events += submitted.events
            result.remove += submitted.remove

    def _step(
        self,
        name: str,
        result: CycleResult,
        fn: Callable[[], T],
        fault: Callable[[T], str | None] = lambda _: None,
    ) -> T | None:
        """``fn`` unless a transient fault blocks the step.  A transient fault it raises
        or reports (``fault``) blocks it, and only it, for a while; a configuration
        fault drains the production; anything else is raised."""
        if not self.faults.due(name):
            return None
        try:
            done = fn()
        except Exception as exc:
            kind = classify(exc, self.faults.in_a_row(name) + 1)
            if kind is Kind.DRAIN:
                self.drain, self.drain_step = f"{name}: {exc}", name
                result.drain = self.drain
                return None
            if kind is not Kind.TRANSIENT:
                raise
            self._blocked(name, result, str(exc))
            return None
        met = fault(done)
        if met is None:
            self.faults.cleared(name)
        else:
            self._blocked(name, result, met)
        return done

    def _blocked(self, name: str, result: CycleResult, fault: str) -> None:
        delay = self.faults.failed(name)
        result.fault = fault
        log.warning(
            "transient fault: no run changed, no attempt counted; this step waits",
            step=name,
            fault=fault,
            retry_in_seconds=delay,
        )


def _instant(ctx: StepContext, backend: Backend) -> bool:
    """A cycle takes milliseconds: local jobs, and inputs that need no network."""
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
    emit: Emit | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Drive the production until every selected run is F or X (or one cycle)."""
    ctx.store.validate_datasets(tuple(only_datasets))

    def say(event: Event) -> None:
        if emit:
            emit(event)
        if observer:
            observer.message(event.text)

    summary = RunSummary()
    pause = ctx.limits.pause
    cycle = _Cycle(
        ctx,
        backend,
        only_datasets,
        progress,
        _instant(ctx, backend),
        StepFaults(pause),
        _Breaker(ctx.limits.breaker),
    )
    upkeep = min(60.0, ctx.limits.lease / 4)  # seconds between lease renewals and releases
    next_upkeep = 0.0  # before the first cycle, then every ``upkeep`` seconds
    take_stop_request(ctx.workdir, ctx.settings.user)  # one asked of an earlier loop
    try:
        with signals_as_interrupt():
            while True:
                ctx.store.db.renew_lock_budget()  # --lock-timeout bounds each cycle
                if time.monotonic() >= next_upkeep and _upkeep(ctx, backend):
                    next_upkeep = time.monotonic() + upkeep
                result = _guarded_cycle(cycle, summary, say)
                if cycle.tripped and not summary.tripped:
                    summary.tripped = cycle.tripped
                    say(
                        Event(
                            f"Breaker: {cycle.tripped}; no new work taken, running jobs "
                            "reaped to the end",
                            "error",
                        )
                    )
                if result.drain and not summary.drained:
                    summary.drained = result.drain
                    say(_draining(ctx, result.drain, cycle.drain_step == "reap"))
                    say(_hand_back(ctx))
                if observer:
                    observer.cycle(ctx, result)
                if once or not result.open_runs:
                    break
                request = take_stop_request(ctx.workdir, ctx.settings.user)
                if request is not None:
                    summary.stopped = request
                    say(Event(f"Stopping on request ({request}): alcapctl stop"))
                    summary.aborted = _stop(ctx, backend, request == "keep", say)
                    break
                if result.fault:
                    time.sleep(max(pause, _IDLE_WAIT))  # jobs keep running; the step waits
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
        log.warning("unexpected error: aborting (the error and its traceback follow)")
        summary.interrupted = type(exc).__name__
        summary.aborted = _stop(ctx, backend, keep_jobs, say)
        raise
    summary.completed = not once and not summary.drained
    _finish(ctx, summary, only_datasets, say)
    return summary


def _upkeep(ctx: StepContext, backend: Backend) -> bool:
    """Expired claims go back to N, R runs of a dead holder become this user's, and this
    user's leases are renewed: every ``upkeep`` seconds, not every cycle, as leases last
    minutes.  False when a transient fault (the database lock not had in time, the
    scheduler) put that off to the next cycle."""
    try:
        release_stale(ctx)
        take_over_orphans(ctx, backend)
        ctx.store.runs(ctx.record, lambda t: t.renew_lease(ctx.owner), write=True)
    except Exception as exc:
        if classify(exc) is not Kind.TRANSIENT:
            raise
        log.warning("transient fault: leases not renewed; tried again next cycle", fault=str(exc))
        return False
    return True


def _guarded_cycle(cycle: _Cycle, summary: RunSummary, say: Emit) -> CycleResult:
    """One cycle; what it did is printed and its files removed (after its commit) even
    when it raises.  A database lock not had in time blocks the whole cycle."""
    try:
        result = cycle.run()
    except Exception as exc:
        if classify(exc) is not Kind.TRANSIENT:
            raise
        log.warning("transient fault: no run changed, no attempt counted", fault=str(exc))
        result = CycleResult(fault=str(exc))
    for event in result.events:
        say(event)
    remove_all(result.remove)
    if result.error is not None:
        raise result.error
    summary.cycles += 1
    summary.finished += result.finished
    summary.failed += result.failed
    summary.exhausted += result.exhausted
    summary.fault = result.fault
    return result


@dataclass
class _Breaker:
    """Counts failed attempts in a row that share one reason; a success breaks the row."""

    limit: int
    reason: str | None = None
    runs: list[int] = field(default_factory=list)

    def note(self, failures: list[tuple[int, str]], successes: int) -> str | None:
        """What the breaker says once ``limit`` attempts in a row failed alike, else None."""
        if successes:
            self.reason, self.runs = None, []
        for run, reason in failures:
            self.runs = [*self.runs, run] if reason == self.reason else [run]
            self.reason = reason
        if len(self.runs) < self.limit:
            return None
        runs = sorted(set(self.runs))
        return f"{len(self.runs)} failed attempts in a row ({self.reason}), runs {runs}"


def _draining(ctx: StepContext, reason: str, reap_failed: bool) -> Event:
    """What a drain does: reap its jobs to the end or, when reap is what cannot go on,
    leave them running (cancelled by nobody) for a reap once the fault is fixed."""
    if not reap_failed:
        return Event(
            f"Draining: {reason}; no new work taken, running jobs reaped to the end", "error"
        )
    runs = ctx.store.runs(
        ctx.record,
        lambda t: [r.run for r in t.select(states=(RunState.RUNNING,), owner=ctx.owner)],
        write=False,
    )
    return Event(
        f"Draining: {reason}; reap cannot go on, so no new work is taken and the jobs of "
        f"runs {runs} are left running, not cancelled: fix it, then alcapctl reap "
        "(or run) records them",
        "error",
        fields={"runs": runs},
    )


def _hand_back(ctx: StepContext) -> Event:
    """Runs this user claimed and did not stage go back to N (a drain takes no new work)."""
    runs = hand_back(ctx)
    return Event(f"Handed back runs: {runs}", fields={"runs": runs}, change=bool(runs))


def _stop(ctx: StepContext, backend: Backend, keep_jobs: bool, say: Emit) -> AbortResult | None:
    if keep_jobs:
        say(Event("Stopping; jobs keep running (--keep-jobs): reap them later"))
        return None
    # A second signal cannot cut the abort short; it waits for the lock as long as it takes.
    with deferred_signals(), ctx.store.patient():
        result = abort(ctx, backend)
    for event in result.events:
        say(event)
    return result


def _finish(
    ctx: StepContext,
    summary: RunSummary,
    only_datasets: Sequence[str],
    say: Emit,
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
        say(Event(f"INFO: Finishing production {ctx.record.name}"))
