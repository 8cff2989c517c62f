"""backup-dump / backup-restore round trips: random databases, the 2014 layout, stability."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alcapctl.backup import dump, restore
from alcapctl.store.dump import RawText

# The 2014 scripts' tables (no keys, legacy types), an untyped table, and tables with keys.
SCHEMA = [
    "CREATE TABLE datasets (run INT, dataset TEXT, quality TEXT)",
    "CREATE TABLE productions (type TEXT, version INTEGER, software TEXT, "
    "start TIMESTAMP, stop TIMESTAMP, base INTEGER)",
    "CREATE TABLE alcapana_v3 (run INTEGER, status TEXT, user TEXT, start TIMESTAMP, "
    "stop TIMESTAMP, tree TEXT, hist TEXT, odb TEXT, olog TEXT, elog TEXT, modules TEXT)",
    "CREATE TABLE notes (a, b)",
    "CREATE TABLE alcapctl_blobs (sha256 TEXT NOT NULL, content TEXT NOT NULL, "
    "PRIMARY KEY (sha256))",
    "CREATE TABLE measures (id INTEGER PRIMARY KEY, x REAL, label TEXT COLLATE NOCASE)",
    "CREATE INDEX ix_datasets_run ON datasets (run)",
    "CREATE TRIGGER notes_count AFTER INSERT ON notes BEGIN "
    "UPDATE measures SET x = x + 1 WHERE id = 0; END",
]
TABLES = {"datasets": 3, "productions": 6, "alcapana_v3": 11, "notes": 2}

latin1 = st.text(alphabet="éàüß", min_size=1, max_size=4).map(
    lambda s: RawText(s.encode("latin-1"))
)
large = st.text(max_size=4).map(lambda s: ("line 'one' \"two\"\n" + s) * 80)
values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(),
    st.sampled_from(["", "N", "F", "gold", "2014-04-30 00:00:00", "a\tb\nc\\d'\"", "NULL"]),
    st.binary(max_size=8),
    latin1,
    large,
)
database = st.fixed_dictionaries(
    {
        **{name: st.lists(st.tuples(*[values] * n), max_size=6) for name, n in TABLES.items()},
        "alcapctl_blobs": st.lists(st.one_of(st.text(), large), max_size=3, unique=True),
        "measures": st.lists(
            st.tuples(st.integers(-5, 50), values, values), max_size=5, unique_by=lambda r: r[0]
        ),
    }
)


def _insert(conn: sqlite3.Connection, table: str, row: tuple[Any, ...]) -> None:
    marks = ", ".join("CAST(? AS TEXT)" if isinstance(v, RawText) else "?" for v in row)
    params = [v.data if isinstance(v, RawText) else v for v in row]
    conn.execute(f"INSERT INTO {table} VALUES ({marks})", params)


def make_database(path: Path, content: dict[str, list[Any]]) -> None:
    conn = sqlite3.connect(path)
    for ddl in SCHEMA:
        conn.execute(ddl)
    for name in [*TABLES, "measures"]:
        for row in content[name]:
            _insert(conn, name, row)
    for text in content["alcapctl_blobs"]:
        _insert(conn, "alcapctl_blobs", (hashlib.sha256(text.encode()).hexdigest(), text))
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()


def table_contents(path: Path) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every row with each value's storage class, as raw bytes for texts."""
    conn = sqlite3.connect(path)
    conn.text_factory = bytes
    query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    names = [r[0].decode() for r in conn.execute(query)]
    result = {}
    for name in names:
        cols = [r[1].decode() for r in conn.execute(f"PRAGMA table_info({name})")]
        select = ", ".join(f"typeof({c}), {c}" for c in cols)
        result[name] = Counter(conn.execute(f"SELECT {select} FROM {name}").fetchall())
    result["schema"] = Counter(conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall())
    conn.close()
    return result


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def url(path: Path) -> str:
    return f"sqlite:///{path}"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=database)
def test_dump_restore_dump_is_identical(content: dict[str, list[Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        make_database(base / "original.db", content)
        dump(url(base / "original.db"), base / "first")
        result = restore(base / "first", base / "restored.db")
        dump(url(base / "restored.db"), base / "second")
        assert result.identical
        assert tree(base / "first") == tree(base / "second")
        assert table_contents(base / "restored.db") == table_contents(base / "original.db")


def test_legacy_database_dumps_without_being_changed(tmp_path: Path) -> None:
    """A 2014 database: untyped and odd values, NULLs, Latin-1 text; the dump reads only."""
    db = tmp_path / "production.db"
    make_database(
        db,
        {
            "datasets": [(2091, "SiR2", "gold"), (3200, "Common", None), ("3201", "Common", "")],
            "productions": [("alcapana", 3, "v3", "2014-04-30 00:00:00", None, None)],
            "alcapana_v3": [
                (2091, "F", RawText(b"m\xfcller"), "2014-04-30 00:00:00", None, *["x"] * 5, None),
                (2091, "F", "dup", 1.5, 0, *[None] * 6),
            ],
            "notes": [(b"\x00\xff", 2.0)],
            "alcapctl_blobs": [],
            "measures": [],
        },
    )
    before = db.read_bytes()
    dump(url(db), tmp_path / "dump")
    assert db.read_bytes() == before
    rows = (tmp_path / "dump/tables/datasets.tsv").read_text().splitlines()
    assert rows[1:] == [
        '2091\t"SiR2"\t"gold"',
        '3200\t"Common"\tNULL',
        '3201\t"Common"\t""',
        "# end",
    ]
    # Two rows of run 2091: ordered by run, then by every column ("dup" sorts before "m...").
    legacy = (tmp_path / "dump/tables/alcapana_v3.tsv").read_text().splitlines()[2]
    assert legacy.startswith('2091\t"F"\tT\'6DFC6C6C6572\'\t"2014-04-30 00:00:00"\tNULL')
    restore(tmp_path / "dump", tmp_path / "restored.db")
    assert table_contents(tmp_path / "restored.db") == table_contents(db)


def test_large_texts_go_to_files_named_by_sha256(tmp_path: Path) -> None:
    modules = "MODULES\n" + "module x\n" * 200
    make_database(
        tmp_path / "db",
        {**{n: [] for n in [*TABLES, "measures"]}, "alcapctl_blobs": ["short"]}
        | {"alcapana_v3": [(r, "F", *[None] * 8, modules) for r in (1, 2)]},
    )
    dump(url(tmp_path / "db"), tmp_path / "d")
    blobs = sorted((tmp_path / "d/blobs").iterdir())
    assert len(blobs) == 2  # the MODULES text once, and the blobs table's content however short
    assert modules.encode() in [b.read_bytes() for b in blobs]
    assert all(
        b.name[:-4] in (tmp_path / "d/tables/alcapana_v3.tsv").read_text()
        or b.name[:-4] in (tmp_path / "d/tables/alcapctl_blobs.tsv").read_text()
        for b in blobs
    )
