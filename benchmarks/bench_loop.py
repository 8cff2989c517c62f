"""The production loop against what users would otherwise type: xargs, GNU parallel, Snakemake.

Every tool runs the same workload: N runs, a 10 KB input each, and a cheap job that copies
the input into a tree and the tree into a histogram.  alcapctl additionally claims,
stages (file:// archive, hard links), submits, reaps and records every run in SQLite.
Setup (inputs, database, Snakefile) is outside the timed part for every tool.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from alcapctl.store import DatasetRow, Store
from benchmarks.common import ALCAPCTL

JOB = "cat {input} > {tree}; cp {tree} {hist}"
_SNAKEFILE = """\
rule all:
    input: expand("out/hist{{run}}.root", run=range(1, {runs} + 1))

rule job:
    input: "in/run{{run}}.mid"
    output: tree="out/tree{{run}}.root", hist="out/hist{{run}}.root"
    shell: "cat {{input}} > {{output.tree}}; cp {{output.tree}} {{output.hist}}"
"""


def _inputs(root: Path, runs: int) -> Path:
    folder = root / "in"
    folder.mkdir(parents=True)
    payload = os.urandom(10_000)
    for run in range(1, runs + 1):
        (folder / f"run{run}.mid").write_bytes(payload)
    (root / "out").mkdir()
    return folder


def prepare_xargs(root: Path, runs: int) -> Callable[[], None]:
    _inputs(root, runs)
    job = "cat in/run$1.mid > out/tree$1.root; cp out/tree$1.root out/hist$1.root"
    argv = ["xargs", "-P2", "-n1", "sh", "-c", job, "job"]
    numbers = "".join(f"{r}\n" for r in range(1, runs + 1))
    return lambda: _feed(argv, numbers, root)


def prepare_parallel(root: Path, runs: int) -> Callable[[], None]:
    """GNU parallel runs its command line through a shell itself (here /bin/sh, as xargs')."""
    _inputs(root, runs)
    job = "cat in/run{}.mid > out/tree{}.root; cp out/tree{}.root out/hist{}.root"
    numbers = "".join(f"{r}\n" for r in range(1, runs + 1))
    os.environ["PARALLEL_SHELL"] = "/bin/sh"
    return lambda: _feed(["parallel", "-j2", "--will-cite", job], numbers, root)


def _feed(argv: Sequence[str], stdin: str, cwd: Path) -> None:
    subprocess.run(argv, input=stdin, text=True, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def prepare_snakemake(root: Path, runs: int, snakemake: str) -> Callable[[], None]:
    _inputs(root, runs)
    (root / "Snakefile").write_text(_SNAKEFILE.format(runs=runs))
    argv = [snakemake, "--cores", "2", "--quiet", "all", "-s", "Snakefile"]

    def go() -> None:
        subprocess.run(
            argv, cwd=root, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    return go


def prepare_alcapctl(
    root: Path, runs: int, database: str | None = None, nproc: int = 2
) -> Callable[[], None]:
    """alcapctl's workload on ``root/production.db``, or on the server URL ``database``,
    with ``nproc`` job slots (two, as the peers' -P2/-j2) and twice that staged ahead."""
    archive = _inputs(root, runs)
    db = database or str(root / "production.db")
    store, _ = Store.create(database or f"sqlite:///{db}")
    store.import_datasets([DatasetRow(r, "bench", "gold") for r in range(1, runs + 1)], "bench")
    store.close()
    site = {
        "database": db,
        "data": str(root / "data"),
        "backend": "local",
        "archive": {"url": f"file://{archive}", "filename": "run{run}.mid"},
    }
    (root / "site.toml").write_text(tomli_w.dumps(site))
    prod = {
        "type": "alcapana",
        "tag": "bench",
        "site": str(root / "site.toml"),
        "limits": {"nproc": nproc, "nprep": 2 * nproc, "pause": 0},
        "job": {"command": JOB},
        "outputs": {"odb": ""},
    }
    prod_file = root / "bench.toml"
    prod_file.write_text(tomli_w.dumps(prod))
    subprocess.run([*ALCAPCTL, "init", str(prod_file)], check=True, capture_output=True)
    return lambda: _run_alcapctl(prod_file, runs)


def _run_alcapctl(prod_file: Path, runs: int) -> None:
    done = subprocess.run(
        [*ALCAPCTL, "-q", "run", str(prod_file), "--json"], capture_output=True, text=True
    )
    if done.returncode != 0 or f'"F": {runs}' not in done.stdout:
        raise RuntimeError(f"alcapctl run failed: {done.stdout[-500:]} {done.stderr[-2000:]}")


def measure(
    tools: Mapping[str, Callable[[Path, int], Callable[[], None]]],
    runs: int,
    repeat: int,
    where: Path | None = None,
    trees: list[Path] | None = None,
) -> dict[str, dict[str, float]]:
    """Wall times per tool, repetitions interleaved (ABCD ABCD ...) so drift hits all alike.

    Each tool's tree is made in ``where`` (default: the system's temporary directory) and
    removed at the end, or added to ``trees`` for the caller to remove later: on ext4
    without a journal (this VM's root), a file created in the minutes after a mass
    deletion pays for skipping the freed inodes, so removing each tree at once charged
    the next tool for it.
    """
    times: dict[str, list[float]] = {name: [] for name in tools}
    roots: list[Path] = [] if trees is None else trees
    try:
        for rep in range(repeat):
            order = list(tools) if rep % 2 == 0 else list(reversed(list(tools)))
            for name in order:
                root = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=where))
                roots.append(root)
                go = tools[name](root, runs)
                # Every tool starts on a quiet disk: the set-up's files are written out first.
                os.sync()
                start = time.perf_counter()
                go()
                times[name].append(time.perf_counter() - start)
    finally:
        if trees is None:
            remove_trees(roots)
    return {
        name: {"median": statistics.median(t), "min": min(t), "max": max(t), "runs": runs}
        for name, t in times.items()
    }


def remove_trees(trees: list[Path]) -> None:
    for root in trees:
        shutil.rmtree(root, ignore_errors=True)


def table(results: dict[str, dict[str, float]]) -> list[str]:
    """Rows: median and range, per-run overhead over xargs, ratio to xargs."""
    base = results["xargs"]["median"]
    lines = [
        f"{'tool':<11}{'runs':>7}{'median s':>10}{'min-max s':>15}{'ms/run over xargs':>19}"
        f"{'x xargs':>9}"
    ]
    for name, r in results.items():
        over = (r["median"] - base) / r["runs"] * 1e3
        lines.append(
            f"{name:<11}{r['runs']:>7}{r['median']:>10.2f}{r['min']:>8.2f}-{r['max']:<6.2f}"
            f"{over:>19.2f}{r['median'] / base:>9.2f}"
        )
    return lines


def startup_figures() -> dict[str, Any]:
    """`alcapctl --help`, and a cron step with nothing to do, as whole processes."""

    def median_of(argv: Sequence[str], n: int = 7) -> float:
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            subprocess.run(argv, check=False, capture_output=True)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    root = Path(tempfile.mkdtemp(prefix="bench-cron-"))
    try:
        go = prepare_alcapctl(root, 20)
        go()  # finish it: the cron step then finds nothing to do
        prod = str(root / "bench.toml")
        return {
            "help_s": median_of([*ALCAPCTL, "--help"]),
            "cron_run_once_s": median_of([*ALCAPCTL, "-q", "run", prod, "--once"]),
            "cron_reap_s": median_of([*ALCAPCTL, "-q", "reap", prod]),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
