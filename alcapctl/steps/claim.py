"""claim: move runs from N to C for this user, atomically, releasing stale claims first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import structlog

from alcapctl.states import ACTIVE, RunState
from alcapctl.steps.context import StepContext
from alcapctl.store import RunRecord, RunTable

__all__ = ["claim", "lease_cutoff", "wanted"]

log = structlog.get_logger("alcapctl.claim")


def lease_cutoff(seconds: float) -> str:
    """Timestamp before which an unrenewed claim counts as stale."""
    then = datetime.now(timezone.utc) - timedelta(seconds=seconds)
    return then.isoformat(sep=" ")


def wanted(ctx: StepContext, runs: RunTable) -> int:
    """How many more runs this user should hold: enough to fill nproc + nprep."""
    held = runs.count(ACTIVE, ctx.owner)
    return max(ctx.limits.nproc + ctx.limits.nprep - held, 0)


def claim(
    ctx: StepContext,
    n: int | None = None,
    only_datasets: Sequence[str] = (),
    *,
    dry_run: bool = False,
    release: bool = True,
    when_short: bool = False,
) -> tuple[list[int], list[RunRecord]]:
    """Claim up to ``n`` runs (default: fill nproc + nprep); (claimed, released stale).

    With ``release`` (the default) claims whose lease expired are released first; the
    run loop asks for that once a minute rather than every cycle.  With ``when_short``
    runs are claimed only once those held no longer fill the free job slots, so that
    claims (and stagings) come nprep at a time rather than one per cycle.
    """
    ctx.store.validate_datasets(tuple(only_datasets))
    cutoff = lease_cutoff(ctx.limits.lease)

    def step(runs: RunTable) -> tuple[list[int], list[RunRecord]]:
        released = runs.release_stale(cutoff) if release and not dry_run else []
        count = wanted(ctx, runs) if n is None else n
        if when_short and count < ctx.limits.nprep:  # nproc + nprep - held < nprep
            count = 0
        if dry_run:
            return [r.run for r in _preview(runs, count, only_datasets)], released
        return runs.claim(count, ctx.owner, only_datasets), released

    claimed, released = ctx.store.runs(ctx.record, step, write=not dry_run)
    for run in released:
        log.warning("released stale claim", run=run.run, user=run.user, host=run.host)
    return claimed, released


def _preview(runs: RunTable, count: int, only_datasets: Sequence[str]) -> list[RunRecord]:
    if count <= 0:
        return []
    candidates = runs.select(states=(RunState.NEW,))
    if only_datasets:
        members = runs.members(only_datasets)
        candidates = [r for r in candidates if r.run in members]
    return candidates[:count]
