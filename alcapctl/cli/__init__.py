"""The ``alcapctl`` command line: a lazy click group whose commands live in small modules.

Commands are imported only when used (``--help`` and cron steps start fast), each command
parses its options, makes one call into the library and renders the result.  Domain
errors become exit codes here, in one place.
"""

from __future__ import annotations

import gc
from importlib import import_module
from typing import Any

import click

from alcapctl import __version__
from alcapctl.errors import EXIT_FAILURE, EXIT_INTERRUPTED, AlcapError

__all__ = ["cli", "main"]

# command name -> "module:attribute", relative to alcapctl.cli
_COMMANDS = {
    "db": "db:db",
    "datasets": "db:datasets",
    "init": "production:init",
    "claim": "production:claim",
    "status": "production:status",
    "check": "production:check",
    "run": "run:run",
    "abort": "run:abort",
    "recover": "run:recover",
    "stop": "run:stop",
    "backup-dump": "backup:backup_dump",
    "backup-restore": "backup:backup_restore",
    "stage": "stage:stage",
    "submit": "batch:submit",
    "reap": "batch:reap",
    "retry": "batch:retry",
    "report": "report:report",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is needed."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attr = self.lazy[cmd_name].split(":")
            command: click.Command = getattr(import_module(f"alcapctl.cli.{module}"), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AlcapError as exc:
            _say_error(str(exc))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            _say_error("interrupted")
            ctx.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug: say what failed, with the traceback
            _say_error(f"unexpected {type(exc).__name__}: {exc}", exc)
            raise SystemExit(EXIT_FAILURE) from exc


def _say_error(message: str, exc: BaseException | None = None) -> None:
    """An error event on stderr (a JSON line with --log-format json), traceback included."""
    import structlog

    structlog.get_logger("alcapctl").error(message, exc_info=exc)


def _usage(ctx: click.Context, _: click.Parameter, wanted: bool) -> None:
    """``--usage``, as the 2014 script had: the help, exit 0."""
    if wanted and not ctx.resilient_parsing:
        click.echo(ctx.get_help())
        ctx.exit(0)


@click.group(
    cls=LazyGroup,
    lazy=_COMMANDS,
    invoke_without_command=True,  # a bare ``alcapctl`` prints the help and exits 0
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="alcapctl")
@click.option(
    "--usage",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_usage,
    help="Show this message and exit (as --help).",
)
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default="console",
    envvar="ALCAPCTL_LOG_FORMAT",
    show_default=True,
    help="Every line on stdout and stderr: readable, or one JSON object each, for cron.",
)
@click.option("-v", "--verbose", count=True, help="More log detail (-vv for debug).")
@click.option(
    "-q", "--quiet", is_flag=True, help="Only changes and problems: nothing when nothing changed."
)
@click.pass_context
def cli(ctx: click.Context, log_format: str, verbose: int, quiet: bool) -> None:
    """Run AlCap data-processing productions against a shared production database.

    A production TOML says what to produce; each command below is one idempotent step,
    safe to repeat, to run from several users at once and to interrupt.

    \b
    Examples:
      alcapctl db init --production productions/rootana_v8.toml
      alcapctl datasets import runs.tsv --production productions/rootana_v8.toml
      alcapctl init productions/rootana_v8.toml
      alcapctl claim productions/rootana_v8.toml -n 5
      alcapctl status --all
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(0)
    from alcapctl.log import configure_logging

    level = "debug" if verbose > 1 else "info"
    configure_logging(log_format, level, quiet)
    ctx.ensure_object(dict)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="alcapctl")
    finally:
        # Python's shutdown ends with a garbage collection over every object still alive:
        # after SQLAlchemy's and pydantic's imports that alone takes 70 ms, a sixth of a
        # cron step.  Frozen objects are skipped; finalizers and atexit handlers still run.
        gc.freeze()
