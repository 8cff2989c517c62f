"""Faults injected into `alcapctl run`: transient ones cost no run, fatal ones abort completely.

Outcomes are read from the database and the files, and from exit codes.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from alcapctl.archive.local import LocalArchive
from tests.conftest import ALCAPCTL, GOLD_RUNS, run_process
from tests.ftpserver import FtpServer, write_netrc
from tests.test_run_loop import _file_archive, _init, _production, _ran, _rows, _wait_for


def _attempts(tmp_path: Path) -> dict[int, int]:
    conn = sqlite3.connect(tmp_path / "production.db")
    try:
        return dict(conn.execute("SELECT run, attempts FROM alcapana_v1").fetchall())
    finally:
        conn.close()


def _stop_time(tmp_path: Path) -> str | None:
    conn = sqlite3.connect(tmp_path / "production.db")
    try:
        return str(conn.execute("SELECT stop FROM productions").fetchone()[0] or "") or None
    finally:
        conn.close()


def test_missing_file_archive_counts_no_attempt_then_finishes(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    url = _file_archive(tmp_path)
    archive = tmp_path / "archive"
    archive.rename(tmp_path / "unmounted")
    prod = _production(tmp_path, make_production, url)
    _init(prod)
    done = run_process("run", prod, "--once")
    assert done.returncode == 75, done.stderr
    assert set(_attempts(tmp_path).values()) == {0}
    assert {status for status, _, _ in _rows(tmp_path).values()} <= {"N", "C"}
    (tmp_path / "unmounted").rename(archive)
    done = run_process("run", prod)
    assert done.returncode == 0, done.stderr
    assert {status for status, _, _ in _rows(tmp_path).values()} == {"F"}
    assert _ran(tmp_path) == Counter(GOLD_RUNS)
    assert "INFO: Finishing production alcapana_v1" in done.stdout.splitlines()
    assert _stop_time(tmp_path) is not None


def test_ftp_login_refused_counts_no_attempt_then_finishes(
    tmp_path: Path, make_production: Callable[..., Path], ftp_server: Callable[..., FtpServer]
) -> None:
    server = ftp_server()
    for run in GOLD_RUNS:
        server.put(f"run{run:05d}.mid", f"raw data of run {run}\n".encode())
    prod = _production(tmp_path, make_production, server.url)
    _init(prod)
    write_netrc(server.netrc, password="wrong")  # the server answers 530
    done = run_process("run", prod, "--once")
    assert done.returncode == 75, done.stderr
    assert set(_attempts(tmp_path).values()) == {0}
    assert {status for status, _, _ in _rows(tmp_path).values()} <= {"N", "C"}
    write_netrc(server.netrc)
    done = run_process("run", prod)
    assert done.returncode == 0, done.stderr
    assert {status for status, _, _ in _rows(tmp_path).values()} == {"F"}
    assert _ran(tmp_path) == Counter(GOLD_RUNS)


def test_database_lock_held_past_the_timeout_costs_no_run(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    modes = dict.fromkeys(GOLD_RUNS, "pause")
    prod = _production(tmp_path, make_production, _file_archive(tmp_path, modes))
    _init(prod)
    proc = subprocess.Popen(
        [*ALCAPCTL, "run", str(prod), "--lock-timeout", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: "R" in {s for s, _, _ in _rows(tmp_path).values()})
        holder = sqlite3.connect(tmp_path / "production.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        time.sleep(2.5)  # several lock timeouts of the loop
        holder.execute("ROLLBACK")
        holder.close()
        _, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert {status for status, _, _ in _rows(tmp_path).values()} == {"F"}
    assert _ran(tmp_path) == Counter(GOLD_RUNS)  # no job cancelled, none run twice
    assert set(_attempts(tmp_path).values()) == {0}


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_signal_aborts_completely_with_its_exit_code(
    tmp_path: Path, make_production: Callable[..., Path], signum: int, code: int
) -> None:
    modes = dict.fromkeys(GOLD_RUNS, "slow")
    prod = _production(tmp_path, make_production, _file_archive(tmp_path, modes))
    _init(prod)
    proc = subprocess.Popen(
        [*ALCAPCTL, "run", str(prod)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(lambda: "R" in {s for s, _, _ in _rows(tmp_path).values()})
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code
    assert "Aborting runs: [" in out
    assert {status for status, _, _ in _rows(tmp_path).values()} == {"N"}
    assert not any((tmp_path / "data" / "raw" / "alcapana_v1").iterdir())


def test_retry_reopens_and_x_runs_do_not_close_the_production(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    url = _file_archive(tmp_path, {GOLD_RUNS[0]: "fail"})
    prod = _production(tmp_path, make_production, url)
    _init(prod)
    done = run_process("run", prod)
    assert done.returncode == 1, done.stderr
    assert _stop_time(tmp_path) is None  # one run is X: the production is not finished
    archive = Path(url.removeprefix("file://"))
    (archive / f"run{GOLD_RUNS[0]:05d}.mid").write_text("ok\nfixed\n")
    assert run_process("retry", prod, "--failed").returncode == 0
    done = run_process("run", prod)
    assert done.returncode == 0, done.stderr
    assert _stop_time(tmp_path) is not None


def test_staging_over_an_existing_link_leaves_no_part(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "run00001.mid").write_text("raw")
    staging = tmp_path / "staging"
    staging.mkdir()
    local = LocalArchive(f"file://{archive}")
    for _ in range(2):
        local.fetch("run00001.mid", staging / "run00001.mid")
    assert sorted(p.name for p in staging.iterdir()) == ["run00001.mid"]


def test_unmounted_archive_is_unavailable_not_a_missing_input(tmp_path: Path) -> None:
    from alcapctl.archive import ArchiveUnavailable, FetchError

    local = LocalArchive(f"file://{tmp_path / 'absent'}")
    with pytest.raises(ArchiveUnavailable):
        local.fetch("run00001.mid", tmp_path / "run00001.mid")
    (tmp_path / "absent").mkdir()
    with pytest.raises(FetchError) as missing:
        local.fetch("run00001.mid", tmp_path / "run00001.mid")
    assert not isinstance(missing.value, ArchiveUnavailable)


@pytest.mark.parametrize("abort", [False, True])
def test_stop_ends_the_loop_from_elsewhere(
    tmp_path: Path, make_production: Callable[..., Path], abort: bool
) -> None:
    modes = dict.fromkeys(GOLD_RUNS, "slow")
    prod = _production(tmp_path, make_production, _file_archive(tmp_path, modes))
    _init(prod)
    assert run_process("stop", prod).returncode == 1  # no loop: nothing asked
    proc = subprocess.Popen(
        [*ALCAPCTL, "run", str(prod)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(lambda: "R" in {s for s, _, _ in _rows(tmp_path).values()})
        asked = run_process("stop", prod, *(["--abort"] if abort else []))
        assert asked.returncode == 0, asked.stderr
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0
    states = {status for status, _, _ in _rows(tmp_path).values()}
    if abort:
        assert states == {"N"}
    else:
        assert "R" in states  # its jobs keep running for a later reap
        assert run_process("abort", prod).returncode == 0


def test_scheduler_down_at_submit_keeps_staged_runs(
    tmp_path: Path, make_production: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes import FakeScheduler

    fake = FakeScheduler(tmp_path / "fake", monkeypatch)
    prod = _production(tmp_path, make_production, _file_archive(tmp_path))
    site = tmp_path / "site-run.toml"
    site.write_text(site.read_text().replace('"local"', '"slurm"'))
    _init(prod)
    fake.answer("sbatch", stderr="Unable to contact slurm controller", exit=1)
    done = run_process("run", prod, "--once")
    assert done.returncode == 75, done.stderr
    rows = _rows(tmp_path)
    staged = [run for run, (status, _, _) in rows.items() if status == "S"]
    assert staged and set(_attempts(tmp_path).values()) == {0}
    assert all(
        (tmp_path / "data" / "raw" / "alcapana_v1" / f"run{r:05d}.mid").exists() for r in staged
    )
    state = fake.load()
    del state["answers"]["sbatch"]
    fake.save(state)
    done = run_process("run", prod, "--once")
    assert done.returncode == 0, done.stderr
    rows = _rows(tmp_path)
    assert all(rows[run][0] == "R" for run in staged)
    names = [job["name"] for job in fake.load()["jobs"].values()]
    assert len(names) == len(set(names))  # one job per run


def test_breaker_stops_new_work_after_failures_alike(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    url = _file_archive(tmp_path, dict.fromkeys(GOLD_RUNS, "fail"))
    prod = _production(tmp_path, make_production, url, nproc=1, max_attempts=3, breaker=2)
    _init(prod)
    done = run_process("run", prod)
    assert done.returncode == 1, done.stderr
    attempts = _attempts(tmp_path)
    assert 2 <= sum(attempts.values()) < len(GOLD_RUNS)  # far from runs x max_attempts
    rows = _rows(tmp_path)
    assert "R" not in {status for status, _, _ in rows.values()}  # running jobs reaped
    assert sum(_ran(tmp_path).values()) == sum(attempts.values())
    assert list(attempts.values()).count(0) >= len(GOLD_RUNS) // 2  # untried runs untouched
