"""What a job needs from the submitting side, checked before any job is written.

``[job] pass_env`` names variables of the submitting shell that every job gets; the
wrapper exports them, and ``[job] env``, itself, so they reach the job alike on every
backend (Grid Engine and HTCondor pass no environment by default, as the 2014
``qsub -v DAQdir`` shows).  ``check``, ``init`` and ``run`` refuse (exit 2) a production
whose passed variables are unset, whose job script is missing, or whose MODULES file
cannot be read: every run would fail alike.  ``check`` also warns about a ``$VAR`` of the
command that nothing defines and a program that is neither on PATH nor at its path.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import string
from collections.abc import Mapping
from pathlib import Path

import structlog

from alcapctl.config import Job, Settings
from alcapctl.errors import ConfigError

__all__ = [
    "command_warnings",
    "job_environment",
    "modules_text",
    "preflight",
    "refuse_or_warn",
    "require_script",
]

log = structlog.get_logger("alcapctl.jobenv")

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))")
_ASSIGNED = re.compile(r"(?:^|[\s;&|(])([A-Za-z_]\w*)=")
# words the shell runs itself: nothing to find on PATH
_SHELL_WORDS = frozenset(
    {"!", "(", "{", ".", ":", "[", "case", "cd", "eval", "exec", "exit", "export", "for",
     "if", "set", "test", "trap", "true", "false", "until", "wait", "while"}
)  # fmt: skip


# schedulers that give a job none of the submitting shell's environment by default
_NO_ENVIRONMENT = frozenset({"sge", "htcondor"})
# what every job's shell has anyway
_ALWAYS_SET = frozenset({"HOME", "LOGNAME", "PATH", "PWD", "SHELL", "TMPDIR", "USER"})


def _where(settings: Settings, key: str) -> str:
    return f"{settings.production_file}: job.{key}"


def job_environment(settings: Settings, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables the wrapper exports: each passed variable's value in this shell, then
    ``[job] env`` (which wins).  An unset or empty passed variable is refused, named."""
    job = _job(settings)
    unset = [name for name in job.pass_env if not environ.get(name)]
    if unset:
        names = ", ".join(f"${name}" for name in unset)
        raise ConfigError(
            f"{_where(settings, 'pass_env')}: {names} not set in this shell; the jobs "
            f"need it (export {unset[0]}=... before alcapctl, as for the 2014 scripts)"
        )
    return {**{name: environ[name] for name in job.pass_env}, **job.env}


def require_script(settings: Settings) -> None:
    """Refuse a ``[job] script`` that is not there (ConfigError): at the start, and at
    every submit, so that one removed under a running loop drains it instead of failing
    every run alike."""
    script = _job(settings).script
    if script is not None and not os.access(script, os.R_OK):
        raise ConfigError(f"{_where(settings, 'script')}: {script}: no such readable file")


def modules_text(settings: Settings) -> str | None:
    """The MODULES file's text, recorded with every finished run; None when the
    production names none.  Missing or unreadable is a configuration error."""
    path = _job(settings).modules
    if path is None:
        return None
    unset = _unset_variables(str(path), os.environ)
    if unset:
        raise ConfigError(
            f"{_where(settings, 'modules')}: {path} names ${unset[0]}, which is not set "
            "in this shell"
        )
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{_where(settings, 'modules')}: cannot read {path}: {reason}") from None


def preflight(settings: Settings) -> list[str]:
    """Refuse a production every run of which would fail alike (ConfigError, exit 2);
    returns the warnings ``command_warnings`` finds."""
    environment = job_environment(settings)
    require_script(settings)
    modules_text(settings)
    return command_warnings(settings, {**os.environ, **environment})


def refuse_or_warn(settings: Settings) -> None:
    """``preflight`` before a command that will write jobs; its warnings are logged."""
    for warning in preflight(settings):
        log.warning(warning)


def command_warnings(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """What looks wrong in ``[job] command``: a ``$VAR`` that neither ``[job] env``,
    ``pass_env`` nor this shell defines (or, on Grid Engine and HTCondor, that only this
    shell does), and a first program not found."""
    job = _job(settings)
    command = job.command
    assigned = set(_ASSIGNED.findall(command))
    used = [name for name in _variables(command) if name not in assigned]
    undefined = [name for name in used if name not in environ and name not in job.env]
    warnings = [
        f"{_where(settings, 'command')}: ${name} is not defined here, nor in job.env or "
        "job.pass_env; the job will see it empty"
        for name in undefined
    ]
    if settings.backend in _NO_ENVIRONMENT:
        given = {*job.env, *job.pass_env, *_ALWAYS_SET, *undefined}
        warnings += [
            f"{_where(settings, 'command')}: ${name} is set in this shell only; "
            f"{settings.backend} jobs do not get it: add it to job.pass_env"
            for name in used
            if name not in given
        ]
    program = _program(command, {"script": job.script, "modules": job.modules}, environ)
    if program is not None:
        problem = _missing_program(program)
        if problem:
            warnings.append(f"{_where(settings, 'command')}: {program}: {problem}")
    return warnings


def _job(settings: Settings) -> Job:
    assert settings.production is not None
    return settings.production.job


def _literal(template: str) -> str:
    """The template's own text, each ``{field}`` replaced by a NUL and ``{{`` by ``{``."""
    return "".join(
        text + ("\0" if field is not None else "")
        for text, field, _, _ in string.Formatter().parse(template)
    )


def _variables(template: str) -> list[str]:
    found = (a or b for a, b in _VARIABLE.findall(_literal(template)))
    return list(dict.fromkeys(found))


def _unset_variables(text: str, environ: Mapping[str, str]) -> list[str]:
    escaped = text.replace("{", "{{").replace("}", "}}")
    return [name for name in _variables(escaped) if name not in environ]


def _program(
    command: str, fields: Mapping[str, Path | None], environ: Mapping[str, str]
) -> str | None:
    """The command's first word, fields and variables filled in; None when it cannot be
    known before a run (a run's field, an undefined variable, shell syntax)."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return None
    if not words or words[0] in _SHELL_WORDS or "=" in words[0]:
        return None
    try:
        first = words[0].format(**{k: v for k, v in fields.items() if v is not None})
    except (KeyError, IndexError, ValueError):
        return None
    if _unset_variables(first, environ):
        return None
    return _VARIABLE.sub(lambda m: environ[m.group(1) or m.group(2)], first)


def _missing_program(program: str) -> str | None:
    if "/" in program:
        path = Path(program).expanduser()
        if not path.exists():
            return "no such file"
        if not os.access(path, os.X_OK):
            return "not executable"
        return None
    return None if shutil.which(program) else "not found on PATH"
