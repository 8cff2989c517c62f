"""The report as one self-contained HTML file: inline style, inline SVG, nothing fetched.

The page forbids every external load itself (a Content-Security-Policy that allows only
its own inline style), so that a page mailed around or opened from a shared file system
shows the same everywhere and tells no server who read it.  Lists that grow with the
production (runs of a failure reason, their elog paths) are cut to a fixed length.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from alcapctl import __version__
from alcapctl.report import charts
from alcapctl.report.figures import FailureGroup
from alcapctl.report.model import ProductionReport
from alcapctl.states import RunState

__all__ = ["render_page"]

_RUNS_LISTED = 40  # runs shown per failure reason
_ELOGS_LISTED = 5
_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 72em;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { padding: .15em .6em; text-align: left; border-bottom: 1px solid #eee;
         vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font-size: .9em; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; margin: 0; }
td:first-child { min-width: 12em; } .paths { display: inline-block; min-width: 30em; }
figure { margin: .5em 0; } figure svg { width: 100%; height: auto; }
.note { color: #666; font-size: .9em; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: int = 0) -> str:
    """A table; the last ``numeric`` columns are right-aligned numbers."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        first = len(row) - numeric
        cells = "".join(
            f'<td class="n">{_e(v)}</td>' if i >= first else f"<td>{v}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _provenance(p: dict[str, Any]) -> str:
    def counts(values: dict[str, int]) -> str:
        return ", ".join(f"<code>{_e(k)}</code> ({n})" for k, n in values.items()) or "none"

    rows = [
        ("type", _e(p["type"])),
        ("version", _e(p["version"])),
        ("tag", f"<code>{_e(p['tag'])}</code>"),
        ("base", _e(p["base"] if p["base"] is not None else "-")),
        ("started", _e(p["start"])),
        ("stopped", _e(p["stop"] or "not yet")),
        ("datasets", _e(", ".join(p["datasets"] or []) or "all")),
        ("quality", _e(", ".join(p["quality"] or []) or "any")),
        ("runs", _e(p["runs"])),
        ("MODULES sha256 (runs)", counts(p["modules_sha256"])),
        ("run by user@host (runs)", counts(p["users"])),
        ("backends (runs)", counts(p["backends"])),
        ("database", f"<code>{_e(p['database'])}</code>"),
    ]
    return _table(("", ""), rows)


def _states(states: dict[str, dict[str, int]]) -> str:
    letters = [s.value for s in RunState]
    rows = [
        [_e(name), *(counts[s] for s in letters), sum(counts.values())]
        for name, counts in states.items()
    ]
    return _table(("dataset", *letters, "total"), rows, numeric=len(letters) + 1)


def _failure_rows(groups: Sequence[FailureGroup]) -> str:
    rows = []
    for g in groups:
        runs = ", ".join(str(r) for r in g.runs[:_RUNS_LISTED])
        if len(g.runs) > _RUNS_LISTED:
            runs += f" and {len(g.runs) - _RUNS_LISTED} more"
        elogs = '<span class="paths">' + "<br>".join(
            f"<code>{_e(p)}</code>" for p in list(g.elogs.values())[:_ELOGS_LISTED]
        )
        if len(g.elogs) > _ELOGS_LISTED:
            elogs += f"<br>and {len(g.elogs) - _ELOGS_LISTED} more"
        elogs += "</span>"
        detail = f"<details><summary>{_e(g.reason)}</summary><pre>{_e(g.example)}</pre></details>"
        rows.append([detail, _e(runs), elogs, g.attempts])
    return _table(("reason (latest in full)", "runs", "elog", "attempts"), rows, numeric=1)


def _section(report: ProductionReport) -> str:
    t = report.timeline
    merged = (
        f" With {t.attempts} attempts, bars closer than a pixel are merged and attempts "
        "that failed for good are drawn in the failures row."
        if t.merged
        else ""
    )
    attempts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(report.attempts.items()))
    parts = [
        f'<section id="{_e(report.name)}"><h2>{_e(report.name)}</h2>',
        "<h3>Provenance</h3>",
        _provenance(report.provenance),
        "<h3>Runs per dataset and state</h3>",
        _states(report.states),
        "<h3>Progress</h3>",
        f'<figure class="chart" data-chart="progress">{charts.progress_chart(report.progress)}'
        "</figure>",
        f"<h3>Jobs by {_e(report.group_by)}</h3>",
        f'<p class="note">One bar per attempt, submission to end; a group has a row per '
        f"job slot it used, then one for its failed attempts that were retried, drawn at their "
        f"end (their start is not recorded). Attempts: {_e(attempts or 'none')}.{_e(merged)}"
        "</p>",
        f'<figure class="chart" data-chart="timeline">'
        f"{charts.timeline_chart(t, report.group_by)}</figure>",
        "<h3>Run times</h3>",
        f'<figure class="chart" data-chart="durations">'
        f"{charts.durations_chart(report.durations)}</figure>",
        '<p class="note">Queue wait (submission to start) is not shown: no backend records '
        "when a job started running.</p>",
        "<h3>Failures by reason</h3>",
        f'<figure class="chart" data-chart="failures">{charts.failures_chart(report.failures)}'
        "</figure>",
        _failure_rows(report.failures) if report.failures else "",
        "</section>",
    ]
    return "\n".join(parts)


def render_page(reports: Sequence[ProductionReport], location: str, now: datetime) -> str:
    """The whole page for one or more productions."""
    title = reports[0].name if len(reports) == 1 else f"{len(reports) or 'no'} productions"
    contents = (
        "<nav>"
        + " · ".join(f'<a href="#{_e(r.name)}">{_e(r.name)}</a>' for r in reports)
        + "</nav>"
        if len(reports) > 1
        else ""
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>alcapctl report: {_e(title)}</title>",
            f"<style>{_STYLE}</style></head><body>",
            f"<h1>alcapctl report: {_e(title)}</h1>",
            f'<p class="note">Database <code>{_e(location)}</code>, read at '
            f"{_e(now.isoformat(sep=' ', timespec='seconds'))} by alcapctl {_e(__version__)}.</p>",
            contents,
            *(_section(r) for r in reports),
            "</body></html>",
            "",
        ]
    )
