"""Commands on a real PostgreSQL server: db init on an empty database, and the bad inputs
a server brings (wrong password, no database, server down, foreign tables)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from alcapctl.store import SCHEMA_VERSION
from tests.conftest import ALCAPCTL, run_process, write_toml
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


def test_a_server_that_does_not_answer_gives_up_within_lock_timeout() -> None:
    """A host that takes the connection and never answers (a hung server, a firewall
    that drops packets) costs --lock-timeout (libpq: at least 2 s), not libpq's 10 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; nobody ever speaks
        url = f"postgresql://alcap:pw@127.0.0.1:{silent.getsockname()[1]}/production"
        began = time.monotonic()
        result = run_process("status", "--database", url, "--lock-timeout", "1")
        took = time.monotonic() - began
    assert result.returncode == 75, result.stderr
    assert took < 8, took
    assert ":pw@" not in result.stderr and "could not be reached" in result.stderr


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


def _site_and_production(tmp_path: Path, url: str, runs: list[int], command: str) -> Path:
    archive = tmp_path / "archive"
    archive.mkdir()
    for run in runs:
        (archive / f"run{run:05d}.mid").write_text(f"raw {run}\n")
    site = write_toml(
        tmp_path / "site.toml",
        {"database": url, "data": str(tmp_path / "data"), "backend": "local",
         "archive": {"url": f"file://{archive}"}},
    )  # fmt: skip
    return write_toml(
        tmp_path / "p.toml",
        {"type": "alcapana", "tag": "t", "site": str(site), "job": {"command": command},
         "outputs": {"hist": "", "odb": ""},
         "limits": {"nproc": 2, "nprep": 2, "pause": 0.05, "grace": 0}},
    )  # fmt: skip


@pytest.mark.parametrize("command", [["claim"], ["status"], ["run", "--once"]])
def test_a_step_against_a_server_that_is_down_exits_75(tmp_path: Path, command: list[str]) -> None:
    url = "postgresql://alcap:pw@127.0.0.1:9/production"  # discard port: nothing listens
    prod = _site_and_production(tmp_path, url, [2091], "true")
    result = run_process(*command, prod, "--lock-timeout", "1")
    assert result.returncode == 75, result.stderr
    assert ":pw@" not in result.stderr + result.stdout
    assert "alcap:***@" in result.stderr


@pytest.mark.parametrize("command", [["claim"], ["status"]])
def test_a_step_with_a_wrong_password_exits_2_masked(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    assert run_process("db", "init", "--database", pg_url).returncode == 0
    monkeypatch.delenv("PGPASSWORD")
    url = pg_url.replace("alcap@", "alcap:not-the-password@")
    prod = _site_and_production(tmp_path, url, [2091], "true")
    result = run_process(*command, prod)
    assert result.returncode == 2
    assert "not-the-password" not in result.stderr + result.stdout
    assert "alcap:***@" in result.stderr


def test_a_step_refuses_a_server_database_of_other_tables(
    tmp_path: Path, pg_url: str, pg_server: PgServer
) -> None:
    name = pg_url.rsplit("/", 1)[1]
    pg_server.psql(name, "CREATE TABLE invoices (id int); ALTER TABLE invoices OWNER TO alcap")
    prod = _site_and_production(tmp_path, pg_url, [2091], "true")
    result = run_process("claim", prod)
    assert result.returncode == 2
    assert "not a production database" in result.stderr
    tables = pg_server.psql(name, "SELECT tablename FROM pg_tables WHERE schemaname='public'")
    assert tables.split() == ["invoices"]


def test_a_server_restart_during_run_is_transient(
    run_cli: Callable[..., Result], tmp_path: Path, pg_url: str, pg_server: PgServer
) -> None:
    """pg_ctl restart while the loop has jobs in flight: the loop reconnects and goes on;
    no run fails, no attempt is counted, every job runs once (by the ledger)."""
    runs = list(range(2091, 2099))
    ledger = tmp_path / "ledger"
    assert run_cli("db", "init", "--database", pg_url).exit_code == 0
    runlist = tmp_path / "runs.csv"
    runlist.write_text("run,dataset,quality\n" + "".join(f"{r},SiR2,gold\n" for r in runs))
    assert run_cli("datasets", "import", runlist, "--database", pg_url).exit_code == 0
    command = f"echo {{run}} >> {ledger}; sleep 0.5; cat {{input}} > {{tree}}"
    prod = _site_and_production(tmp_path, pg_url, runs, command)
    assert run_cli("init", prod).exit_code == 0
    name = pg_url.rsplit("/", 1)[1]
    loop = subprocess.Popen(
        [*ALCAPCTL, "-q", "run", str(prod)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while "F" not in (states := pg_server.psql(name, "SELECT status FROM alcapana_v1")):
            assert time.monotonic() < deadline, "no run finished"
            time.sleep(0.05)
        assert set(states.split()) != {"F"}  # the loop still has work
        pg_server.pg_ctl("-l", str(pg_server.datadir.parent / "log"), "-m", "fast", "restart")
        _, err = loop.communicate(timeout=120)
    finally:
        loop.kill()
    assert loop.returncode == 0, err.decode()
    rows = pg_server.psql(name, "SELECT run, status, attempts FROM alcapana_v1 ORDER BY run")
    assert rows.split() == [f"{r}|F|0" for r in runs]  # no failed attempt
    assert pg_server.psql(name, "SELECT count(*) FROM alcapctl_failures").strip() == "0"
    assert sorted(int(r) for r in ledger.read_text().split()) == runs


def test_a_read_is_one_read_only_snapshot_on_a_server(pg_url: str) -> None:
    """Database.read is REPEATABLE READ READ ONLY on PostgreSQL: a row another session
    commits between two of its statements is not seen, and it cannot write."""
    from sqlalchemy import Connection, text

    from alcapctl.errors import DatabaseError
    from alcapctl.store import Store
    from alcapctl.store.engine import Database

    Store.create(pg_url)[0].close()
    db, other = Database(pg_url), Database(pg_url)
    count = "SELECT count(*) FROM datasets"

    def two_reads(conn: Connection) -> tuple[int, int]:
        first = conn.execute(text(count)).scalar_one()
        other.write(lambda c: c.execute(text("INSERT INTO datasets VALUES (1, 'a', 'gold')")))
        return first, conn.execute(text(count)).scalar_one()

    try:
        assert db.read(two_reads) == (0, 0)
        assert db.read(lambda conn: conn.execute(text(count)).scalar_one()) == 1
        with pytest.raises(DatabaseError, match="read-only transaction"):
            db.read(lambda conn: conn.execute(text("DELETE FROM datasets")))
    finally:
        db.dispose()
        other.dispose()
