"""status: where every run of a production is, per dataset and state, and why runs failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alcapctl.states import RunState
from alcapctl.store import Failure, ProductionRecord, RunRecord, RunTable, Store

__all__ = ["ProductionStatus", "production_status"]


@dataclass(frozen=True)
class ProductionStatus:
    production: ProductionRecord
    totals: dict[RunState, int]
    datasets: dict[str, dict[RunState, int]]
    failed: list[RunRecord] = field(default_factory=list)
    running: list[RunRecord] = field(default_factory=list)
    retried: list[Failure] = field(default_factory=list)  # failed attempts of runs not X

    @property
    def total(self) -> int:
        return sum(self.totals.values())

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
        }


def production_status(store: Store, record: ProductionRecord) -> ProductionStatus:
    """One consistent snapshot of a production."""

    def read(runs: RunTable) -> ProductionStatus:
        failed = runs.select(states=(RunState.FAILED,))
        given_up = {r.run for r in failed}
        return ProductionStatus(
            production=record,
            totals=runs.state_counts(),
            datasets=runs.counts_by_dataset(),
            failed=failed,
            running=runs.select(states=(RunState.RUNNING,)),
            retried=[f for f in runs.failures() if f.run not in given_up],
        )

    return store.runs(record, read, write=False)
