"""``status`` for pipes: plain tab-separated lines that grep and awk can read.

One row a line, its kind in the first column; nothing is wrapped, cut or drawn, and a
text that spans lines (an error with the elog's last lines) is kept whole, its newlines
and tabs escaped as ``\\n`` and ``\\t``.
"""

from __future__ import annotations

from collections.abc import Iterator

from alcapctl.states import RunState
from alcapctl.steps.status import ProductionStatus

__all__ = ["status_lines"]


def _text(value: str | None) -> str:
    if not value:
        return "-"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _counts(counts: dict[RunState, int]) -> list[str]:
    return [str(sum(counts.values())), *(str(counts.get(s, 0)) for s in RunState)]


def _row(*fields: object) -> str:
    return "\t".join(str(f) for f in fields)


def status_lines(report: ProductionStatus, *, detail: bool = False) -> Iterator[str]:
    """``production``, ``dataset`` and ``failure`` rows, or with ``detail`` ``failed`` and
    ``attempt`` rows (one per run / failed attempt) instead of the ``failure`` groups."""
    name = report.production.name
    rate = f"{report.throughput:.1f}" if report.throughput else "-"
    eta = f"{report.eta:.0f}" if report.eta is not None else "-"
    yield _row(
        "production", name, _text(report.production.software), *_counts(report.totals), rate, eta
    )
    for dataset, counts in sorted(report.datasets.items()):
        yield _row("dataset", name, dataset, *_counts(counts))
    elogs = {run: path for group in report.groups for run, path in group.elogs.items()}
    if not detail:
        for group in report.groups:
            yield _row(
                "failure",
                name,
                group.state,
                len(group.runs),
                ",".join(str(r) for r in group.runs),
                ",".join(elogs.get(r, "-") for r in group.runs),
                _text(group.reason),
            )
        return
    for run in report.failed:
        yield _row(
            "failed",
            name,
            run.run,
            run.attempts,
            run.user or "-",
            elogs.get(run.run, "-"),
            _text(run.error),
        )
    for attempt in report.retried:
        yield _row(
            "attempt",
            name,
            attempt.run,
            attempt.attempt,
            attempt.step,
            attempt.at,
            attempt.exit_code if attempt.exit_code is not None else "-",
            elogs.get(attempt.run, "-"),
            _text(attempt.reason),
        )
