"""``alcapctl stage`` through the command line, against the real FTP server."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import run_process
from tests.ftpserver import PASSWORD, FtpServer, write_netrc
from tests.staging.test_stage import raw

Ready = Callable[..., tuple[FtpServer, Path]]


@pytest.fixture
def ready(
    ftp_server: Callable[..., FtpServer],
    make_production: Callable[..., Path],
    run_cli: Callable[..., Result],
) -> Ready:
    """``ready(claim=2)``: a server with runs 2091 and 2092, the production init'ed and claimed."""

    def make(claim: int = 2) -> tuple[FtpServer, Path]:
        server = ftp_server()
        for run in (2091, 2092):
            server.put(f"run{run:05d}.mid", raw(run))
        prod = make_production(archive={"url": server.url}, limits={"transfers": 1})
        assert run_cli("init", prod).exit_code == 0
        assert run_cli("claim", prod, "-n", claim).exit_code == 0
        return server, prod

    return make


def _table(db_path: Path) -> list[tuple[int, str, int, str | None]]:
    with sqlite3.connect(db_path) as conn:
        query = "SELECT run, status, attempts, input FROM alcapana_v1 WHERE status != 'N'"
        return [tuple(row) for row in conn.execute(query)]


def test_stage_command(
    ready: Ready, run_cli: Callable[..., Result], db_path: Path, data_dir: Path
) -> None:
    _, prod = ready()
    result = run_cli("stage", prod)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Staging runs: [2091, 2092]",
        "Downloading run: 2091",
        "... Success!",
        "Downloading run: 2092",
        "... Success!",
    ]
    staged = data_dir / "raw" / "alcapana_v1"
    assert _table(db_path) == [
        (2091, "S", 0, str(staged / "run02091.mid")),
        (2092, "S", 0, str(staged / "run02092.mid")),
    ]
    again = run_cli("stage", prod)
    assert again.stdout == "No runs to stage\n"


def test_dry_run_json_changes_nothing(
    ready: Ready, run_cli: Callable[..., Result], db_path: Path, data_dir: Path
) -> None:
    server, prod = ready()
    result = run_cli("stage", prod, "--dry-run", "--json", "--nprep", "1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["staged"] == [2091] and data["dry_run"] is True
    assert data["production"] == "alcapana_v1"
    assert _table(db_path) == [(2091, "C", 0, None), (2092, "C", 0, None)]
    assert not (data_dir / "raw").exists()
    assert server.commands("RETR") == []


def test_wrong_password_exits_2_and_changes_nothing(
    ready: Ready, run_cli: Callable[..., Result], db_path: Path, data_dir: Path
) -> None:
    server, prod = ready()
    write_netrc(server.netrc, password="not-it")
    result = run_cli("stage", prod)
    assert result.exit_code == 2
    assert "login as 'alcap' refused" in result.stderr
    assert _table(db_path) == [(2091, "C", 0, None), (2092, "C", 0, None)]
    assert os.listdir(data_dir / "raw" / "alcapana_v1") == []


def test_failed_attempt_exits_0_until_the_run_fails_for_good(
    ready: Ready, run_cli: Callable[..., Result], db_path: Path
) -> None:
    _, prod = ready(claim=3)
    result = run_cli("stage", prod, "--nprep", "3")
    assert result.exit_code == 0  # the run stays claimed for another try
    assert result.stdout.splitlines()[-2:] == [
        "Downloading run: 2093",
        "... Failed: run02093.mid: not on the archive (550 /raw/run02093.mid is not retrievable.)",
    ]
    assert _table(db_path)[2] == (2093, "C", 1, None)
    codes = [run_cli("stage", prod, "--nprep", "3").exit_code for _ in range(2)]
    assert codes == [0, 1]  # X at max_attempts = 3: exit 1
    assert _table(db_path)[2][:3] == (2093, "X", 3)


def test_netrc_open_to_others_is_refused_by_the_real_process(
    ready: Ready, run_cli: Callable[..., Result], db_path: Path
) -> None:
    server, prod = ready()
    server.netrc.chmod(0o644)
    proc = run_process("stage", prod)
    assert proc.returncode == 2
    assert f"chmod 600 {server.netrc}" in proc.stderr
    assert server.commands("RETR") == []
    assert _table(db_path) == [(2091, "C", 0, None), (2092, "C", 0, None)]


def test_help_has_an_example(run_cli: Callable[..., Result]) -> None:
    result = run_cli("stage", "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout and "alcapctl stage productions/" in result.stdout


@pytest.mark.parametrize("password", [PASSWORD, "wrong-secret-123"])
def test_password_never_printed(ready: Ready, password: str) -> None:
    """Neither the right nor a wrong password appears in any output, at debug level."""
    server, prod = ready()
    write_netrc(server.netrc, password=password)
    for log_format in ("console", "json"):
        done = run_process("--log-format", log_format, "-vv", "stage", prod)
        assert password not in done.stdout + done.stderr
        assert done.returncode == (0 if password == PASSWORD else 2), done.stderr
