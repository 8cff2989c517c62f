"""The output for cron and for people: one event stream, quiet steps, exit codes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.conftest import GOLD_RUNS, run_process
from tests.test_run_loop import _file_archive, _init, _production, _rows


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_every_json_line_parses_and_a_failure_names_its_run(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    bad = GOLD_RUNS[0]
    prod = _production(tmp_path, make_production, _file_archive(tmp_path, {bad: "fail"}))
    _init(prod)
    done = run_process("--log-format", "json", "run", prod, timeout=60)
    assert done.returncode == 1, done.stderr  # the run failed for good
    lines = _json_lines(done.stdout) + _json_lines(done.stderr)
    assert lines
    for line in lines:
        assert {"timestamp", "level", "event"} <= line.keys(), line
        assert line["production"] == "alcapana_v1", line
    failed = [line for line in lines if str(line["event"]).startswith("Failed run:")]
    assert failed and {line["run"] for line in failed} == {bad}
    finished = {line["run"] for line in lines if str(line["event"]).startswith("Finished run")}
    assert finished == set(GOLD_RUNS) - {bad}


def test_an_error_is_one_json_line_on_stderr(tmp_path: Path) -> None:
    done = run_process("--log-format", "json", "status", tmp_path / "missing.toml")
    assert done.returncode == 2
    (line,) = _json_lines(done.stderr)
    assert line["level"] == "error" and "missing.toml" in str(line["event"])
    assert done.stdout == ""


def test_idle_quiet_steps_print_nothing(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    prod = _production(tmp_path, make_production, _file_archive(tmp_path))
    _init(prod)
    assert run_process("run", prod, timeout=60).returncode == 0
    for step in ("reap", "stage", "submit", "claim", "recover", "abort"):
        done = run_process("-q", step, prod)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), step
    done = run_process("-q", "run", "--once", prod)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_quiet_run_prints_only_changes(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    prod = _production(tmp_path, make_production, _file_archive(tmp_path))
    _init(prod)
    done = run_process("-q", "run", prod, timeout=60)
    assert done.returncode == 0, done.stderr
    kinds = {line.split(":")[0] for line in done.stdout.splitlines()}
    assert "No runs to stage" not in done.stdout and "jobs still running" not in done.stdout
    assert {"Claimed run", "Finished run"} <= kinds


def test_the_failed_list_is_printed_once_when_the_last_run_ends(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    bad = GOLD_RUNS[0]
    prod = _production(tmp_path, make_production, _file_archive(tmp_path, {bad: "fail"}))
    _init(prod)
    said = []
    for _ in range(200):
        done = run_process("run", "--once", prod)
        said.append("Failed runs:" in done.stdout)
        if all(status in "FX" for status, _, _ in _rows(tmp_path).values()):
            break
    assert said.count(True) == 1, said
    again = run_process("run", "--once", prod)
    assert "Failed runs:" not in again.stdout  # the next tick does not repeat it


def test_exit_codes_of_run_once(tmp_path: Path, make_production: Callable[..., Path]) -> None:
    """0: progress or nothing to do; 1: a run failed for good in this call; 2: bad
    configuration; 75: a transient fault (the archive is not there) blocked it."""
    archive = tmp_path / "archive"
    prod = _production(tmp_path, make_production, _file_archive(tmp_path, {GOLD_RUNS[0]: "fail"}))
    _init(prod)
    hidden = tmp_path / "archive-unmounted"
    archive.rename(hidden)
    blocked = run_process("run", "--once", prod)
    assert blocked.returncode == 75, blocked.stderr
    assert {status for status, _, _ in _rows(tmp_path).values()} <= {"N", "C"}
    hidden.rename(archive)
    codes = []
    for _ in range(200):
        codes.append(run_process("run", "--once", prod).returncode)
        if all(status in "FX" for status, _, _ in _rows(tmp_path).values()):
            break
    assert codes.count(1) == 1 and set(codes) <= {0, 1}, codes
    assert run_process("run", "--once", prod).returncode == 0  # nothing left to do
    broken = tmp_path / "broken.toml"
    shutil.copy(prod, broken)
    broken.write_text(broken.read_text() + "\nunknown_key = 1\n")
    assert run_process("run", "--once", broken).returncode == 2
