"""One production's report: its figures and provenance, built from a snapshot, as data.

``build_report`` computes every figure once; the HTML page draws them and ``--json``
prints ``to_dict()``, so the page and the data never disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alcapctl.report import figures
from alcapctl.report.figures import GroupBy
from alcapctl.store.report import ReportSnapshot

__all__ = ["ProductionReport", "build_report"]


@dataclass(frozen=True)
class ProductionReport:
    """The figures of one production, as the page draws them and ``--json`` prints them."""

    name: str
    provenance: dict[str, Any]
    states: dict[str, dict[str, int]]
    progress: figures.Progress
    timeline: figures.Timeline
    group_by: GroupBy
    durations: figures.Histogram
    failures: list[figures.FailureGroup]
    attempts: dict[str, int]  # outcome -> attempts

    def to_dict(self) -> dict[str, Any]:
        def iso(t: float) -> str:
            return datetime.fromtimestamp(t, timezone.utc).isoformat(sep=" ")

        return {
            "production": self.name,
            "provenance": self.provenance,
            "states": self.states,
            "attempts": self.attempts,
            "progress": {
                "times": [iso(t) for t in self.progress.times],
                "datasets": self.progress.series,
            },
            "timeline": {
                "group_by": self.group_by,
                "rows": self.timeline.rows,
                "merged": self.timeline.merged,
                "bars": [
                    {**asdict(s), "start": iso(s.start), "end": iso(s.end)}
                    for s in self.timeline.segments
                ],
            },
            "run_time_seconds": {
                "edges": self.durations.edges,
                "counts": self.durations.counts,
            },
            # No backend records when a job started running, only when it was submitted.
            "queue_wait_seconds": None,
            "failures": [asdict(g) for g in self.failures],
        }


def _provenance(snapshot: ReportSnapshot, location: str) -> dict[str, Any]:
    record = snapshot.production
    holders = Counter(
        f"{r.user}@{r.host}" if r.host else str(r.user) for r in snapshot.runs if r.user
    )
    modules = Counter(r.modules_sha256 for r in snapshot.runs if r.modules_sha256)
    backends = Counter(r.backend for r in snapshot.runs if r.backend)
    return {
        **record.to_dict(),
        "runs": len(snapshot.runs),
        "database": location,
        "modules_sha256": dict(modules.most_common()),
        "users": dict(holders.most_common()),
        "backends": dict(backends.most_common()),
    }


def build_report(
    snapshot: ReportSnapshot,
    location: str,
    *,
    group_by: GroupBy = "host",
    now: datetime | None = None,
    elog_template: str | None = None,
    site_fields: Mapping[str, Any] | None = None,
) -> ProductionReport:
    """Every figure of one production's report.

    A failed run has no elog recorded; with the production's ``elog_template`` (and the
    site's ``data`` and ``user`` in ``site_fields``) its path is filled in as a step would.
    """
    when = now or datetime.now(timezone.utc)
    by_run = {r.run: r for r in snapshot.runs}
    record = snapshot.production
    fields = {
        **(site_fields or {}),
        "version": record.version,
        "tag": record.software,
        "type": record.type,
        "base": record.base,
    }

    def elog_of(run: int) -> str | None:
        row = by_run.get(run)
        if row is not None and row.outputs.get("elog"):
            return row.outputs["elog"]
        if elog_template is None:
            return None
        user = row.user if row is not None and row.user else fields.get("user")
        return str(Path(elog_template.format(**{**fields, "run": run, "user": user})).expanduser())

    attempts = figures.attempts(snapshot, group_by, when)
    return ProductionReport(
        name=snapshot.production.name,
        provenance=_provenance(snapshot, location),
        states=figures.state_table(snapshot),
        progress=figures.progress(snapshot),
        timeline=figures.timeline(attempts),
        group_by=group_by,
        durations=figures.durations(attempts),
        failures=figures.failure_groups(snapshot.failures, elog_of),
        attempts=dict(Counter(a.outcome for a in attempts)),
    )
