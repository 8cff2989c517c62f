"""The ``datasets`` table: which run belongs to which dataset, with what quality."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func, insert, select

from alcapctl.errors import UsageError
from alcapctl.store.records import DatasetRow
from alcapctl.store.schema import datasets

__all__ = ["dataset_names", "dataset_summary", "import_rows", "validate_datasets"]


def import_rows(conn: Connection, rows: Sequence[DatasetRow], source: str) -> tuple[int, int]:
    """Insert new (run, dataset) rows; (inserted, unchanged). A conflicting quality is refused."""
    wanted: dict[tuple[int, str], DatasetRow] = {}
    for row in rows:
        key = (row.run, row.dataset)
        seen = wanted.get(key)
        if seen is not None and seen.quality != row.quality:
            raise UsageError(
                f"{source}:{row.line}: run {row.run} in {row.dataset} has quality "
                f"{row.quality!r}, but line {seen.line} says {seen.quality!r}"
            )
        wanted[key] = row
    existing: dict[tuple[int, str], str | None] = {}
    runs = sorted({run for run, _ in wanted})
    for start in range(0, len(runs), 500):
        chunk = runs[start : start + 500]
        query = select(datasets.c.run, datasets.c.dataset, datasets.c.quality).where(
            datasets.c.run.in_(chunk)
        )
        for run, dataset, quality in conn.execute(query):
            existing[(int(run), dataset)] = quality
    new = []
    for key, row in wanted.items():
        if key not in existing:
            new.append({"run": row.run, "dataset": row.dataset, "quality": row.quality})
        elif existing[key] != row.quality:
            raise UsageError(
                f"{source}:{row.line}: run {row.run} in {row.dataset} has quality "
                f"{row.quality!r}, but the database says {existing[key]!r}; nothing was imported"
            )
    if new:
        conn.execute(insert(datasets), new)
    return len(new), len(wanted) - len(new)


def dataset_summary(conn: Connection) -> list[tuple[str, str | None, int]]:
    """(dataset, quality, runs) for every pair, sorted."""
    d = datasets
    query = (
        select(d.c.dataset, d.c.quality, func.count(func.distinct(d.c.run)))
        .group_by(d.c.dataset, d.c.quality)
        .order_by(d.c.dataset, d.c.quality)
    )
    return [(ds, q, int(n)) for ds, q, n in conn.execute(query)]


def dataset_names(conn: Connection) -> list[str]:
    query = select(datasets.c.dataset).distinct().order_by(datasets.c.dataset)
    return [name for name in conn.execute(query).scalars() if name is not None]


def validate_datasets(conn: Connection, wanted: Sequence[str]) -> None:
    """Exit 2 naming the valid datasets when one of ``wanted`` is unknown."""
    if not wanted:
        return
    known = dataset_names(conn)
    unknown = [name for name in wanted if name not in known]
    if unknown:
        valid = ", ".join(known) or "none (import a run list with: alcapctl datasets import FILE)"
        raise UsageError(f"unknown dataset(s) {', '.join(unknown)}; valid datasets: {valid}")
