"""abort: cancel a user's jobs of a production, return its unfinished runs to N, clean up.

The 2014 script's Ctrl-C behaviour made exact: jobs are cancelled in one scheduler call,
every run the user held (C, S, R) goes back to N in one transaction, and staged inputs and
partial outputs are deleted.  Finished runs and their files are never touched.  Signals
are deferred while it works, so a second Ctrl-C cannot leave it half done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from alcapctl.batch.base import Backend, SchedulerError
from alcapctl.batch.wrapper import INTENT_FILE, job_dir, job_name
from alcapctl.files import remove_quietly
from alcapctl.signals import deferred_signals
from alcapctl.states import ACTIVE, RunState
from alcapctl.steps.context import StepContext
from alcapctl.steps.recall import forget_recalls
from alcapctl.steps.stage import input_name
from alcapctl.store import RunRecord, RunTable

__all__ = ["AbortResult", "abort", "clean_up"]

log = structlog.get_logger("alcapctl.abort")


@dataclass
class AbortResult:
    cancelled: list[str] = field(default_factory=list)
    aborted: list[int] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_running: list[int] = field(default_factory=list)  # cancel failed: left in R


def abort(
    ctx: StepContext,
    backend: Backend,
    *,
    runs: Sequence[int] | None = None,
    user: str | None = None,
    report: Callable[[str], None] | None = None,
) -> AbortResult:
    """Abort this user's (or ``user``'s, on any host) unfinished runs of the production."""
    say = report or (lambda _: None)
    owner = None if user is not None else ctx.owner
    result = AbortResult()
    with deferred_signals():
        held = ctx.store.runs(
            ctx.record, lambda t: t.select(ACTIVE, owner=owner, user=user, runs=runs), write=False
        )
        jobs = {r.job_id: r.run for r in held if r.status is RunState.RUNNING and r.job_id}
        jobs.update(_interrupted_submits(ctx, backend, held))
        if jobs:
            for job_id in jobs:
                say(f"Cancelling job {job_id}")
            try:
                backend.cancel(list(jobs))
                result.cancelled = list(jobs)
            except SchedulerError as exc:
                log.error("could not cancel jobs; their runs stay R for reap", error=str(exc))
                result.kept_running = sorted(jobs.values())
        targets = [r for r in held if r.run not in result.kept_running]
        if not targets:
            return result
        say(f"Aborting runs: {[r.run for r in targets]}")

        def reset(table: RunTable) -> list[int]:
            return table.reset(ACTIVE, owner=owner, user=user, runs=[r.run for r in targets])

        result.aborted = ctx.store.runs(ctx.record, reset, write=True)
        result.removed = clean_up(ctx, [r for r in targets if r.run in result.aborted])
    return result


def _interrupted_submits(
    ctx: StepContext, backend: Backend, held: list[RunRecord]
) -> dict[str, int]:
    """Jobs started for runs not yet recorded as R: a submit interrupted (by this very Ctrl-C,
    say) after the scheduler took the job and before the database heard of it."""
    names = {}
    for run in held:
        name = job_name(ctx.record.short, run.run, run.attempt)
        marker = job_dir(ctx.workdir, name) / INTENT_FILE
        if run.status is not RunState.RUNNING and marker.exists():
            names[name] = run.run
    if not names:
        return {}
    try:
        found = backend.find(list(names))
    except SchedulerError as exc:
        log.warning("could not look for jobs of interrupted submits", error=str(exc))
        return {}
    return {job_id: names[name] for name, job_id in found.items()}


def clean_up(ctx: StepContext, runs: list[RunRecord]) -> list[str]:
    """Delete staged inputs and partial outputs of this user's runs sent back to N.

    Another user's files live under their own data directory, which our templates do not
    describe: their runs are reset, their files left to them.
    """
    if ctx.record.type == "alcapana":  # a re-claimed run must be recalled from tape again
        forget_recalls(ctx, [input_name(ctx, r.run) for r in runs])
    removed = []
    for run in runs:
        if run.user != ctx.settings.user:
            continue
        staged = run.input or _unrecorded_input(ctx, run)
        paths = [staged] if staged else []
        paths += [str(p) for p in ctx.output_paths(run.run).values()]
        for path in paths:
            inside = ctx.staging_dir if path == staged else None
            if remove_quietly(path, inside=inside):
                removed.append(path)
    return removed


def _unrecorded_input(ctx: StepContext, run: RunRecord) -> str | None:
    """Where a fetch interrupted before its run became S left the raw input, if anywhere."""
    if ctx.record.type != "alcapana":
        return None
    return str(ctx.staging_dir / input_name(ctx, run.run))
