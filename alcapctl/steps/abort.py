"""abort: cancel a user's jobs of a production, return its unfinished runs to N, clean up.

The 2014 script's Ctrl-C behaviour made exact: jobs are cancelled in one scheduler call,
every run the user held (C, S, R) goes back to N in one transaction, and staged inputs and
partial outputs are deleted: only files this production wrote (``files.may_delete``);
anything else is left and reported.  Finished runs and their files are never touched.  Signals
are deferred while it works, so a second Ctrl-C cannot leave it half done.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from alcapctl.batch.base import Backend, SchedulerError
from alcapctl.batch.wrapper import (
    INTENT_FILE,
    first_script_time,
    job_dir,
    job_name,
    owner_token,
    read_exit,
)
from alcapctl.events import Event
from alcapctl.files import may_delete, remove_quietly
from alcapctl.signals import deferred_signals
from alcapctl.states import ACTIVE, RunState
from alcapctl.steps.context import StepContext
from alcapctl.steps.recall import forget_recalls
from alcapctl.steps.stage import input_name
from alcapctl.store import RunRecord, RunTable
from alcapctl.store.outputs import recorded_elsewhere

__all__ = ["AbortResult", "abort", "clean_up"]

log = structlog.get_logger("alcapctl.abort")


@dataclass
class AbortResult:
    cancelled: list[str] = field(default_factory=list)
    aborted: list[int] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # not written by this production: left
    kept_running: list[int] = field(default_factory=list)  # cancel failed: left in R
    finished: list[int] = field(default_factory=list)  # exit file says 0: left R for reap
    events: list[Event] = field(default_factory=list)


def abort(
    ctx: StepContext,
    backend: Backend,
    *,
    runs: Sequence[int] | None = None,
    user: str | None = None,
) -> AbortResult:
    """Abort this user's (or ``user``'s, on any host) unfinished runs of the production."""
    owner = None if user is not None else ctx.owner
    result = AbortResult()
    with deferred_signals():
        held = ctx.store.runs(
            ctx.record, lambda t: t.select(ACTIVE, owner=owner, user=user, runs=runs), write=False
        )
        # A job that ended well is finished work: reap records it, abort never throws it away.
        result.finished = [r.run for r in held if _ended_well(ctx, r)]
        held = [r for r in held if r.run not in result.finished]
        jobs = {r.job_id: r.run for r in held if r.status is RunState.RUNNING and r.job_id}
        jobs.update(_interrupted_submits(ctx, backend, held))
        everything = runs is None and user is None  # this process's own loop, all of it
        strays = [j for j in backend.started_here() if j not in jobs] if everything else []
        if jobs or strays:
            for job_id in [*jobs, *strays]:
                result.events.append(Event(f"Cancelling job {job_id}", fields={"job_id": job_id}))
            try:
                backend.cancel([*jobs, *strays])
                result.cancelled = [*jobs, *strays]
            except SchedulerError as exc:
                log.error("could not cancel jobs; their runs stay R for reap", error=str(exc))
                result.kept_running = sorted(jobs.values())
        targets = [r for r in held if r.run not in result.kept_running]
        if not targets:
            return result
        aborting = [r.run for r in targets]
        result.events.append(Event(f"Aborting runs: {aborting}", fields={"runs": aborting}))

        def reset(table: RunTable) -> list[int]:
            return table.reset(ACTIVE, owner=owner, user=user, runs=[r.run for r in targets])

        result.aborted = ctx.store.runs(ctx.record, reset, write=True)
        result.removed, result.kept = clean_up(ctx, [r for r in targets if r.run in result.aborted])
    return result


def _ended_well(ctx: StepContext, run: RunRecord) -> bool:
    jobdir = job_dir(ctx.workdir, job_name(ctx.record.short, run.run, run.attempt))
    return run.status is RunState.RUNNING and read_exit(jobdir) == 0


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


def clean_up(ctx: StepContext, runs: list[RunRecord]) -> tuple[list[str], list[str]]:
    """Delete staged inputs and partial outputs of this user's runs sent back to N, if this
    production wrote them; returns (removed, kept).

    Another user's files live under their own data directory, which our templates do not
    describe: their runs are reset, their files left to them.
    """
    if ctx.record.type == "alcapana":  # a re-claimed run must be recalled from tape again
        forget_recalls(ctx, [input_name(ctx, r.run) for r in runs])
    removed: list[str] = []
    kept: list[str] = []
    own_dirs = (ctx.staging_dir, ctx.workdir)
    token = owner_token(ctx.store.db.identity())
    for run in runs:
        if run.user != ctx.settings.user:
            continue
        outputs = [str(p) for p in ctx.output_paths(run.run).values()]
        staged = run.input or _unrecorded_input(ctx, run)
        paths: dict[str, float | None] = {staged: None} if staged else {}
        started = first_script_time(ctx.workdir, ctx.record.short, run.run, run.attempt, token)
        paths.update(dict.fromkeys(outputs, started))
        elsewhere = ctx.store.read(
            functools.partial(recorded_elsewhere, record=ctx.record, run=run.run, paths=list(paths))
        )
        for path, started in paths.items():
            if not may_delete(
                Path(path), own_dirs=own_dirs, attempt_started=started, recorded_elsewhere=elsewhere
            ):
                kept.append(path)
                log.warning("left in place: not written by this production", run=run.run, path=path)
            elif remove_quietly(path):
                removed.append(path)
    return removed, kept


def _unrecorded_input(ctx: StepContext, run: RunRecord) -> str | None:
    """Where a fetch interrupted before its run became S left the raw input, if anywhere."""
    if ctx.record.type != "alcapana":
        return None
    return str(ctx.staging_dir / input_name(ctx, run.run))
