"""backup-dump into a git work tree: stable files, one line per finished run, --commit."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from alcapctl.states import RunState
from alcapctl.store import RunTable, Store
from tests.conftest import GOLD_RUNS
from tests.test_backup_roundtrip import tree


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "alcap-db-backup"
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    git(path, "config", "user.name", "Backup Test")
    git(path, "config", "user.email", "backup@example.org")
    return path


@pytest.fixture
def production(make_production: Callable[..., Path], run_cli: Callable[..., Result]) -> Path:
    """A production with two runs claimed."""
    prod = make_production()
    assert run_cli("init", prod).exit_code == 0
    assert run_cli("claim", prod, "-n", "2").exit_code == 0
    return prod


def finish(db_path: Path, run: int) -> None:
    """Take a claimed run through S and R to F, as stage, submit and reap would."""
    store = Store.open(f"sqlite:///{db_path}")
    record = store.productions()[0]

    def advance(table: RunTable) -> None:
        for old, new in ((RunState.CLAIMED, RunState.STAGED), (RunState.STAGED, RunState.RUNNING)):
            assert table.move([run], old, new) == [run]
        assert table.move([run], RunState.RUNNING, RunState.FINISHED, stop=table.now) == [run]

    store.runs(record, advance, write=True)
    store.close()


def test_dumping_twice_writes_identical_files(
    production: Path, site_toml: Path, data_dir: Path, run_cli: Callable[..., Result]
) -> None:
    first = run_cli("backup-dump", "--site", site_toml, "--json")
    assert first.exit_code == 0, first.output
    out = data_dir / "backup"  # the default: <data>/backup
    assert json.loads(first.stdout)["directory"] == str(out)
    before = {k: v for k, v in tree(out).items()}
    second = run_cli("backup-dump", "--site", site_toml, "--json")
    assert json.loads(second.stdout)["changed"] == []
    assert tree(out) == before


def test_one_finished_run_changes_one_line(
    production: Path, site_toml: Path, db_path: Path, repo: Path, run_cli: Callable[..., Result]
) -> None:
    assert run_cli("backup-dump", "--site", site_toml, "--out", repo).exit_code == 0
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", "first")
    finish(db_path, GOLD_RUNS[0])
    preview = run_cli("backup-dump", "--site", site_toml, "--out", repo, "--dry-run", "--json")
    assert json.loads(preview.stdout)["changed"] == ["tables/alcapana_v1.tsv"]
    assert git(repo, "status", "--porcelain") == ""  # --dry-run wrote nothing
    assert run_cli("backup-dump", "--site", site_toml, "--out", repo).exit_code == 0
    assert git(repo, "diff", "--numstat").splitlines() == ["1\t1\ttables/alcapana_v1.tsv"]
    diff = git(repo, "diff", "-U0").splitlines()
    assert [line[:8] for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        f'-{GOLD_RUNS[0]}\t"C',
        f'+{GOLD_RUNS[0]}\t"F',
    ]


def test_commit_once_and_not_again_when_unchanged(
    production: Path, site_toml: Path, db_path: Path, repo: Path, run_cli: Callable[..., Result]
) -> None:
    (repo / "notes.txt").write_text("not part of the backup\n")
    out = repo / "db"  # a folder of a larger repository, made by the first dump
    first = run_cli("backup-dump", "--site", site_toml, "--out", out, "--commit")
    assert first.exit_code == 0, first.output
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(repo, "status", "--porcelain") == "?? notes.txt\n"
    again = run_cli("backup-dump", "--site", site_toml, "--out", out, "--commit", "--json")
    assert json.loads(again.stdout)["commit"] is None
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
    finish(db_path, GOLD_RUNS[0])
    finish(db_path, GOLD_RUNS[1])
    third = run_cli("backup-dump", "--site", site_toml, "--out", out, "--commit", "--json")
    assert json.loads(third.stdout)["commit"] == git(repo, "rev-parse", "HEAD").strip()
    message = git(repo, "log", "-1", "--format=%B").splitlines()
    assert message[0] == "backup: 2 runs finished"
    assert f"alcapana_v1: 2 runs finished ({GOLD_RUNS[0]}, {GOLD_RUNS[1]})" in message
    assert "  tables/alcapana_v1.tsv +2 -2" in message
    assert git(repo, "status", "--porcelain") == "?? notes.txt\n"


def test_commit_needs_a_git_work_tree(
    production: Path, site_toml: Path, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = run_cli("backup-dump", "--site", site_toml, "--out", plain, "--commit")
    assert result.exit_code == 2
    assert f"{plain}: not a git work tree" in result.stderr
    assert list(plain.iterdir()) == []
