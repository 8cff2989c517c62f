"""Scheduler commands on PATH for the tests: a fake batch system, and a recording wrapper
that counts the calls made to the real (or fake) command behind it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

FAKE = Path(__file__).with_name("fake_scheduler.py")
COMMANDS = {
    "slurm": ("sbatch", "squeue", "sacct", "scancel", "scontrol"),
    "sge": ("qsub", "qstat", "qacct", "qdel", "qconf"),
    "htcondor": ("condor_submit", "condor_q", "condor_history", "condor_rm"),
}


def _stub(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


class FakeScheduler:
    """The fake batch system's state file and call log, with helpers to arrange both."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.state_file = directory / "state.json"
        self.calls_file = directory / "calls.log"
        bin_dir = directory / "bin"
        bin_dir.mkdir(parents=True)
        for command in (name for names in COMMANDS.values() for name in names):
            _stub(bin_dir / command, f'exec "{sys.executable}" "{FAKE}" {command} "$@"')
        self.save({"next_id": 1, "jobs": {}, "answers": {}})
        monkeypatch.setenv("FAKE_SCHEDULER_STATE", str(self.state_file))
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    def load(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.state_file.read_text())
        return state

    def save(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state))

    def add_jobs(self, jobs: dict[str, tuple[str, Any, bool]]) -> None:
        """{job id: (name, native state, listed by the queue)}"""
        state = self.load()
        for job_id, (name, native, listed) in jobs.items():
            state["jobs"][job_id] = {"name": name, "state": native, "listed": listed}
        self.save(state)

    def answer(
        self, command: str, stdout: str = "", stderr: str = "", exit: int = 0, sleep: float = 0
    ) -> None:
        """From now on ``command`` prints this and exits with ``exit``."""
        state = self.load()
        state["answers"][command] = {
            "stdout": stdout,
            "stderr": stderr,
            "exit": exit,
            "sleep": sleep,
        }
        self.save(state)

    def calls(self, command: str | None = None) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        calls = [line.split(" ") for line in self.calls_file.read_text().splitlines()]
        return [call for call in calls if command is None or call[0] == command]


def install_recorder(bin_dir: Path, log: Path, commands: Iterable[str]) -> None:
    """Put wrappers for ``commands`` in ``bin_dir`` that log each call to ``log`` and run
    the command found on PATH now (put ``bin_dir`` first on PATH afterwards)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for command in commands:
        real = shutil.which(command)
        assert real is not None, f"{command} is not installed"
        _stub(bin_dir / command, f'echo "{command} $*" >> "{log}"\nexec "{real}" "$@"')


def recorded(log: Path, command: str) -> int:
    """How many times the recording wrappers saw ``command``."""
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if line.split(" ")[0] == command)
