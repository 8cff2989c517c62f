"""claim: move runs from N to C for this user, atomically; release_stale: expired claims to N."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import structlog

from alcapctl.events import Event
from alcapctl.states import RunState
from alcapctl.steps.context import StepContext
from alcapctl.steps.units import OwnTransactions, Units
from alcapctl.store import RunRecord, RunTable

__all__ = ["ClaimResult", "claim", "hand_back", "lease_cutoff", "release_stale", "wanted"]

log = structlog.get_logger("alcapctl.claim")


def lease_cutoff(seconds: float) -> str:
    """Timestamp before which an unrenewed claim counts as stale."""
    then = datetime.now(timezone.utc) - timedelta(seconds=seconds)
    return then.isoformat(sep=" ")


def wanted(ctx: StepContext, runs: RunTable) -> int:
    """How many more runs this user should claim: enough to fill nproc + nprep, once at
    least half of nprep are missing (the runs held are locked by that read in a write, so
    the count holds until the commit).  Claiming in batches, a loop that finishes one run
    at a time claims every other time or less, not a run (a statement) each time; nprep
    is a maximum ("at most NPROC + NPREP files at once"), and staging keeps at least
    half of it ready."""
    limits = ctx.limits
    missing = max(limits.nproc + limits.nprep - len(runs.held(ctx.owner)), 0)
    return missing if missing >= max(1, (limits.nprep + 1) // 2) else 0


@dataclass
class ClaimResult:
    claimed: list[int] = field(default_factory=list)
    dry_run: bool = False

    @property
    def events(self) -> list[Event]:
        verb = "Would claim" if self.dry_run else "Claimed"
        return [Event(f"{verb} run: {run}", fields={"run": run}) for run in self.claimed]


def claim(
    ctx: StepContext,
    n: int | None = None,
    only_datasets: Sequence[str] = (),
    *,
    dry_run: bool = False,
    units: Units | None = None,
) -> ClaimResult:
    """Claim up to ``n`` runs (default: ``wanted``) in one write."""
    ctx.store.validate_datasets(tuple(only_datasets))

    def step(runs: RunTable) -> list[int]:
        count = wanted(ctx, runs) if n is None else n
        if dry_run:
            return [r.run for r in _preview(runs, count, only_datasets)]
        return runs.claim(count, ctx.owner, only_datasets)

    units = units or OwnTransactions(ctx.store, ctx.record)
    claimed = units.read(step) if dry_run else units.write(step)
    return ClaimResult(claimed, dry_run)


def release_stale(ctx: StepContext, units: Units | None = None) -> list[RunRecord]:
    """Claims (C, S) whose lease expired go back to N; claim does this before claiming."""
    cutoff = lease_cutoff(ctx.limits.lease)
    units = units or OwnTransactions(ctx.store, ctx.record)
    released = units.write(lambda runs: runs.release_stale(cutoff))
    for run in released:
        log.warning("released stale claim", run=run.run, user=run.user, host=run.host)
    return released


def _preview(runs: RunTable, count: int, only_datasets: Sequence[str]) -> list[RunRecord]:
    if count <= 0:
        return []
    candidates = runs.select(states=(RunState.NEW,))
    if only_datasets:
        members = runs.members(only_datasets)
        candidates = [r for r in candidates if r.run in members]
    return candidates[:count]


def hand_back(
    ctx: StepContext, runs: Sequence[int] | None = None, units: Units | None = None
) -> list[int]:
    """This user's claimed runs (C; all, or those of ``runs``) go back to N so that others
    may take them; their attempts are kept.  Over spacelim, and when the loop drains."""
    units = units or OwnTransactions(ctx.store, ctx.record)
    return units.write(
        lambda table: table.reset((RunState.CLAIMED,), owner=ctx.owner, runs=runs, attempts=False)
    )
