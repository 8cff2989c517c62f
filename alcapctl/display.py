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
from rich.table import Table
from rich.text import Text

from alcapctl.clock import parse_iso
from alcapctl.states import RunState
from alcapctl.steps.status import ProductionStatus, production_status

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
    """Runs per dataset (rows) and state (columns), with totals."""
    prod = report.production
    base = f", base {prod.base}" if prod.base is not None else ""
    title = f"{prod.name} ({prod.software}{base}) started {prod.start or '?'}"
    title += f", stopped {prod.stop}" if prod.stop else ""
    table = Table("dataset", *(f"{s.value} {s.label}" for s in RunState), "total", title=title)
    for name, counts in sorted(report.datasets.items()):
        table.add_row(name, *(str(counts.get(s, 0)) for s in RunState), str(sum(counts.values())))
    table.add_section()
    table.add_row("all", *(str(report.totals.get(s, 0)) for s in RunState), str(report.total))
    return table


def render_status(report: ProductionStatus, console: Console | None = None) -> None:
    out = _console(console)
    out.print(status_table(report))
    if report.failed:
        failed = Table("run", "attempts", "user", "error", title="failed runs")
        for run in report.failed:
            failed.add_row(str(run.run), str(run.attempts), run.user or "", run.error or "")
        out.print(failed)
    if report.retried:
        retried = Table("run", "attempt", "step", "at", "reason", title="failed attempts, retried")
        for attempt in report.retried[-10:]:
            reason = (attempt.reason or "").splitlines()[0] if attempt.reason else ""
            retried.add_row(
                str(attempt.run), str(attempt.attempt), attempt.step, attempt.at[:19], reason
            )
        if len(report.retried) > 10:
            retried.caption = f"the last 10 of {len(report.retried)}"
        out.print(retried)


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


_STATE_STYLE = {
    RunState.FINISHED: "green",
    RunState.RUNNING: "yellow",
    RunState.STAGED: "cyan",
    RunState.CLAIMED: "blue",
    RunState.FAILED: "red",
    RunState.NEW: "grey50",
}


def _bar(counts: dict[RunState, int], width: int = 40) -> Text:
    total = sum(counts.values()) or 1
    bar = Text()
    used = 0
    for state, style in _STATE_STYLE.items():
        cells = round(width * counts.get(state, 0) / total)
        cells = min(cells, width - used)
        bar.append("█" * cells, style=style)
        used += cells
    return bar.append("·" * (width - used), style="grey30")


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class DashboardState:
    """What the live view shows; filled by the loop, drawn by ``dashboard``."""

    status: ProductionStatus | None = None
    messages: deque[str] = field(default_factory=lambda: deque(maxlen=10))
    started: float = field(default_factory=time.monotonic)
    finished_here: int = 0
    space_used: float | None = None  # percent of the data file system
    spacelim: float | None = None
    transfers: dict[str, str] = field(default_factory=dict)  # file -> progress text

    def throughput(self) -> float | None:
        """Runs finished per hour by this process."""
        elapsed = time.monotonic() - self.started
        return self.finished_here * 3600 / elapsed if elapsed > 0 and self.finished_here else None

    def eta(self) -> float | None:
        rate = self.throughput()
        if not rate or self.status is None:
            return None
        done = self.status.totals.get(RunState.FINISHED, 0) + self.status.totals.get(
            RunState.FAILED, 0
        )
        return (self.status.total - done) / rate * 3600


def dashboard(state: DashboardState, most_jobs: int = 10) -> Group:
    """The live view: per-dataset bars, jobs in flight, space, throughput and ETA, messages."""
    parts: list[Any] = []
    report = state.status
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
        parts.append(bars)
        jobs = Table("run", "job", "user@host", "attempt", "running for", title="jobs in flight")
        now = datetime.now(timezone.utc)
        for run in report.running[:most_jobs]:
            started = parse_iso(run.start) if run.start else None
            age = (now - started).total_seconds() if started else None
            jobs.add_row(
                str(run.run),
                run.job_id or "",
                f"{run.user}@{run.host}",
                str(run.attempt),
                _duration(age),
            )
        if len(report.running) > most_jobs:
            jobs.caption = f"… and {len(report.running) - most_jobs} more"
        parts.append(jobs)
    facts = []
    if state.space_used is not None:
        facts.append(f"space {state.space_used:.0f}% used (limit {state.spacelim or 0:.0f}%)")
    rate = state.throughput()
    facts.append(f"throughput {rate:.0f} runs/h" if rate else "throughput -")
    facts.append(f"ETA {_duration(state.eta())}")
    parts.append(Text("   ".join(facts)))
    for name, progress in list(state.transfers.items())[-3:]:
        parts.append(Text(f"transfer {name}: {progress}", style="cyan"))
    parts.append(Panel(Text("\n".join(state.messages) or "-"), title="last messages"))
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
        self.state.finished_here += result.finished
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
        return dashboard(self.state)

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
