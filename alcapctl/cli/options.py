"""Shared options as decorators, and the context object that opens settings and store once."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

import click

if TYPE_CHECKING:
    from alcapctl.config import Settings

__all__ = [
    "AppContext",
    "dataset_option",
    "dry_run_option",
    "emit_json",
    "json_option",
    "limit_options",
    "lock_timeout_option",
    "locked_step",
    "production_argument",
    "productions_argument",
    "store_options",
]

F = TypeVar("F", bound=Callable[..., Any])


class AppContext:
    """Lazily resolved settings and store for one command invocation."""

    def __init__(
        self,
        *,
        database: str | None,
        site: Path | None,
        lock_timeout: float,
        production_file: Path | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.database = database
        self.site = site
        self.lock_timeout = lock_timeout
        self.production_file = production_file
        self.overrides = overrides or {}
        self._settings: Settings | None = None
        self._store: Any = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from alcapctl.config import load_settings, load_site

            if self.production_file is not None:
                self._settings = load_settings(
                    self.production_file, self.site, self.database, self.overrides
                )
            else:
                self._settings = load_site(self.site, self.database, self.overrides)
        return self._settings

    @property
    def store(self) -> Any:
        """The open Store (typed Any here so that importing the CLI stays light)."""
        if self._store is None:
            from alcapctl.store import Store

            self._store = Store.open(self.settings.database, self.lock_timeout)
        return self._store

    def step_context(self) -> Any:
        """The production's StepContext; every event from here on names the production."""
        import structlog

        from alcapctl.steps.context import open_production

        step_ctx = open_production(self.settings, self.store)
        structlog.contextvars.bind_contextvars(production=step_ctx.record.name)
        return step_ctx


def _apply(f: F, *decorators: Callable[[Any], Any]) -> F:
    result: Any = f
    for decorator in reversed(decorators):
        result = decorator(result)
    return result  # type: ignore[no-any-return]


def store_options(f: F) -> F:
    """--database, --site, --lock-timeout; the command receives ``app: AppContext``."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        overrides = {k: kwargs.pop(k) for k in _LIMIT_NAMES if k in kwargs}
        overrides = {k: v for k, v in overrides.items() if v is not None}
        kwargs["app"] = AppContext(
            database=kwargs.pop("database"),
            site=kwargs.pop("site"),
            lock_timeout=kwargs.pop("lock_timeout"),
            production_file=kwargs.pop("production_file", None),
            overrides=overrides,
        )
        return f(*args, **kwargs)

    return _apply(  # type: ignore[return-value]
        wrapper,
        click.option(
            "--database",
            envvar="ALCAPCTL_DATABASE",
            metavar="PATH|URL",
            help="Production database: a file path or sqlite:///… URL "
            "(default: the site setting, ~/data/production.db).",
        ),
        click.option(
            "--site",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Site TOML (default: the production's 'site', $ALCAPCTL_CONFIG, "
            "~/.config/alcapctl/config.toml).",
        ),
        lock_timeout_option,
    )


def lock_timeout_option(f: F) -> F:
    """--lock-timeout, for commands that open their database without ``store_options``."""
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=60.0,
        show_default=True,
        envvar="ALCAPCTL_LOCK_TIMEOUT",
        help="Seconds to wait for a database lock held by someone else, or for a database "
        "server that is down; then exit 75.",
    )(f)


@overload
def locked_step(f: F, /) -> F: ...
@overload
def locked_step(*, registering: bool) -> Callable[[F], F]: ...
def locked_step(f: F | None = None, /, *, registering: bool = False) -> F | Callable[[F], F]:
    """The one way a command that changes a production's state takes this user's step lock.

    The command receives ``ctx``, its StepContext, and holds the lock until it returns.  If
    another alcapctl of this user already works on the production here (an overlapping
    cron invocation), the command logs one line naming that holder and exits 0 with
    nothing changed.  ``registering=True`` is for ``init``: the lock is taken when the
    production is registered already and its lock file exists (so that refused input
    leaves no file behind), and no ``ctx`` is passed.  Put it below
    ``@store_options``: it takes the ``app`` that one made.
    """

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            app: AppContext = kwargs["app"]
            step_ctx = None if registering else app.step_context()
            workdir = _registered_workdir(app) if step_ctx is None else step_ctx.workdir
            if workdir is not None:
                lock = _exclusive_step(workdir, app.settings.user, create=not registering)
                click.get_current_context().with_resource(lock)
            if step_ctx is None:
                return command(*args, **kwargs)
            return command(*args, ctx=step_ctx, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate if f is None else decorate(f)


def _registered_workdir(app: AppContext) -> Path | None:
    """The work directory of the registered production init would add runs to; None when
    init is to register it (no process can hold the lock of a production not yet there)
    or cannot (init itself then says why)."""
    from alcapctl.errors import DatabaseError

    try:
        workdir: Path = app.step_context().workdir
    except DatabaseError:
        return None
    return workdir


def production_argument(f: F) -> F:
    """The production TOML, first argument of every command that acts on a production."""
    return click.argument("production_file", metavar="PROD.toml", type=click.Path(path_type=Path))(
        f
    )


def productions_argument(f: F) -> F:
    """An optional production TOML, or --all: one production, or every one in the database."""
    return _apply(
        f,
        click.argument(
            "production_file",
            metavar="[PROD.toml]",
            required=False,
            type=click.Path(path_type=Path),
        ),
        click.option(
            "--all", "all_productions", is_flag=True, help="Every production in the database."
        ),
    )


_LIMIT_NAMES = ("nproc", "nprep", "spacelim", "pause")


def limit_options(f: F) -> F:
    """--nproc, --nprep, --spacelim, --pause: override the production's [limits]."""
    return _apply(
        f,
        click.option("--nproc", type=click.IntRange(min=1), help="Jobs in flight at most."),
        click.option("--nprep", type=click.IntRange(min=0), help="Inputs staged ahead at most."),
        click.option(
            "--spacelim",
            type=click.FloatRange(min=0, max=100, min_open=True),
            help="Stop fetching above this percent of the data file system.",
        ),
        click.option("--pause", type=click.FloatRange(min=0), help="Seconds between cycles."),
    )


def _data_on_stdout(_: click.Context, __: click.Parameter, as_json: bool) -> bool:
    if as_json:
        from alcapctl.log import data_on_stdout

        data_on_stdout()
    return as_json


def json_option(f: F) -> F:
    """--json: data on stdout, the command's events moved to stderr."""
    return click.option(
        "--json", "as_json", is_flag=True, callback=_data_on_stdout, help="Print data as JSON."
    )(f)


def dry_run_option(f: F) -> F:
    return click.option("--dry-run", is_flag=True, help="Show what would be done; change nothing.")(
        f
    )


def dataset_option(f: F) -> F:
    return click.option(
        "--dataset",
        "datasets",
        multiple=True,
        metavar="SET",
        help="Only runs of this dataset (repeatable).",
    )(f)


@contextmanager
def _exclusive_step(workdir: Path, user: str, *, create: bool = True) -> Iterator[None]:
    """Hold the per-production, per-user step lock; if another process has it, exit 0 quietly.

    Overlapping cron invocations of the same step then skip instead of running twice.
    """
    import structlog

    from alcapctl.steplock import StepBusy, holder, step_lock

    try:
        with step_lock(workdir, user, create=create):
            yield
    except StepBusy as busy:
        structlog.get_logger("alcapctl").warning(
            "another alcapctl of this user is working on this production; skipping",
            production=workdir.name,
            holder=holder(Path(str(busy))),
            lock=str(busy),
        )
        raise click.exceptions.Exit(0) from None


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
