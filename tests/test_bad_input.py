"""Bad input: exit 2, a message naming the file and key (or line), nothing written."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import digest, snapshot, write_toml


@pytest.fixture
def unchanged(db_path: Path) -> Iterator[None]:
    before = digest(db_path)
    yield
    assert digest(db_path) == before, "the database changed"


BASE = {"type": "alcapana", "tag": "t", "job": {"command": "true"}}
ROOTANA = {"type": "rootana", "tag": "r", "base": 1, "job": {"command": "true"}}
EVERY = ("init", "claim", "check")  # commands that read the TOML refuse what it holds
BEFORE_RUNS = ("init", "check")  # refused before any run is registered or claimed
SECRET = "hunter2secret"


def _job(command: str, **more: object) -> dict[str, object]:
    return {**BASE, "job": {"command": command, **more}}


def _case(
    content: Mapping[str, object],
    expected: str,
    commands: tuple[str, ...] = EVERY,
    env: dict[str, str] | None = None,
    site: Mapping[str, object] | None = None,
) -> object:
    return pytest.param(content, expected, commands, env or {}, site or {}, id=expected[:40])


def _paths(name: str, template: str, expected: str, roots: list[str] | None = None) -> object:
    """An output template that check and init refuse."""
    site = {"output_roots": roots} if roots else None
    content = {**BASE, "outputs": {name: template}}
    return _case(content, f"outputs.{name}: {expected}", BEFORE_RUNS, site=site)


# One table of bad inputs: each exits 2 with a message naming the file and the key, and
# leaves every file (the database included) byte for byte as it was.
BAD_INPUTS = [
    _case({**BASE, "colour": "red"}, "colour: unknown key"),
    _case({**BASE, "limits": {"nproc": -1}}, "limits.nproc"),
    _case({**BASE, "limits": {"nproc": "10"}}, "limits.nproc: Input should be a valid integer"),
    _case({**BASE, "limits": {"nproc": True}}, "limits.nproc: Input should be a valid integer"),
    _case({**BASE, "limits": {"nproc": 1e20}}, "limits.nproc: Input should be a valid integer"),
    _case({**BASE, "limits": {"nproc": 100_001}}, "limits.nproc: Input should be less than"),
    _case({**BASE, "limits": {"nprep": "many"}}, "limits.nprep"),
    _case({**BASE, "limits": {"spacelim": 0.9, "pause": -5}}, "limits.pause"),
    _case({**BASE, "limits": {"pause": float("inf")}}, "limits.pause: Input should be a finite"),
    _case({**BASE, "limits": {"pause": float("nan")}}, "limits.pause: Input should be a finite"),
    _case({**BASE, "limits": {"pause": "5"}}, "limits.pause: Input should be a valid number"),
    _case({**BASE, "limits": {"spacelim": 150}}, "limits.spacelim"),
    _case({**BASE, "limits": {"spacelim": True}}, "limits.spacelim"),
    _case({**BASE, "limits": {"lease": 0}}, "limits.lease"),
    _case({**BASE, "limits": {"grace": 1e9}}, "limits.grace: Input should be less than"),
    _case({**BASE, "limits": {"max_attempts": 2.5}}, "limits.max_attempts"),
    _case({**BASE, "limits": {"transfers": 0}}, "limits.transfers"),
    _case({**BASE, "type": "rootana"}, "base: a rootana production needs"),
    _case({**BASE, "base": 3}, "base: an alcapana production reads raw files"),
    _case({**BASE, "type": "geant"}, "type"),
    _case({**BASE, "version": "eight"}, "version"),
    _case({**BASE, "version": 2**40}, "version: Input should be less than"),
    _case({**BASE, "version": 4.0}, "version: Input should be a valid integer"),
    _case(_job("run {rnu}"), "job.command"),
    _case(_job("run {run:bad}"), "job.command: template 'run {run:bad}': {run:bad} does not fit"),
    _case(_job("run {tag:05d}"), "job.command: template 'run {tag:05d}': {tag:05d} does not fit"),
    _case(_job("run {base}"), "{base} has no value in an alcapana production"),
    _case(_job("run {out}"), "job.command: {out} is not an output this production writes"),
    _case({**_job("run {odb}"), "outputs": {"odb": ""}}, "{odb} is not an output this"),
    _case(_job('run "{tag}"'), 'job.command: field "{tag}" is inside quotes; write the field bare'),
    _case(_job("run '{input}'"), "job.command: field '{input}' is inside quotes"),
    _case(_job('run "x $(cat {input})"'), 'job.command: field "{input}" is inside quotes'),
    _case(_job("true", env={"X=1; touch PWNED; Y": "2"}), "job.env: 'X=1; touch PWNED; Y' is not"),
    _case(_job("true", env={"1X": "2"}), "job.env: '1X' is not an environment"),
    _case({**BASE, "outputs": {"ntuple": "{data}/n.root"}}, "outputs.ntuple: not an output"),
    _case({**BASE, "outputs": {"tree": "{data}/t{run:x.y}"}}, "{run:x.y} does not fit"),
    _case({**BASE, "outputs": {"hist": "{data}/{type:d}{run}"}}, "{type:d} does not fit"),
    _case(_job("true", resources={"gpus": 1}), "job.resources.gpus"),
    _case(_job("true", resources={"cpus": "4"}), "job.resources.cpus"),
    _case({"type": "alcapana", "job": {"command": "true"}}, "tag: Field required"),
    _case(
        {**BASE, "archive": {"url": f"ftp://alcap:{SECRET}@archive.psi.ch/raw"}},
        "archive.url: 'ftp://alcap:***@archive.psi.ch/raw': a password in the URL is "
        "refused; put it in ~/.netrc",
    ),
    _case({**BASE, "archive": {"url": "ftp:///raw"}}, "archive.url: 'ftp:///raw': an ftp://"),
    _case({**BASE, "archive": {"url": "ftp://host:99999/raw"}}, "archive.url: 'ftp://host:99"),
    _case(
        {**BASE, "archive": {"url": "file://otherhost/raw"}},
        "archive.url: 'file://otherhost/raw': a file:// archive must be on this machine",
    ),
    _case({**BASE, "archive": {"url": "file:///"}}, "archive.url: 'file:///': a file://"),
    _case({**BASE, "archive": {"url": "http://host/raw"}}, "archive.url: 'http://host/raw'"),
    _case({**BASE, "archive": {"filename": "run{run:s}.mid"}}, "archive.filename"),
    _case({**BASE, "archive": {"timeout": float("inf")}}, "archive.timeout"),
    _case(
        {**BASE, "archive": {"url": "file:///raw", "checksums": "missing-sums.txt"}},
        "archive.checksums: ",
        ("check",),
    ),
    _paths("tree", "{data}/../../tree{run}.root", "outside the data directory"),
    _paths("tree", "/elsewhere/tree{run}.root", "outside the data directory"),
    _paths("tree", "{data}/../{user}/t{run}.root", "outside the data directory", ["/x"]),
    _paths("tree", "{data}/tree/v{version}/tree.root", "one path for two outputs: run 2092"),
    _paths("hist", "{data}/tree/v{version}/tree{run:05d}.root", "one path for two outputs"),
    _case(BASE, "$ALCAPCTL_USER: '../../x' is not a user", env={"ALCAPCTL_USER": "../../x"}),
    _case(ROOTANA, "base: base production alcapana_v1 has no finished run", BEFORE_RUNS),
]


@pytest.mark.parametrize(("content", "expected", "commands", "env", "site"), BAD_INPUTS)
def test_invalid_production(
    run_cli: Callable[..., Result],
    tmp_path: Path,
    db_path: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: dict[str, object],
    expected: str,
    commands: tuple[str, ...],
    env: dict[str, str],
    site: dict[str, object],
) -> None:
    base = write_toml(tmp_path / "base.toml", _base_production(tmp_path))
    assert run_cli("init", base).exit_code == 0
    site_toml = write_toml(
        tmp_path / "site.toml", {"database": str(db_path), "data": str(data_dir), **site}
    )
    prod = write_toml(tmp_path / "bad.toml", {**content, "site": str(site_toml)})
    before = snapshot(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for command in commands:
        result = run_cli(command, prod)
        assert result.exit_code == 2, (command, result.output)
        assert str(prod) in result.stderr or env, (command, result.stderr)
        assert expected in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.output
        assert SECRET not in result.output
    assert snapshot(tmp_path) == before


def _base_production(tmp_path: Path) -> dict[str, object]:
    """An alcapana_v1 with no finished run, for the rootana case."""
    site = {"database": str(tmp_path / "production.db"), "data": str(tmp_path / "data")}
    return {**BASE, "version": 1, "site": str(write_toml(tmp_path / "base-site.toml", site))}


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


def test_truncated_database(run_cli: Callable[..., Result], db_path: Path) -> None:
    with db_path.open("r+b") as fh:
        fh.truncate(db_path.stat().st_size // 2)
    before = digest(db_path)
    for args in (("status", "--all"), ("datasets", "list")):
        result = run_cli(*args, "--database", db_path)
        assert result.exit_code == 2, result.output
        assert f"{db_path}: the database file is damaged" in result.stderr
    assert digest(db_path) == before


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
        ('2091,SiR2,gold\n2092,"SiR2,gold\n2093,SiR2,gold\n', ":2: malformed line"),
        ('2091,"SiR2,gold\n2092",SiR2,gold\n', ":1: a quote is not closed on this line"),
        ("9223372036854775808,SiR2,gold\n", ":1: run 9223372036854775808 is above"),
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


@pytest.mark.parametrize("command", ["retry", "abort"])
def test_run_number_above_int64(
    run_cli: Callable[..., Result],
    make_production: Callable[..., Path],
    db_path: Path,
    command: str,
) -> None:
    prod = make_production()
    assert run_cli("init", prod).exit_code == 0
    before = digest(db_path)
    result = run_cli(command, prod, "--run", str(2**63))
    assert result.exit_code == 2, result.output
    assert "--run" in result.stderr
    assert f"{2**63} is not a run number" in result.stderr
    assert digest(db_path) == before


def test_output_roots_allow_a_directory(
    run_cli: Callable[..., Result], tmp_path: Path, db_path: Path, data_dir: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    site = write_toml(
        tmp_path / "site.toml",
        {"database": str(db_path), "data": str(data_dir), "output_roots": [str(elsewhere)]},
    )
    outputs = {"tree": f"{elsewhere}/tree{{run}}.root"}
    prod = write_toml(tmp_path / "p.toml", {**BASE, "site": str(site), "outputs": outputs})
    result = run_cli("check", prod, "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout.count(f"{elsewhere}/tree2091.root") == 1
    assert run_cli("init", prod).exit_code == 0


def test_two_productions_on_one_path(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], db_path: Path
) -> None:
    outputs = {"tree": "{data}/tree/tree{run:05d}.root"}  # no {version}
    assert run_cli("init", make_production("v1.toml", version=1, outputs=outputs)).exit_code == 0
    before = digest(db_path)
    copy = make_production("v2.toml", version=2, tag="newer", outputs=outputs)
    for command in ("check", "init"):
        result = run_cli(command, copy)
        assert result.exit_code == 2, result.output
        assert str(copy) in result.stderr
        assert "outputs.tree: alcapana_v2 and alcapana_v1 would both write" in result.stderr
    assert digest(db_path) == before


def test_path_another_production_recorded(
    run_cli: Callable[..., Result], make_production: Callable[..., Path], db_path: Path
) -> None:
    base = make_production("v1.toml", version=1)
    assert run_cli("init", base).exit_code == 0
    tree = str(db_path.parent / "data" / "tree" / "v1" / "tree02091.root")
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE alcapana_v1 SET status = 'F', tree = ? WHERE run = 2091", (tree,))
    conn.close()
    before = digest(db_path)
    outputs = {"out": "{data}/tree/v{base}/tree{run:05d}.root"}  # the base's trees
    reader = make_production(
        "r.toml", type="rootana", base=1, outputs=outputs, job={"command": "true"}
    )
    for command in ("check", "init"):
        result = run_cli(command, reader)
        assert result.exit_code == 2, result.output
        assert str(reader) in result.stderr
        assert (
            f"outputs.out: run 2091 would write {tree}, which alcapana_v1 recorded as an "
            "output of its run 2091" in result.stderr
        )
    assert digest(db_path) == before
