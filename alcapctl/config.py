"""Production and site configuration: TOML files validated by pydantic, resolved into Settings.

A production TOML says *what* to produce; a site TOML says *where* (database, data root,
batch backend, archive).  The site file is found, in order, from ``--site``, the
production's ``site`` key, ``$ALCAPCTL_CONFIG`` and ``~/.config/alcapctl/config.toml``;
without one the embedded defaults apply.  Unknown keys are refused everywhere and every
error names the file and the key path.
"""

from __future__ import annotations

import functools
import getpass
import os
import re
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alcapctl.errors import ConfigError
from alcapctl.templates import check_fields, check_types, quoted_fields, template_fields
from alcapctl.urls import check_archive_url, mask_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "OUTPUT_NAMES",
    "Archive",
    "Job",
    "Limits",
    "Production",
    "Quota",
    "Settings",
    "Site",
    "database_url",
    "default_outputs",
    "load_production",
    "load_settings",
    "load_site",
]

ModelT = TypeVar("ModelT", bound=BaseModel)
Backend = Literal["local", "slurm", "sge", "htcondor"]
ProductionType = Literal["alcapana", "rootana"]

OUTPUT_NAMES: dict[str, tuple[str, ...]] = {
    "alcapana": ("tree", "hist", "odb", "olog", "elog"),
    "rootana": ("out", "olog", "elog"),
}

_LEGACY_OUTPUTS = {
    "tree": "{data}/tree/v{version}/tree{run:05d}.root",
    "hist": "{data}/hist/v{version}/hist{run:05d}.root",
    "odb": "{data}/dump/v{version}/dump{run:05d}.root",
    "out": "{data}/out/v{version}/out{run:05d}.root",
    "olog": "{data}/log/v{version}/{type}.run{run:05d}.out",
    "elog": "{data}/log/v{version}/{type}.run{run:05d}.err",
}

# Fields every template may use; the job command may also use {input} and every output name.
PATH_FIELDS = frozenset({"run", "version", "tag", "data", "type", "base", "user"})
COMMAND_FIELDS = PATH_FIELDS | {"input", "filename", "modules", "script", *_LEGACY_OUTPUTS}
ARCHIVE_FIELDS = frozenset({"run", "filename", "version", "base", "data"})


def default_outputs(production_type: str) -> dict[str, str]:
    """The legacy output layout of the 2014 scripts for a production type."""
    return {name: _LEGACY_OUTPUTS[name] for name in OUTPUT_NAMES[production_type]}


# Sample values of each field's type: format specs are checked against them at load.
_PATH_SAMPLES: dict[str, Any] = {
    "run": 2091,
    "version": 1,
    "tag": "tag",
    "data": "/data",
    "type": "alcapana",
    "base": 1,
    "user": "user",
}
_COMMAND_SAMPLES = {
    **_PATH_SAMPLES,
    **{name: "/data/file" for name in COMMAND_FIELDS - PATH_FIELDS},
}
_MAX_VERSION = 999_999
_NAME = re.compile(r"[A-Za-z0-9._@-]+")
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_SECONDS = 7 * 24 * 3600.0  # a week: no loop pause, lease or grace sensibly exceeds it


def _check_template(
    template: str, allowed: frozenset[str] | set[str], samples: Mapping[str, Any]
) -> str:
    return check_types(check_fields(template, allowed), samples)


def _path_samples(production_type: str) -> dict[str, Any]:
    """Sample path field values for a production type: an alcapana production has no base."""
    base = None if production_type == "alcapana" else 1
    return {**_PATH_SAMPLES, "type": production_type, "base": base}


def _count(low: int, high: int, description: str, default: int) -> Any:
    return Field(default, ge=low, le=high, strict=True, description=description)


def _seconds(description: str, default: float, *, positive: bool = False) -> Any:
    return Field(
        default,
        gt=0 if positive else None,
        ge=None if positive else 0,
        le=_MAX_SECONDS,
        strict=True,
        allow_inf_nan=False,
        description=description,
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    """How much one alcapctl process does at once; the old script's command-line knobs."""

    nproc: int = _count(1, 100_000, "jobs in flight at most", 10)
    nprep: int = _count(0, 100_000, "inputs staged ahead of submission at most", 5)
    spacelim: float = Field(
        90,
        gt=0,
        le=100,
        strict=True,
        allow_inf_nan=False,
        description="percent of the data file system",
    )
    pause: float = _seconds("seconds between loop cycles", 5)
    max_attempts: int = _count(1, 1000, "attempts before a run becomes X", 3)
    lease: float = _seconds("seconds before an idle claim is stale", 3600, positive=True)
    transfers: int = _count(1, 100, "parallel input transfers", 2)
    grace: float = _seconds("seconds before a job gone without exit is lost", 120)
    array: int = _count(0, 1_000_000, "jobs in one array at most; 0: no arrays", 1000)
    breaker: int = _count(1, 100_000, "failed attempts in a row with one reason: stop", 10)


class Resources(_Strict):
    """What each job asks of the batch system."""

    time: str | None = Field(None, description="wall time, HH:MM:SS or minutes")
    memory: str | None = Field(None, description="memory, e.g. 2G")
    cpus: int = _count(1, 100_000, "cores per job", 1)
    queue: str | None = Field(None, description="partition (Slurm) or queue (SGE/HTCondor)")
    extra: tuple[str, ...] = Field((), description="raw scheduler arguments")


class Job(_Strict):
    """The command each run executes and what it needs."""

    command: str = Field(description="shell command template")
    resources: Resources = Resources()
    modules: Path | None = Field(None, description="MODULES file recorded with each run")
    script: Path | None = Field(None, description="job script, the command's {script}")
    env: dict[str, str] = {}
    pass_env: tuple[str, ...] = Field(
        (), description="variables of the submitting shell the job gets, e.g. ['DAQdir']"
    )

    @field_validator("command")
    @classmethod
    def _command_fields(cls, value: str) -> str:
        quoted = quoted_fields(value)
        if quoted:
            raise ValueError(
                f"field {quoted[0]} is inside quotes; write the field bare ({quoted[0][1:-1]}): "
                "every field reaches the job as one word, spaces and quotes included"
            )
        return _check_template(value, COMMAND_FIELDS, _COMMAND_SAMPLES)

    @field_validator("env")
    @classmethod
    def _shell_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _SHELL_NAME.fullmatch(key):
                raise ValueError(
                    f"{key!r} is not an environment variable name "
                    "(letters, digits and _, not starting with a digit)"
                )
        return value

    @field_validator("pass_env")
    @classmethod
    def _variable_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in value if not _SHELL_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"{bad}: not shell variable names (letters, digits, _)")
        return value


class Archive(_Strict):
    """Where raw inputs come from."""

    url: str | None = Field(None, description="ftp://host/dir or file:///dir")
    filename: str = Field("run{run:05d}.mid", description="raw file name template")
    recall: str | None = Field(None, description="site command sent before a download")
    checksums: Path | None = Field(None, description="file of 'name adler32' lines")
    timeout: float = _seconds("seconds without progress before giving up", 60, positive=True)
    retries: int = _count(0, 100, "retries of a dropped transfer", 3)

    @field_validator("filename", "recall")
    @classmethod
    def _fields(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _check_template(value, ARCHIVE_FIELDS, {**_PATH_SAMPLES, "filename": "run.mid"})

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_archive_url(value)


class Quota(_Strict):
    """An external command that reports the data file system's use instead of statvfs."""

    command: tuple[str, ...] = Field(description="argv, e.g. ['mmlsquota', '--block-size', '1K']")
    parser: Literal["mmlsquota", "lfs", "df"] = "mmlsquota"


class Site(_Strict):
    """Settings of one site: shared by every production run there."""

    database: str = Field("~/data/production.db", description="file path or SQLAlchemy URL")
    data: Path = Field(Path("~/data"), description="root of the output tree")
    staging: Path | None = Field(None, description="where raw inputs go; default {data}/raw")
    work: Path | None = Field(None, description="job scripts and state; default {data}/work")
    output_roots: tuple[Path, ...] = Field(
        (), description="directories besides data where output templates may write"
    )
    backend: Backend = "local"
    archive: Archive = Archive()
    quota: Quota | None = None


class Production(_Strict):
    """One production: a versioned pass of a software tag over the run list."""

    type: ProductionType
    tag: str = Field(min_length=1, description="software tag, recorded as 'software'")
    version: int | None = Field(
        None, ge=1, le=_MAX_VERSION, strict=True, description="default: highest + 1 at init"
    )
    base: int | None = Field(
        None, ge=1, le=_MAX_VERSION, strict=True, description="rootana: the alcapana version"
    )
    datasets: tuple[str, ...] = Field((), description="empty: all datasets")
    quality: tuple[str, ...] = Field(("gold",), description="empty: any quality, NULL included")
    site: Path | None = Field(None, description="site TOML, relative to this file")
    backend: Backend | None = None
    limits: Limits = Limits()
    job: Job
    outputs: dict[str, str] = {}
    archive: Archive | None = None

    @model_validator(mode="after")
    def _type_rules(self) -> Production:
        if self.type == "rootana" and self.base is None:
            raise ValueError("base: a rootana production needs the alcapana version it reads")
        if self.type == "alcapana" and self.base is not None:
            raise ValueError("base: an alcapana production reads raw files and takes no base")
        allowed = OUTPUT_NAMES[self.type]
        for name, template in self.outputs.items():
            if name not in allowed:
                raise ValueError(
                    f"outputs.{name}: not an output of {self.type} (expected one of {allowed})"
                )
            _check_template(template, PATH_FIELDS, _path_samples(self.type))
        used = template_fields(self.job.command)
        if self.type == "alcapana" and "base" in used:
            raise ValueError("job.command: {base} has no value in an alcapana production")
        written = self.output_templates()
        missing = sorted(used & set(_LEGACY_OUTPUTS) - set(written))
        if missing:
            raise ValueError(
                f"job.command: {{{missing[0]}}} is not an output this production writes "
                f"(its outputs: {sorted(written)})"
            )
        for log in ("olog", "elog"):
            if self.outputs.get(log) == "":
                raise ValueError(f"outputs.{log}: the job's logs cannot be switched off")
        return self

    def output_templates(self) -> dict[str, str]:
        """Every declared output: the legacy defaults overridden by the TOML.

        An empty template says the production does not write that output (an alcapana
        version without an ODB dump, say); it is then neither expected nor recorded.
        """
        merged = {**default_outputs(self.type), **self.outputs}
        return {name: template for name, template in merged.items() if template}


@dataclass(frozen=True)
class Settings:
    """Everything a step needs, resolved from production, site, environment and CLI.

    Frozen; the merged limits and archive are computed once (the run loop reads them
    many times a cycle).
    """

    site: Site
    database: str
    user: str
    host: str
    production: Production | None = None
    production_file: Path | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.site.data

    @property
    def staging(self) -> Path:
        return self.site.staging or self.site.data / "raw"

    @property
    def work(self) -> Path:
        return self.site.work or self.site.data / "work"

    @property
    def backend(self) -> str:
        prod = self.production
        return str(self.overrides.get("backend") or (prod and prod.backend) or self.site.backend)

    @functools.cached_property
    def limits(self) -> Limits:
        base = self.production.limits if self.production else Limits()
        changed = {k: v for k, v in self.overrides.items() if k in Limits.model_fields}
        return base.model_validate({**base.model_dump(), **changed}) if changed else base

    @functools.cached_property
    def archive(self) -> Archive:
        site = self.site.archive
        prod = self.production.archive if self.production else None
        if prod is None:
            return site
        return site.model_copy(update={k: getattr(prod, k) for k in prod.model_fields_set})

    @property
    def owner(self) -> str:
        return f"{self.user}@{self.host}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None


def _validation_message(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        got = err.get("input")
        quiet = err["type"] in {"extra_forbidden", "missing"} or isinstance(got, dict)
        shown = "" if quiet else f" (got {mask_url(got) if isinstance(got, str) else got!r})"
        lines.append(f"{path}: {loc or '<top>'}: {msg}{shown}")
    return "\n".join(lines)


def _validated(model: type[ModelT], path: Path) -> ModelT:
    """The TOML file at ``path`` as a ``model``; errors name the file and the key."""
    raw = _read_toml(path)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, exc)) from None


def _relative_to(base: Path, value: Path | None) -> Path | None:
    return None if value is None else _absolute(base, value)


def _absolute(base: Path, value: Path) -> Path:
    value = value.expanduser()
    return value if value.is_absolute() else (base / value).resolve()


def database_url(value: str, base: Path | None = None) -> str:
    """A database given as a URL is kept; a file path becomes an absolute sqlite URL."""
    if "://" in value:
        return value
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return f"sqlite:///{path.resolve()}"


def _site_from(path: Path | None) -> tuple[Site, Path | None]:
    if path is None:
        env = os.environ.get("ALCAPCTL_CONFIG")
        default = Path("~/.config/alcapctl/config.toml").expanduser()
        path = Path(env) if env else (default if default.exists() else None)
    if path is None:
        site = Site()
        return site.model_copy(update={"data": site.data.expanduser()}), None
    site = _validated(Site, path)
    base = path.parent.resolve()
    archive = site.archive
    if archive.checksums is not None:
        archive = archive.model_copy(update={"checksums": _relative_to(base, archive.checksums)})
    resolved = site.model_copy(
        update={
            "data": _relative_to(base, site.data),
            "staging": _relative_to(base, site.staging),
            "work": _relative_to(base, site.work),
            "output_roots": tuple(_relative_to(base, root) for root in site.output_roots),
            "archive": archive,
        }
    )
    return resolved, path


def identity() -> tuple[str, str]:
    """Who is acting: ``$ALCAPCTL_USER`` or the login name, and this host's short name."""
    user = os.environ.get("ALCAPCTL_USER") or getpass.getuser()
    host = os.environ.get("ALCAPCTL_HOST") or socket.gethostname().split(".")[0]
    for variable, value in (("ALCAPCTL_USER", user), ("ALCAPCTL_HOST", host)):
        if not _NAME.fullmatch(value) or value in (".", ".."):
            raise ConfigError(
                f"${variable}: {value!r} is not a user or host name (letters, digits, '.', "
                "'_', '-', '@'; it names files and goes into output paths)"
            )
    return user, host


def load_site(
    site_file: Path | None = None,
    database: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings for commands that need no production (db init, datasets, status --all)."""
    site, site_path = _site_from(site_file)
    base = site_path.parent.resolve() if site_path else None
    url = database_url(database) if database else database_url(site.database, base)
    user, host = identity()
    return Settings(site=site, database=url, user=user, host=host, overrides=overrides or {})


def job_path(base: Path, value: Path) -> Path:
    """A job file's path with ``$VAR`` expanded from this environment, relative to ``base``.

    A path naming a variable that is not set is kept as written (``$DAQdir/...``), so that
    commands that never read the file (status, abort) still work; ``check``, ``init`` and
    ``run`` refuse it, naming the variable (``alcapctl.jobenv``).
    """
    expanded = Path(os.path.expandvars(str(value)))
    return expanded if "$" in str(expanded) else _absolute(base, expanded)


def load_production(path: Path) -> Production:
    """Read and validate one production TOML; relative paths in it are made absolute."""
    prod = _validated(Production, path)
    base = path.parent.resolve()
    update: dict[str, Any] = {"site": _relative_to(base, prod.site)}
    files = {
        key: job_path(base, getattr(prod.job, key))
        for key in ("modules", "script")
        if getattr(prod.job, key) is not None
    }
    if files:
        update["job"] = prod.job.model_copy(update=files)
    if prod.archive is not None and prod.archive.checksums is not None:
        checksums = _relative_to(base, prod.archive.checksums)
        update["archive"] = prod.archive.model_copy(update={"checksums": checksums})
    return prod.model_copy(update=update)


def load_settings(
    production_file: Path,
    site_file: Path | None = None,
    database: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings for a command that acts on one production."""
    prod = load_production(production_file)
    settings = load_site(site_file or prod.site, database, overrides)
    resolved = Settings(
        site=settings.site,
        database=settings.database,
        user=settings.user,
        host=settings.host,
        production=prod,
        production_file=production_file,
        overrides=settings.overrides,
    )
    try:
        resolved.limits  # noqa: B018 - validates command-line overrides
    except ValidationError as exc:
        raise ConfigError(_validation_message(Path("command line"), exc)) from None
    return resolved
