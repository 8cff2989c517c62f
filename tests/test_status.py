"""``status``: a summary per production with throughput and ETA, failures grouped by reason,
plain tab-separated lines when stdout is not a terminal, and ``--watch`` in either order."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import Result
from rich.console import Console

from alcapctl.cli.production import status
from alcapctl.clock import now_iso
from alcapctl.display import DashboardState, dashboard, render_status
from alcapctl.steps.status import production_status
from alcapctl.store import Store
from tests.conftest import ALCAPCTL

BOOM = "exit code 3\nlast lines of elog:\nboom: bad calibration\tin module MTimer"
LONG = "exit code 4; " + "the payload explained at great length why it gave up; " * 6


def _elog(data: Path, run: int) -> str:
    return str(data / "log" / "v1" / f"elog{run:05d}.log")


@pytest.fixture
def prod(
    make_production: Callable[..., Path], db_path: Path, run_cli: Callable[..., Result]
) -> Path:
    """A production with 4 runs F just now, 2091 and 2092 X for one reason, 2097 X for a
    long one, and one failed attempt of 2098 (still N)."""
    toml = make_production(
        outputs={"elog": "{data}/log/v{version}/elog{run:05d}.log"},
    )
    assert run_cli("init", toml).exit_code == 0
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "UPDATE alcapana_v1 SET status='F', stop=? WHERE run BETWEEN 2093 AND 2096",
            (now_iso(),),
        )
        conn.execute(
            "UPDATE alcapana_v1 SET status='X', attempts=2, user='tester', error=? "
            "WHERE run IN (2091, 2092)",
            (BOOM,),
        )
        conn.execute(
            "UPDATE alcapana_v1 SET status='X', attempts=2, user='tester', error=? "
            "WHERE run = 2097",
            (LONG,),
        )
        conn.execute(
            "INSERT INTO alcapctl_failures (production, run, attempt, at, step, user, "
            "exit_code, reason) VALUES ('alcapana_v1', 2098, 1, '2026-12-01 10:00:00+00:00', "
            "'reap', 'tester', 3, 'exit code 3\nflaky')"
        )
    return toml


def test_status_to_a_pipe_is_one_tab_separated_row_a_line(
    prod: Path, data_dir: Path, run_cli: Callable[..., Result]
) -> None:
    result = run_cli("status", prod)
    assert result.exit_code == 0
    # 20 runs: 4 F in the first minute (240/h), 13 left: 195 s
    assert result.stdout.splitlines() == [
        "production\talcapana_v1\talcapana_test\t20\t13\t0\t0\t0\t4\t3\t240.0\t195",
        "dataset\talcapana_v1\tAl100\t6\t6\t0\t0\t0\t0\t0",
        "dataset\talcapana_v1\tSiR2\t14\t7\t0\t0\t0\t4\t3",
        "failure\talcapana_v1\tX\t2\t2091,2092\t"
        f"{_elog(data_dir, 2091)},{_elog(data_dir, 2092)}\texit code 3",
        f"failure\talcapana_v1\tX\t1\t2097\t{_elog(data_dir, 2097)}\t{LONG.strip()}",
        f"failure\talcapana_v1\tretried\t1\t2098\t{_elog(data_dir, 2098)}\texit code 3",
    ]


def test_status_failed_gives_every_run_whole(
    prod: Path, data_dir: Path, run_cli: Callable[..., Result]
) -> None:
    lines = run_cli("status", prod, "--failed").stdout.splitlines()
    boom = BOOM.replace("\n", "\\n").replace("\t", "\\t")
    assert lines[3:] == [
        f"failed\talcapana_v1\t2091\t2\ttester\t{_elog(data_dir, 2091)}\t{boom}",
        f"failed\talcapana_v1\t2092\t2\ttester\t{_elog(data_dir, 2092)}\t{boom}",
        f"failed\talcapana_v1\t2097\t2\ttester\t{_elog(data_dir, 2097)}\t{LONG}",
        "attempt\talcapana_v1\t2098\t1\treap\t2026-12-01 10:00:00+00:00\t3\t"
        f"{_elog(data_dir, 2098)}\texit code 3\\nflaky",
    ]


def test_status_to_a_file_has_no_box_drawing_and_no_cut_text(prod: Path, tmp_path: Path) -> None:
    out = tmp_path / "status.txt"
    with out.open("w") as stream:
        done = subprocess.run(
            [*ALCAPCTL, "status", str(prod), "--failed"],
            stdout=stream,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "40"},
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert not re.search("[\u2500-\u259f]", text)  # box drawing and block elements
    assert LONG in text
    assert all(len(line.split("\t")) >= 7 for line in text.splitlines())


def test_status_all_json_keeps_its_keys_and_adds_pace_and_groups(
    prod: Path, db_path: Path, run_cli: Callable[..., Result]
) -> None:
    [report] = json.loads(run_cli("status", "--all", "--json", "--database", db_path).stdout)
    assert report["totals"] == {"N": 13, "C": 0, "S": 0, "R": 0, "F": 4, "X": 3}
    assert [f["run"] for f in report["failed"]] == [2091, 2092, 2097]
    assert report["throughput_per_hour"] == 240.0
    assert report["eta_seconds"] == 195.0
    assert [(g["state"], g["runs"]) for g in report["failure_groups"]] == [
        ("X", [2091, 2092]),
        ("X", [2097]),
        ("retried", [2098]),
    ]


def test_terminal_view_groups_failures_once(prod: Path, db_path: Path) -> None:
    store = Store.open(f"sqlite:///{db_path}")
    try:
        [record] = store.productions()
        report = production_status(store, record)
    finally:
        store.close()
    console = Console(record=True, width=200, color_system=None)
    render_status(report, console)
    text = console.export_text()
    assert text.count("exit code 3") == 2  # X 2091, 2092 once; the retried attempt once
    assert "throughput 240.0 runs/h (last 1 min)   ETA 3:15" in text
    assert "per run: alcapctl status PROD.toml --failed" in text


@pytest.mark.parametrize(
    ("args", "seconds"),
    [
        (["--watch", "p.toml"], 2.0),
        (["p.toml", "--watch"], 2.0),
        (["--watch", "5", "p.toml"], 5.0),
        (["p.toml", "--watch", "0.5"], 0.5),
        (["--watch=3", "p.toml"], 3.0),
    ],
)
def test_watch_parses_in_either_order(args: list[str], seconds: float) -> None:
    ctx = status.make_context("status", args)
    assert ctx.params["watch"] == seconds
    assert ctx.params["production_file"] == Path("p.toml")


def test_watch_off_a_terminal_prints_the_production_line(
    prod: Path, run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    def stop(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", stop)
    result = run_cli("status", "--watch", prod)
    assert result.exit_code == 0
    [line] = result.stdout.splitlines()
    stamp, rest = line.split("\t", 1)
    assert re.fullmatch(r"\d\d:\d\d:\d\d", stamp)
    assert rest.startswith("production\talcapana_v1\talcapana_test\t20\t")


def test_watch_view_shows_pace_and_recent_failures_from_the_database(
    prod: Path, db_path: Path
) -> None:
    store = Store.open(f"sqlite:///{db_path}")
    try:
        [record] = store.productions()
        state = DashboardState(status=production_status(store, record))
    finally:
        store.close()
    console = Console(record=True, width=100, color_system=None)
    console.print(dashboard(state))
    text = console.export_text()
    assert "throughput 240.0 runs/h (last 1 min)   ETA 3:15" in text
    assert "recent failures" in text
    assert "10:00:00 run 2098 attempt 1 (reap): exit code 3" in text


def test_a_stopped_production_keeps_the_pace_it_ended_with(prod: Path, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE productions SET stop = ?", (now_iso(),))
    store = Store.open(f"sqlite:///{db_path}")
    try:
        [record] = store.productions()
        later = datetime.now(timezone.utc) + timedelta(hours=2)
        report = production_status(store, record, now=later)
    finally:
        store.close()
    assert (report.finished_recently, report.window, report.throughput) == (4, 60.0, 240.0)
