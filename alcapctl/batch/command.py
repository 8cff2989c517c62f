"""The one place that runs external scheduler commands: argv lists, a timeout, one error type.

Every backend calls :func:`run_command`; nothing else in alcapctl starts sbatch, qstat or
condor_q.  A command that fails, cannot be found or outlives its timeout raises
:class:`~alcapctl.batch.base.SchedulerError`, which callers must never read as a failed job.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TypeVar

import sh
import structlog

from alcapctl.batch.base import SchedulerError

__all__ = ["DEFAULT_TIMEOUT", "CommandResult", "run_command", "run_parsed"]

DEFAULT_TIMEOUT = 60.0  # seconds; a scheduler busier than this is a failed query, retried

log = structlog.get_logger(__name__)

Parsed = TypeVar("Parsed")


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data or ""


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str


def run_command(
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    ok_codes: Collection[int] = (0,),
) -> CommandResult:
    """Run ``argv`` (no shell) and return what it printed; exit codes outside ``ok_codes``,
    a missing program or a timeout raise SchedulerError."""
    program, *args = argv
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    log.debug("scheduler command", argv=list(argv))
    try:
        finished = sh.Command(program)(
            *args,
            _timeout=timeout,
            _ok_code=list(ok_codes),
            _return_cmd=True,
            _tty_out=False,
        )
    except sh.CommandNotFound as error:
        raise SchedulerError(argv, 127, "", f"command not found: {error}") from None
    except sh.TimeoutException:
        raise SchedulerError(argv, None, "", f"no answer within {timeout:g} s") from None
    except sh.ErrorReturnCode as error:  # also a command killed by a signal
        raise SchedulerError(
            argv, error.exit_code, _text(error.stdout), _text(error.stderr)
        ) from None
    return CommandResult(finished.exit_code, _text(finished.stdout), _text(finished.stderr))


def run_parsed(
    argv: Sequence[str], parse: Callable[[str], Parsed], *, timeout: float | None = None
) -> Parsed:
    """Run ``argv`` and parse its stdout; output the parser cannot read (garbage, a truncated
    answer) is a failed query too, raised as SchedulerError."""
    result = run_command(argv, timeout=timeout)
    try:
        return parse(result.stdout)
    except (ValueError, KeyError, IndexError, TypeError, SyntaxError) as error:  # SyntaxError: XML
        raise SchedulerError(
            argv, result.exit_code, result.stdout, f"unreadable output: {error}"
        ) from None
