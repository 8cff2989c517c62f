"""make install: alcapctl on PATH in one command, runnable from cron's minimal environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from alcapctl import __version__

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_make_install_runs_from_a_cron_environment(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    installed = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT),
            "install",
            f"PREFIX={prefix}",
            f"PYTHON={sys.executable}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    binary = prefix / "bin" / "alcapctl"
    assert installed.stdout.splitlines()[-1] == (
        f"Installed {binary}: use this absolute path in cron lines."
    )
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    cron = subprocess.run(
        ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}", str(binary), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cron.returncode == 0, cron.stderr
    assert cron.stdout == f"alcapctl, version {__version__}\n"
