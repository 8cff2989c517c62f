"""make bench-cluster: 200 runs on the real single-node Slurm, as job arrays against one
sbatch per run, and through Snakemake's Slurm executor plugin when it can run here.

  python benchmarks/bench_cluster.py [--runs 200] [--snakemake PATH] [--only NAME ...]

Needs the Slurm daemons of cluster/slurm-up.sh (cluster/bench.sh starts and stops them).
Every tool runs make bench's cheap job (input to tree to histogram); wall time is from the
command's start until every run's output exists, scheduler calls are counted by a
recording wrapper on PATH in front of sbatch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_loop import _SNAKEFILE, JOB, _inputs  # noqa: E402
from benchmarks.common import ALCAPCTL, make_production  # noqa: E402


def _recorder(root: Path) -> tuple[dict[str, str], Path]:
    """An environment whose PATH counts sbatch calls in front of the real one."""
    bin_dir, log = root / "bin", root / "sbatch-calls.log"
    bin_dir.mkdir()
    real = shutil.which("sbatch")
    if real is None:
        raise SystemExit("sbatch is not installed: run this through cluster/bench.sh")
    wrapper = bin_dir / "sbatch"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, log


def _calls(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def alcapctl(root: Path, runs: int, array: int) -> dict[str, float]:
    """``alcapctl run`` of a fresh production; ``array`` 0 submits one sbatch per run."""
    archive = _inputs(root, runs)
    _, prod = make_production(
        root,
        runs,
        ("bench",),
        site={"work": str(root / "work")},
        backend="slurm",
        archive={"url": f"file://{archive}", "filename": "run{run}.mid"},
        limits={"nproc": runs, "nprep": runs, "pause": 1, "grace": 10, "array": array},
        job={"command": JOB},
        outputs={"odb": ""},
    )
    env, log = _recorder(root)
    start = time.perf_counter()
    done = subprocess.run(
        [*ALCAPCTL, "-q", "run", str(prod), "--json"], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0 or f'"F": {runs}' not in done.stdout:
        raise RuntimeError(f"alcapctl run failed: {done.stdout[-500:]} {done.stderr[-2000:]}")
    return {"wall_s": wall, "sbatch_calls": _calls(log)}


def snakemake(root: Path, runs: int, program: str) -> dict[str, float] | str:
    """The same runs through ``snakemake --executor slurm``, as its arrays; its error text
    if it fails."""
    _inputs(root, runs)
    (root / "Snakefile").write_text(_SNAKEFILE.format(runs=runs))
    env, log = _recorder(root)
    argv = [program, "--executor", "slurm", "--jobs", str(runs), "--latency-wait", "10"]
    # without slurmdbd sacct fails, and the plugin would wait for ever for its jobs' states
    argv += ["--slurm-status-command", "squeue", "--slurm-array-jobs=all"]
    argv += ["--default-resources", "slurm_account=root", "runtime=10", "mem_mb=100"]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    made = sum(1 for _ in (root / "out").glob("hist*.root"))
    if done.returncode != 0 or made != runs:
        return f"exit {done.returncode}, {made}/{runs} outputs; stderr ends:\n{done.stderr[-3000:]}"
    return {"wall_s": wall, "sbatch_calls": _calls(log)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--snakemake", help="a snakemake with snakemake-executor-plugin-slurm")
    parser.add_argument(
        "--only", nargs="+", choices=("arrays", "single", "snakemake"), help="run only these"
    )
    args = parser.parse_args()
    chosen = set(args.only or ("arrays", "single", "snakemake"))
    rows: dict[str, dict[str, float] | str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        for key, label, array in (
            ("arrays", "alcapctl, arrays", 1000),
            ("single", "alcapctl, one sbatch per run", 0),
        ):
            if key in chosen:
                rows[label] = alcapctl(Path(tmp) / key, args.runs, array)
                print(f"{label}: {rows[label]}", flush=True)
        if args.snakemake and "snakemake" in chosen:
            program = os.path.abspath(args.snakemake)
            rows["snakemake --executor slurm, arrays"] = snakemake(
                Path(tmp) / "snakemake", args.runs, program
            )
    print(f"\n{args.runs} runs on single-node Slurm")
    print(f"{'tool':<32}{'sbatch calls':>14}{'wall s':>9}")
    for label, row in rows.items():
        if isinstance(row, str):
            print(f"{label:<32} did not run: {row}")
        else:
            print(f"{label:<32}{row['sbatch_calls']:>14.0f}{row['wall_s']:>9.1f}")


if __name__ == "__main__":
    main()
