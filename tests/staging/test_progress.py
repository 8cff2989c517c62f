"""Transfer progress: log lines off a terminal, rich bars on one."""

from __future__ import annotations

import io

from rich.console import Console
from structlog.testing import capture_logs

from alcapctl.archive.progress import LogProgress
from alcapctl.display import TransferBars


def test_log_progress_reports_bytes_percent_and_rate() -> None:
    progress = LogProgress(interval=0)
    with capture_logs() as logs:
        progress.start("run02091.mid", total=4_000_000)
        progress.advance("run02091.mid", 1_000_000)
        progress.advance("run02091.mid", 1_000_000)
        progress.finish("run02091.mid")
    events = [(e["event"], e.get("percent"), e["mb"]) for e in logs]
    assert events == [
        ("transfer progress", 25.0, 1.0),
        ("transfer progress", 50.0, 2.0),
        ("transfer ended", 50.0, 2.0),
    ]
    assert all(e["rate_mb_s"] > 0 for e in logs)


def test_short_transfers_stay_quiet() -> None:
    progress = LogProgress(interval=3600)
    with capture_logs() as logs:
        progress.start("run02091.mid", total=10)
        progress.advance("run02091.mid", 10)
        progress.finish("run02091.mid")
    assert [e["log_level"] for e in logs] == ["debug"]


def test_transfer_bars_draw_size_and_rate() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, record=True)
    with TransferBars(console) as bars:
        bars.start("run02091.mid", total=2_000_000)
        bars.advance("run02091.mid", 1_000_000)
        bars.bars.refresh()
        drawn = console.export_text()
        bars.print("Downloading run: 2091")
        bars.finish("run02091.mid")
    assert "run02091.mid" in drawn and "1.0/2.0 MB" in drawn
    assert "Downloading run: 2091" in console.export_text()
