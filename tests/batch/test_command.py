"""The scheduler command choke point on real programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from alcapctl.batch.base import SchedulerError
from alcapctl.batch.command import run_command, run_parsed


def test_output_and_accepted_exit_codes() -> None:
    result = run_command(["sh", "-c", "echo out; echo err >&2; exit 1"], ok_codes=(0, 1))
    assert (result.exit_code, result.stdout, result.stderr) == (1, "out\n", "err\n")


def test_failure_carries_argv_code_and_output() -> None:
    with pytest.raises(SchedulerError) as raised:
        run_command(["sh", "-c", "echo half; echo broken >&2; exit 3"])
    error = raised.value
    assert (error.argv[0], error.returncode, error.stdout, error.stderr) == (
        "sh", 3, "half\n", "broken\n"
    )  # fmt: skip
    assert "exited 3: broken" in str(error)


def test_arguments_are_never_shell_words(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    result = run_command(["echo", f"; touch {marker}"])
    assert result.stdout == f"; touch {marker}\n"
    assert not marker.exists()


def test_timeout() -> None:
    with pytest.raises(SchedulerError, match=r"no answer within 0\.2 s") as raised:
        run_command(["sleep", "5"], timeout=0.2)
    assert raised.value.returncode is None


def test_missing_program() -> None:
    with pytest.raises(SchedulerError, match="command not found") as raised:
        run_command(["no-such-scheduler-command"])
    assert raised.value.returncode == 127


def test_unreadable_output() -> None:
    with pytest.raises(SchedulerError, match="unreadable output"):
        run_parsed(["echo", "banana"], int)
