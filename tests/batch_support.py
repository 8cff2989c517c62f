"""Helpers for the batch tests: a production whose job reads its staged input, staged runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from alcapctl.batch.local import LocalBackend
from alcapctl.batch.wrapper import job_dir, job_name, read_exit
from alcapctl.config import load_settings
from alcapctl.states import RunState
from alcapctl.steps.claim import claim
from alcapctl.steps.context import StepContext, open_production
from alcapctl.store import RunRecord, RunTable, Store

# Reads the staged input, whose first line says how to behave, and writes every output.
JOB_SCRIPT = """\
read mode <"$1"
echo "run $5" >>"$6"
case $mode in
  fail) echo "boom: bad calibration" >&2; exit 3 ;;
  kill) kill -9 $$ ;;
  slow) sleep 1 ;;
  hang) exec sleep 60 ;;
esac
cat "$1" >"$2"
[ "$mode" = missing ] || cp "$2" "$3"
echo odb >"$4"
echo processed
"""

COMMAND = "sh {script} {input} {tree} {hist} {odb} {run:05d} {data}/ran.txt"


def make_context(
    make_production: Callable[..., Path], tmp_path: Path, **limits: Any
) -> StepContext:
    script = tmp_path / "job-payload.sh"
    script.write_text(JOB_SCRIPT)
    modules = tmp_path / "MODULES"
    modules.write_text("module one\nmodule two\n")
    command = COMMAND.replace("{script}", str(script))
    prod = make_production(
        job={"command": command, "modules": str(modules), "env": {"ALCAP_MODE": "test"}},
        limits={"grace": 0, "max_attempts": 2, "nproc": 4, "pause": 0, **limits},
    )
    settings = load_settings(prod)
    store = Store.open(settings.database)
    assert settings.production is not None
    store.init(settings.production)
    return open_production(settings, store)


def stage(ctx: StepContext, modes: Sequence[str]) -> list[int]:
    """Claim one run per mode and stage an input saying that mode: C -> S."""
    runs = claim(ctx, len(modes)).claimed
    ctx.staging_dir.mkdir(parents=True, exist_ok=True)
    for run, mode in zip(runs, modes, strict=True):
        path = ctx.staging_dir / f"run{run:05d}.mid"
        path.write_text(f"{mode}\nraw data of {run}\n")

        def to_staged(t: RunTable, r: int = run, p: Path = path) -> list[int]:
            return t.move([r], RunState.CLAIMED, RunState.STAGED, ctx.owner, input=str(p))

        ctx.store.runs(ctx.record, to_staged, write=True)
    return runs


def rows(ctx: StepContext) -> dict[int, RunRecord]:
    return {r.run: r for r in ctx.store.runs(ctx.record, lambda t: t.select(), write=False)}


def wait_for_jobs(ctx: StepContext, backend: LocalBackend, runs: Sequence[int]) -> None:
    """Until every given run's current job wrote its exit file."""
    for _ in range(200):
        records = rows(ctx)
        dirs = [
            job_dir(ctx.workdir, job_name(ctx.record.short, run, records[run].attempt))
            for run in runs
        ]
        if all(read_exit(d) is not None for d in dirs):
            return
        backend.poll([records[r].job_id or "" for r in runs])
        backend.wait(0.5)
    raise AssertionError(f"jobs of runs {runs} did not end")
