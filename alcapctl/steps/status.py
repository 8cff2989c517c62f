"""status: where every run of a production is, per dataset and state, how fast it goes,
and why runs failed (grouped by reason)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from alcapctl.clock import parse_iso
from alcapctl.states import RunState
from alcapctl.store import Failure, ProductionRecord, RunRecord, RunTable, Store
from alcapctl.store.status import finished_since, recent_failures

__all__ = ["FailureGroup", "ProductionStatus", "production_status"]

WINDOW = 3600.0  # seconds of recent history that throughput is measured over
RECENT = 10  # failed attempts kept for the live view
_UNFINISHED = (RunState.NEW, RunState.CLAIMED, RunState.STAGED, RunState.RUNNING)


@dataclass(frozen=True)
class FailureGroup:
    """Failures with one reason (the first line of their error): once, with their runs."""

    state: str  # "X" for runs given up, "retried" for failed attempts of runs still going
    reason: str
    runs: list[int]
    elogs: dict[int, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "runs": self.runs,
            "elogs": {str(run): path for run, path in self.elogs.items()},
        }


def _first_line(text: str | None) -> str:
    stripped = (text or "").strip()
    return stripped.splitlines()[0] if stripped else "(no reason recorded)"


def _group(
    state: str, items: Iterable[tuple[int, str | None]], elog_of: Callable[[int], str | None]
) -> list[FailureGroup]:
    by_reason: dict[str, set[int]] = defaultdict(set)
    for run, reason in items:
        by_reason[_first_line(reason)].add(run)
    groups = []
    for reason, members in by_reason.items():
        runs = sorted(members)
        elogs = {run: path for run in runs if (path := elog_of(run))}
        groups.append(FailureGroup(state, reason, runs, elogs))
    return sorted(groups, key=lambda g: (-len(g.runs), g.reason))


@dataclass(frozen=True)
class ProductionStatus:
    production: ProductionRecord
    totals: dict[RunState, int]
    datasets: dict[str, dict[RunState, int]]
    failed: list[RunRecord] = field(default_factory=list)
    running: list[RunRecord] = field(default_factory=list)
    retried: list[Failure] = field(default_factory=list)  # failed attempts of runs not X
    recent: list[Failure] = field(default_factory=list)  # the last failed attempts, any run
    groups: list[FailureGroup] = field(default_factory=list)
    finished_recently: int = 0  # runs that became F within ``window``
    window: float = WINDOW  # seconds

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    @property
    def remaining(self) -> int:
        return sum(self.totals.get(s, 0) for s in _UNFINISHED)

    @property
    def throughput(self) -> float | None:
        """Runs finished per hour over the recent window; None when none finished."""
        if not self.finished_recently or self.window <= 0:
            return None
        return self.finished_recently * 3600 / self.window

    @property
    def eta(self) -> float | None:
        """Seconds until every run is F or X at the recent throughput."""
        rate = self.throughput
        if not self.remaining:
            return 0.0
        return self.remaining / rate * 3600 if rate else None

    @property
    def done(self) -> bool:
        return self.total > 0 and all(
            s in (RunState.FINISHED, RunState.FAILED) for s, n in self.totals.items() if n
        )

    def to_dict(self) -> dict[str, Any]:
        def letters(counts: dict[RunState, int]) -> dict[str, int]:
            return {s.value: counts.get(s, 0) for s in RunState}

        return {
            "production": {"name": self.production.name, **self.production.to_dict()},
            "total": self.total,
            "totals": letters(self.totals),
            "datasets": {name: letters(c) for name, c in sorted(self.datasets.items())},
            "failed": [
                {"run": r.run, "attempts": r.attempts, "user": r.user, "error": r.error}
                for r in self.failed
            ],
            "failed_attempts": [
                {
                    "run": f.run,
                    "attempt": f.attempt,
                    "at": f.at,
                    "step": f.step,
                    "exit_code": f.exit_code,
                    "reason": f.reason,
                }
                for f in self.retried
            ],
            "running": [
                {
                    "run": r.run,
                    "user": r.user,
                    "host": r.host,
                    "job_id": r.job_id,
                    "backend": r.backend,
                    "start": r.start,
                    "attempt": r.attempt,
                }
                for r in self.running
            ],
            "throughput_per_hour": self.throughput,
            "window_seconds": self.window,
            "eta_seconds": self.eta,
            "failure_groups": [g.to_dict() for g in self.groups],
        }


def production_status(
    store: Store,
    record: ProductionRecord,
    *,
    elog_of: Callable[[int], str | None] | None = None,
    now: datetime | None = None,
) -> ProductionStatus:
    """One consistent snapshot of a production.

    ``elog_of`` names a run's elog when the run recorded none (a failed run keeps no
    output paths): the production's template, known only with its TOML.
    """
    # the window ends now, or when the production stopped, and starts no earlier than it
    end = parse_iso(record.stop) if record.stop else (now or datetime.now(timezone.utc))
    window = WINDOW
    if record.start:
        window = max(min(WINDOW, (end - parse_iso(record.start)).total_seconds()), 60.0)
    cutoff = (end - timedelta(seconds=window)).isoformat(sep=" ")

    def read(runs: RunTable) -> ProductionStatus:
        failed = runs.select(states=(RunState.FAILED,))
        given_up = {r.run for r in failed}
        retried = [f for f in runs.failures() if f.run not in given_up]
        recorded = {r.run: r.outputs.get("elog") for r in failed}

        def elog(run: int) -> str | None:
            return recorded.get(run) or (elog_of(run) if elog_of else None)

        return ProductionStatus(
            production=record,
            totals=runs.state_counts(),
            datasets=runs.counts_by_dataset(),
            failed=failed,
            running=runs.select(states=(RunState.RUNNING,)),
            retried=retried,
            recent=recent_failures(runs.conn, record, RECENT),
            groups=[
                *_group("X", ((r.run, r.error) for r in failed), elog),
                *_group("retried", ((f.run, f.reason) for f in retried), elog),
            ],
            finished_recently=finished_since(runs.conn, record, cutoff),
            window=window,
        )

    return store.runs(record, read, write=False)
