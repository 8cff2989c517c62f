"""The output paths of a production, checked by ``check`` and before ``init`` registers it.

Refused (exit 2, nothing written), each naming the TOML's ``outputs.<name>`` key:

* a path outside the data directory (``{data}/../..``, a ``{user}`` of ``../../x``), unless
  it lies under one of the site's ``output_roots``;
* two runs, or two outputs of one run, resolving to one path (a template without ``{run}``);
* a path another production of the database recorded for one of its finished runs, or
  templates that do not tell this production from another registered one of its type
  (no ``{version}``), so that both would write the same files.

Paths are compared after ``~`` and ``..`` are resolved lexically (``os.path.normpath``).
"""

from __future__ import annotations

import os
from pathlib import Path

from alcapctl.config import Settings
from alcapctl.errors import ConfigError, DatabaseError
from alcapctl.steps.context import StepContext
from alcapctl.store import ProductionRecord, Store
from alcapctl.store.outputs import recorded_outputs, run_numbers

__all__ = ["check_outputs"]

_SAMPLE_RUN = 2091  # stands for the runs of a production that has none yet


def _inside(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _paths(ctx: StepContext, run: int) -> dict[str, str]:
    """``ctx.output_paths(run)`` as normalised strings, without its Path objects and cache
    (a tenth of the time: ``init`` checks every run)."""
    values = ctx.fields(run)
    return {
        name: os.path.normpath(os.path.expanduser(template.format(**values)))
        for name, template in ctx.prod.output_templates().items()
    }


def check_outputs(settings: Settings, store: Store) -> None:
    """Raise ConfigError if the production's outputs escape the data root or clash."""
    prod = settings.production
    assert prod is not None
    where = f"{settings.production_file}: outputs"
    try:
        version, registered, new_runs = store.preview_init(prod)
    except DatabaseError as exc:
        raise DatabaseError(f"{settings.production_file}: {exc}") from None
    record = ProductionRecord(prod.type, version, prod.tag, None, None, prod.base)
    runs = sorted(
        {*new_runs, *(store.read(lambda c: run_numbers(c, record)) if registered else ())}
    )
    ctx = StepContext(settings, store, record)
    roots = [
        os.path.normpath(Path(r).expanduser()) for r in (settings.data, *settings.site.output_roots)
    ]
    seen: dict[str, tuple[int, str]] = {}
    for run in runs or [_SAMPLE_RUN]:
        for name, path in _paths(ctx, run).items():
            if not _inside(path, roots):
                raise ConfigError(
                    f"{where}.{name}: outside the data directory {roots[0]}: run {run} would "
                    f"write {path}; fix the template, or list the directory in the site's "
                    "output_roots"
                )
            if path in seen:
                other_run, other = seen[path]
                raise ConfigError(
                    f"{where}.{name}: one path for two outputs: run {run} would write {path}, "
                    f"as outputs.{other} of run {other_run} does; every run and output needs "
                    "a path of its own "
                    "(put {run} in the template)"
                )
            seen[path] = (run, name)
    _check_others(ctx, store, seen, runs[0] if runs else _SAMPLE_RUN, where)


def _check_others(
    ctx: StepContext, store: Store, mine: dict[str, tuple[int, str]], sample: int, where: str
) -> None:
    """Refuse paths that another production recorded or would write with these templates."""
    others = [r for r in store.productions() if r.name != ctx.record.name]
    ours = _paths(ctx, sample)
    for other in others:
        if other.type != ctx.record.type:
            continue
        theirs = _paths(StepContext(ctx.settings, store, other), sample)
        for name, path in ours.items():
            if theirs.get(name) == path:
                raise ConfigError(
                    f"{where}.{name}: {ctx.record.name} and {other.name} would both write "
                    f"{path} (run {sample}); put {{version}} in the template"
                )
    recorded = store.read(lambda conn: recorded_outputs(conn, others))
    for path, (run, name) in mine.items():
        if path in recorded:
            production, their_run = recorded[path]
            raise ConfigError(
                f"{where}.{name}: run {run} would write {path}, which {production} recorded "
                f"as an output of its run {their_run}; change the template"
            )
