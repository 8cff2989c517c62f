"""Dumps move between SQLite and PostgreSQL: a dump of either restores into the other and
dumps back to identical files, on a real server (tests/pgserver.py)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, insert

from alcapctl.backup import dump, restore
from alcapctl.errors import UsageError
from alcapctl.store import Store
from alcapctl.store.dump import RawText
from alcapctl.store.schema import blobs, datasets, failures, production_table, productions
from tests.conftest import run_process
from tests.legacy import make_legacy_db
from tests.pgserver import PASSWORD, PgServer
from tests.test_backup_roundtrip import table_contents, tree

# Typed columns only: a PostgreSQL column holds one type (SQLite's may mix; see refusals).
SCHEMA = [
    "CREATE TABLE datasets (run INT, dataset TEXT, quality TEXT)",
    "CREATE TABLE productions (type TEXT, version INTEGER, software TEXT, "
    "start TIMESTAMP, stop TIMESTAMP, base INTEGER)",
    "CREATE TABLE alcapana_v3 (run INTEGER, status TEXT, user TEXT, start TIMESTAMP,\n"
    "    stop TIMESTAMP, tree TEXT, hist TEXT, odb TEXT, olog TEXT, elog TEXT, modules TEXT)",
    "CREATE TABLE alcapctl_blobs (sha256 TEXT NOT NULL, content TEXT NOT NULL, "
    "PRIMARY KEY (sha256))",
    "CREATE TABLE measures (id INTEGER PRIMARY KEY, x REAL, raw BLOB, "
    "label TEXT COLLATE NOCASE DEFAULT 'none', UNIQUE (label, raw))",
    "CREATE INDEX ix_datasets_run ON datasets (run)",
    'CREATE INDEX "ix measures" ON measures (label, x DESC)',
]
# i: INTEGER, t: TEXT (text or blob), s: TIMESTAMP (anything SQLite's NUMERIC affinity keeps)
COLUMNS = {
    "datasets": "itt",
    "productions": "titssi",
    "alcapana_v3": "itttssttttt",
}

reals = st.one_of(
    st.floats(allow_nan=False),
    st.sampled_from([float("inf"), -float("inf"), -0.0, 5e-324, 1.7976931348623157e308, 0.1]),
)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
edges = st.sampled_from([-(2**63), 2**63 - 1, 0, -1, 2**31, -(2**31) - 1])
latin1 = st.text(alphabet="éàüß", min_size=1, max_size=4).map(
    lambda s: RawText(s.encode("latin-1"))
)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


not_utf8 = st.binary(min_size=1, max_size=6).filter(lambda b: not _utf8(b))
texts = st.one_of(
    st.text(),
    st.sampled_from(["", "N", "F", "gold", "2014-04-30 00:00:00", "a\tb\nc\\d'\"", "NULL"]),
    st.sampled_from(
        ["a\x00b", "\uffff", "\uffff41", "\uffffzz", "2026-12-02T00:30:21.123456+00:00"]
    ),
    latin1,
    not_utf8.map(RawText),
    st.text(max_size=4).map(lambda s: ("line 'one' \"two\"\n" + s) * 80),
)
blobs_ = st.binary(max_size=8)
OF_KIND = {
    "i": st.one_of(st.none(), int64, edges),
    "t": st.one_of(st.none(), texts, blobs_),
    "s": st.one_of(st.none(), texts, blobs_, int64, reals),
}
database = st.fixed_dictionaries(
    {
        **{
            name: st.lists(st.tuples(*[OF_KIND[k] for k in kinds]), max_size=6)
            for name, kinds in COLUMNS.items()
        },
        "alcapctl_blobs": st.lists(st.text(), max_size=3, unique=True),
        "measures": st.lists(
            st.tuples(
                int64,
                st.one_of(st.none(), reals),
                st.one_of(st.none(), st.binary(max_size=8)),
                st.one_of(st.none(), st.text(max_size=3)),
            ),
            max_size=5,
            unique_by=(lambda r: r[0], lambda r: (r[3] and r[3].lower(), r[2])),
        ),
    }
)


def make_sqlite(path: Path, content: dict[str, list[Any]]) -> None:
    conn = sqlite3.connect(path)
    for ddl in SCHEMA:
        conn.execute(ddl)
    for name in [*COLUMNS, "measures"]:
        for row in content[name]:
            marks = ", ".join("CAST(? AS TEXT)" if isinstance(v, RawText) else "?" for v in row)
            params = [v.data if isinstance(v, RawText) else v for v in row]
            conn.execute(f"INSERT INTO {name} VALUES ({marks})", params)
    for text in content["alcapctl_blobs"]:
        conn.execute(
            "INSERT INTO alcapctl_blobs VALUES (?, ?)",
            (hashlib.sha256(text.encode()).hexdigest(), text),
        )
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def server(pg_server: PgServer) -> PgServer:
    return pg_server


class Databases:
    """New empty server databases for one test (hypothesis examples cannot take pg_url)."""

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self.names: list[str] = []

    def new(self) -> str:
        name = self.server.new_database()
        self.names.append(name)
        return self.server.url(name).replace("alcap@", f"alcap:{PASSWORD}@")


@pytest.fixture
def databases(server: PgServer) -> Iterator[Databases]:
    found = Databases(server)
    yield found
    for name in found.names:
        server.drop_database(name)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(content=database)
def test_sqlite_to_server_and_back_dumps_identically(
    databases: Databases, content: dict[str, list[Any]]
) -> None:
    """SQLite -> dump -> PostgreSQL -> dump is byte-identical, and so is PostgreSQL -> dump
    -> a new SQLite file -> dump; the SQLite file holds every value as the original did."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        make_sqlite(base / "original.db", content)
        dump(sqlite_url(base / "original.db"), base / "first")
        url = databases.new()
        assert restore(base / "first", url).identical
        dump(url, base / "second")
        assert tree(base / "second") == tree(base / "first")
        assert restore(base / "second", base / "back.db").identical
        dump(sqlite_url(base / "back.db"), base / "third")
        assert tree(base / "third") == tree(base / "first")
        assert table_contents(base / "back.db") == table_contents(base / "original.db")


def _server_rows(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    text = st.one_of(st.none(), st.text())
    run = st.one_of(st.none(), int64)
    return {
        "datasets": draw(
            st.lists(st.fixed_dictionaries({"run": run, "dataset": text}), max_size=5)
        ),
        "productions": draw(
            st.lists(
                st.fixed_dictionaries({"type": text, "version": run, "start": text}), max_size=3
            )
        ),
        "failures": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "production": st.text(),
                        "run": int64,
                        "attempt": int64,
                        "at": st.text(),
                        "step": st.text(),
                        "reason": text,
                    }
                ),
                max_size=4,
            )
        ),
        "runs": draw(
            st.lists(st.fixed_dictionaries({"run": run, "status": text, "user": text}), max_size=5)
        ),
    }


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rows=st.composite(_server_rows)())
def test_a_server_database_dumps_into_sqlite_and_back(
    databases: Databases, rows: dict[str, list[dict[str, Any]]]
) -> None:
    """A database made on the server (db init, then rows written there) -> dump -> a new
    SQLite file -> dump is byte-identical."""
    url = databases.new()
    store, _ = Store.create(url)
    store.close()
    table = production_table("alcapana", 1)
    no_nul = {k: [{c: _strip_nul(v) for c, v in r.items()} for r in rs] for k, rs in rows.items()}

    def write(conn: Connection) -> None:
        table.create(conn)
        for target, name in ((datasets, "datasets"), (productions, "productions"),
                             (failures, "failures"), (table, "runs")):  # fmt: skip
            if no_nul[name]:
                conn.execute(insert(target), no_nul[name])
        conn.execute(insert(blobs).values(sha256="k", content="MODULES\n" * 3))

    store = Store.open(url)
    try:
        store.write(write)
    finally:
        store.close()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        dump(url, base / "first")
        assert restore(base / "first", base / "back.db").identical
        dump(sqlite_url(base / "back.db"), base / "second")
        assert tree(base / "second") == tree(base / "first")


def _strip_nul(value: Any) -> Any:
    return value.replace("\0", "") if isinstance(value, str) else value


def test_a_2014_database_moves_to_a_server_with_two_commands(
    databases: Databases, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    """backup-dump of the 2014 file, backup-restore into the server; alcapctl then opens
    (and migrates) the server database, and a dump of it restores into SQLite again."""
    legacy = make_legacy_db(tmp_path / "production.db")
    conn = sqlite3.connect(legacy)
    conn.execute("INSERT INTO datasets VALUES (2200, CAST(? AS TEXT), 'gold')", (b"M\xfcller",))
    conn.commit()
    conn.close()
    before = legacy.read_bytes()
    out = tmp_path / "dump"
    assert run_cli("backup-dump", "--database", legacy, "--out", out).exit_code == 0
    url = databases.new()
    restored = run_cli("backup-restore", out, "--database", url, "--json")
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout)["identical"] is True
    assert PASSWORD not in restored.stdout  # the URL is shown masked
    assert legacy.read_bytes() == before  # the 2014 file was only read
    store = Store.open(url)
    try:
        assert {p.version for p in store.productions()} == {1, 2, 3, 4}
    finally:
        store.close()
    dump(url, tmp_path / "migrated")
    rows = (tmp_path / "migrated/tables/datasets.tsv").read_text()
    assert "2200\tT'4DFC6C6C6572'\t\"gold\"" in rows
    assert restore(tmp_path / "migrated", tmp_path / "back.db").identical


@pytest.mark.parametrize(
    ("ddl", "row", "message"),
    [
        ("CREATE TABLE notes (a, b)", (1, 2), "column a is declared 'without a type'"),
        ("CREATE TABLE n (run INTEGER)", ("x",), "tables/n.tsv:2: column run holds a text"),
        ("CREATE TABLE n (r REAL)", (b"\x00",), "tables/n.tsv:2: column r holds a blob"),
        ("CREATE VIEW v AS SELECT 1", None, "view v is SQLite SQL"),
    ],
)
def test_what_a_server_cannot_hold_is_refused_before_writing(
    databases: Databases, tmp_path: Path, ddl: str, row: tuple[Any, ...] | None, message: str
) -> None:
    path = tmp_path / "x.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE datasets (run INT, dataset TEXT, quality TEXT)")
    conn.execute("CREATE TABLE productions (type TEXT, version INTEGER)")
    conn.execute(ddl)
    if row is not None:
        name = ddl.split()[2]
        conn.execute(f"INSERT INTO {name} VALUES ({', '.join('?' * len(row))})", row)
    conn.commit()
    conn.close()
    dump(sqlite_url(path), tmp_path / "dump")
    url = databases.new()
    for dry_run in (True, False):
        with pytest.raises(UsageError, match=message):
            restore(tmp_path / "dump", url, dry_run=dry_run)
    name = url.rsplit("/", 1)[1]
    assert (
        databases.server.psql(
            name,
            "SELECT count(*) FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = 'public'::regnamespace",
        ).strip()
        == "0"
    )


def test_restore_refuses_a_server_database_that_holds_tables(
    databases: Databases, tmp_path: Path, db_path: Path
) -> None:
    dump(sqlite_url(db_path), tmp_path / "dump")
    url = databases.new()
    restore(tmp_path / "dump", url)
    with pytest.raises(UsageError, match="already holds tables"):
        restore(tmp_path / "dump", url)


def test_a_row_the_server_refuses_names_its_line_and_writes_nothing(
    databases: Databases, tmp_path: Path, db_path: Path
) -> None:
    """A hand-edited dump whose key repeats: the server's refusal names file and line."""
    dump(sqlite_url(db_path), tmp_path / "dump")
    meta = tmp_path / "dump/tables/alcapctl_meta.tsv"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join([*lines[:-1], lines[-2], lines[-1]]) + "\n")
    url = databases.new()
    with pytest.raises(UsageError, match=rf"alcapctl_meta.tsv:{len(lines)}: row refused by Postg"):
        restore(tmp_path / "dump", url)
    name = url.rsplit("/", 1)[1]
    assert (
        databases.server.psql(
            name, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).strip()
        == "0"
    )


def test_restore_into_a_server_that_is_down_exits_75_within_lock_timeout(
    databases: Databases, tmp_path: Path, db_path: Path
) -> None:
    """The server's address with nobody listening: exit 75 after --lock-timeout (not the
    default 60 s), the URL's password masked; the same restore then fills the database."""
    dump(sqlite_url(db_path), tmp_path / "dump")
    url = databases.new()
    down = url.replace(f":{databases.server.port}/", ":9/")  # discard port: nothing listens
    started = time.monotonic()
    result = run_process(
        "backup-restore", tmp_path / "dump", "--database", down, "--lock-timeout", "1"
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 75, result.stderr
    assert elapsed < 15, elapsed
    assert "could not be reached for 1 s" in result.stderr
    assert "alcap:***@127.0.0.1:9/" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    name = url.rsplit("/", 1)[1]
    tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    assert databases.server.psql(name, tables) == ""
    up = run_process("backup-restore", tmp_path / "dump", "--database", url, "--lock-timeout", "1")
    assert up.returncode == 0, up.stderr
    dumped = sorted(p.stem for p in (tmp_path / "dump/tables").glob("*.tsv"))
    assert databases.server.psql(name, tables).split() == dumped
