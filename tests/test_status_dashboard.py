"""The live dashboard without colour (a glyph per state, a legend) and in an 80x24 terminal."""

from __future__ import annotations

import dataclasses

from rich.console import Console

from alcapctl.display import DashboardState, dashboard
from alcapctl.states import RunState
from alcapctl.steps.status import ProductionStatus
from alcapctl.store import ProductionRecord, RunRecord

N, C, S, R, F, X = RunState
RECORD = ProductionRecord("alcapana", 4, "alcapana_v4", "2026-11-24 10:00:00", None, None)


def _plain(renderable: object, width: int = 100, height: int = 50) -> list[str]:
    console = Console(record=True, width=width, height=height, color_system=None, no_color=True)
    console.print(renderable)
    return console.export_text().splitlines()


def _bar(lines: list[str], dataset: str) -> str:
    return next(line for line in lines if line.split()[:1] == [dataset]).split()[1]


def test_no_color_bars_differ_by_state_and_have_a_legend() -> None:
    report = ProductionStatus(
        production=RECORD,
        totals={N: 10, F: 10, X: 10, R: 10},
        datasets={"done": {F: 10}, "fresh": {N: 10}, "broken": {X: 10}, "busy": {R: 10}},
    )
    lines = _plain(dashboard(DashboardState(status=report)))
    bars = {name: _bar(lines, name) for name in ("done", "fresh", "broken", "busy")}
    assert bars == {"done": "█" * 40, "fresh": "·" * 40, "broken": "x" * 40, "busy": "▓" * 40}
    assert _bar(lines, "all") == "█" * 10 + "▓" * 10 + "x" * 10 + "·" * 10
    assert (
        "█ F finished  ▓ R running  ▒ S staged  ░ C claimed  x X failed  · N not claimed" in lines
    )


def test_80x24_keeps_the_summary_and_messages_and_shrinks_the_jobs() -> None:
    running = [
        RunRecord(3000 + i, R, user="u", host="h", job_id=str(i), start="2026-11-24 10:01:00")
        for i in range(30)
    ]
    report = ProductionStatus(
        production=RECORD,
        totals={R: 30, N: 10},
        datasets={"SiR2": {R: 20, N: 5}, "Al100": {R: 10, N: 5}},
        running=running,
    )
    state = DashboardState(status=report, space_used=42.0, spacelim=90)
    state.messages.extend(f"Submitting run: {3000 + i}" for i in range(10))
    lines = _plain(dashboard(state, height=24), width=80, height=24)
    assert len(lines) <= 24
    assert "space 42% used (limit 90%)   throughput -   ETA ?" in lines
    assert all(any(f"Submitting run: {3000 + i}" in line for line in lines) for i in range(10))
    assert "jobs in flight: 30" in lines

    state.messages.clear()
    state.messages.extend(["Claimed run: 2091", "Claimed run: 2092"])
    lines = _plain(dashboard(state, height=24), width=80, height=24)
    assert len(lines) <= 24
    assert any("… and 23 more" in line for line in lines)  # 7 rows of jobs fit
    assert any("Claimed run: 2092" in line for line in lines)

    tall = dataclasses.replace(report, running=running[:3])
    lines = _plain(dashboard(DashboardState(status=tall), height=24), width=80, height=24)
    assert sum(line.startswith("│ 300") for line in lines) == 3
