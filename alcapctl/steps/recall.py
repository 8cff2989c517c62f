"""Tape recalls ahead of downloads: each claimed run's file is asked for once.

A recall takes minutes to hours at the PSI archive, so it goes out for every claimed run
as soon as the run is claimed, long before its turn to download.  A marker file per input
under the production's work directory remembers what was sent, across processes; it is
removed once the input is staged, so a run that has to be fetched again is recalled again.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from alcapctl.archive import Archive, ArchiveUnavailable
from alcapctl.steps.context import StepContext

__all__ = ["forget_recalls", "recall_inputs"]

log = structlog.get_logger("alcapctl.recall")


def _markers(ctx: StepContext) -> Path:
    return ctx.workdir / "recalled"


def recall_inputs(ctx: StepContext, archive: Archive, names: dict[int, str]) -> list[int]:
    """Send the recall command for each run (run -> file name) not recalled yet."""
    markers = _markers(ctx)
    try:
        done = set(os.listdir(markers))
    except FileNotFoundError:
        done = set()
    template = ctx.settings.archive.recall
    assert template is not None  # archive.recalls says there is one
    wanted = {
        template.format(**ctx.fields(run), filename=name): (run, name)
        for run, name in names.items()
        if name not in done
    }
    if not wanted:
        return []
    try:
        sent = archive.recall(list(wanted))
    except ArchiveUnavailable as exc:
        log.warning("recall not sent: archive unavailable", reason=str(exc))
        return []
    markers.mkdir(parents=True, exist_ok=True)
    for command in sent:
        (markers / wanted[command][1]).touch()
    runs = sorted(wanted[command][0] for command in sent)
    if runs:
        log.info("recall sent", runs=runs)
    return runs


def forget_recalls(ctx: StepContext, names: list[str]) -> None:
    """Staged: a later fetch of these inputs must recall them again."""
    markers = _markers(ctx)
    for name in names:
        (markers / name).unlink(missing_ok=True)
