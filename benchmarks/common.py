"""Helpers shared by the benchmarks: building databases and productions, timing commands."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from alcapctl.config import load_settings
from alcapctl.store import DatasetRow, Store

ALCAPCTL = [sys.executable, "-m", "alcapctl"]


def make_production(
    root: Path,
    runs: int,
    datasets: Sequence[str] = ("SiR2",),
    database: str | None = None,
    **fields: Any,
) -> tuple[Path, Path]:
    """A database with ``runs`` gold runs spread over ``datasets`` and a production on them;
    ``database``: a server URL instead of ``root/production.db``."""
    root.mkdir(parents=True, exist_ok=True)
    db = root / "production.db"
    url = database or f"sqlite:///{db}"
    store, _ = Store.create(url)
    rows = [DatasetRow(r, datasets[r % len(datasets)], "gold") for r in range(1, runs + 1)]
    store.import_datasets(rows, "generated")
    site = {"database": database or str(db), "data": str(root / "data"), **fields.pop("site", {})}
    (root / "site.toml").write_text(tomli_w.dumps(site))
    prod = root / "prod.toml"
    content = {
        "type": "alcapana",
        "tag": "bench",
        "site": str(root / "site.toml"),
        "job": {"command": "true"},
        **fields,
    }
    prod.write_text(tomli_w.dumps(content))
    settings = load_settings(prod)
    assert settings.production is not None
    store.init(settings.production)
    store.close()
    return db, prod


def describe_fs(path: Path) -> str:
    """The file system ``path`` lies on: type, device, and for ext4 whether it journals.

    On ext4 without a journal the kernel skips inodes freed in the last minutes when it
    allocates new ones (``recently_deleted``), so each new file costs 0.1–0.25 ms instead
    of about 10 µs after a benchmark has deleted the previous tool's thousands of files.
    """
    best = ("", "?", "?")
    target = str(path.resolve())
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            point = fields[4]
            fstype, source = fields[fields.index("-") + 1 : fields.index("-") + 3]
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best[0]):
                best = (point, fstype, source)
    point, fstype, source = best
    text = f"{fstype} on {source}, mounted at {point}"
    if fstype == "ext4":
        device = os.path.basename(source)
        jbd2 = Path("/proc/fs/jbd2")
        journal = jbd2.is_dir() and any(e.name.startswith(f"{device}-") for e in jbd2.iterdir())
        text += ", with a journal" if journal else ", without a journal"
    return text


def timed(fn: Callable[[], object], repeat: int = 5) -> dict[str, float]:
    """Median, min and max wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def run_quiet(argv: Sequence[str | Path], env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [str(a) for a in argv],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
