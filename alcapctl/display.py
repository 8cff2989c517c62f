"""Everything rich draws (status tables, dataset lists, check reports, transfer bars).

Nothing else imports rich.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from rich.console import Console
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

from alcapctl.states import RunState
from alcapctl.steps.status import ProductionStatus

__all__ = ["TransferBars", "render_check", "render_datasets", "render_status", "status_table"]


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


def _runs(runs: list[int], most: int = 20) -> str:
    shown = ", ".join(str(r) for r in runs[:most])
    return shown + (f", … ({len(runs) - most} more)" if len(runs) > most else "")


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
