"""recover: return runs whose claim lease expired (dead machine, killed cron job) to N."""

from __future__ import annotations

import structlog

from alcapctl.steps.abort import clean_up
from alcapctl.steps.claim import lease_cutoff
from alcapctl.steps.context import StepContext
from alcapctl.store import RunRecord, RunTable

__all__ = ["recover"]

log = structlog.get_logger("alcapctl.recover")


def recover(ctx: StepContext, lease: float | None = None) -> list[RunRecord]:
    """Release C and S runs not renewed within ``lease`` seconds; delete their staged inputs.

    R runs are never reset on a lease alone: their job is polled by reap.
    """
    cutoff = lease_cutoff(ctx.limits.lease if lease is None else lease)

    def release(runs: RunTable) -> list[RunRecord]:
        return runs.release_stale(cutoff)

    released = ctx.store.runs(ctx.record, release, write=True)
    for run in released:
        log.warning("released stale claim", run=run.run, user=run.user, host=run.host)
    clean_up(ctx, released)
    return released
