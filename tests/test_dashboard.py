"""The live dashboard, rendered on rich's recording console."""

from __future__ import annotations

from rich.console import Console

from alcapctl.display import DashboardState, LiveDashboard, dashboard, render_status
from alcapctl.states import RunState
from alcapctl.steps.status import ProductionStatus
from alcapctl.store import ProductionRecord, RunRecord

N, C, S, R, F, X = RunState


def _status(failed: int = 1) -> ProductionStatus:
    record = ProductionRecord("rootana", 8, "rootana_v2.1", "2026-11-24 10:00:00", None, 3)
    return ProductionStatus(
        production=record,
        totals={N: 5, C: 2, S: 1, R: 2, F: 7, X: failed},
        datasets={"SiR2": {N: 3, C: 2, R: 2, F: 7}, "Al100": {N: 2, S: 1, X: failed}},
        failed=[RunRecord(run, X, attempts=3, error="exit 139") for run in range(failed)],
        running=[
            RunRecord(2091, R, user="u", host="h", job_id="1025406", start="2026-11-24 10:01:00"),
            RunRecord(2092, R, user="u", host="h", job_id="1025407", start="2026-11-24 10:02:00"),
        ],
    )


def _render(renderable: object, width: int = 120) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_dashboard_shows_counts_jobs_and_messages() -> None:
    state = DashboardState(status=_status(), space_used=42.0, spacelim=90)
    state.messages.extend(["Claimed run: 2093", "Submitting run: 2092"])
    text = _render(dashboard(state))
    assert "rootana_v8 (rootana_v2.1)" in text
    sir2 = next(line for line in text.splitlines() if line.strip().startswith("SiR2"))
    assert sir2.split()[-7:] == ["3", "2", "0", "2", "7", "0", "14"]
    total = next(line for line in text.splitlines() if line.strip().startswith("all"))
    assert total.split()[-7:] == ["5", "2", "1", "2", "7", "1", "18"]
    assert "1025406" in text and "1025407" in text
    assert "space 42% used (limit 90%)" in text
    assert "Submitting run: 2092" in text


def test_many_failures_in_a_row_keep_the_layout() -> None:
    """The 2014 curses screen broke when many runs failed in a row; ours stays bounded."""
    state = DashboardState(status=_status(failed=500))
    for run in range(500):
        state.messages.append(f"Run {run} failed: exit 139")
    text = _render(dashboard(state), width=80)
    assert len(text.splitlines()) < 40
    assert "Run 499 failed" in text
    assert "Run 480 failed" not in text


def test_status_table_lists_failed_runs() -> None:
    console = Console(record=True, width=140, color_system=None)
    render_status(_status(failed=2), console, detail=True)
    text = console.export_text()
    assert "failed runs" in text
    assert "exit 139" in text


def test_live_dashboard_shows_transfers_and_messages() -> None:
    console = Console(record=True, width=120, color_system=None, force_terminal=True)
    with LiveDashboard(console) as board:
        board.show(_status())
        board.start("run02091.mid", 200_000_000)
        board.advance("run02091.mid", 50_000_000)
        board.finish("run02091.mid")
        board.start("run02092.mid", 100_000_000)
        board.advance("run02092.mid", 100_000_000)
        board.message("Downloading run: 2092")
    text = console.export_text()
    assert "transfer run02092.mid: 100% of 100 MB" in text
    assert "Downloading run: 2092" in text
    assert "1025406" in text
