"""backup-restore refuses a damaged dump naming file and line, and never leaves a database."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from alcapctl.backup import dump


@pytest.fixture
def dumped(db_path: Path, tmp_path: Path) -> Path:
    """A dump of the fixture database plus one large text kept in blobs/."""
    import sqlite3

    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO alcapctl_blobs VALUES ('k', ?)", ("MODULES\n" * 200,))
    conn.commit()
    conn.close()
    out = tmp_path / "dump"
    dump(f"sqlite:///{db_path}", out)
    return out


def _cut(path: Path, n: int) -> None:
    path.write_bytes(path.read_bytes()[:-n])


def _edit(name: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        text = (directory / name).read_text()
        assert old in text
        (directory / name).write_text(text.replace(old, new, 1))

    return edit


DATASETS = "tables/datasets.tsv"
ATTACH = "ATTACH 'x.db' AS x;"

# name: (damage done to the dump, what the error must say)
DAMAGE: dict[str, tuple[Callable[[Path], object], str]] = {
    "cut mid-line": (lambda d: _cut(d / DATASETS, 12), f"{DATASETS}:23: file cut short"),
    "cut at a line end": (lambda d: _cut(d / DATASETS, 6), f"{DATASETS}:23: file cut short"),
    "schema cut": (lambda d: _cut(d / "schema.sql", 200), "schema.sql:"),
    "unterminated text": (_edit(DATASETS, '"SiR2"', '"SiR2'), f"{DATASETS}:2: malformed text"),
    "a value too many": (_edit(DATASETS, '"gold"', '"gold"\t1'), f"{DATASETS}:2: 4 values for 3"),
    "not a value": (_edit(DATASETS, "2091", "20x1"), f"{DATASETS}:2: not a value"),
    "duplicate key": (
        _edit("tables/alcapctl_meta.tsv", '"schema_version"\t"2"', '"a"\t1\n"a"\t2'),
        "tables/alcapctl_meta.tsv:4: row refused by SQLite: UNIQUE constraint failed",
    ),
    "other SQL": (_edit("schema.sql", "CREATE TABLE datasets", f"{ATTACH} --"), "a CREATE TABLE"),
    "two statements": (
        _edit("schema.sql", ");\n-- table", f"); {ATTACH}\n-- table"),
        "refused: You can only execute one statement at a time",
    ),
    "blob edited": (
        lambda d: next((d / "blobs").iterdir()).write_text("edited"),
        "does not match its sha256",
    ),
    "table file missing": (
        lambda d: (d / "tables/productions.tsv").unlink(),
        "tables/productions.tsv: missing from the dump",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_dump_is_refused_naming_file_and_line(
    damage: str, dumped: Path, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    change, expected = DAMAGE[damage]
    change(dumped)
    target = tmp_path / "restored" / "production.db"
    result = run_cli("backup-restore", dumped, "--database", target)
    assert result.exit_code == 2
    assert expected in result.stderr
    assert not target.exists()
    assert not target.parent.exists() or not any(target.parent.iterdir())


def test_restore_refuses_an_existing_file(
    dumped: Path, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    target = tmp_path / "existing.db"
    target.write_bytes(b"precious")
    result = run_cli("backup-restore", dumped, "--database", target)
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert target.read_bytes() == b"precious"


def test_restore_then_dump_gives_the_same_text(
    dumped: Path, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    target = tmp_path / "restored.db"
    checked = run_cli("backup-restore", dumped, "--database", target, "--dry-run")
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith("Would restore 5 tables, 25 rows")
    assert not target.exists()
    result = run_cli("backup-restore", dumped, "--database", target, "--json")
    assert result.exit_code == 0, result.output
    assert '"identical": true' in result.stdout
    again = tmp_path / "again"
    dump(f"sqlite:///{target}", again)
    files = sorted(p.relative_to(dumped) for p in dumped.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((dumped / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_edit_that_parses_but_does_not_round_trip_is_restored_with_a_warning(
    dumped: Path, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    table = dumped / "tables/datasets.tsv"
    lines = table.read_text().split("\n")
    lines[1], lines[2] = lines[2], lines[1]  # rows out of order: valid, but not as dumped
    table.write_text("\n".join(lines))
    target = tmp_path / "restored.db"
    result = run_cli("backup-restore", dumped, "--database", target, "--json")
    assert result.exit_code == 0, result.output
    assert '"identical": false' in result.stdout
    assert "tables/datasets.tsv:2" in result.stderr
    assert target.exists()


def test_restore_to_sqlite_takes_lock_timeout_and_never_waits_on_a_held_file(
    dumped: Path, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    """An SQLite target is a new file, so no lock can stand in the way: an existing one is
    refused at once even while another session holds it locked, and a new one is built."""
    import sqlite3

    held = tmp_path / "held.db"
    holder = sqlite3.connect(held, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    before = held.read_bytes()
    started = time.monotonic()
    try:
        result = run_cli("backup-restore", dumped, "--database", held, "--lock-timeout", "5")
    finally:
        holder.close()
    assert time.monotonic() - started < 5
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert held.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump", "held.db", "production.db"]
    target = tmp_path / "new.db"
    result = run_cli("backup-restore", dumped, "--database", target, "--lock-timeout", "0.5")
    assert result.exit_code == 0, result.output
    again = tmp_path / "again"
    dump(f"sqlite:///{target}", again)
    assert (again / DATASETS).read_bytes() == (dumped / DATASETS).read_bytes()
