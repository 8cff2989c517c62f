"""``report``: a production's progress, jobs, run times and failures as HTML or JSON."""

from __future__ import annotations

import importlib.util
import os
from datetime import datetime, timezone
from pathlib import Path

import click

from alcapctl.cli.options import (
    AppContext,
    emit_json,
    json_option,
    productions_argument,
    store_options,
)
from alcapctl.errors import UsageError


@click.command()
@productions_argument
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Write a self-contained HTML page with charts to FILE.",
)
@click.option(
    "--group-by",
    type=click.Choice(["host", "user"]),
    default="host",
    show_default=True,
    help="Rows of the job timeline.",
)
@json_option
@store_options
def report(
    app: AppContext,
    all_productions: bool,
    html_file: Path | None,
    group_by: str,
    as_json: bool,
) -> None:
    """Progress, job timeline, run times, failures and provenance of a production.

    Reads only: it never takes the write lock, and reports a database that others are
    writing to as one consistent snapshot.  The HTML page loads nothing from anywhere,
    so it can be mailed or attached to a logbook entry.

    \b
    Examples:
      alcapctl report productions/rootana_v8.toml --html rootana_v8.html
      alcapctl report productions/rootana_v8.toml --json
      alcapctl report --all --html productions.html --group-by user
    """
    from alcapctl.report.model import build_report
    from alcapctl.store.report import read_report

    if html_file is None and not as_json:
        raise UsageError("say what to write: --html FILE, --json, or both")
    if app.production_file is None and not all_productions:
        raise UsageError("name a production TOML, or give --all")
    if html_file is not None and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--html draws its charts with matplotlib: pip install 'alcapctl[report]'")
    settings = app.settings
    prod = None if all_productions else settings.production
    location, snapshots = read_report(settings.database, app.lock_timeout, prod)
    template = prod.output_templates().get("elog") if prod is not None else None
    site_fields = {"data": str(settings.data), "user": settings.user}
    now = datetime.now(timezone.utc)
    reports = [
        build_report(
            snapshot,
            location,
            group_by="user" if group_by == "user" else "host",
            now=now,
            elog_template=template,
            site_fields=site_fields,
        )
        for snapshot in snapshots
    ]
    if html_file is not None:
        from alcapctl.report.page import render_page

        _write(html_file, render_page(reports, location, now))
    if as_json:
        data = [r.to_dict() for r in reports]
        emit_json(data if all_productions else data[0])


def _write(path: Path, text: str) -> None:
    """Replace ``path`` whole: a reader never sees half a page."""
    partial = path.with_name(f".{path.name}.part")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot write the report ({exc.strerror})") from None
