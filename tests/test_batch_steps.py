"""submit, reap and retry with the local backend: real jobs, real files, real SQLite."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from alcapctl.batch.base import JobInfo, JobState, SchedulerError
from alcapctl.batch.local import LocalBackend
from alcapctl.batch.wrapper import (
    INTENT_FILE,
    job_dir,
    job_name,
    read_exit,
)
from alcapctl.errors import UsageError
from alcapctl.states import RunState
from alcapctl.steps.context import StepContext
from alcapctl.steps.reap import reap, settle
from alcapctl.steps.retry import retry
from alcapctl.steps.submit import submit
from alcapctl.steps.units import InUnit
from alcapctl.store import RunTable
from alcapctl.store.schema import blobs
from tests.batch_support import make_context, rows, stage, wait_for_jobs

R, S, C, F, X = (
    RunState.RUNNING,
    RunState.STAGED,
    RunState.CLAIMED,
    RunState.FINISHED,
    RunState.FAILED,
)


@pytest.fixture
def ctx(make_production: Callable[..., Path], tmp_path: Path) -> Iterator[StepContext]:
    context = make_context(make_production, tmp_path)
    yield context
    context.store.close()


class CountingBackend(LocalBackend):
    """The real local backend, counting scheduler queries."""

    polls = 0

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        self.polls += 1
        return super().poll(job_ids)


@pytest.fixture
def backend(ctx: StepContext) -> Iterator[CountingBackend]:
    local = CountingBackend(ctx.workdir, cancel_grace=1)
    yield local
    for pid, child in list(local._children.items()):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        child.wait()


def _run_jobs(ctx: StepContext, backend: LocalBackend, runs: Sequence[int]) -> None:
    submit(ctx, backend)
    wait_for_jobs(ctx, backend, runs)
    reap(ctx, backend)


def test_success_records_outputs_modules_and_deletes_input(
    ctx: StepContext, backend: CountingBackend
) -> None:
    [run] = stage(ctx, ["ok"])
    result = submit(ctx, backend)
    assert [e.text for e in result.events] == [f"Submitting run: {run}"]
    record = rows(ctx)[run]
    assert record.status is R and record.job_id == result.submitted[run]
    assert record.backend == "local" and record.start is not None
    wait_for_jobs(ctx, backend, [run])
    backend.polls = 0
    reaped = reap(ctx, backend)
    assert reaped.finished == [run]
    assert backend.polls == 0  # the exit file answered; no scheduler query
    record = rows(ctx)[run]
    paths = ctx.output_paths(run)
    assert record.status is F and record.stop is not None
    assert record.outputs == {k: str(v) for k, v in paths.items()}
    assert paths["tree"].read_text().startswith("ok\n")
    assert paths["olog"].read_text() == "processed\n"
    assert not Path(record.input or "").exists()
    content = ctx.store.read(
        lambda conn: conn.execute(
            select(blobs.c.content).where(blobs.c.sha256 == record.modules_sha256)
        ).scalar_one()
    )
    assert content == "module one\nmodule two\n"
    assert not (job_dir(ctx.workdir, job_name(ctx.record.short, run, 1)) / INTENT_FILE).exists()


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("fail", "exit code 3"),
        ("kill", "killed by signal 9"),
        ("missing", "missing output hist"),
    ],
)
def test_failed_attempts_then_x(
    ctx: StepContext, backend: CountingBackend, mode: str, error: str
) -> None:
    [run] = stage(ctx, [mode])
    _run_jobs(ctx, backend, [run])
    record = rows(ctx)[run]
    assert record.status is S and record.attempts == 1  # input still staged
    assert error in (record.error or "")
    _run_jobs(ctx, backend, [run])
    record = rows(ctx)[run]
    assert record.status is X and record.attempts == 2
    failures = ctx.store.runs(ctx.record, lambda t: t.failures([run]), write=False)
    assert [(f.attempt, f.step) for f in failures] == [(1, "reap"), (2, "reap")]
    assert all(error in (f.reason or "") for f in failures)
    if mode == "fail":
        assert "boom: bad calibration" in (record.error or "")
        assert [f.exit_code for f in failures] == [3, 3]
    assert not Path(record.input or "").exists()  # X: its raw input no longer takes space


def test_missing_input_goes_back_to_claimed(ctx: StepContext, backend: CountingBackend) -> None:
    [run] = stage(ctx, ["fail"])
    submit(ctx, backend)
    wait_for_jobs(ctx, backend, [run])
    Path(rows(ctx)[run].input or "").unlink()
    reap(ctx, backend)
    assert rows(ctx)[run].status is C


def _kill_job(ctx: StepContext, backend: LocalBackend, run: int) -> None:
    """SIGKILL the whole job, as an out-of-memory killer would: no exit file."""
    pid = int((rows(ctx)[run].job_id or "").split("-")[0])
    os.killpg(pid, signal.SIGKILL)
    backend._children[pid].wait()


def test_lost_job_only_after_grace(make_production: Callable[..., Path], tmp_path: Path) -> None:
    ctx = make_context(make_production, tmp_path, grace=3600)
    backend = LocalBackend(ctx.workdir)
    [run] = stage(ctx, ["hang"])
    submit(ctx, backend)
    _kill_job(ctx, backend, run)  # no exit file will ever come
    assert reap(ctx, backend).running == 1
    assert rows(ctx)[run].status is R
    lenient = replace(ctx, settings=replace(ctx.settings, overrides={"grace": 0}))
    reap(lenient, backend)
    record = rows(ctx)[run]
    assert record.status is S and "lost" in (record.error or "")
    ctx.store.close()


def test_poll_error_changes_nothing(ctx: StepContext, backend: CountingBackend) -> None:
    [run] = stage(ctx, ["hang"])
    submit(ctx, backend)
    _kill_job(ctx, backend, run)

    class Broken(LocalBackend):
        def poll(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
            raise SchedulerError(["squeue"], 1, stderr="slurm_load_jobs error: timeout")

    before = rows(ctx)[run]
    result = reap(ctx, Broken(ctx.workdir))
    assert result.poll_error is not None and "timeout" in result.poll_error
    assert rows(ctx)[run] == before
    # backing off: the next reap does not query at all, and still changes nothing
    assert reap(ctx, backend).running == 1 and backend.polls == 0
    assert rows(ctx)[run] == before


@pytest.mark.parametrize("in_flight", [1, 500])
def test_one_poll_per_reap(
    ctx: StepContext, backend: CountingBackend, in_flight: int, tmp_path: Path
) -> None:
    """Any number of jobs in flight costs one scheduler query (they share one process)."""
    from alcapctl.store import DatasetRow

    extra = [DatasetRow(r, "Bulk", "gold") for r in range(10000, 10000 + in_flight)]
    ctx.store.import_datasets(extra, "test")
    assert ctx.settings.production is not None
    ctx.store.init(ctx.settings.production)
    [run] = stage(ctx, ["hang"])
    submit(ctx, backend)
    job_id = rows(ctx)[run].job_id
    bulk = [r for r in range(10000, 10000 + in_flight - 1)]

    def fly(table: RunTable) -> None:
        table.conn.execute(
            table.table.update()
            .where(table.table.c.run.in_(bulk))
            .values(status="R", user="tester", host="testhost", job_id=job_id)
        )

    ctx.store.runs(ctx.record, fly, write=True)
    result = reap(ctx, backend)
    assert backend.polls == 1 and result.running == in_flight


def test_pid_reuse_guard(backend: CountingBackend) -> None:
    me = os.getpid()
    from alcapctl.batch.local import process_start

    start = process_start(me)
    assert start is not None
    states = backend.poll([f"{me}-{start}", f"{me}-{start + 1}"])
    assert states[f"{me}-{start}"].state.value == "running"
    assert states[f"{me}-{start + 1}"].state.value == "gone"  # same PID, another process


def test_job_ids_carry_the_kernels_start_time(tmp_path: Path) -> None:
    """Submit reads the start time from the clock when no tick passed during the spawn;
    every id must still match /proc, as another process checking the job will read it."""
    from alcapctl.batch.base import JobSpec
    from alcapctl.batch.local import process_start

    script = tmp_path / "job.sh"
    script.write_text("exec sleep 30\n")
    backend = LocalBackend(tmp_path, cancel_grace=1)
    ids = [backend.submit(JobSpec("job", script, tmp_path)) for _ in range(50)]
    try:
        for job_id in ids:
            pid, start = (int(part) for part in job_id.split("-"))
            assert process_start(pid) == start
        other = LocalBackend(tmp_path)  # no children of its own: it must read /proc
        assert {info.state for info in other.poll(ids).values()} == {JobState.RUNNING}
    finally:
        backend.cancel(ids)


def test_output_clash_refused_unless_own_attempt(
    ctx: StepContext, backend: CountingBackend
) -> None:
    first, second = stage(ctx, ["ok", "ok"])
    tree = ctx.output_paths(first)["tree"]
    tree.parent.mkdir(parents=True)
    tree.write_text("someone else's tree")
    result = submit(ctx, backend)
    assert list(result.submitted) == [second]
    assert "already exists" in result.refused[first]
    record = rows(ctx)[first]
    assert record.status is X and "already exists" in (record.error or "")
    assert tree.read_text() == "someone else's tree"
    wait_for_jobs(ctx, backend, [second])
    reap(ctx, backend)
    # our own finished output: retry it, and it is overwritten without complaint
    assert retry(ctx, [second], failed=False) == [second]
    assert rows(ctx)[second].attempts == 0
    [again] = stage(ctx, ["ok"])
    assert again == second
    assert list(submit(ctx, backend).submitted) == [second]


def test_a_submit_in_an_open_unit_hands_back_its_intent_markers(
    ctx: StepContext, backend: CountingBackend
) -> None:
    [run] = stage(ctx, ["ok"])
    marker = job_dir(ctx.workdir, job_name(ctx.record.short, run, 1)) / INTENT_FILE

    def in_unit(table: RunTable) -> list[Path]:
        result = submit(ctx, backend, units=InUnit(table))
        assert marker.exists()  # not yet committed: the marker must stay
        return result.remove

    remove = ctx.store.runs(ctx.record, in_unit, write=True)
    assert remove == [marker] and marker.exists()
    assert rows(ctx)[run].status is R
    wait_for_jobs(ctx, backend, [run])
    assert reap(ctx, backend).finished == [run]


def test_a_reap_in_an_open_unit_removes_the_input_only_after_the_commit(
    ctx: StepContext, backend: CountingBackend
) -> None:
    [run] = stage(ctx, ["ok"])
    staged = Path(rows(ctx)[run].input or "")
    submit(ctx, backend)
    wait_for_jobs(ctx, backend, [run])

    def rolled_back(table: RunTable) -> None:
        result = settle(ctx, backend, InUnit(table)).record()
        assert result.finished == [run] and result.remove == [staged]
        raise RuntimeError("before the commit")

    with pytest.raises(RuntimeError):
        ctx.store.runs(ctx.record, rolled_back, write=True)
    assert staged.exists() and rows(ctx)[run].status is R
    remove = ctx.store.runs(
        ctx.record, lambda table: settle(ctx, backend, InUnit(table)).record().remove, write=True
    )
    assert remove == [staged] and staged.exists()  # the unit's owner removes it
    assert rows(ctx)[run].status is F


def test_a_submit_rolled_back_keeps_its_intent_markers(
    ctx: StepContext, backend: CountingBackend
) -> None:
    [run] = stage(ctx, ["ok"])
    marker = job_dir(ctx.workdir, job_name(ctx.record.short, run, 1)) / INTENT_FILE

    def in_unit(table: RunTable) -> None:
        submit(ctx, backend, units=InUnit(table))
        raise RuntimeError("after the submit, before the commit")

    with pytest.raises(RuntimeError):
        ctx.store.runs(ctx.record, in_unit, write=True)
    assert rows(ctx)[run].status is S and marker.exists()
    result = submit(ctx, backend)  # the marker makes it find the job, not start another
    assert list(result.adopted) == [run] and not result.submitted
    wait_for_jobs(ctx, backend, [run])
    assert reap(ctx, backend).finished == [run]
    assert not marker.exists()


def test_retry(ctx: StepContext, backend: CountingBackend) -> None:
    failing, good = stage(ctx, ["fail", "ok"])
    for _ in range(2):
        _run_jobs(ctx, backend, [r for r in (failing, good) if rows(ctx)[r].status is not F])
    assert rows(ctx)[failing].status is X and rows(ctx)[good].status is F
    with pytest.raises(UsageError, match="say which runs"):
        retry(ctx, None, failed=False)
    unclaimed = min(r for r, rec in rows(ctx).items() if rec.status is RunState.NEW)
    with pytest.raises(UsageError, match=f"run {unclaimed} .* is N"):
        retry(ctx, [unclaimed, failing], failed=False)
    assert rows(ctx)[failing].status is X  # nothing written
    assert retry(ctx, None, failed=True) == [failing]
    record = rows(ctx)[failing]
    assert record.status is RunState.NEW and record.attempts == 0 and record.error is None


_DIES_AFTER_SUBMIT = """
    def submit(self, spec):
        super().submit(spec)
        os.kill(os.getpid(), signal.SIGKILL)
"""
# Dies between spawning the job and noting its id in the intent marker.
_DIES_BEFORE_NOTING_ID = """
    def submit(self, spec):
        import subprocess
        subprocess.Popen(["/bin/sh", str(spec.script)], start_new_session=True)
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("dies", [_DIES_AFTER_SUBMIT, _DIES_BEFORE_NOTING_ID])
def test_interrupted_submit_is_adopted(ctx: StepContext, tmp_path: Path, dies: str) -> None:
    """The submitting process dies after the job started, before the database write."""
    import subprocess

    [run] = stage(ctx, ["ok"])
    assert ctx.settings.production_file is not None
    code = f"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
from alcapctl.batch.local import LocalBackend
from alcapctl.config import load_settings
from alcapctl.steps.context import open_production
from alcapctl.steps.submit import submit
from alcapctl.steps.units import InUnit
from alcapctl.store import Store

class DiesAfterSubmit(LocalBackend):
{dies}
settings = load_settings(Path({str(ctx.settings.production_file)!r}))
ctx = open_production(settings, Store.open(settings.database))
submit(ctx, DiesAfterSubmit(ctx.workdir))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert rows(ctx)[run].status is S
    backend = LocalBackend(ctx.workdir)
    result = submit(ctx, backend)
    assert list(result.adopted) == [run] and not result.submitted
    wait_for_jobs(ctx, backend, [run])
    reap(ctx, backend)
    assert rows(ctx)[run].status is F
    assert (ctx.settings.data / "ran.txt").read_text() == f"run {run:05d}\n"  # one job ran


def _until_payload_runs(ctx: StepContext, run: int) -> None:
    """Until the run's payload started, forked from its wrapper.  A wrapper's command line
    shows in /proc only once its exec completed, which can be after Popen returned; an
    interrupted submit's job is found long after that."""
    ran = ctx.settings.data / "ran.txt"
    for _ in range(200):
        if ran.exists() and f"run {run:05d}" in ran.read_text():
            return
        time.sleep(0.05)


def _group_members(pgid: int) -> list[int]:
    """Live processes of a process group (zombies left to a non-reaping init do not count)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_bytes()
                fields = stat[stat.rindex(b")") + 2 :].split()
                if fields[0] != b"Z" and int(fields[2]) == pgid:
                    members.append(int(entry.name))
    return members


def test_cancel_stops_the_whole_job(ctx: StepContext, backend: CountingBackend) -> None:
    [run] = stage(ctx, ["hang"])
    submit(ctx, backend)
    job_id = rows(ctx)[run].job_id or ""
    pid = int(job_id.split("-")[0])
    ran = ctx.settings.data / "ran.txt"
    for _ in range(200):  # until the payload runs
        if ran.exists():
            break
        backend.wait(0.05)
    assert backend.poll([job_id])[job_id].state is JobState.RUNNING
    backend.cancel([job_id])
    assert backend.poll([job_id])[job_id].state is JobState.GONE
    assert _group_members(pid) == []  # payload and heartbeat helper went too
    jobdir = job_dir(ctx.workdir, job_name(ctx.record.short, run, 1))
    assert read_exit(jobdir) == 128 + signal.SIGTERM


def test_wait_returns_when_a_job_ends(ctx: StepContext, backend: CountingBackend) -> None:
    [run] = stage(ctx, ["ok"])
    submit(ctx, backend)
    job_id = rows(ctx)[run].job_id or ""
    backend.wait(60)  # would sleep a minute if it could not watch the job
    assert backend.poll([job_id])[job_id].state is JobState.GONE


def test_abort_cancels_the_job_of_an_interrupted_submit(ctx: StepContext) -> None:
    """Ctrl-C between the scheduler taking a job and the database hearing of it."""
    import subprocess

    from alcapctl.steps.abort import abort
    from alcapctl.steps.submit import _spec

    [run] = stage(ctx, ["hang"])
    spec = _spec(ctx, rows(ctx)[run], None)  # with its intent marker
    orphan = subprocess.Popen(["/bin/sh", str(spec.script)], start_new_session=True)
    _until_payload_runs(ctx, run)
    result = abort(ctx, LocalBackend(ctx.workdir, cancel_grace=1))
    assert result.aborted == [run]
    assert len(result.cancelled) == 1
    assert orphan.wait(timeout=10) != 0  # killed, not finished
    assert _group_members(orphan.pid) == []
    assert rows(ctx)[run].status is RunState.NEW


def test_find_sees_live_wrappers_and_ended_jobs(ctx: StepContext, backend: CountingBackend) -> None:
    """Adoption after an interrupted submit: a live job by its wrapper's command line (not
    its payload's, a fork with the same one), an ended job by its exit file."""
    import subprocess

    from alcapctl.batch.local import process_start
    from alcapctl.steps.submit import _spec

    hang, ok, never = stage(ctx, ["hang", "ok", "ok"])
    specs = [_spec(ctx, rows(ctx)[run], None) for run in (hang, ok, never)]
    live = subprocess.Popen(["/bin/sh", str(specs[0].script)], start_new_session=True)
    ended = subprocess.Popen(["/bin/sh", str(specs[1].script)], start_new_session=True)
    assert ended.wait(timeout=30) == 0
    _until_payload_runs(ctx, hang)
    found = backend.find([spec.name for spec in specs])
    assert found == {specs[0].name: f"{live.pid}-{process_start(live.pid)}", specs[1].name: "0-0"}
    backend.cancel([found[specs[0].name]])
    assert live.wait(timeout=10) != 0


def test_wait_does_not_wake_for_jobs_reap_settled(
    ctx: StepContext, backend: CountingBackend
) -> None:
    """A job whose exit file reap read may end after reap: its end is no news to wait."""
    first, second = stage(ctx, ["ok", "ok"])
    submit(ctx, backend)
    wait_for_jobs(ctx, backend, [first, second])
    reap(ctx, backend)  # settles both
    assert {rows(ctx)[run].status for run in (first, second)} == {F}
    for child in list(backend._children.values()):
        child.wait(timeout=30)
    assert not backend._reap_children()  # nothing unseen ended: wait would sleep
    assert not backend._children  # and no zombie is left behind
