"""A site for tests of whole productions: local backend, and a file:// archive of raw files."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from tests.conftest import write_toml


def local_site(
    tmp_path: Path,
    db_path: Path,
    runs: Iterable[int],
    content: Callable[[int], str] = lambda run: f"raw data of run {run}\n",
    **keys: str,
) -> Path:
    """``site-local.toml``: the database, ``tmp_path/data``, an archive holding ``runs``;
    ``keys`` override or add site keys (``data``, ``work``, ``staging``)."""
    archive = tmp_path / "archive"
    archive.mkdir()
    for run in runs:
        (archive / f"run{run:05d}.mid").write_text(content(run))
    return write_toml(
        tmp_path / "site-local.toml",
        {
            "database": str(db_path),
            "data": str(tmp_path / "data"),
            "backend": "local",
            "archive": {"url": f"file://{archive}"},
            **keys,
        },
    )
