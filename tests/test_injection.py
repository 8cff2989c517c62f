"""No injection, no leaked secret: real productions, real local jobs, a real FTP server.

Field values with quotes, spaces, ``$(...)`` and ``;`` reach the job as data; a password
in a netrc line or an archive URL appears in no output, log, job script or dump.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alcapctl.batch.wrapper import render_script, write_job
from alcapctl.urls import mask_url
from tests.conftest import GOLD_RUNS, run_process, snapshot, write_toml
from tests.ftpserver import FtpServer

SECRET = "hunter2secret"
HOSTILE = "t$(touch PWNED1)`touch PWNED2`; touch PWNED3 '\"x"


def _statuses(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {s for (s,) in conn.execute("SELECT status FROM alcapana_v1")}
    finally:
        conn.close()


def _containing(root: Path, text: str, but: tuple[Path, ...] = ()) -> list[Path]:
    """Files under ``root`` (``but`` excepted) whose bytes hold ``text``."""
    return [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file() and p not in but and text.encode() in p.read_bytes()
    ]


def test_hostile_values_reach_the_job_as_data(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    archive = tmp_path / "arch ive"
    archive.mkdir()
    for run in GOLD_RUNS:
        (archive / f"run{run:05d}.mid").write_text(f"raw {run}\n")
    site = write_toml(
        tmp_path / "site-hostile.toml",
        {
            "database": str(tmp_path / "production.db"),
            "data": str(tmp_path / "da ta 'q'"),
            "staging": str(tmp_path / "it's staging"),
            "backend": "local",
            "archive": {"url": f"file://{archive}"},
        },
    )
    prod = make_production(
        "hostile.toml",
        site=str(site),
        tag=HOSTILE,
        job={
            "command": "printf '%s\\n' {tag} {input} {run:05d} >{tree}; cp {input} {hist}; "
            'echo "$NOTE" >{odb}',
            "env": {"NOTE": "it's $(touch PWNED4)"},
        },
        limits={"nproc": 2, "pause": 0.05, "grace": 0},
    )
    assert run_process("init", prod).returncode == 0
    done = run_process("run", prod)
    assert done.returncode == 0, done.stderr
    assert _statuses(tmp_path / "production.db") == {"F"}
    assert not list(tmp_path.rglob("PWNED*"))
    run = GOLD_RUNS[0]
    data = tmp_path / "da ta 'q'"
    staged = tmp_path / "it's staging" / "alcapana_v1" / f"run{run:05d}.mid"
    tree = (data / "tree" / "v1" / f"tree{run:05d}.root").read_text()
    assert tree.splitlines() == [HOSTILE, str(staged), f"{run:05d}"]
    assert (data / "hist" / "v1" / f"hist{run:05d}.root").read_text() == f"raw {run}\n"
    assert (data / "dump" / "v1" / f"dump{run:05d}.root").read_text() == "it's $(touch PWNED4)\n"


def test_netrc_parse_error_shows_no_password(
    tmp_path: Path,
    make_production: Callable[..., Path],
    ftp_server: Callable[..., FtpServer],
    db_path: Path,
) -> None:
    server = ftp_server()
    server.netrc.write_text(f"machine 127.0.0.1\n  login alcap {SECRET}\n")  # no 'password'
    prod = make_production(archive={"url": server.url})
    assert run_process("init", prod).returncode == 0
    assert run_process("claim", prod, "-n", "2").returncode == 0
    outputs = [
        run_process("--log-format", "json", step, prod)
        for step in ("stage", "run", "check", "status")
    ]
    assert [o.returncode for o in outputs[:2]] == [2, 2]
    for done in outputs:
        assert SECRET not in done.stdout + done.stderr
    assert f"{server.netrc}: malformed near line" in outputs[0].stderr
    assert (
        run_process("backup-dump", "--out", tmp_path / "dump", "--database", db_path).returncode
        == 0
    )
    assert _containing(tmp_path, SECRET, but=(server.netrc,)) == []


def test_password_in_archive_url_is_refused_and_never_shown(
    tmp_path: Path, make_production: Callable[..., Path]
) -> None:
    url = f"ftp://alcap:{SECRET}@127.0.0.1:2121/raw"
    site = write_toml(
        tmp_path / "site-secret.toml",
        {
            "database": str(tmp_path / "production.db"),
            "data": str(tmp_path / "data"),
            "archive": {"url": url},
        },
    )
    prod = make_production("secret.toml", site=str(site))
    before = snapshot(tmp_path)
    for step in ("check", "init", "claim", "stage", "run", "submit", "reap", "status"):
        done = run_process("--log-format", "json", step, prod)
        assert done.returncode == 2, (step, done.stderr)
        assert "put it in ~/.netrc" in done.stderr
        assert f"{site}: archive.url" in done.stderr
        assert SECRET not in done.stdout + done.stderr
    assert snapshot(tmp_path) == before
    assert _containing(tmp_path, SECRET, but=(site,)) == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"ftp://alcap:{SECRET}@archive.psi.ch/raw", "ftp://alcap:***@archive.psi.ch/raw"),
        (f"postgresql://alcap:{SECRET}@db:5432/prod", "postgresql://alcap:***@db:5432/prod"),
        ("ftp://alcap@archive.psi.ch/raw", "ftp://alcap@archive.psi.ch/raw"),
        ("sqlite:////data/production.db", "sqlite:////data/production.db"),
        (f"ftp://a:{SECRET}@host:bad/raw", "ftp://a:***@host:bad/raw"),
        (f"ftp://a:{SECRET}@[::1/raw", "[::1/raw"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tag=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1),
    name=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00/"), min_size=1),
)
def test_any_value_reaches_the_job_unchanged(tmp_path: Path, tag: str, name: str) -> None:
    """Whatever a tag or an input path holds, the job receives exactly those bytes."""
    jobdir = tmp_path / "job"
    outputs = {n: tmp_path / f"{n}.txt" for n in ("tree", "hist", "olog", "elog")}
    fields = {"run": 2091, "tag": tag, "input": str(tmp_path / name)}
    command = "printf %s {tag} >{tree}; printf %s {input} >{hist}; printf %s {run:05d}"
    script = write_job(jobdir, render_script("j", jobdir, command, fields, outputs, {}, "t", None))
    assert subprocess.run(["/bin/sh", str(script)], cwd=tmp_path, timeout=30).returncode == 0
    assert outputs["tree"].read_bytes() == tag.encode()
    assert outputs["hist"].read_bytes() == str(tmp_path / name).encode()
    assert outputs["olog"].read_text() == "02091"
