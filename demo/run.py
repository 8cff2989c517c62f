"""make demo: a whole production end to end on the embedded defaults, then its status.

Builds .demo/ afresh: a local archive of small generated raw files, a site file (SQLite
database, local backend, file:// archive), a run list; then runs the real CLI:
db init, datasets import, check, init, run, status.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
PRODUCTION = ROOT / "productions" / "demo.toml"
RUNS = {"SiR2": range(2091, 2101), "Al100": range(2119, 2125), "Common": range(3200, 3202)}


def alcapctl(*args: str) -> None:
    print(f"\n$ alcapctl {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "alcapctl", *args], check=True)


def build() -> None:
    shutil.rmtree(DEMO, ignore_errors=True)
    archive = DEMO / "archive"
    archive.mkdir(parents=True)
    rng = random.Random(2014)
    lines = ["run\tdataset\tquality"]
    for dataset, runs in RUNS.items():
        for run in runs:
            (archive / f"run{run:05d}.mid").write_bytes(rng.randbytes(rng.randint(2_000, 20_000)))
            lines.append(f"{run}\t{dataset}\t{'' if dataset == 'Common' else 'gold'}")
    (DEMO / "runs.tsv").write_text("\n".join(lines) + "\n")
    (DEMO / "site.toml").write_text(
        f'database = "production.db"\ndata = "data"\nbackend = "local"\n\n'
        f'[archive]\nurl = "file://{archive}"\n'
    )
    shutil.copy(ROOT / "demo" / "demo-job.sh", DEMO / "demo-job.sh")


def main() -> None:
    start = time.monotonic()
    build()
    os.environ.pop("ALCAPCTL_DATABASE", None)
    alcapctl("db", "init", "--production", str(PRODUCTION))
    alcapctl("datasets", "import", str(DEMO / "runs.tsv"), "--production", str(PRODUCTION))
    alcapctl("init", str(PRODUCTION))
    alcapctl("run", str(PRODUCTION))
    alcapctl("status", str(PRODUCTION))
    print(f"\nDemo production finished in {time.monotonic() - start:.1f} s; files in {DEMO}")


if __name__ == "__main__":
    main()
