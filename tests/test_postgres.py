"""Commands on a real PostgreSQL server: db init on an empty database, and the bad inputs
a server brings (wrong password, no database, server down, foreign tables)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from alcapctl.store import SCHEMA_VERSION
from tests.conftest import run_process, write_toml
from tests.pgserver import PASSWORD, PgServer


def test_db_init_creates_the_legacy_schema_on_a_server(
    run_cli: Callable[..., Result], pg_url: str, pg_server: PgServer
) -> None:
    assert run_cli("db", "init", "--database", pg_url).exit_code == 0
    name = pg_url.rsplit("/", 1)[1]
    tables = pg_server.psql(name, "SELECT tablename FROM pg_tables WHERE schemaname='public'")
    assert {"datasets", "productions", "alcapctl_meta"} <= set(tables.split())
    # the legacy columns keep their 2014 names and order
    columns = pg_server.psql(
        name,
        "SELECT column_name FROM information_schema.columns WHERE table_name='productions'"
        " ORDER BY ordinal_position",
    )
    assert columns.split()[:6] == ["type", "version", "software", "start", "stop", "base"]
    version = pg_server.psql(name, "SELECT value FROM alcapctl_meta WHERE key='schema_version'")
    assert version.strip() == str(SCHEMA_VERSION)


def test_wrong_password_is_exit_2_and_masked(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD")
    url = pg_url.replace("alcap@", "alcap:not-the-password@")
    result = run_process("db", "init", "--database", url)
    assert result.returncode == 2
    assert "not-the-password" not in result.stderr + result.stdout
    assert "alcap:***@" in result.stderr
    assert "~/.pgpass" in result.stderr


def test_missing_database_is_exit_2(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    result = run_process("db", "init", "--database", pg_server.url("no_such_db"))
    assert result.returncode == 2
    assert "no such database" in result.stderr


def test_server_down_is_transient_exit_75() -> None:
    url = "postgresql://alcap:pw@127.0.0.1:9/production"  # discard port: nothing listens
    result = run_process("db", "init", "--database", url, "--lock-timeout", "1")
    assert result.returncode == 75
    assert ":pw@" not in result.stderr


def test_db_init_refuses_unrelated_tables(pg_url: str, pg_server: PgServer) -> None:
    name = pg_url.rsplit("/", 1)[1]
    pg_server.psql(name, "CREATE TABLE invoices (id int); ALTER TABLE invoices OWNER TO alcap")
    result = run_process("db", "init", "--database", pg_url)
    assert result.returncode == 2
    assert "invoices" in result.stderr
    tables = pg_server.psql(name, "SELECT tablename FROM pg_tables WHERE schemaname='public'")
    assert tables.split() == ["invoices"]  # nothing was created


def test_db_init_takes_a_legacy_database(pg_url: str, pg_server: PgServer) -> None:
    name = pg_url.rsplit("/", 1)[1]
    pg_server.psql(
        name,
        "CREATE TABLE datasets (run INT, dataset TEXT, quality TEXT);"
        "INSERT INTO datasets VALUES (2091, 'SiR2', 'gold');"
        "ALTER TABLE datasets OWNER TO alcap",
    )
    result = run_process("db", "init", "--database", pg_url)
    assert result.returncode == 0, result.stderr
    rows = pg_server.psql(name, "SELECT run, dataset, quality FROM datasets")
    assert rows.split() == ["2091|SiR2|gold"]


def test_a_production_runs_on_a_server(
    run_cli: Callable[..., Result], pg_url: str, tmp_path: Path
) -> None:
    """init, claim, stage, submit and reap through the run loop, with local jobs."""
    assert run_cli("db", "init", "--database", pg_url).exit_code == 0
    runlist = tmp_path / "runs.csv"
    runlist.write_text("run,dataset,quality\n2091,SiR2,gold\n2092,SiR2,gold\n")
    assert run_cli("datasets", "import", runlist, "--database", pg_url).exit_code == 0
    data = tmp_path / "data"
    archive = tmp_path / "archive"
    archive.mkdir()
    for run in (2091, 2092):
        (archive / f"run{run:05d}.mid").write_text(f"raw {run}\n")
    site = write_toml(
        tmp_path / "site.toml",
        {"database": pg_url, "data": str(data), "backend": "local",
         "archive": {"url": f"file://{archive}"}},
    )  # fmt: skip
    command = "for o in {tree} {hist} {odb}; do cat {input} > $o; done"
    prod = write_toml(
        tmp_path / "p.toml",
        {"type": "alcapana", "tag": "t", "site": str(site), "job": {"command": command}},
    )
    assert run_cli("init", prod).exit_code == 0
    result = run_process("run", prod, timeout=120)
    assert result.returncode == 0, run_cli("status", prod, "--json").output
    status = run_cli("status", prod, "--json")
    assert status.exit_code == 0
    assert json.loads(status.stdout)["datasets"]["SiR2"]["F"] == 2
