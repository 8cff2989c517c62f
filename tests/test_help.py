"""Every command explains itself: help text with at least one example."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from alcapctl.cli import cli


def _commands() -> list[tuple[str, ...]]:
    ctx = click.Context(cli)
    found: list[tuple[str, ...]] = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += [(name, sub) for sub in command.list_commands(ctx)]
        else:
            found.append((name,))
    return found


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_help_has_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    assert f"alcapctl {path[0]}" in result.output.split("Example", 1)[1]


def test_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    for name in ("run", "abort", "recover", "stage", "submit", "reap", "retry", "backup-dump"):
        assert f"  {name} " in result.output


@pytest.mark.parametrize("args", [[], ["--usage"]], ids=["bare", "--usage"])
def test_bare_alcapctl_and_usage_print_the_help_and_exit_0(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args, prog_name="alcapctl")
    assert result.exit_code == 0
    assert result.output == CliRunner().invoke(cli, ["--help"], prog_name="alcapctl").output
    assert result.output.startswith("Usage: alcapctl [OPTIONS] [COMMAND] [ARGS]...\n")
