"""Per-job cost of the local backend and the job wrapper, against ``xargs -P2``.

Runs N cheap jobs (``cat IN > TREE; cp TREE HIST``, 10 KB inputs) two at a time four
ways: xargs; the wrapper script run by ``sh`` from xargs (the wrapper's own cost); the
local backend submitting generated wrappers and reaping from exit files (submit/reap
without the database); and the submit and reap steps themselves on a real SQLite
database, chained as the run loop chains them (pause 0).
Usage: ``python benchmarks/local_backend.py [N]``.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alcapctl.batch.base import JobSpec
from alcapctl.batch.local import LocalBackend
from alcapctl.batch.wrapper import job_dir, read_exit, render_script, write_job

COMMAND = "cat {input} > {tree}; cp {tree} {hist}"
NPROC = 2


def _inputs(root: Path, n: int) -> list[Path]:
    raw = root / "raw"
    raw.mkdir()
    payload = b"x" * 10_000
    paths = [raw / f"run{i:05d}.mid" for i in range(n)]
    for path in paths:
        path.write_bytes(payload)
    return paths


def _outputs(root: Path, run: int) -> dict[str, Path]:
    return {
        "tree": root / f"tree/tree{run:05d}.root",
        "hist": root / f"hist/hist{run:05d}.root",
        "olog": root / f"log/run{run:05d}.out",
        "elog": root / f"log/run{run:05d}.err",
    }


def _spec(root: Path, run: int, raw: Path) -> JobSpec:
    name = f"alcap-bench1-{run:05d}-a1"
    jobdir = job_dir(root / "work", name)
    fields = {"input": str(raw)}
    text = render_script(name, jobdir, COMMAND, fields, _outputs(root, run), {}, "bench")
    return JobSpec(name=name, script=write_job(jobdir, text), jobdir=jobdir)


def bench_xargs(root: Path, raws: list[Path]) -> float:
    """The issue's baseline: ``sh -c 'cat IN > TREE; cp TREE HIST'`` per run."""
    start = time.perf_counter()
    subprocess.run(
        ["xargs", "-P2", "-I{}", "sh", "-c", "cat {} > {}.tree; cp {}.tree {}.hist"],
        input="\n".join(str(p) for p in raws),
        text=True,
        check=True,
    )
    return time.perf_counter() - start


def bench_wrapper_xargs(root: Path, raws: list[Path]) -> float:
    scripts = [str(_spec(root, i, raw).script) for i, raw in enumerate(raws)]
    start = time.perf_counter()
    subprocess.run(
        ["xargs", "-P2", "-n1", "/bin/sh"], input="\n".join(scripts), text=True, check=True
    )
    return time.perf_counter() - start


def bench_local(root: Path, raws: list[Path]) -> float:
    backend = LocalBackend(root / "work")
    pending = list(enumerate(raws))
    flying: dict[str, Path] = {}
    start = time.perf_counter()
    while pending or flying:
        while pending and len(flying) < NPROC:
            spec = _spec(root, *pending.pop())
            flying[backend.submit(spec)] = spec.jobdir
        done = [job_id for job_id, jobdir in flying.items() if read_exit(jobdir) is not None]
        if done:
            backend.poll(done)  # reaps the finished children
            for job_id in done:
                del flying[job_id]
        else:
            backend.wait(1.0)
    return time.perf_counter() - start


def bench_steps(root: Path, raws: list[Path]) -> float:
    """reap -> submit -> wait, as the run loop chains them, on a real database."""
    from alcapctl.config import load_settings
    from alcapctl.states import RunState
    from alcapctl.steps.claim import claim
    from alcapctl.steps.context import open_production
    from alcapctl.steps.reap import reap
    from alcapctl.steps.submit import submit
    from alcapctl.store import DatasetRow, RunTable, Store

    store, _ = Store.create(f"sqlite:///{root / 'production.db'}")
    store.import_datasets([DatasetRow(i + 1, "Bench", "gold") for i in range(len(raws))], "bench")
    toml = root / "bench.toml"
    toml.write_text(
        'type = "alcapana"\ntag = "bench"\n'
        "[limits]\nnproc = 2\npause = 0\nnprep = 0\n"
        '[job]\ncommand = "cat {input} > {tree}; cp {tree} {hist}"\n'
        "[outputs]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in _outputs(root, 0).items() if k != "odb").replace(
            "00000", "{run:05d}"
        )
        + f'odb = "{root}/hist/hist{{run:05d}}.root"\n'  # the same file: no extra work
    )
    (root / "site.toml").write_text(f'database = "{root}/production.db"\ndata = "{root}"\n')
    settings = load_settings(toml, root / "site.toml")
    assert settings.production is not None
    store.init(settings.production)
    ctx = open_production(settings, store)
    runs = claim(ctx, len(raws)).claimed
    inputs = dict(zip(runs, raws, strict=True))

    def staged(table: RunTable) -> None:
        for run, raw in inputs.items():
            table.move([run], RunState.CLAIMED, RunState.STAGED, ctx.owner, input=str(raw))

    store.runs(ctx.record, staged, write=True)
    backend = LocalBackend(ctx.workdir)
    start = time.perf_counter()
    finished = 0
    while finished < len(raws):
        reaped = reap(ctx, backend)
        if reaped.failed:
            raise RuntimeError(f"benchmark jobs failed: {reaped.failed}")
        finished += len(reaped.finished)
        submit(ctx, backend)
        backend.wait(1.0)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


BENCHES = {
    "xargs": bench_xargs,
    "wrapper via xargs": bench_wrapper_xargs,
    "local backend": bench_local,
    "submit+reap steps": bench_steps,
}


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the jobs)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    results: dict[str, list[float]] = {name: [] for name in BENCHES}
    cpu: dict[str, list[float]] = {name: [] for name in BENCHES}
    for repetition in range(3):
        names = list(BENCHES) if repetition % 2 == 0 else list(BENCHES)[::-1]
        for name in names:
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                raws = _inputs(root, n)
                before = _cpu()
                results[name].append(BENCHES[name](root, raws))
                cpu[name].append(_cpu() - before)
    base = statistics.median(results["xargs"])
    print(f"{n} jobs, {NPROC} at a time; median of 3 (min-max)")
    for name, times in results.items():
        med = statistics.median(times)
        extra = (med - base) / n * 1000
        print(
            f"{name:18s} {med:6.2f} s ({min(times):.2f}-{max(times):.2f})  "
            f"{med / n * 1000:5.2f} ms/job  {extra:+5.2f} ms/job over xargs  x{med / base:.2f}  "
            f"cpu {statistics.median(cpu[name]) / n * 1000:5.2f} ms/job"
        )


if __name__ == "__main__":
    main()
