"""Fixtures for the backend tests: captured outputs and the fake batch system on PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from alcapctl.batch import command
from tests.fakes import FakeScheduler

DATA = Path(__file__).parent.parent / "data"


def captured(name: str) -> str:
    """A real scheduler output kept under tests/data (see tests/data/README.md)."""
    return (DATA / name).read_text()


@pytest.fixture
def fake_scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeScheduler:
    monkeypatch.setattr(command, "DEFAULT_TIMEOUT", 5.0)
    return FakeScheduler(tmp_path / "fake", monkeypatch)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """A job script as the wrapper writes it: not executable, its interpreter on line 1."""
    path = tmp_path / "job.sh"
    path.write_text("#!/bin/bash -e\necho payload\n")
    return path
