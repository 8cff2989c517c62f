"""The figures of a report: pure functions from a production's rows to numbers.

Nothing here draws or reads the database.  Every figure is bounded in size whatever the
production's: progress is sampled at a fixed number of instants, run times are binned,
and the job timeline packs attempts into lanes and merges, at large counts, what would
fall on the same pixel.  ``charts`` draws these numbers; ``--json`` prints them.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from alcapctl.clock import parse_iso
from alcapctl.states import RunState
from alcapctl.store.records import Failure, RunRecord
from alcapctl.store.report import ReportSnapshot

__all__ = [
    "FAILURES_ROW",
    "NO_DATASET",
    "OUTCOMES",
    "Attempt",
    "FailureGroup",
    "Histogram",
    "Progress",
    "Segment",
    "Timeline",
    "attempts",
    "durations",
    "failure_groups",
    "progress",
    "state_table",
    "timeline",
]

Outcome = Literal["finished", "failed", "retried", "running"]
OUTCOMES: tuple[Outcome, ...] = ("finished", "failed", "retried", "running")
GroupBy = Literal["host", "user"]
NO_DATASET = "(no dataset)"
FAILURES_ROW = " failures"  # the label of a group's failures row: "<group> failures"
UNKNOWN = "?"


def _seconds(value: str | None) -> float | None:
    return parse_iso(value).timestamp() if value else None


# -- states per dataset ----------------------------------------------------------------------


def state_table(snapshot: ReportSnapshot) -> dict[str, dict[str, int]]:
    """dataset -> state letter -> runs (a run in two datasets counts in both), sorted."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for run in snapshot.runs:
        for dataset in snapshot.datasets.get(run.run, [NO_DATASET]):
            table[dataset][run.status.value] += 1
    letters = [s.value for s in RunState]
    return {name: {s: table[name][s] for s in letters} for name in sorted(table)}


# -- progress --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Runs finished (F) and failed for good (X) by each instant, per dataset."""

    times: list[float]  # epoch seconds, evenly spaced from the first to the last stop
    series: dict[str, dict[str, list[int]]]  # dataset -> "finished"/"failed" -> cumulative


def progress(snapshot: ReportSnapshot, points: int = 120) -> Progress:
    """Cumulative F and X counts per dataset at ``points`` instants; a dataset without X
    runs has no "failed" series."""
    ended: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in snapshot.runs:
        kind = {RunState.FINISHED: "finished", RunState.FAILED: "failed"}.get(run.status)
        stop = _seconds(run.stop)
        if kind is None or stop is None:
            continue
        for dataset in snapshot.datasets.get(run.run, [NO_DATASET]):
            ended[dataset][kind].append(stop)
    stops = [t for kinds in ended.values() for ts in kinds.values() for t in ts]
    if not stops:
        return Progress([], {})
    first, last = min(stops), max(stops)
    step = (last - first) / (points - 1) if last > first else 0.0
    times = [first + i * step for i in range(points)] if step else [first]
    series: dict[str, dict[str, list[int]]] = {}
    for dataset in sorted(ended):
        series[dataset] = {}
        for kind in ("finished", "failed"):
            ts = sorted(ended[dataset].get(kind, []))
            if ts:
                series[dataset][kind] = [bisect.bisect_right(ts, t) for t in times]
    return Progress(times, series)


# -- attempts and the job timeline -----------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One job attempt: from submission (None where not recorded) to its end."""

    run: int
    group: str
    start: float | None
    end: float
    outcome: Outcome


def _group(run: RunRecord, group_by: GroupBy) -> str:
    if group_by == "user":
        return run.user or UNKNOWN
    return run.host or UNKNOWN


def attempts(snapshot: ReportSnapshot, group_by: GroupBy, now: datetime) -> list[Attempt]:
    """Every attempt the database knows of, sorted by start.

    F and X runs give their last attempt (submit to stop), R runs the one in flight
    (submit to ``now``).  Earlier failed attempts of a run ("retried") come from the
    failure history, which keeps when they ended but not when they started.
    """
    found: list[Attempt] = []
    by_run = {run.run: run for run in snapshot.runs}
    outcome_of: dict[str, Outcome] = {"F": "finished", "X": "failed", "R": "running"}
    for run in snapshot.runs:
        outcome = outcome_of.get(run.status.value)
        start = _seconds(run.start)
        end = now.timestamp() if outcome == "running" else _seconds(run.stop)
        if outcome is not None and start is not None and end is not None:
            found.append(Attempt(run.run, _group(run, group_by), start, max(end, start), outcome))
    for failure in snapshot.failures:
        held = by_run.get(failure.run)
        if held is None or (held.status is RunState.FAILED and failure.at == held.stop):
            continue  # the X run's last attempt is already there
        group = failure.user or UNKNOWN
        if group_by == "host":
            group = held.host if held.host and held.user == failure.user else UNKNOWN
        found.append(
            Attempt(failure.run, group, None, parse_iso(failure.at).timestamp(), "retried")
        )
    found.sort(key=lambda a: (a.start if a.start is not None else a.end, a.run))
    return found


@dataclass(frozen=True)
class Segment:
    """A bar of the timeline: one attempt, or at large counts neighbouring ones merged."""

    row: int
    start: float
    end: float
    outcome: Outcome
    attempts: int


@dataclass(frozen=True)
class Timeline:
    """Rows per group: one per job slot it used, then one for its failures where it has
    some (retried attempts, whose start is not recorded, as a pixel-wide bar at their end;
    at large counts also the attempts that failed for good)."""

    rows: list[str]  # top to bottom: "host", "host #2" for its second slot, "host failures"
    segments: list[Segment]
    attempts: int
    merged: bool  # True when bars closer than a pixel were merged


def _lanes(items: Sequence[Attempt]) -> list[int]:
    """A lane per attempt so that the attempts of one lane never overlap (first free lane)."""
    free_at: list[float] = []
    lanes = []
    for a in items:
        start = a.start if a.start is not None else a.end
        lane = next((i for i, t in enumerate(free_at) if t <= start), len(free_at))
        if lane == len(free_at):
            free_at.append(a.end)
        else:
            free_at[lane] = a.end
        lanes.append(lane)
    return lanes


def _merge(bars: Iterable[Segment], gap: float) -> list[Segment]:
    """Bars of one row and outcome that are at most ``gap`` apart become one."""
    merged: list[Segment] = []
    last: dict[tuple[int, str], int] = {}
    for bar in sorted(bars, key=lambda b: (b.row, b.start)):
        key = (bar.row, bar.outcome)
        i = last.get(key)
        if i is not None and bar.start - merged[i].end <= gap:
            prev = merged[i]
            end = max(prev.end, bar.end)
            merged[i] = Segment(prev.row, prev.start, end, prev.outcome, prev.attempts + 1)
            continue
        last[key] = len(merged)
        merged.append(bar)
    return merged


def timeline(items: Sequence[Attempt], *, max_bars: int = 600, pixels: int = 600) -> Timeline:
    """The job timeline.  Above ``max_bars`` attempts, bars closer than 1/``pixels`` of the
    time span merge and the attempts that failed for good move to the failures row, so
    the chart has a few hundred bars whatever the production's size."""
    if not items:
        return Timeline([], [], 0, False)
    first = min(a.start if a.start is not None else a.end for a in items)
    pixel = max(max(a.end for a in items) - first, 1e-3) / pixels
    merged = len(items) > max_bars
    rows: list[str] = []
    bars: list[Segment] = []
    for group in sorted({a.group for a in items}):
        mine = [a for a in items if a.group == group]
        moved = [a.start is None or (merged and a.outcome == "failed") for a in mine]
        to_failures = [a for a, m in zip(mine, moved, strict=True) if m]
        in_lanes = [a for a, m in zip(mine, moved, strict=True) if not m]
        lanes = _lanes(in_lanes)
        base = len(rows)
        rows += [group if i == 0 else f"{group} #{i + 1}" for i in range(max(lanes, default=0) + 1)]
        for a, lane in zip(in_lanes, lanes, strict=True):
            assert a.start is not None
            bars.append(Segment(base + lane, a.start, a.end, a.outcome, 1))
        if to_failures:
            rows.append(f"{group}{FAILURES_ROW}")
            width = 2 * pixel  # drawn at their end, two pixels wide so that one is seen
            bars += [
                Segment(len(rows) - 1, a.end, a.end + width, a.outcome, 1) for a in to_failures
            ]
    segments = _merge(bars, pixel) if merged else sorted(bars, key=lambda b: (b.row, b.start))
    return Timeline(rows, segments, len(items), merged)


# -- run times -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Histogram:
    edges: list[float]  # seconds; len(edges) == len(counts) + 1
    counts: dict[str, list[int]]  # outcome -> attempts per bin


def durations(items: Iterable[Attempt], bins: int = 40) -> Histogram:
    """Run times (submission to end) of ended attempts, per outcome, in ``bins`` equal bins."""
    values: dict[str, list[float]] = defaultdict(list)
    for a in items:
        if a.start is not None and a.outcome in ("finished", "failed"):
            values[a.outcome].append(a.end - a.start)
    everything = [v for vs in values.values() for v in vs]
    if not everything:
        return Histogram([], {})
    high = max(max(everything), 1e-3)
    width = high / bins
    edges = [i * width for i in range(bins + 1)]
    counts = {}
    for outcome in ("finished", "failed"):
        if values.get(outcome):
            row = [0] * bins
            for v in values[outcome]:
                row[min(int(v / width), bins - 1)] += 1
            counts[outcome] = row
    return Histogram(edges, counts)


# -- failures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureGroup:
    """Failed attempts sharing the first line of their reason (``exit code 3``, ``TIMEOUT``)."""

    reason: str
    attempts: int
    runs: list[int]
    elogs: dict[int, str]  # run -> its elog path, where known
    example: str  # the whole reason of the latest attempt, elog tail included


def failure_groups(
    failures: Sequence[Failure], elog_of: Callable[[int], str | None]
) -> list[FailureGroup]:
    """Failures grouped by reason, the most frequent first."""
    grouped: dict[str, list[Failure]] = defaultdict(list)
    for failure in failures:
        text = (failure.reason or "").strip()
        grouped[text.splitlines()[0] if text else "(no reason recorded)"].append(failure)
    result = []
    for reason, members in grouped.items():
        runs = sorted({f.run for f in members})
        elogs = {run: path for run in runs if (path := elog_of(run))}
        latest = max(members, key=lambda f: f.at)
        result.append(FailureGroup(reason, len(members), runs, elogs, latest.reason or ""))
    return sorted(result, key=lambda g: (-g.attempts, g.reason))
