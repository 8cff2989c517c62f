"""make bench: every figure the issues ask for, in one report, compared in the same run.

  python benchmarks/run.py [--quick] [--snakemake PATH] [--ftp-size 1G] [--dir DIR]

--quick runs smaller sizes (a smoke test of the benchmarks themselves).  --dir puts the
trees of the run-loop benchmarks on another file system (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench_ftp, bench_loop, bench_pg, bench_store  # noqa: E402
from benchmarks.common import describe_fs  # noqa: E402

# A tool's set-up: given a tree and a number of runs, it returns the timed part.
Prepare = Callable[[Path, int], Callable[[], None]]


def _section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def _ratios(small: dict[str, dict[str, float]]) -> None:
    print("\n".join(bench_loop.table(small)))
    a, x = small["alcapctl"]["median"], small["xargs"]["median"]
    print(f"alcapctl / xargs = {a / x:.2f} (target <= 2)")
    if "parallel" in small:
        print(f"parallel / alcapctl = {small['parallel']['median'] / a:.2f} (target > 1)")
    if "snakemake" in small:
        print(f"snakemake / alcapctl = {small['snakemake']['median'] / a:.2f} (target >= 9)")


def loop_benchmarks(
    runs: int, repeat: int, snakemake: str | None, big: int, start_up: float, where: Path | None
) -> None:
    tools: dict[str, Prepare] = {
        "alcapctl": bench_loop.prepare_alcapctl,
        "xargs": bench_loop.prepare_xargs,
    }
    if shutil.which("parallel"):
        tools["parallel"] = bench_loop.prepare_parallel
    if snakemake:
        tools["snakemake"] = partial(
            bench_loop.prepare_snakemake, snakemake=os.path.abspath(snakemake)
        )
    _section(f"{runs} cheap runs, {repeat} repetitions, alternating order")
    folder = where or Path(tempfile.gettempdir())
    print(f"trees in {folder}: {describe_fs(folder)}; removed after the {big:,} runs")
    trees: list[Path] = []
    try:
        small = bench_loop.measure(tools, runs, repeat, where, trees)
        _ratios(small)
        _section(f"{big} cheap runs: how per-run cost grows")
        peers = {name: tools[name] for name in ("alcapctl", "xargs")}
        large = bench_loop.measure(peers, big, 1, where, trees)
    finally:
        bench_loop.remove_trees(trees)
    print("\n".join(bench_loop.table(large)))
    a, x = small["alcapctl"]["median"], small["xargs"]["median"]
    per_small = (a - x) / runs
    per_large = (large["alcapctl"]["median"] - large["xargs"]["median"]) / big
    growth = per_large / per_small if per_small > 0 else float("nan")
    print(
        f"alcapctl overhead per run: {per_small * 1e3:.2f} ms at {runs}, "
        f"{per_large * 1e3:.2f} ms at {big} (x{growth:.2f}; target: grows by at most 20%)"
    )
    # The process start-up (a run with nothing to do) is paid once per production.
    net_small = per_small - start_up / runs
    net_large = per_large - start_up / big
    print(
        f"  without the {start_up * 1e3:.0f} ms start-up: {net_small * 1e3:.2f} ms at {runs}, "
        f"{net_large * 1e3:.2f} ms at {big} (x{net_large / net_small:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--snakemake", help="snakemake executable (make bench installs one)")
    parser.add_argument("--ftp-size", default="1G", help="file size for FTP vs curl")
    parser.add_argument(
        "--dir", type=Path, help="where the run-loop benchmarks make their trees (default: TMPDIR)"
    )
    args = parser.parse_args()
    quick = args.quick
    print(
        f"machine: {platform.machine()}, {platform.processor() or '?'}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )

    _section("startup")
    s = bench_loop.startup_figures()
    print(f"alcapctl --help: {s['help_s'] * 1e3:.0f} ms (target <= 150)")
    print(
        f"cron step with nothing to do: run --once {s['cron_run_once_s'] * 1e3:.0f} ms, "
        f"reap {s['cron_reap_s'] * 1e3:.0f} ms (target <= 400)"
    )

    _section("claims under contention")
    c = bench_store.bench_claim(2_000 if quick else 10_000)
    print(
        f"{c['workers']} processes, {c['runs']} runs: {c['claims_per_s']:.0f} claims/s, "
        f"duplicates {c['duplicates']}"
    )

    _section("status vs the sqlite3 CLI")
    st = bench_store.bench_status(10_000 if quick else 100_000)
    print(
        f"{st['runs']} runs: alcapctl status {st['alcapctl_status_s']['median'] * 1e3:.0f} ms, "
        f"sqlite3 GROUP BY {st['sqlite3_cli_s']['median'] * 1e3:.0f} ms "
        f"(x{st['ratio']:.1f}, both whole processes)"
    )

    _section("PostgreSQL on loopback vs SQLite")
    bench_pg.report(quick)

    _section("FTP staging vs curl on loopback")
    size = bench_ftp.parse_size("64M" if quick else args.ftp_size)
    f = bench_ftp.bench_ftp(size, repeat=1 if quick else 3)
    print(
        f"{size >> 20} MiB: alcapctl {f['alcapctl_mb_per_s']:.0f} MB/s, "
        f"curl {f['curl_mb_per_s']:.0f} MB/s (ours / curl = {f['ratio']:.2f})"
    )

    loop_benchmarks(
        100 if quick else 1_000,
        1 if quick else 3,
        args.snakemake,
        500 if quick else 10_000,
        s["cron_run_once_s"],
        args.dir,
    )


if __name__ == "__main__":
    main()
