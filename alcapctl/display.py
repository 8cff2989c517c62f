"""Everything rich draws (status tables, dataset lists, check reports, transfer bars).

Nothing else imports rich.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table
from rich.text import Text

from alcapctl.clock import parse_iso
from alcapctl.states import RunState
from alcapctl.steps.status import FailureGroup, ProductionStatus, production_status

if TYPE_CHECKING:
    from alcapctl.steps.context import StepContext
    from alcapctl.steps.run import CycleResult

__all__ = [
    "DashboardState",
    "LiveDashboard",
    "TransferBars",
    "dashboard",
    "render_check",
    "render_datasets",
    "render_status",
    "status_table",
]


def _console(console: Console | None) -> Console:
    return console or Console(soft_wrap=True)


def render_datasets(
    rows: list[tuple[str, str | None, int]], console: Console | None = None
) -> None:
    table = Table("dataset", "quality", "runs", title="datasets")
    for dataset, quality, n in rows:
        table.add_row(dataset, quality if quality is not None else "NULL", str(n))
    _console(console).print(table)


def status_table(report: ProductionStatus) -> Table:
    """Runs per dataset (rows) and state (columns), with totals, throughput and ETA."""
    prod = report.production
    base = f", base {prod.base}" if prod.base is not None else ""
    title = f"{prod.name} ({prod.software}{base}) started {prod.start or '?'}"
    title += f", stopped {prod.stop}" if prod.stop else ""
    table = Table("dataset", *(f"{s.value} {s.label}" for s in RunState), "total", title=title)
    for name, counts in sorted(report.datasets.items()):
        table.add_row(name, *(str(counts.get(s, 0)) for s in RunState), str(sum(counts.values())))
    table.add_section()
    table.add_row("all", *(str(report.totals.get(s, 0)) for s in RunState), str(report.total))
    table.caption = _pace(report)
    return table


def _pace(report: ProductionStatus) -> str:
    rate = report.throughput
    minutes = round(report.window / 60)
    shown = f"throughput {rate:.1f} runs/h (last {minutes} min)" if rate else "throughput -"
    return f"{shown}   ETA {_duration(report.eta)}"


def _elog_column() -> Column:
    """A path cut short is of no use: it folds onto the next line instead."""
    return Column("elog", overflow="fold")


def _elog_cell(group: FailureGroup) -> str:
    first = next(iter(group.elogs.values()), "")
    more = len(group.elogs) - 1
    return first + (f" (and {more} more)" if more > 0 else "")


def render_status(
    report: ProductionStatus, console: Console | None = None, *, detail: bool = False
) -> None:
    """The summary table, then failures grouped by reason, or (``detail``) one per run."""
    out = _console(console)
    out.print(status_table(report))
    if detail:
        _render_failed_runs(report, out)
        return
    if report.groups:
        groups = Table(
            "state", "runs", "reason", "which", _elog_column(), title="failures by reason"
        )
        for group in report.groups:
            groups.add_row(
                group.state,
                str(len(group.runs)),
                group.reason,
                _runs(group.runs, 10),
                _elog_cell(group),
            )
        groups.caption = "per run: alcapctl status PROD.toml --failed"
        out.print(groups)


def _render_failed_runs(report: ProductionStatus, out: Console) -> None:
    elogs = {run: path for group in report.groups for run, path in group.elogs.items()}
    if report.failed:
        failed = Table("run", "attempts", "user", _elog_column(), "error", title="failed runs")
        for run in report.failed:
            failed.add_row(
                str(run.run),
                str(run.attempts),
                run.user or "",
                elogs.get(run.run, ""),
                run.error or "",
            )
        out.print(failed)
    if report.retried:
        retried = Table(
            "run",
            "attempt",
            "step",
            "at",
            _elog_column(),
            "reason",
            title="failed attempts, retried",
        )
        for attempt in report.retried:
            retried.add_row(
                str(attempt.run),
                str(attempt.attempt),
                attempt.step,
                attempt.at[:19],
                elogs.get(attempt.run, ""),
                _first_line(attempt.reason),
            )
        out.print(retried)


def _first_line(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def render_check(report: dict[str, Any], console: Console | None = None) -> None:
    out = _console(console)
    state = "registered" if report["registered"] else "not registered yet (alcapctl init)"
    out.print(f"[bold]{report['production']}[/bold]: {state}")
    settings = Table("setting", "value", title="resolved settings", show_header=False)
    for key, value in report["settings"].items():
        settings.add_row(key, str(value))
    out.print(settings)
    outputs = Table("output", "path", title=f"outputs of run {report['sample_run']}")
    for name, path in report["sample_outputs"].items():
        outputs.add_row(name, path)
    out.print(outputs)
    added = report["init_would_add"]
    out.print(f"init would add {len(added)} runs" + (f": {_runs(added)}" if added else ""))
    if "claim_would_take" in report:
        taken = report["claim_would_take"]
        out.print(f"claim would take {len(taken)} runs" + (f": {_runs(taken)}" if taken else ""))
    for warning in report["warnings"]:
        out.print(f"warning: {warning}", style="yellow", markup=False, highlight=False)


def _runs(runs: list[int], most: int = 20) -> str:
    shown = ", ".join(str(r) for r in runs[:most])
    return shown + (f", … ({len(runs) - most} more)" if len(runs) > most else "")


# Each state has a glyph of its own, so the bars read the same without colour (NO_COLOR).
_STATE_LOOK = {
    RunState.FINISHED: ("█", "green"),
    RunState.RUNNING: ("▓", "yellow"),
    RunState.STAGED: ("▒", "cyan"),
    RunState.CLAIMED: ("░", "blue"),
    RunState.FAILED: ("x", "red"),
    RunState.NEW: ("·", "grey50"),
}


def _legend() -> Text:
    legend = Text()
    for state, (glyph, style) in _STATE_LOOK.items():
        legend.append(f"{glyph} ", style=style).append(f"{state.value} {state.label}  ")
    legend.rstrip()
    return legend


def _bar(counts: dict[RunState, int], width: int = 40) -> Text:
    """``width`` cells shared among the states by largest remainder: they always fill it."""
    total = sum(counts.values())
    if not total:
        return Text(" " * width)
    shares = {s: width * counts.get(s, 0) / total for s in _STATE_LOOK}
    cells = {s: int(share) for s, share in shares.items()}
    by_remainder = sorted(shares, key=lambda s: shares[s] - cells[s], reverse=True)
    for state in by_remainder[: width - sum(cells.values())]:
        cells[state] += 1
    bar = Text()
    for state, (glyph, style) in _STATE_LOOK.items():
        bar.append(glyph * cells[state], style=style)
    return bar


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class DashboardState:
    """What the live view shows; filled by the loop (or the database), drawn by ``dashboard``."""

    status: ProductionStatus | None = None
    messages: deque[str] = field(default_factory=lambda: deque(maxlen=10))
    space_used: float | None = None  # percent of the data file system
    spacelim: float | None = None
    transfers: dict[str, str] = field(default_factory=dict)  # file -> progress text


def _failure_lines(report: ProductionStatus) -> list[str]:
    return [
        f"{f.at[11:19]} run {f.run} attempt {f.attempt} ({f.step}): {_first_line(f.reason)}"
        for f in report.recent
    ]


def _jobs(report: ProductionStatus, rows: int) -> Table | Text:
    """The jobs in flight, at most ``rows`` of them; one line when none fit."""
    running = report.running
    if rows < 1:
        return Text(f"jobs in flight: {len(running)}")
    jobs = Table("run", "job", "user@host", "attempt", "running for", title="jobs in flight")
    now = datetime.now(timezone.utc)
    for run in running[:rows]:
        started = parse_iso(run.start) if run.start else None
        age = (now - started).total_seconds() if started else None
        jobs.add_row(
            str(run.run),
            run.job_id or "",
            f"{run.user}@{run.host}",
            str(run.attempt),
            _duration(age),
        )
    if len(running) > rows:
        jobs.caption = f"… and {len(running) - rows} more"
    return jobs


# Lines a rich table of jobs takes besides its rows: title, three rules, header, caption.
_JOBS_FRAME = 6


def dashboard(state: DashboardState, most_jobs: int = 10, height: int | None = None) -> Group:
    """The live view: per-dataset bars with a legend, jobs in flight, throughput and ETA,
    space, transfers, and the last messages (or the recent failures of the history).

    Within ``height`` lines the jobs table gives way first: the summary line and the
    messages keep their room.
    """
    parts: list[Any] = []
    report = state.status
    lines = list(state.messages)
    title = "last messages"
    if not lines and report is not None and report.recent:
        lines, title = _failure_lines(report), "recent failures"
    shown = lines or ["-"]
    transfers = list(state.transfers.items())[-3:]
    if report is not None:
        prod = report.production
        parts.append(Text(f"{prod.name} ({prod.software})", style="bold"))
        bars = Table("dataset", "progress", *(s.value for s in RunState), "total", box=None)
        rows = [*sorted(report.datasets.items()), ("all", report.totals)]
        for name, counts in rows:
            bars.add_row(
                name,
                _bar(counts),
                *(str(counts.get(s, 0)) for s in RunState),
                str(sum(counts.values())),
            )
        parts.extend([bars, _legend()])
        room = most_jobs
        if height is not None:
            # title, bars with their header, legend, summary line, transfers, panel rules
            fixed = 1 + (1 + len(rows)) + 1 + 1 + len(transfers) + 2
            room = min(most_jobs, height - fixed - len(shown) - _JOBS_FRAME)
            if room < 1:  # the jobs shrink to one line; only then do the messages
                overflow = fixed + len(shown) + 1 - height
                shown = shown[min(max(overflow, 0), len(shown) - 1) :]
        parts.append(_jobs(report, room))
    facts = []
    if state.space_used is not None:
        facts.append(f"space {state.space_used:.0f}% used (limit {state.spacelim or 0:.0f}%)")
    if report is not None:
        facts.append(_pace(report))
    parts.append(Text("   ".join(facts)))
    for name, progress in transfers:
        parts.append(Text(f"transfer {name}: {progress}", style="cyan"))
    # one line each (cut on a terminal only), so that the layout above holds
    parts.append(Panel(Text("\n".join(shown), no_wrap=True, overflow="ellipsis"), title=title))
    return Group(*parts)


class LiveDashboard:
    """A rich Live view driven by the run loop (a LoopObserver); refreshes at most 4 times/s."""

    def __init__(self, console: Console | None = None, refresh_every: float = 1.0) -> None:
        self.console = _console(console)
        self.state = DashboardState()
        self.refresh_every = refresh_every
        self._last = 0.0
        self._lock = threading.Lock()
        self._transfers: dict[str, list[float]] = {}  # name -> [done, total, began, first]
        self._drawn = 0.0
        self._live = Live(console=self.console, refresh_per_second=4, auto_refresh=False)

    def __enter__(self) -> LiveDashboard:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.update(self._render(), refresh=True)
        self._live.__exit__(None, None, None)

    def message(self, text: str) -> None:
        self.state.messages.append(f"{datetime.now():%H:%M:%S} {text}")
        self._live.update(self._render(), refresh=True)

    def cycle(self, ctx: StepContext, result: CycleResult) -> None:
        self.state.spacelim = ctx.limits.spacelim
        if result.space_percent is not None:
            self.state.space_used = result.space_percent
        if self.due():
            self.show(production_status(ctx.store, ctx.record))

    def show(self, status: ProductionStatus) -> None:
        self.state.status = status
        self._live.update(self._render(), refresh=True)

    # -- alcapctl.archive.Progress: transfers report here, from any thread ----------------

    def start(self, name: str, total: int | None, done: int = 0) -> None:
        with self._lock:
            self._transfers[name] = [done, total or 0, time.monotonic(), done]
        self._draw_transfers(force=True)

    def advance(self, name: str, nbytes: int) -> None:
        with self._lock:
            if name in self._transfers:
                self._transfers[name][0] += nbytes
        self._draw_transfers()

    def finish(self, name: str) -> None:
        with self._lock:
            self._transfers.pop(name, None)
        self._draw_transfers(force=True)

    def _draw_transfers(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._drawn < 0.25:
                return
            self._drawn = now
        self._live.update(self._render(), refresh=True)

    def _render(self) -> Group:
        now = time.monotonic()
        with self._lock:
            texts = {}
            for name, (done, total, began, first) in self._transfers.items():
                rate = (done - first) / max(now - began, 1e-6) / 1e6
                share = f"{100 * done / total:.0f}% of {total / 1e6:.0f} MB" if total else ""
                texts[name] = f"{share} {rate:.0f} MB/s".strip()
            self.state.transfers = texts
        return dashboard(self.state, height=self.console.height)

    def due(self) -> bool:
        """True at most once every ``refresh_every`` seconds: time to re-read the database."""
        now = time.monotonic()
        if now - self._last < self.refresh_every:
            return False
        self._last = now
        return True


class TransferBars:
    """One progress bar per transfer with size, rate and time left; lines print above them.

    Takes the calls of ``alcapctl.archive.Progress`` from any thread; use it as a context
    manager around the transfers.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=_console(console),
            transient=True,
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> TransferBars:
        self.bars.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.bars.stop()

    def print(self, line: str) -> None:
        self.bars.console.print(line, markup=False, highlight=False)

    def start(self, name: str, total: int | None, done: int = 0) -> None:
        with self._lock:
            task = self._tasks.get(name)
            if task is None:
                self._tasks[name] = self.bars.add_task(name, total=total, completed=done)
            else:
                self.bars.reset(task, total=total, completed=done)

    def advance(self, name: str, nbytes: int) -> None:
        task = self._tasks.get(name)
        if task is not None:
            self.bars.advance(task, nbytes)

    def finish(self, name: str) -> None:
        with self._lock:
            task = self._tasks.pop(name, None)
        if task is not None:
            self.bars.remove_task(task)
