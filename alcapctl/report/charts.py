"""The report's charts as inline SVG, drawn by matplotlib's SVG backend (no browser code).

Each function takes figures (see ``figures``) and returns an ``<svg>`` element ready to be
pasted into HTML: text stays text (small, searchable), no metadata, no XML prologue, no
namespace URLs, and ids are stable across runs.  Every drawn series is a group whose id
is ``<chart>-series-<n>-<part>``, so a test (or a reader of the page
source) can count them.  matplotlib is imported only here, only when a page is drawn.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime, timezone

import matplotlib
import matplotlib.ticker
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from alcapctl.report.figures import (
    FAILURES_ROW,
    OUTCOMES,
    FailureGroup,
    Histogram,
    Progress,
    Timeline,
)

__all__ = ["COLOURS", "durations_chart", "failures_chart", "progress_chart", "timeline_chart"]

COLOURS = {
    "finished": "#2e7d32",
    "failed": "#c62828",
    "retried": "#ef6c00",
    "running": "#1565c0",
}
_DATASET_COLOURS = ("#1f77b4", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#7f7f7f", "#e377c2")
_WIDTH = 9.0  # inches; the page scales the SVG to its column
_MAX_FAILURE_BARS = 12
_LABEL_EVERY_ROW = 48  # timeline rows up to which every row has its label

matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",  # <text>, not glyph outlines: a tenth of the size
        "svg.hashsalt": "alcapctl",  # ids the same from one report to the next
        "font.size": 8,
        "font.family": "sans-serif",
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
_NAMESPACES = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(
        buffer,
        format="svg",
        bbox_inches="tight",
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # Inline SVG needs no namespaces; leaving them out keeps every URL out of the page.
    return _NAMESPACES.sub("", text, count=0).replace("xlink:href", "href")


def _series(artist: Artist | Sequence[Artist], chart: str, index: int) -> None:
    """Name the artists of one series ``<chart>-series-<index>-<part>`` in the SVG."""
    for part, item in enumerate(artist if isinstance(artist, Sequence) else [artist]):
        item.set_gid(f"{chart}-series-{index}-{part}")


def _empty(message: str) -> str:
    fig = Figure(figsize=(_WIDTH, 0.6))
    fig.text(0.5, 0.5, message, ha="center", va="center", color="#666666")
    return _svg(fig)


def _time_axis(ax: Axes) -> None:
    """An x axis of epoch seconds labelled as UTC times, dated when it spans days."""
    low, high = ax.get_xlim()
    pattern = "%m-%d %H:%M" if high - low > 86400 else "%H:%M:%S"
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=8))
    ax.xaxis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(
            lambda t, _: datetime.fromtimestamp(t, timezone.utc).strftime(pattern)
        )
    )
    ax.set_xlabel("UTC")


def progress_chart(progress: Progress) -> str:
    """Runs finished (solid) and failed for good (dashed) against time, a colour a dataset."""
    if not progress.times:
        return _empty("no run has finished yet")
    fig = Figure(figsize=(_WIDTH, 3.0))
    ax = fig.add_subplot()
    when = progress.times
    index = 0
    for n, (dataset, kinds) in enumerate(progress.series.items()):
        colour = _DATASET_COLOURS[n % len(_DATASET_COLOURS)]
        for kind, counts in kinds.items():
            style = "-" if kind == "finished" else "--"
            lines = ax.step(
                when,
                counts,
                style,
                where="post",
                color=colour,
                linewidth=1.4,
                label=f"{dataset} {kind}",
            )
            _series(lines, "progress", index)
            index += 1
    _time_axis(ax)
    ax.set_ylabel("runs")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, ncols=4)
    return _svg(fig)


def _band(outcome: str, label: str, row: int) -> tuple[float, float]:
    """(top, height) of a bar in row ``row`` (rows run downwards): a failures row shows
    the attempts that failed for good in its upper half, retried ones in its lower half."""
    if label.endswith(FAILURES_ROW):
        return (row - 0.4, 0.4) if outcome == "failed" else (row, 0.4)
    return (row - 0.4, 0.8)


def timeline_chart(timeline: Timeline, group_by: str) -> str:
    """One bar per attempt (merged where closer than a pixel), a row per lane of a group."""
    if not timeline.rows:
        return _empty("no job has been submitted yet")
    height = min(1.2 + 0.16 * len(timeline.rows), 14.0)
    fig = Figure(figsize=(_WIDTH, height))
    ax = fig.add_subplot()
    labels = {"retried": "failed, retried (end; start not recorded)"}
    for index, outcome in enumerate(OUTCOMES):
        bars: dict[int, list[tuple[float, float]]] = {}
        for seg in timeline.segments:
            if seg.outcome == outcome:
                bars.setdefault(seg.row, []).append((seg.start, seg.end - seg.start))
        drawn = [
            ax.broken_barh(
                spans,
                _band(outcome, timeline.rows[row], row),
                color=COLOURS[outcome],
                label=labels.get(outcome, outcome) if i == 0 else None,
                linewidth=0,
            )
            for i, (row, spans) in enumerate(sorted(bars.items()))
        ]
        _series(drawn, "timeline", index)
    # with many rows only a group's first row is labelled: the labels would overlap
    labelled = [
        (i, row)
        for i, row in enumerate(timeline.rows)
        if len(timeline.rows) <= _LABEL_EVERY_ROW or " #" not in row
    ]
    ax.set_yticks([i for i, _ in labelled], [row for _, row in labelled])
    ax.set_ylim(len(timeline.rows) - 0.5, -0.5)
    ax.tick_params(axis="y", labelsize=6 if len(labelled) > 30 else 8)
    _time_axis(ax)
    ax.set_ylabel(group_by)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, ncols=4)
    return _svg(fig)


def durations_chart(histogram: Histogram) -> str:
    """Run times of ended attempts, finished and failed, as step histograms."""
    if not histogram.edges:
        return _empty("no job has ended yet")
    fig = Figure(figsize=(_WIDTH, 2.6))
    ax = fig.add_subplot()
    scale, unit = (60.0, "minutes") if histogram.edges[-1] >= 300 else (1.0, "seconds")
    edges = [e / scale for e in histogram.edges]
    for index, (outcome, counts) in enumerate(histogram.counts.items()):
        step = ax.stairs(
            counts,
            edges,
            fill=True,
            alpha=0.55 if outcome == "finished" else 0.9,
            color=COLOURS[outcome],
            label=outcome,
        )
        _series(step, "durations", index)
    ax.set_xlabel(f"run time, submission to end ({unit})")
    ax.set_ylabel("attempts")
    ax.legend(frameon=False)
    return _svg(fig)


def failures_chart(groups: Sequence[FailureGroup]) -> str:
    """Failed attempts per reason, the most frequent first."""
    if not groups:
        return _empty("no failed attempt")
    shown = list(groups[:_MAX_FAILURE_BARS])
    fig = Figure(figsize=(_WIDTH, 0.6 + 0.25 * len(shown)))
    ax = fig.add_subplot()
    labels = [g.reason if len(g.reason) <= 60 else g.reason[:57] + "..." for g in shown]
    bars = ax.barh(range(len(shown)), [g.attempts for g in shown], color=COLOURS["failed"])
    _series(bars.patches, "failures", 0)
    ax.set_yticks(range(len(shown)), labels)
    ax.invert_yaxis()
    ax.bar_label(bars, padding=2)
    ax.set_xlabel("failed attempts")
    return _svg(fig)
