"""submit: S -> R for this user's staged runs, while fewer than nproc of their jobs fly.

A job's directory gets an intent marker before the scheduler is called and loses it once
the job id is in the database, so a submit killed in between leaves the marker: the next
submit asks the backend (one ``find`` call, only for marked runs) and adopts the job
instead of submitting it twice.  So does a submit whose jobs started while another
session held the database lock past --lock-timeout: it says which jobs it started and
that they are not recorded yet (exit 75), and the next submit adopts them.

An output that already exists is overwritten only when it is this production's own
earlier attempt: the run's first job script (``...-a1/job.sh``) exists in this
production's work directory and names this database (by its ``database_id``, so that a
database recreated at the same path never takes old outputs for its own).  Anything
else (another production, a private database pointed at the same data directory) stops
the run with X and a clear error.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from alcapctl.batch.base import Backend, JobSpec
from alcapctl.batch.wrapper import (
    INTENT_FILE,
    job_dir,
    job_name,
    owner_token,
    render_script,
    write_job,
    written_for,
)
from alcapctl.errors import LockTimeout
from alcapctl.events import Event
from alcapctl.jobenv import job_environment, require_script
from alcapctl.states import RunState
from alcapctl.steps.context import StepContext
from alcapctl.steps.units import OwnTransactions, Units, hand_back
from alcapctl.store import RunRecord, RunTable
from alcapctl.urls import mask_url

__all__ = ["SubmitResult", "command_fields", "submit"]

log = structlog.get_logger("alcapctl.submit")


@dataclass
class SubmitResult:
    submitted: dict[int, str] = field(default_factory=dict)  # run -> job id
    adopted: dict[int, str] = field(default_factory=dict)  # found after an interrupted submit
    refused: dict[int, str] = field(default_factory=dict)  # run -> why (output clash)
    dry_run: bool = False
    events: list[Event] = field(default_factory=list)
    remove: list[Path] = field(default_factory=list)  # intent markers, after the unit's commit

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["events"], data["remove"]
        return data


def command_fields(ctx: StepContext, run: RunRecord) -> dict[str, Any]:
    """Every field the job command may use, outputs excluded."""
    modules = ctx.prod.job.modules
    return {
        **ctx.fields(run.run),
        "input": run.input or "",
        "filename": Path(run.input).name if run.input else "",
        "modules": str(modules) if modules else "",
        "script": str(ctx.prod.job.script or ""),
    }


def _name(ctx: StepContext, run: RunRecord) -> str:
    return job_name(ctx.record.short, run.run, run.attempt)


def _clash(ctx: StepContext, run: RunRecord) -> str | None:
    """Why an existing output of ``run`` must not be overwritten, or None."""
    existing = [(name, path) for name, path in ctx.output_paths(run.run).items() if path.exists()]
    if not existing:
        return None
    first = job_dir(ctx.workdir, job_name(ctx.record.short, run.run, 1))
    if written_for(first, owner_token(ctx.store.db.identity())):
        return None
    name, path = existing[0]
    return (
        f"output {name} {path} already exists and was not written by "
        f"{ctx.record.name} of {mask_url(ctx.settings.database)}; move it away, or change "
        "the output templates or the data directory, then alcapctl retry"
    )


def _spec(ctx: StepContext, run: RunRecord, heartbeat: int | None) -> JobSpec:
    name = _name(ctx, run)
    jobdir = job_dir(ctx.workdir, name)
    job = ctx.prod.job
    fields = command_fields(ctx, run)
    token = owner_token(ctx.store.db.identity())
    outputs = ctx.output_paths(run.run)
    env = job_environment(ctx.settings)
    script = render_script(name, jobdir, job.command, fields, outputs, env, token, heartbeat)
    path = write_job(jobdir, script)
    return JobSpec(name=name, script=path, jobdir=jobdir, resources=job.resources)


def _candidates(runs: RunTable, ctx: StepContext) -> list[RunRecord]:
    """This user's S runs that fit beside its R ones under nproc: one read of both."""
    held = runs.held(ctx.owner, (RunState.RUNNING, RunState.STAGED))
    staged = [r for r in held if r.status is RunState.STAGED]
    room = ctx.limits.nproc - (len(held) - len(staged))
    return staged[: max(room, 0)]


def submit(
    ctx: StepContext,
    backend: Backend,
    *,
    dry_run: bool = False,
    units: Units | None = None,
) -> SubmitResult:
    """Submit one job per staged run of this user, up to ``limits.nproc`` in flight.

    Decide (one read), start the jobs (outside any transaction unless ``units`` is a unit
    its caller holds open), record them (one write), even when starting some failed.
    """
    units = units or OwnTransactions(ctx.store, ctx.record)
    result = SubmitResult(dry_run=dry_run)
    candidates = units.read(functools.partial(_candidates, ctx=ctx))
    if dry_run:
        for run in candidates:
            result.events.append(Event(f"Would submit run: {run.run}", fields={"run": run.run}))
            result.submitted[run.run] = _name(ctx, run)
        return result
    marked = [r for r in candidates if (job_dir(ctx.workdir, _name(ctx, r)) / INTENT_FILE).exists()]
    found = backend.find([_name(ctx, r) for r in marked]) if marked else {}
    for run in marked:
        if _name(ctx, run) in found:
            result.adopted[run.run] = found[_name(ctx, run)]
            log.warning("adopting job of an interrupted submit", run=run.run)
    specs: list[JobSpec] = []
    run_of: dict[str, int] = {}  # job name -> run
    try:
        if len(result.adopted) < len(candidates):  # new jobs to write: their script first
            require_script(ctx.settings)
        for run in candidates:
            if run.run in result.adopted:
                continue
            reason = _clash(ctx, run)
            if reason is not None:
                result.refused[run.run] = reason
                continue
            result.events.append(Event(f"Submitting run: {run.run}", fields={"run": run.run}))
            spec = _spec(ctx, run, backend.heartbeat)
            specs.append(spec)
            run_of[spec.name] = run.run
        # one scheduler call per array: a job id per run, as each call returns
        for spec, job_id in backend.submit_many(specs, largest=ctx.limits.array):
            result.submitted[run_of[spec.name]] = job_id
    finally:
        _record(ctx, units, candidates, result)
    return result


def _record(
    ctx: StepContext, units: Units, candidates: list[RunRecord], result: SubmitResult
) -> None:
    """One transaction for every job submitted or adopted and every run refused."""
    by_run = {r.run: r for r in candidates}
    jobs = {**result.adopted, **result.submitted}

    def write(runs: RunTable) -> list[int]:
        moved = runs.move_each(
            {run: {"job_id": job_id} for run, job_id in jobs.items()},
            RunState.STAGED,
            RunState.RUNNING,
            ctx.owner,
            backend=ctx.settings.backend,
            start=runs.now,
        )
        lost = sorted(set(jobs) - set(moved))
        for run, reason in result.refused.items():
            runs.fail(
                by_run[run],
                step="submit",
                reason=reason,
                max_attempts=1,
                retry_state=RunState.STAGED,
            )
        return lost

    if not jobs and not result.refused:
        return
    try:
        lost = units.write(write)
    except LockTimeout:
        if not result.submitted:
            raise  # nothing happened outside the database: "nothing was changed" holds
        raise _not_recorded(ctx, result.submitted) from None
    for run in lost:
        log.error("run changed while its job was submitted", run=run, job_id=jobs[run])
    markers = [job_dir(ctx.workdir, _name(ctx, by_run[run])) / INTENT_FILE for run in jobs]
    result.remove = hand_back(units, markers)
    for run, reason in result.refused.items():
        log.error("output clash; run stopped", run=run, reason=reason)


def _not_recorded(ctx: StepContext, submitted: dict[int, str]) -> LockTimeout:
    db = ctx.store.db
    jobs = ", ".join(f"run {run}: job {job_id}" for run, job_id in sorted(submitted.items()))
    return LockTimeout(
        f"{db.location}: started {len(submitted)} job(s) ({jobs}), but another session held "
        f"the database lock for more than {db.lock_timeout:g} s, so they are not recorded: "
        "the runs stay S and their jobs keep running. The next submit (or run) adopts "
        "these jobs instead of starting them again."
    )
