"""run: the production loop — reap, claim, stage, submit, every ``pause`` seconds.

The loop only chains the idempotent steps; cron can chain them instead.  It ends when
every selected run is F or X, or after one cycle with ``once``.  Ctrl-C, SIGTERM or an
unexpected error abort this user's part of the production (the legacy behaviour) unless
``keep_jobs`` is set, in which case jobs keep running for a later ``reap``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from alcapctl.archive import Progress
from alcapctl.batch.base import Backend
from alcapctl.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK
from alcapctl.signals import sigterm_as_interrupt
from alcapctl.states import ACTIVE, RunState
from alcapctl.steps.abort import AbortResult, abort
from alcapctl.steps.claim import claim
from alcapctl.steps.context import StepContext
from alcapctl.steps.reap import reap
from alcapctl.steps.stage import stage
from alcapctl.steps.submit import submit
from alcapctl.store import RunTable

__all__ = ["CycleResult", "LoopObserver", "RunSummary", "run_production"]

log = structlog.get_logger("alcapctl.run")

_IDLE_WAIT = 0.2  # seconds an idle cycle waits when pause is 0
_OPEN = (RunState.NEW, *ACTIVE)


@dataclass
class CycleResult:
    reaped: int = 0
    finished: int = 0
    failed: int = 0
    claimed: int = 0
    staged: int = 0
    submitted: int = 0
    open_runs: bool = True  # some selected run is not yet F or X, anyone's
    space_percent: float | None = None  # of the data file system, when staging looked


@dataclass
class RunSummary:
    cycles: int = 0
    finished: int = 0
    failed: int = 0
    totals: dict[RunState, int] = field(default_factory=dict)
    failed_runs: list[int] = field(default_factory=list)
    interrupted: str | None = None
    aborted: AbortResult | None = None
    completed: bool = False  # ran until every selected run was F or X

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILURE if self.completed and self.failed_runs else EXIT_OK


class LoopObserver(Protocol):
    """What the live dashboard (or a test) sees of the loop."""

    def message(self, text: str) -> None: ...

    def cycle(self, ctx: StepContext, result: CycleResult) -> None: ...


def _cycle(
    ctx: StepContext,
    backend: Backend,
    only_datasets: Sequence[str],
    say: Callable[[str], None],
    release: bool,
    progress: Progress | None,
) -> CycleResult:
    """One pass of the four steps.

    Reap runs right before submit rather than first: a cycle starts when one job ends, and
    the others that end while this cycle claims and stages are then reaped and replaced
    in the same cycle, instead of the loop settling into one job per cycle.
    """
    result = CycleResult()
    claimed, _ = claim(ctx, None, only_datasets, release=release)
    for run in claimed:
        say(f"Claimed run: {run}")
    result.claimed = len(claimed)
    staged = stage(ctx, report=say, progress=progress)
    result.staged = len(staged.staged)
    result.space_percent = staged.space_percent
    reaped = reap(ctx, backend, report=say, close=False)
    result.finished = len(reaped.finished)
    result.failed = len(reaped.failed)
    result.reaped = result.finished + result.failed
    result.submitted = len(submit(ctx, backend, report=say, running=reaped.running).submitted)
    # Runs this cycle moved or left in flight are open, without asking the database (which
    # a dataset selection must: those runs may belong to other datasets).
    moved = result.claimed or result.staged or result.submitted or reaped.running
    result.open_runs = (bool(moved) and not only_datasets) or ctx.store.runs(
        ctx.record, lambda runs: runs.any(_OPEN, only_datasets=only_datasets), write=False
    )
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
    last_lease = last_release = time.monotonic()
    upkeep = min(60.0, ctx.limits.lease / 4)  # seconds between lease renewals and releases
    try:
        with sigterm_as_interrupt():
            while True:
                release = summary.cycles == 0 or time.monotonic() - last_release > upkeep
                if release:
                    last_release = time.monotonic()
                cycle = functools.partial(
                    _cycle, ctx, backend, only_datasets, say, release, progress
                )
                result = ctx.store.one_transaction(cycle) if instant else cycle()
                summary.cycles += 1
                summary.finished += result.finished
                summary.failed += result.failed
                if observer:
                    observer.cycle(ctx, result)
                if once or not result.open_runs:
                    break
                if time.monotonic() - last_lease > upkeep:
                    ctx.store.runs(ctx.record, lambda t: t.renew_lease(ctx.owner), write=True)
                    last_lease = time.monotonic()
                # Every step ran: only an ended job can bring new work before the pause is
                # over, and the local backend's wait returns the moment one does.
                backend.wait(pause or _IDLE_WAIT)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM
        log.warning("interrupted", production=ctx.record.name)
        summary.interrupted = "interrupted"
        summary.aborted = _stop(ctx, backend, keep_jobs, say)
    except Exception as exc:  # the legacy "uncaught exception. Aborting..."
        log.error("uncaught exception; aborting", error=str(exc))
        summary.interrupted = type(exc).__name__
        summary.aborted = _stop(ctx, backend, keep_jobs, say)
        raise
    summary.completed = not once
    _finish(ctx, summary, only_datasets)
    return summary


def _stop(
    ctx: StepContext, backend: Backend, keep_jobs: bool, say: Callable[[str], None]
) -> AbortResult | None:
    if keep_jobs:
        say("Stopping; jobs keep running (--keep-jobs): reap them later")
        return None
    return abort(ctx, backend, report=say)


def _finish(ctx: StepContext, summary: RunSummary, only_datasets: Sequence[str]) -> None:
    def read(runs: RunTable) -> tuple[dict[RunState, int], list[int]]:
        failed = runs.select(states=(RunState.FAILED,))
        if only_datasets:
            members = runs.members(only_datasets)
            failed = [r for r in failed if r.run in members]
        return runs.state_counts(), [r.run for r in failed]

    summary.totals, summary.failed_runs = ctx.store.runs(ctx.record, read, write=False)
    if not summary.interrupted:
        ctx.store.close_if_done(ctx.record)
