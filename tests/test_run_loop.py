"""`alcapctl run` end to end: real FTP server, real jobs, real signals, several users, kill -9."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ALCAPCTL, GOLD_RUNS, run_process, write_toml
from tests.ftpserver import FtpServer

# The payload: logs that it ran, then behaves as the first line of its input says.
PAYLOAD = """\
read mode <"$1"
echo "$5" >>"$6"
case $mode in
  fail) echo "boom: bad calibration" >&2; exit 3 ;;
  slow) sleep 60 ;;
  pause) sleep 0.3 ;;
  flaky) [ -e "$2.tried" ] || { : >"$2.tried"; echo "flaky crash" >&2; exit 3; } ;;
  vanish) [ -e "$2.tried" ] || { : >"$2.tried"; rm -f "$1"; exit 3; } ;;
esac
cat "$1" >"$2"
cp "$2" "$3"
echo odb >"$4"
"""


def _production(
    tmp_path: Path,
    make_production: Callable[..., Path],
    archive_url: str,
    **limits: float,
) -> Path:
    script = tmp_path / "payload.sh"
    script.write_text(PAYLOAD)
    site = write_toml(
        tmp_path / "site-run.toml",
        {
            "database": str(tmp_path / "production.db"),
            "data": str(tmp_path / "data"),
            "backend": "local",
            "archive": {"url": archive_url, "timeout": 10},
        },
    )
    return make_production(
        "run.toml",
        site=str(site),
        job={
            "command": f"sh {script} {{input}} {{tree}} {{hist}} {{odb}} {{run}} {{data}}/ran.txt"
        },
        limits={"nproc": 3, "nprep": 2, "pause": 0.05, "max_attempts": 2, "grace": 0, **limits},
    )


def _file_archive(tmp_path: Path, modes: dict[int, str] | None = None) -> str:
    archive = tmp_path / "archive"
    archive.mkdir()
    for run in GOLD_RUNS:
        mode = (modes or {}).get(run, "ok")
        (archive / f"run{run:05d}.mid").write_text(f"{mode}\nraw data of run {run}\n")
    return f"file://{archive}"


def _rows(tmp_path: Path) -> dict[int, tuple[str, str | None, str | None]]:
    conn = sqlite3.connect(tmp_path / "production.db")
    try:
        rows = conn.execute("SELECT run, status, user, tree FROM alcapana_v1").fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    return {run: (status, user, tree) for run, status, user, tree in rows}


def _ran(tmp_path: Path) -> Counter[int]:
    log = tmp_path / "data" / "ran.txt"
    return Counter(int(line) for line in log.read_text().split()) if log.exists() else Counter()


def _init(prod: Path) -> None:
    done = run_process("init", prod)
    assert done.returncode == 0, done.stderr


def test_production_finishes_over_ftp(
    tmp_path: Path, make_production: Callable[..., Path], ftp_server: Callable[..., FtpServer]
) -> None:
    server = ftp_server()
    for run in GOLD_RUNS:
        server.put(f"run{run:05d}.mid", f"ok\nraw data of run {run}\n".encode())
    prod = _production(tmp_path, make_production, server.url)
    _init(prod)
    done = run_process("run", prod)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"Claimed run: {GOLD_RUNS[0]}" in lines
    assert any(line.startswith("Staging runs: [") for line in lines)
    assert f"Downloading run: {GOLD_RUNS[0]}" in lines and "... Success!" in lines
    assert f"Submitting run: {GOLD_RUNS[0]}" in lines
    rows = _rows(tmp_path)
    assert {status for status, _, _ in rows.values()} == {"F"}
    for run, (_, _, tree) in rows.items():
        legacy = tmp_path / "data" / "tree" / "v1" / f"tree{run:05d}.root"
        assert tree == str(legacy)
        assert legacy.read_text() == f"ok\nraw data of run {run}\n"
    assert _ran(tmp_path) == Counter(GOLD_RUNS)  # each run processed exactly once
    assert sorted(server.commands("RETR")) == [f"run{r:05d}.mid" for r in GOLD_RUNS]
    assert not any((tmp_path / "data" / "raw" / "alcapana_v1").iterdir())  # inputs cleaned


def test_failed_attempt_then_success_is_shown(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    url = _file_archive(tmp_path, {GOLD_RUNS[0]: "flaky"})
    prod = _production(tmp_path, make_production, url)
    _init(prod)
    done = run_process("run", prod)
    assert done.returncode == 0, done.stderr
    assert f"Failed run: {GOLD_RUNS[0]} -> S" in done.stdout
    assert {status for status, _, _ in _rows(tmp_path).values()} == {"F"}
    status = json.loads(run_process("status", prod, "--json").stdout)
    [attempt] = status["failed_attempts"]
    assert (attempt["run"], attempt["attempt"], attempt["exit_code"]) == (GOLD_RUNS[0], 1, 3)
    assert "flaky crash" in attempt["reason"]
    lines = run_process("status", prod).stdout.splitlines()
    elog = tmp_path / "data" / "log" / "v1" / f"alcapana.run{GOLD_RUNS[0]:05d}.err"
    retried = [line.split("\t") for line in lines if line.startswith("failure\t")]
    assert retried == [
        ["failure", "alcapana_v1", "retried", "1", str(GOLD_RUNS[0]), str(elog), "exit code 3"]
    ]


def test_attempt_that_lost_its_input_is_staged_again(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    """A failed attempt whose input is gone goes back to C: the loop, which stages only
    while it may hold C runs, must fetch that input again."""
    last = GOLD_RUNS[-1]  # claimed last: no later claim would stage it by the way
    url = _file_archive(tmp_path, {last: "vanish"})
    prod = _production(tmp_path, make_production, url)
    _init(prod)
    done = run_process("run", prod, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"Failed run: {last} -> C" in done.stdout
    assert {status for status, _, _ in _rows(tmp_path).values()} == {"F"}
    assert _ran(tmp_path)[last] == 2


def test_always_failing_job_ends_x_and_exit_1(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    url = _file_archive(tmp_path, dict.fromkeys(GOLD_RUNS[:2], "fail"))
    prod = _production(tmp_path, make_production, url)
    _init(prod)
    done = run_process("run", prod, "--json")
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert summary["failed_runs"] == GOLD_RUNS[:2]
    rows = _rows(tmp_path)
    assert [rows[r][0] for r in GOLD_RUNS[:2]] == ["X", "X"]
    assert all(rows[r][0] == "F" for r in GOLD_RUNS[2:])
    ran = _ran(tmp_path)
    assert [ran[r] for r in GOLD_RUNS[:2]] == [2, 2]  # max_attempts = 2
    status = json.loads(run_process("status", prod, "--json").stdout)
    assert "boom: bad calibration" in status["failed"][0]["error"]


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(pid))
    return found


def _wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.parametrize("interrupts", [1, 2])
def test_sigint_aborts_like_the_old_script(
    tmp_path: Path, make_production: Callable[..., Path], interrupts: int
) -> None:
    """Ctrl-C mid-production; a second Ctrl-C during the abort changes nothing."""
    fast = GOLD_RUNS[:2]
    modes = {run: ("ok" if run in fast else "slow") for run in GOLD_RUNS}
    url = _file_archive(tmp_path, modes)
    prod = _production(tmp_path, make_production, url, nproc=4, nprep=2)
    _init(prod)
    proc = subprocess.Popen(
        [*ALCAPCTL, "run", str(prod)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:

        def ready() -> bool:
            states = Counter(status for status, _, _ in _rows(tmp_path).values())
            return states["F"] == 2 and states["R"] >= 2 and states["S"] >= 1

        _wait_for(ready)
        finished_files = sorted((tmp_path / "data" / "tree" / "v1").iterdir())
        proc.send_signal(signal.SIGINT)
        if interrupts == 2:  # while the abort cancels jobs and resets runs
            time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "Cancelling job " in out and "Aborting runs: [" in out
    script = str(tmp_path / "payload.sh")
    _wait_for(lambda: not _processes_with(script), timeout=10)  # no job left running
    rows = _rows(tmp_path)
    assert {r: s for r, (s, _, _) in rows.items() if s != "N"} == dict.fromkeys(fast, "F")
    assert all(user is None for run, (_, user, _) in rows.items() if run not in fast)
    for path in finished_files:  # finished runs' files untouched
        assert path.exists()
    assert sorted((tmp_path / "data" / "tree" / "v1").iterdir()) == finished_files
    assert not any((tmp_path / "data" / "raw" / "alcapana_v1").iterdir())  # staged inputs gone


def test_three_users_finish_one_production(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    url = _file_archive(tmp_path, dict.fromkeys(GOLD_RUNS, "pause"))
    prod = _production(tmp_path, make_production, url, nproc=2, nprep=1)
    _init(prod)
    procs = [
        subprocess.Popen(
            [*ALCAPCTL, "-q", "run", str(prod)],
            env={**os.environ, "ALCAPCTL_USER": f"user{i}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    rows = _rows(tmp_path)
    assert {status for status, _, _ in rows.values()} == {"F"}
    assert _ran(tmp_path) == Counter(GOLD_RUNS)  # every run processed exactly once
    users = Counter(user for _, user, _ in rows.values())
    assert set(users) <= {"user0", "user1", "user2"}
    assert len(users) >= 2  # the work really was shared


@pytest.mark.parametrize(
    ("seed", "mode"),
    # "pause" jobs take 0.3 s; "ok" jobs end at once, so that the loop batches cycles
    # into one transaction and a kill drops several cycles' work at a time.
    [(1, "pause"), (2, "pause"), (3, "pause"), (4, "pause"), (5, "ok"), (6, "ok")],
)
def test_kill_9_then_a_new_run_finishes(
    tmp_path: Path, make_production: Callable[..., Path], seed: int, mode: str
) -> None:
    url = _file_archive(tmp_path, dict.fromkeys(GOLD_RUNS, mode))
    prod = _production(tmp_path, make_production, url, nproc=3, nprep=2)
    _init(prod)
    rng = random.Random(seed)
    for _ in range(2):
        proc = subprocess.Popen(
            [*ALCAPCTL, "-q", "run", str(prod)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.2, 1.5) if mode == "pause" else rng.uniform(0.3, 0.6))
        proc.kill()
        proc.wait()
    done = run_process("-q", "run", prod)
    assert done.returncode == 0, done.stderr
    rows = _rows(tmp_path)  # also asserts PRAGMA integrity_check = ok
    assert {status for status, _, _ in rows.values()} == {"F"}
    assert _ran(tmp_path) == Counter(GOLD_RUNS)  # nothing processed twice


def test_rootana_on_a_finished_alcapana(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    url = _file_archive(tmp_path)
    alcapana = _production(tmp_path, make_production, url)
    _init(alcapana)
    assert run_process("run", alcapana).returncode == 0
    trees = sorted((tmp_path / "data" / "tree" / "v1").iterdir())
    rootana = make_production(
        "rootana.toml",
        type="rootana",
        base=1,
        site=str(tmp_path / "site-run.toml"),
        job={"command": "cat {input} > {out}"},
        limits={"pause": 0.05},
    )
    _init(rootana)
    done = run_process("run", rootana)
    assert done.returncode == 0, done.stderr
    assert sorted((tmp_path / "data" / "tree" / "v1").iterdir()) == trees  # inputs kept
    for tree in trees:
        run = tree.name.removeprefix("tree").removesuffix(".root")
        out = tmp_path / "data" / "out" / "v1" / f"out{run}.root"
        assert out.read_text() == tree.read_text()
    status = json.loads(run_process("status", rootana, "--json").stdout)
    assert status["totals"]["F"] == len(GOLD_RUNS)
    assert status["production"]["base"] == 1
