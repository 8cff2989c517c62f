"""Bad input: exit 2, a message naming the file and key (or line), nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import digest, write_toml


@pytest.fixture
def unchanged(db_path: Path):  # type: ignore[no-untyped-def]
    before = digest(db_path)
    yield
    assert digest(db_path) == before, "the database changed"


BASE = {"type": "alcapana", "tag": "t", "job": {"command": "true"}}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({**BASE, "colour": "red"}, "colour: unknown key"),
        ({**BASE, "limits": {"nproc": -1}}, "limits.nproc"),
        ({**BASE, "limits": {"nprep": "many"}}, "limits.nprep"),
        ({**BASE, "limits": {"spacelim": 0.9, "pause": -5}}, "limits.pause"),
        ({**BASE, "limits": {"spacelim": 150}}, "limits.spacelim"),
        ({**BASE, "type": "rootana"}, "base: a rootana production needs"),
        ({**BASE, "base": 3}, "base: an alcapana production reads raw files"),
        ({**BASE, "type": "geant"}, "type"),
        ({**BASE, "version": "eight"}, "version"),
        ({**BASE, "job": {"command": "run {rnu}"}}, "job.command"),
        ({**BASE, "outputs": {"ntuple": "{data}/n.root"}}, "outputs.ntuple: not an output"),
        ({**BASE, "job": {"command": "true", "resources": {"gpus": 1}}}, "job.resources.gpus"),
        ({"type": "alcapana", "job": {"command": "true"}}, "tag: Field required"),
    ],
)
def test_invalid_production(
    run_cli: Callable[..., Result],
    tmp_path: Path,
    site_toml: Path,
    unchanged: None,
    content: dict[str, object],
    expected: str,
) -> None:
    prod = write_toml(tmp_path / "bad.toml", {**content, "site": str(site_toml)})
    for command in ("init", "claim", "check"):
        result = run_cli(command, prod)
        assert result.exit_code == 2, (command, result.output)
        assert str(prod) in result.stderr
        assert expected in result.stderr
        assert "Traceback" not in result.output


def test_malformed_toml(run_cli: Callable[..., Result], tmp_path: Path, unchanged: None) -> None:
    prod = tmp_path / "broken.toml"
    prod.write_text('type = "alcapana"\ntag = "unterminated\n')
    result = run_cli("init", prod)
    assert result.exit_code == 2
    assert f"{prod}: malformed TOML" in result.stderr


def test_missing_production_file(run_cli: Callable[..., Result], tmp_path: Path) -> None:
    result = run_cli("init", tmp_path / "nope.toml")
    assert result.exit_code == 2
    assert "nope.toml: no such file" in result.stderr


def test_unknown_site_key(run_cli: Callable[..., Result], tmp_path: Path, unchanged: None) -> None:
    site = write_toml(tmp_path / "site2.toml", {"database": "x.db", "backnd": "slurm"})
    prod = write_toml(tmp_path / "p.toml", {**BASE, "site": str(site)})
    result = run_cli("init", prod)
    assert result.exit_code == 2
    assert f"{site}: backnd: unknown key" in result.stderr


def test_missing_database_is_not_created(run_cli: Callable[..., Result], tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    runlist = tmp_path / "x.csv"
    runlist.write_text("2091,SiR2,gold\n")
    for args in (("status", "--all"), ("datasets", "list"), ("datasets", "import", runlist)):
        result = run_cli(*args, "--database", missing)
        assert result.exit_code == 2, result.output
        assert "no such database" in result.stderr
        assert "alcapctl db init" in result.stderr
    assert not missing.exists()


def test_not_a_database(run_cli: Callable[..., Result], tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is a text file, long enough to look like a header" * 20)
    before = junk.read_bytes()
    result = run_cli("status", "--all", "--database", junk)
    assert result.exit_code == 2
    assert "not an SQLite database" in result.stderr
    assert junk.read_bytes() == before


def test_unknown_dataset(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], db_path: Path
) -> None:
    prod = make_production()
    assert run_cli("init", prod).exit_code == 0
    before = digest(db_path)
    result = run_cli("claim", prod, "--dataset", "SiR3")
    assert result.exit_code == 2
    assert "unknown dataset(s) SiR3" in result.stderr
    assert "valid datasets: Al100, Common, SiR2" in result.stderr
    assert digest(db_path) == before
    bad = make_production("bad.toml", datasets=["Al50"])
    result = run_cli("init", bad)
    assert result.exit_code == 2
    assert "unknown dataset(s) Al50" in result.stderr


def test_conflicting_init_is_refused(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], db_path: Path
) -> None:
    assert run_cli("init", make_production(version=4)).exit_code == 0
    before = digest(db_path)
    result = run_cli("init", make_production("other.toml", version=4, tag="other_tag"))
    assert result.exit_code == 2
    assert "alcapana_v4 exists with tag 'alcapana_test'" in result.stderr
    assert digest(db_path) == before


def test_rootana_without_base_production(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], unchanged: None
) -> None:
    prod = make_production(type="rootana", base=7, job={"command": "cat {input} > {out}"})
    result = run_cli("init", prod)
    assert result.exit_code == 2
    assert "alcapana_v7 is not in the database" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("run,dataset,quality\n2091,SiR2,gold\n2091,SiR2,silver\n", ":3: run 2091 in SiR2"),
        ("2091,SiR2,gold\nabc,SiR2,gold\n", ":2: run 'abc' is not a number"),
        ("2091,SiR2,gold,extra,more\n", ":1: expected run,dataset,quality"),
        ("run,set,quality\n2091,SiR2,gold\n", ":1: header must name run, dataset, quality"),
        ("2091,SiR2,silver\n", ":1: run 2091 in SiR2 has quality 'silver', but the database"),
        ("# only a comment\n", "no runs in the file"),
    ],
)
def test_bad_runlist(
    run_cli: Callable[..., Result],
    tmp_path: Path,
    db_path: Path,
    unchanged: None,
    text: str,
    expected: str,
) -> None:
    runlist = tmp_path / "runs.csv"
    runlist.write_text(text)
    result = run_cli("datasets", "import", runlist, "--database", db_path)
    assert result.exit_code == 2, result.output
    assert str(runlist) in result.stderr
    assert expected in result.stderr


def test_negative_limit_on_command_line(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], unchanged: None
) -> None:
    result = run_cli("claim", make_production(), "-n", "-3")
    assert result.exit_code == 2
    assert "-n" in result.stderr
