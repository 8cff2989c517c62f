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
import socket
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alcapctl.errors import ConfigError

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
COMMAND_FIELDS = PATH_FIELDS | {"input", "filename", "modules", *_LEGACY_OUTPUTS}
ARCHIVE_FIELDS = frozenset({"run", "filename", "version", "base", "data"})


def default_outputs(production_type: str) -> dict[str, str]:
    """The legacy output layout of the 2014 scripts for a production type."""
    return {name: _LEGACY_OUTPUTS[name] for name in OUTPUT_NAMES[production_type]}


def _template_fields(template: str) -> set[str]:
    try:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ValueError(f"malformed template {template!r}: {exc}") from None


def _check_template(template: str, allowed: frozenset[str] | set[str]) -> str:
    unknown = {f.split(".")[0].split("[")[0] for f in _template_fields(template)} - set(allowed)
    if "" in unknown:
        raise ValueError(f"template {template!r} has an empty field {{}}; name the field")
    if unknown:
        raise ValueError(
            f"template {template!r} uses unknown field(s) {sorted(unknown)}; "
            f"allowed: {sorted(allowed)}"
        )
    return template


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    """How much one alcapctl process does at once; the old script's command-line knobs."""

    nproc: int = Field(10, ge=1, description="jobs in flight at most")
    nprep: int = Field(5, ge=0, description="inputs staged ahead of submission at most")
    spacelim: float = Field(90, gt=0, le=100, description="percent of the data file system")
    pause: float = Field(5, ge=0, description="seconds between loop cycles")
    max_attempts: int = Field(3, ge=1, description="attempts before a run becomes X")
    lease: float = Field(3600, gt=0, description="seconds before an idle claim is stale")
    transfers: int = Field(2, ge=1, description="parallel input transfers")
    grace: float = Field(120, ge=0, description="seconds before a job gone without exit is lost")
    breaker: int = Field(10, ge=1, description="failed attempts in a row with one reason: stop")


class Resources(_Strict):
    """What each job asks of the batch system."""

    time: str | None = Field(None, description="wall time, HH:MM:SS or minutes")
    memory: str | None = Field(None, description="memory, e.g. 2G")
    cpus: int = Field(1, ge=1)
    queue: str | None = Field(None, description="partition (Slurm) or queue (SGE/HTCondor)")
    extra: tuple[str, ...] = Field((), description="raw scheduler arguments")


class Job(_Strict):
    """The command each run executes and what it needs."""

    command: str = Field(description="shell command template")
    resources: Resources = Resources()
    modules: Path | None = Field(None, description="MODULES file recorded with each run")
    env: dict[str, str] = {}

    @field_validator("command")
    @classmethod
    def _command_fields(cls, value: str) -> str:
        return _check_template(value, COMMAND_FIELDS)


class Archive(_Strict):
    """Where raw inputs come from."""

    url: str | None = Field(None, description="ftp://host/dir or file:///dir")
    filename: str = Field("run{run:05d}.mid", description="raw file name template")
    recall: str | None = Field(None, description="site command sent before a download")
    checksums: Path | None = Field(None, description="file of 'name adler32' lines")
    timeout: float = Field(60, gt=0, description="seconds without progress before giving up")
    retries: int = Field(3, ge=0, description="retries of a dropped transfer")

    @field_validator("filename", "recall")
    @classmethod
    def _fields(cls, value: str | None) -> str | None:
        return None if value is None else _check_template(value, ARCHIVE_FIELDS)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ftp://", "file://")):
            raise ValueError(f"{value!r}: archive url must start with ftp:// or file://")
        return value


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
    backend: Backend = "local"
    archive: Archive = Archive()
    quota: Quota | None = None


class Production(_Strict):
    """One production: a versioned pass of a software tag over the run list."""

    type: ProductionType
    tag: str = Field(min_length=1, description="software tag, recorded as 'software'")
    version: int | None = Field(None, ge=1, description="default: highest + 1 at init")
    base: int | None = Field(None, ge=1, description="rootana: the alcapana version it reads")
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
            _check_template(template, PATH_FIELDS)
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
        shown = "" if quiet else f" (got {got!r})"
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
    if value is None:
        return None
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
            "archive": archive,
        }
    )
    return resolved, path


def identity() -> tuple[str, str]:
    """Who is acting: ``$ALCAPCTL_USER`` or the login name, and this host's short name."""
    user = os.environ.get("ALCAPCTL_USER") or getpass.getuser()
    host = os.environ.get("ALCAPCTL_HOST") or socket.gethostname().split(".")[0]
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


def load_production(path: Path) -> Production:
    """Read and validate one production TOML; relative paths in it are made absolute."""
    prod = _validated(Production, path)
    base = path.parent.resolve()
    update: dict[str, Any] = {"site": _relative_to(base, prod.site)}
    if prod.job.modules is not None:
        job = prod.job.model_copy(update={"modules": _relative_to(base, prod.job.modules)})
        update["job"] = job
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
