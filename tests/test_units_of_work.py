"""The run loop's units of work and faults, in process: what is committed, what is printed,
which step a fault blocks, and what a drain, a full disk or an unexpected error leave."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import alcapctl.steps.run as loop
from alcapctl import faults
from alcapctl.archive import local as local_archive
from alcapctl.archive.base import ArchiveRefused
from alcapctl.batch.base import JobSpec, SchedulerError
from alcapctl.batch.local import LocalBackend
from alcapctl.config import load_settings
from alcapctl.errors import EXIT_TEMPFAIL, EXIT_USAGE, LockTimeout
from alcapctl.events import Event
from alcapctl.states import RunState
from alcapctl.steps.claim import claim, hand_back
from alcapctl.steps.context import StepContext, open_production
from alcapctl.steps.run import RunSummary, run_production
from alcapctl.store import RunTable, Store
from alcapctl.store.engine import Database
from tests.batch_support import COMMAND, JOB_SCRIPT, rows, wait_for_jobs
from tests.conftest import GOLD_RUNS
from tests.local_site import local_site

Make = Callable[..., tuple[StepContext, LocalBackend]]


@pytest.fixture
def production(
    tmp_path: Path, db_path: Path, make_production: Callable[..., Path]
) -> Iterator[Make]:
    """A production on the local backend with a file:// archive: its cycles are grouped."""
    made: list[tuple[StepContext, LocalBackend]] = []

    def make(mode: str = "ok", **limits: Any) -> tuple[StepContext, LocalBackend]:
        site = local_site(tmp_path, db_path, GOLD_RUNS, lambda run: f"{mode}\nraw {run}\n")
        script = tmp_path / "job-payload.sh"
        script.write_text(JOB_SCRIPT)
        prod = make_production(
            site=str(site),
            job={"command": COMMAND.replace("{script}", str(script))},
            limits={"grace": 0, "max_attempts": 2, "nproc": 2, "nprep": 2, "pause": 0, **limits},
        )
        settings = load_settings(prod)
        store = Store.open(settings.database)
        assert settings.production is not None
        store.init(settings.production)
        ctx = open_production(settings, store)
        backend = LocalBackend(ctx.workdir, cancel_grace=1)
        made.append((ctx, backend))
        return ctx, backend

    yield make
    for ctx, backend in made:
        for pid, child in list(backend._children.items()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            child.wait()
        ctx.store.close()


def _states(ctx: StepContext) -> dict[int, str]:
    return {run: r.status.value for run, r in rows(ctx).items()}


def _once(ctx: StepContext, backend: LocalBackend, events: list[Event]) -> RunSummary:
    return run_production(ctx, backend, once=True, emit=events.append)


def _in_flight(backend: LocalBackend, job_ids: Sequence[str]) -> list[str]:
    states = backend.poll(list(job_ids))
    return [j for j in job_ids if states[j].state.value in ("queued", "running")]


def test_an_error_inside_a_grouped_cycle_commits_its_jobs_then_aborts(
    production: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, backend = production("hang")
    started: list[str] = []
    from alcapctl.steps.submit import submit as real_submit

    def submit_then_fail(*args: Any, **kwargs: Any) -> Any:
        result = real_submit(*args, **kwargs)
        started.extend(result.submitted.values())
        raise RuntimeError("a bug after the jobs started")

    monkeypatch.setattr(loop, "submit", submit_then_fail)
    events: list[Event] = []
    with pytest.raises(RuntimeError, match="a bug"):
        _once(ctx, backend, events)
    assert len(started) == 2
    assert _in_flight(backend, started) == []  # the abort found and cancelled them
    assert set(_states(ctx).values()) == {"N"}
    assert not ctx.staging_dir.exists() or os.listdir(ctx.staging_dir) == []
    assert any(e.text.startswith("Aborting runs: ") for e in events)


def test_a_signal_inside_a_grouped_cycle_waits_for_its_commit(
    production: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while the grouped cycle waits for its jobs, in the unit that claimed their
    runs: obeyed there, it would roll the claims back and leave the jobs to nobody."""
    ctx, backend = production("hang")
    started: list[str] = []
    real_wait = LocalBackend.wait

    def wait(self: LocalBackend, timeout: float) -> None:
        if not started:
            started.extend(self._running)
            os.kill(os.getpid(), signal.SIGTERM)
        real_wait(self, timeout)

    monkeypatch.setattr(LocalBackend, "wait", wait)
    events: list[Event] = []
    summary = run_production(ctx, backend, emit=events.append)
    assert summary.signal_exit == 128 + signal.SIGTERM
    assert len(started) == 2
    assert _in_flight(backend, started) == []  # the abort found and cancelled them
    assert set(_states(ctx).values()) == {"N"}
    assert not ctx.staging_dir.exists() or os.listdir(ctx.staging_dir) == []


def test_a_cycle_whose_commit_fails_prints_nothing_of_it_and_leaves_no_job(
    production: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed COMMIT rolls the cycle back: none of its lines are printed, and as no
    record names its jobs, the abort that follows cancels them as jobs this process
    started."""
    ctx, backend = production("hang")
    started: list[str] = []
    failing = {"commit": False}
    real_steps, real_commit = loop._Cycle.steps, Database._commit

    def steps(self: Any, units: Any, result: Any) -> None:
        real_steps(self, units, result)
        started[:] = backend.started_here()
        failing["commit"] = True

    def commit(self: Database, conn: Any, waiter: Any) -> None:
        if failing.pop("commit", False):
            raise sqlite3.OperationalError("disk I/O error")
        real_commit(self, conn, waiter)

    monkeypatch.setattr(loop._Cycle, "steps", steps)
    monkeypatch.setattr(Database, "_commit", commit)
    events: list[Event] = []
    with pytest.raises(sqlite3.OperationalError):
        _once(ctx, backend, events)
    texts = [e.text for e in events]
    assert not [t for t in texts if t.startswith(("Claimed run", "Submitting run", "Staging"))]
    assert len(started) == 2
    assert _in_flight(backend, started) == []
    assert set(_states(ctx).values()) == {"N"}


def test_the_scheduler_down_blocks_submit_only(production: Make) -> None:
    ctx, _ = production("ok")

    class Down(LocalBackend):
        def submit_many(self, specs: Sequence[JobSpec], largest: int) -> Any:
            raise SchedulerError(["sbatch"], 1, stderr="Unable to contact slurm controller")

    summary = _once(ctx, Down(ctx.workdir), [])
    assert summary.exit_code == EXIT_TEMPFAIL
    records = rows(ctx)
    assert sorted(r.status.value for r in records.values() if r.status.value != "N") == [
        "C",
        "C",
        "S",
        "S",
    ]  # claimed and staged: staging went on
    assert all(r.attempts == 0 for r in records.values())
    assert all(Path(r.input).exists() for r in records.values() if r.input)


def test_the_archive_down_blocks_staging_only(production: Make, tmp_path: Path) -> None:
    ctx, backend = production("ok")
    assert _once(ctx, backend, []).exit_code == 0
    running = [run for run, state in _states(ctx).items() if state == "R"]
    assert len(running) == 2
    wait_for_jobs(ctx, backend, running)
    (tmp_path / "archive").rename(tmp_path / "unmounted")
    summary = _once(ctx, backend, [])
    assert summary.exit_code == EXIT_TEMPFAIL
    states = _states(ctx)
    assert [states[run] for run in running] == ["F", "F"]  # reaping went on
    assert sorted(s for s in states.values() if s in "CS") == ["C", "C", "C", "C"]
    assert all(r.attempts == 0 for r in rows(ctx).values())


def test_a_full_disk_while_copying_an_input_is_transient(
    production: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, backend = production("ok", nprep=1, nproc=1)

    def no_link(source: Path, part: Path) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    def fill(read_into: Any, out: Path, name: str, progress: Any) -> int:
        out.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local_archive, "_link", no_link)
    monkeypatch.setattr(local_archive, "pump", fill)
    summary = _once(ctx, backend, [])
    assert summary.exit_code == EXIT_TEMPFAIL
    records = [r for r in rows(ctx).values() if r.status is not RunState.NEW]
    assert [(r.status, r.attempts) for r in records] == [(RunState.CLAIMED, 0)] * 2
    assert os.listdir(ctx.staging_dir) == []  # the partial file went


def test_claims_beyond_what_can_be_staged_go_back_over_spacelim(production: Make) -> None:
    ctx, backend = production("ok", nprep=1, nproc=3, spacelim=1)
    from alcapctl.archive.space import probe_space

    ctx.staging_dir.mkdir(parents=True)
    if probe_space(ctx.settings.site.quota, ctx.staging_dir).percent < 1:
        pytest.skip("the test file system is less than 1 % used")
    summary = _once(ctx, backend, [])
    states = _states(ctx)
    assert sorted(s for s in states.values() if s != "N") == ["C"]  # nprep kept, 3 handed back
    assert summary.exit_code == 0
    assert not any(r.attempts for r in rows(ctx).values())


def test_logins_refused_in_a_row_drain(production: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, backend = production("slow", nprep=1, nproc=1, pause=0.05)
    assert _once(ctx, backend, []).exit_code == 0  # one job running, one run claimed
    before = _states(ctx)
    [running] = [run for run, state in before.items() if state == "R"]
    assert claim(ctx, 1).claimed  # one claimed and not staged, for the drain to hand back

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise ArchiveRefused("ftp://archive: login as 'alcap' refused (530 Login incorrect)")

    monkeypatch.setattr(loop, "stage", refused)
    monkeypatch.setattr(faults, "backoff_delay", lambda failures, pause: 0.0)  # no waits
    events: list[Event] = []
    summary = run_production(ctx, backend, emit=events.append)
    assert summary.exit_code == EXIT_USAGE and summary.drained is not None
    assert "530" in summary.drained
    states = _states(ctx)
    assert states[running] == "F"  # reaped to the end
    assert "C" not in states.values() and "R" not in states.values()  # claims handed back
    assert not any(r.attempts for r in rows(ctx).values())


def test_the_breaker_names_the_reason_and_the_runs(production: Make) -> None:
    ctx, backend = production("fail", breaker=2, max_attempts=3, nproc=1, nprep=1)
    events: list[Event] = []
    summary = run_production(ctx, backend, emit=events.append)
    assert summary.exit_code == 1 and summary.tripped is not None
    assert "exit code 3: boom: bad calibration" in summary.tripped
    named = re.search(r"runs \[([0-9, ]+)\]", summary.tripped)
    assert named is not None, summary.tripped
    runs = [int(run) for run in named.group(1).split(",")]
    # The streak's runs (one run may fail twice in it); a job still running when it
    # tripped may fail after it, unnamed.
    assert 1 <= len(runs) <= 2 and set(runs) <= {r.run for r in rows(ctx).values() if r.attempts}
    assert any(e.text.startswith("Breaker: ") and named.group(0) in e.text for e in events)
    assert "R" not in _states(ctx).values()  # running jobs reaped to the end


def test_the_claim_tops_up_in_batches_of_half_of_nprep(production: Make) -> None:
    """nproc + nprep held at most; a claim waits until half of nprep are missing, so a
    loop finishing one run at a time does not claim (a statement) every time."""
    ctx, _ = production("ok", nproc=2, nprep=4)
    first = claim(ctx).claimed
    assert len(first) == 6
    hand_back(ctx, first[:1])
    assert claim(ctx).claimed == []  # one missing: fewer than half of nprep
    hand_back(ctx, first[1:2])
    assert len(claim(ctx).claimed) == 2
    assert list(_states(ctx).values()).count("C") == 6


def test_the_breaker_trips_at_the_reap_that_reaches_its_limit(production: Make) -> None:
    """It looks at every reap before new work is taken, inside a grouped cycle too: with
    one job slot, exactly ``breaker`` attempts fail, not one more."""
    ctx, backend = production("fail", breaker=3, max_attempts=5, nproc=1, nprep=1)
    summary = run_production(ctx, backend)
    assert summary.tripped is not None and "3 failed attempts in a row" in summary.tripped
    assert sum(r.attempts for r in rows(ctx).values()) == 3
    assert "R" not in _states(ctx).values()


def test_a_submit_not_recorded_prints_no_submitting_line(
    production: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps in transactions of their own (a backend that is not instant): the lock lost
    as submit records its jobs prints no "Submitting run", and the runs stay S."""
    ctx, _ = production("ok")

    class Remote(LocalBackend):
        instant = False

    backend = Remote(ctx.workdir, cancel_grace=1)
    real_move = RunTable.move_each

    def move_each(self: RunTable, changes: Any, *args: Any, **kwargs: Any) -> list[int]:
        if any("job_id" in own for own in changes.values()):
            raise LockTimeout("another session held the database lock")
        return real_move(self, changes, *args, **kwargs)

    monkeypatch.setattr(RunTable, "move_each", move_each)
    events: list[Event] = []
    summary = _once(ctx, backend, events)
    assert summary.exit_code == EXIT_TEMPFAIL
    assert not [e.text for e in events if e.text.startswith("Submitting run")]
    assert sorted(s for s in _states(ctx).values() if s != "N") == ["C", "C", "S", "S"]
    monkeypatch.undo()
    assert _once(ctx, backend, events).exit_code == 0  # adopts the jobs it started
    assert sorted(s for s in _states(ctx).values() if s != "N") == ["C", "C", "R", "R"]
