"""Reading run lists (run, dataset, quality) from CSV or TSV files for ``datasets import``.

The csv module reads them in strict mode, one record a line: a quote left open is an
error naming its line, not a record that swallows the runs after it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from alcapctl.errors import UsageError
from alcapctl.runnumber import MAX_RUN
from alcapctl.store.records import DatasetRow

__all__ = ["read_runlist"]

_NULLS = {"", "null", "none", "\\n"}


def read_runlist(path: Path) -> list[DatasetRow]:
    """Rows of a CSV/TSV run list; a header line is optional, '#' lines are comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.startswith("#")), "")
    delimiter = "\t" if "\t" in first else ","
    order = ("run", "dataset", "quality")
    rows: list[DatasetRow] = []
    for lineno, fields in _records(path, lines, delimiter):
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in fields]
        if not rows and not fields[0].lstrip("-").isdigit():
            header = [f.lower() for f in fields]
            if sorted(header) != sorted(order):
                raise UsageError(
                    f"{path}:{lineno}: header must name run, dataset, quality; got {fields}"
                )
            order = tuple(header)  # type: ignore[assignment]
            continue
        if len(fields) not in (2, 3):
            raise UsageError(
                f"{path}:{lineno}: expected run{delimiter}dataset{delimiter}quality, got {fields}"
            )
        record = dict(zip(order, [*fields, ""][:3], strict=True))
        try:
            run = int(record["run"])
        except ValueError:
            raise UsageError(f"{path}:{lineno}: run {record['run']!r} is not a number") from None
        if run < 0 or not record["dataset"]:
            raise UsageError(f"{path}:{lineno}: needs a run >= 0 and a dataset name")
        if run > MAX_RUN:
            raise UsageError(f"{path}:{lineno}: run {run} is above {MAX_RUN} (a 64-bit integer)")
        quality = None if record["quality"].lower() in _NULLS else record["quality"]
        rows.append(DatasetRow(run, record["dataset"], quality, lineno))
    if not rows:
        raise UsageError(f"{path}: no runs in the file")
    return rows


def _records(path: Path, lines: list[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each line; a quote left open or a stray quote is an error
    naming the line, never a record that swallows the lines after it."""
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        lineno = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UsageError(f"{path}:{lineno}: malformed line ({exc})") from None
        if reader.line_num != lineno:
            raise UsageError(f"{path}:{lineno}: a quote is not closed on this line")
        yield lineno, fields
