"""One database per setup: run lists and db init follow the site; selections are checked."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.conftest import GOLD_RUNS, digest, write_toml


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}


def _productions(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT type, version FROM productions"))


def test_init_refuses_a_selection_matching_no_run(
    make_production: Callable[..., Path], db_path: Path, run_cli: Callable[..., Result]
) -> None:
    prod = make_production(datasets=["Common"])  # its only run has quality NULL, not gold
    before = digest(db_path)
    result = run_cli("init", prod)
    assert result.exit_code == 2
    assert result.stderr == (
        f"alcapctl: error: no run in {db_path} matches datasets Common and quality gold; "
        "import a run list (run, dataset, quality) into this database with: "
        "alcapctl datasets import RUNS.tsv --production PROD.toml\n"
    )
    assert digest(db_path) == before
    assert _productions(db_path) == []
    assert "alcapana_v1" not in _tables(db_path)


def test_check_exits_1_on_a_selection_matching_no_run(
    make_production: Callable[..., Path], db_path: Path, run_cli: Callable[..., Result]
) -> None:
    prod = make_production(datasets=["Common"], quality=["silver"])
    result = run_cli("check", prod, "--json")
    assert result.exit_code == 1
    assert f"no run in {db_path} matches datasets Common and quality silver" in result.stderr
    assert _productions(db_path) == []


def test_init_refuses_a_changed_selection_and_repeats_the_same(
    make_production: Callable[..., Path], db_path: Path, run_cli: Callable[..., Result]
) -> None:
    prod = make_production()
    assert run_cli("init", prod).exit_code == 0
    make_production(quality=["gold", "silver"])  # the same file, another quality
    before = digest(db_path)
    result = run_cli("init", prod)
    assert result.exit_code == 2
    assert result.stderr == (
        "alcapctl: error: alcapana_v1 was registered with datasets all, quality gold; "
        "the TOML asks for datasets all, quality gold, silver. A production keeps its "
        "selection: restore it in the TOML, or leave version out to start a new one\n"
    )
    assert digest(db_path) == before
    assert run_cli("check", prod).exit_code == 2
    make_production()
    again = run_cli("init", prod)
    assert again.exit_code == 0
    assert again.stdout.splitlines()[-1] == "alcapana_v1: 0 runs added"
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM alcapana_v1").fetchone() == (len(GOLD_RUNS),)


def test_db_init_and_datasets_import_use_the_sites_database(
    tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    site_db = tmp_path / "site" / "production.db"
    site_db.parent.mkdir()
    site = write_toml(tmp_path / "site.toml", {"database": str(site_db), "data": str(tmp_path)})
    prod = write_toml(
        tmp_path / "prod.toml",
        {"type": "alcapana", "tag": "t", "site": str(site), "job": {"command": "true"}},
    )
    runs = tmp_path / "runs.tsv"
    runs.write_text("run\tdataset\tquality\n2091\tSiR2\tgold\n2092\tSiR2\tgold\n")
    assert run_cli("db", "init", "--production", prod).stdout == f"Created {site_db}\n"
    imported = run_cli("datasets", "import", runs, "--site", site)
    assert imported.exit_code == 0
    assert imported.stdout == f"Imported 2 rows from {runs} into {site_db} (0 already present)\n"
    again = run_cli("datasets", "import", runs, "--production", prod)
    assert again.stdout == f"Imported 0 rows from {runs} into {site_db} (2 already present)\n"
    with sqlite3.connect(site_db) as conn:
        assert conn.execute("SELECT run, dataset FROM datasets ORDER BY run").fetchall() == [
            (2091, "SiR2"),
            (2092, "SiR2"),
        ]
    assert not (tmp_path / "home" / "data" / "production.db").exists()
    assert run_cli("init", prod).exit_code == 0
    assert _productions(site_db) == [("alcapana", 1)]
