"""The stand-ins keep the real programs' command-line rules the job scripts are tested on."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daq import STANDINS

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """Runs a copy of a stand-in: odbedit writes its log beside itself."""
    copies = tmp_path / "bin"
    shutil.copytree(STANDINS, copies)

    def run_program(
        program: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(copies / program), *args], capture_output=True, text=True, env=env, timeout=30
        )

    return run_program


@pytest.mark.parametrize(
    ("program", "args"),
    [
        ("alcapana", ("-i", "run02091.mid", "-H", "hist.root")),  # mana has no -H
        ("alcapana", ("run02091.mid",)),  # no positional arguments
        ("rootana", ("-i", "t.root", "-o", "o.root", "-m", "MODULES", "-x")),
        ("rootana", ("-i", "t.root")),  # fewer than the six arguments it needs
        ("odbedit", ("-x",)),
    ],
)
def test_an_unknown_flag_prints_the_usage_and_exits_1(
    run: Run, program: str, args: tuple[str, ...]
) -> None:
    done = run(program, *args)

    assert done.returncode == 1
    assert "usage" in (done.stdout + done.stderr).lower()


def test_alcapana_with_d_becomes_a_daemon_and_writes_nothing(run: Run, tmp_path: Path) -> None:
    raw = tmp_path / "run02091.mid"
    raw.write_text("raw\n")

    done = run("alcapana", "-i", str(raw), "-T", str(tmp_path / "tree.root"), "-D")

    assert done.returncode == 0 and "Becoming a daemon" in done.stdout
    assert not (tmp_path / "tree.root").exists()


def test_odbedit_needs_midas_dir_and_keeps_its_odb_there(run: Run, tmp_path: Path) -> None:
    odb = tmp_path / "run02091.odb"
    odb.write_text("[/Runinfo]\n")
    dump = tmp_path / "dump.odb"
    bare = {k: v for k, v in os.environ.items() if k != "MIDAS_DIR"}

    assert run("odbedit", "-c", f"load {odb}", env=bare).returncode == 1
    private = tmp_path / "midas"
    private.mkdir()
    with_odb = {**bare, "MIDAS_DIR": str(private)}
    assert run("odbedit", "-c", f"load {odb}", env=with_odb).returncode == 0
    assert run("odbedit", "-c", f"save {dump}", env=with_odb).returncode == 0

    assert dump.read_text() == f"# loaded {odb}\n[/Runinfo]\n"
    other = {**bare, "MIDAS_DIR": str(tmp_path)}  # another ODB: nothing loaded there
    assert run("odbedit", "-c", f"save {dump}", env=other).returncode == 0
    assert dump.read_text() == ""
