"""Faults injected on purpose into a production in flight (issue 13, "Show it").

Every test sets the same scene (tests/faultkit.py): six runs, two R with their jobs running
(real processes, held at a gate), one S, one C, two N.  A transient fault then meets each
step it blocks, alone and inside ``run --once`` and a ``run`` loop: no run changes state,
no attempt is counted, both jobs stay alive, every staged input stays.  Once the fault is
cleared the production finishes, every run F, each job started exactly once (a ledger the
job appends to).  The fatal path (an exception inside a step, SIGTERM, SIGHUP) must end
in the 2014 abort: no job alive, every unfinished run N, staging empty.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import write_toml
from tests.fakes import COMMANDS, FakeScheduler
from tests.faultkit import (
    RUNS,
    Kit,
    database_locked,
    lock_holder_pid,
    raw,
    resize,
    set_quota,
    small_tmpfs,
    wait_for,
)
from tests.ftpserver import DroppingDTP, FtpServer, write_netrc

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

LOCK_TIMEOUT = ("--lock-timeout", "0.3")
STEPS = {
    "claim": ("claim",),
    "stage": ("stage",),
    "submit": ("submit",),
    "reap": ("reap",),
    "run --once": ("run", "--once"),
}


class Fault:
    """A transient fault in a kit's world: switched ``on`` and ``off`` by the test; ``env``
    is what the alcapctl subprocess needs to meet it quickly."""

    env: dict[str, str] = {}  # noqa: RUF012 - read only
    lasts = 1.0  # seconds a run loop meets it once met: a few cycles

    def __init__(self, kit: Kit) -> None:
        self.kit = kit

    def on(self) -> None:
        raise NotImplementedError

    def off(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Undo whatever outlives the test (a holder process)."""

    def met(self) -> bool:
        """Whether alcapctl has met the fault since ``on``, where the test can see it."""
        return True


class SchedulerFails(Fault):
    """Every Slurm command exits 1, as when slurmctld cannot be reached."""

    def __init__(self, kit: Kit, fake: FakeScheduler) -> None:
        super().__init__(kit)
        self.fake = fake

    def on(self) -> None:
        self.calls = len(self.fake.calls())
        for command in COMMANDS["slurm"]:
            self.fake.answer(command, stderr="Unable to contact slurm controller", exit=1)

    def met(self) -> bool:
        return len(self.fake.calls()) > self.calls

    def off(self) -> None:
        state = self.fake.load()
        state["answers"] = {}
        self.fake.save(state)


class SchedulerHangs(SchedulerFails):
    """Every Slurm command hangs; alcapctl's command timeout (cut to 1 s) must end it."""

    env = {"FAULTKIT_SCHEDULER_TIMEOUT": "1"}  # noqa: RUF012
    lasts = 2.5

    def on(self) -> None:
        self.calls = len(self.fake.calls())
        for command in COMMANDS["slurm"]:
            self.fake.answer(command, sleep=30)


class ArchiveRootMissing(Fault):
    """The file:// archive's directory is gone (not mounted on this node)."""

    def on(self) -> None:
        (self.kit.root / "archive").rename(self.kit.root / "unmounted")

    def off(self) -> None:
        (self.kit.root / "unmounted").rename(self.kit.root / "archive")


class FtpLoginRefused(Fault):
    """The FTP server answers 530 to our login."""

    def __init__(self, kit: Kit, server: FtpServer) -> None:
        super().__init__(kit)
        self.server = server

    def on(self) -> None:
        self.logins = len(self.server.commands("USER"))
        write_netrc(self.server.netrc, password="wrong")

    def met(self) -> bool:
        return len(self.server.commands("USER")) > self.logins

    def off(self) -> None:
        write_netrc(self.server.netrc)


class FtpDrops(Fault):
    """The FTP server drops every data connection after 5 bytes."""

    def __init__(self, kit: Kit, server: FtpServer, dtp: type[DroppingDTP]) -> None:
        super().__init__(kit)
        self.server = server
        self.dtp = dtp

    def on(self) -> None:
        self.transfers = len(self.server.commands("RETR"))
        self.dtp.drops = 1_000_000

    def met(self) -> bool:
        return len(self.server.commands("RETR")) > self.transfers

    def off(self) -> None:
        self.dtp.drops = 0


class DatabaseLocked(Fault):
    """Another process holds the database's write lock, far past --lock-timeout."""

    def __init__(self, kit: Kit) -> None:
        super().__init__(kit)
        self.held = ExitStack()

    def on(self) -> None:
        self.held.enter_context(database_locked(self.kit.db))

    def off(self) -> None:
        self.held.close()

    close = off


class StagingFull(Fault):
    """ENOSPC while copying an input: the staging file system (a real tmpfs, nearly empty,
    so below spacelim) shrinks to 1 MiB, and the inputs not yet staged grow to 2 MiB."""

    def on(self) -> None:
        for run in RUNS[3:]:
            (self.kit.root / "archive" / f"run{run:05d}.mid").write_bytes(b"x" * (2 << 20))
        resize(self.kit.staging_dir().parent, "1m")

    def off(self) -> None:
        resize(self.kit.staging_dir().parent, "8m")


# The steps each fault blocks; the others do not meet it.
BLOCKS = {
    "scheduler fails": ("submit", "reap", "run --once"),
    "scheduler hangs": ("submit", "reap", "run --once"),
    "archive root missing": ("stage", "run --once"),
    "ftp login refused": ("stage", "run --once"),
    "ftp drops mid-file": ("stage", "run --once"),
    "database locked": ("claim", "stage", "submit", "reap", "run --once"),
    "staging full": ("stage", "run --once"),
}


def _cases(loop: bool) -> list[object]:
    cases: list[object] = []
    for fault, steps in BLOCKS.items():
        marks = []
        if fault == "scheduler hangs":  # every command waits out its timeout
            marks.append(pytest.mark.slow)
        if loop:
            cases.append(pytest.param(fault, marks=marks, id=fault))
        else:
            cases += [
                pytest.param(fault, step, marks=marks, id=f"{fault}-{step}") for step in steps
            ]
    return cases


@pytest.fixture
def fault(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Fault]:
    """The fault named by the test's parameter, in a kit built for it."""
    name: str = request.param
    with ExitStack() as stack:
        made: Fault
        if name.startswith("scheduler"):
            fake = FakeScheduler(tmp_path / "fake", monkeypatch)
            state = fake.load()
            state["execute"] = True
            fake.save(state)
            kit = Kit(tmp_path, backend="slurm")
            made = (SchedulerHangs if "hangs" in name else SchedulerFails)(kit, fake)
        elif name.startswith("ftp"):
            start: Callable[..., FtpServer] = request.getfixturevalue("ftp_server")
            dtp = type("Drop", (DroppingDTP,), {"drop_after": 5, "drops": 0})
            server = start(dtp_handler=dtp, use_sendfile=False)
            kit = Kit(tmp_path, archive_url=server.url)
            for run in RUNS:
                server.put(f"run{run:05d}.mid", raw(run).encode())
            made = FtpDrops(kit, server, dtp) if "drops" in name else FtpLoginRefused(kit, server)
        elif name == "staging full":
            staging = stack.enter_context(small_tmpfs(tmp_path / "small"))
            made = StagingFull(Kit(tmp_path, staging=staging))
        elif name == "database locked":
            made = DatabaseLocked(Kit(tmp_path))
        else:
            made = ArchiveRootMissing(Kit(tmp_path))
        stack.callback(made.kit.open_gate)
        stack.callback(made.close)
        yield made


@pytest.mark.parametrize(("fault", "step"), _cases(loop=False), indirect=["fault"])
def test_a_transient_fault_costs_a_step_nothing(fault: Fault, step: str) -> None:
    kit = fault.kit
    kit.arrange()
    before = kit.snapshot()
    fault.on()
    try:
        done = kit.cli(*STEPS[step], *LOCK_TIMEOUT, env=fault.env)
    finally:
        fault.off()
    if step == "run --once" or (isinstance(fault, DatabaseLocked) and step != "reap"):
        assert done.returncode == 75, done.stderr
    kit.assert_untouched(before, progress=step == "run --once")
    kit.open_gate()
    kit.assert_finished_once(kit.cli("run"))


@pytest.mark.parametrize("fault", _cases(loop=True), indirect=True)
def test_a_transient_fault_costs_the_run_loop_nothing(fault: Fault) -> None:
    kit = fault.kit
    kit.arrange()
    before = kit.snapshot()
    fault.on()
    loop = kit.start("run", *LOCK_TIMEOUT, env=fault.env)
    try:
        wait_for(fault.met, what="the loop to meet the fault")
        time.sleep(fault.lasts)
        assert loop.poll() is None, loop.communicate()
        kit.assert_untouched(before, progress=True)
        fault.off()
        kit.open_gate()
        _, err = loop.communicate(timeout=60)
    finally:
        loop.kill()
    assert loop.returncode == 0, err
    kit.assert_finished_once()


# --- what the loop rebuild adds -------------------------------------------------------


@pytest.mark.parametrize("fault", ["staging full"], indirect=True)
def test_enospc_while_staging_is_transient_for_stage_alone(fault: Fault) -> None:
    """``stage`` alone meets ENOSPC as the loop does: exit 75, no run changed, no attempt
    counted, no partial file left; the staging that fits is kept."""
    kit = fault.kit
    kit.arrange()
    before = kit.snapshot()
    fault.on()
    try:
        done = kit.cli("stage")
    finally:
        fault.off()
    assert done.returncode == 75, done.stderr
    assert "Traceback" not in done.stderr
    kit.assert_untouched(before)
    assert not any(name.endswith(".part") for name in kit.staged())
    kit.open_gate()
    kit.assert_finished_once(kit.cli("run"))


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["scheduler fails"], indirect=True)
def test_staging_goes_on_while_the_scheduler_is_down(fault: Fault) -> None:
    kit = fault.kit
    kit.arrange()
    fault.on()
    loop = kit.start("run")
    try:
        wait_for(lambda: kit.rows()[3004][0] == "S", timeout=3, what="run 3004 staged")
    finally:
        fault.off()
        kit.open_gate()
        loop.communicate(timeout=60)
    assert loop.returncode == 0
    kit.assert_finished_once()


@pytest.mark.parametrize("fault", ["archive root missing"], indirect=True)
def test_reaping_goes_on_while_the_archive_is_down(fault: Fault) -> None:
    kit = fault.kit
    kit.arrange()
    fault.on()
    loop = kit.start("run")
    try:
        kit.open_gate()
        wait_for(
            lambda: [kit.rows()[run][0] for run in RUNS[:2]] == ["F", "F"],
            timeout=10,
            what="the running jobs reaped",
        )
        assert kit.failures() == 0
    finally:
        fault.off()
        loop.communicate(timeout=60)
    assert loop.returncode == 0
    kit.assert_finished_once()


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["ftp login refused"], indirect=True)
def test_login_refused_again_and_again_drains_the_loop(fault: Fault) -> None:
    """No new claims or stagings, the running jobs reaped to the end, the runs claimed and
    not staged back to N, then exit 2."""
    kit = fault.kit
    kit.arrange()
    fault.on()
    kit.open_gate()
    loop = kit.start("run")
    try:
        _, err = loop.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        loop.send_signal(signal.SIGTERM)
        loop.communicate(timeout=60)
        raise
    assert loop.returncode == 2, err
    rows = kit.rows()
    assert [rows[run][0] for run in RUNS] == ["F", "F", rows[3003][0], "N", "N", "N"]
    assert rows[3003][0] in "SF"
    assert kit.failures() == 0


def test_over_spacelim_claimed_runs_go_back_to_n(tmp_path: Path) -> None:
    """Over spacelim, the claims beyond what this user may stage (its ``nprep``, 2: run
    3003 staged, 3004 claimed) go back to N for others; nothing is fetched, the claims it
    would stage first are kept, the staged run is still submitted (3003), and the
    production finishes once space frees up."""
    report = tmp_path / "quota.txt"
    kit = Kit(tmp_path, quota=report)
    kit.arrange()
    before = kit.staged()
    set_quota(report, 99)
    try:
        done = kit.cli("run", "--once")
        rows = kit.rows()
        staged = kit.staged()
    finally:
        kit.open_gate()
    assert done.returncode in (0, 75), done.stderr
    assert [rows[run][0] for run in RUNS] == ["R", "R", "R", "C", "N", "N"]
    assert {attempts for _, attempts, _ in rows.values()} == {0}
    assert staged == before
    set_quota(report, 10)
    kit.assert_finished_once(kit.cli("run"))


def test_a_submit_that_cannot_record_its_job_says_so_and_the_next_adopts_it(
    tmp_path: Path,
) -> None:
    """The lock held past --lock-timeout after the job started: exit 75 naming the job
    that started and was not recorded; the run stays S, its job runs; the next submit
    adopts that job instead of starting another."""
    kit = Kit(tmp_path)
    kit.arrange()
    with database_locked(kit.db):
        done = kit.cli("submit", *LOCK_TIMEOUT)
        rows = kit.rows()
    assert done.returncode == 75, done.stderr
    assert "nothing was changed" not in done.stderr
    assert "started 1 job(s) (run 3003: job " in done.stderr
    assert "not recorded" in done.stderr and "adopts" in done.stderr
    assert rows[3003][0] == "S"
    wait_for(lambda: 3003 in kit.running_pids(), what="the unrecorded job to run")
    job_id = done.stderr.split("run 3003: job ", 1)[1].split(")", 1)[0]
    assert kit.cli("submit").returncode == 0
    assert kit.rows()[3003][:1] == ("R",) and kit.rows()[3003][2] == job_id
    kit.open_gate()
    kit.assert_finished_once(kit.cli("run"))


def test_a_modules_file_reap_cannot_read_drains_leaving_the_jobs(tmp_path: Path) -> None:
    """The MODULES file goes away mid-run: reap cannot record a finished run, so the loop
    drains: no new work, claims not staged back to N, staged runs not submitted, every
    R run left R with its job's results kept, exit 2 naming them.  MODULES back, ``run``
    finishes every run once."""
    kit = Kit(tmp_path)
    modules = tmp_path / "MODULES"
    modules.write_text("modules = analyse\n")
    prod = tomllib.loads(kit.prod.read_text())
    prod["job"]["modules"] = str(modules)
    write_toml(kit.prod, prod)
    kit.arrange()
    loop = kit.start("run")
    try:
        wait_for(lambda: kit.rows()[3003][0] == "R", what="the loop to submit run 3003")
        modules.unlink()
        kit.open_gate()
        out, err = loop.communicate(timeout=30)
    finally:
        loop.kill()
    assert loop.returncode == 2, err
    assert "reap cannot go on" in out and "left running, not cancelled" in out
    rows = kit.rows()
    running = sorted(run for run, (status, _, _) in rows.items() if status == "R")
    assert running[:3] == [3001, 3002, 3003]
    assert {status for status, _, _ in rows.values()} <= {"R", "S", "N"}
    assert kit.failures() == 0 and {attempts for _, attempts, _ in rows.values()} == {0}
    assert kit.staged() >= {f"run{run:05d}.mid" for run in running}
    modules.write_text("modules = analyse\n")
    kit.assert_finished_once(kit.cli("run"))


# --- the fatal path ---------------------------------------------------------------------

# The function each step of the loop is (names of today's alcapctl.steps; a rename fails
# the subprocess's start, and so these tests, loudly).
STEP_FUNCTIONS = {
    "claim": "alcapctl.steps.claim:claim",
    "stage": "alcapctl.steps.stage:stage",
    "submit": "alcapctl.steps.submit:submit",
    "reap": "alcapctl.steps.reap:settle",
}


@pytest.mark.parametrize("step", list(STEP_FUNCTIONS))
def test_an_exception_in_a_step_aborts_completely(tmp_path: Path, step: str) -> None:
    kit = Kit(tmp_path)
    kit.arrange()
    done = kit.cli("run", env={"FAULTKIT_RAISE": STEP_FUNCTIONS[step]})
    assert done.returncode == 1, done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert f"RuntimeError: injected fault in {STEP_FUNCTIONS[step]}" in done.stderr
    kit.assert_aborted()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_mid_run_aborts_completely(tmp_path: Path, signum: int, code: int) -> None:
    kit = Kit(tmp_path)
    kit.arrange()
    loop = kit.start("run")
    try:
        wait_for(lambda: lock_holder_pid(kit) == loop.pid, what="the loop holding the lock")
        time.sleep(0.3)  # inside the loop, its jobs running
        loop.send_signal(signum)
        loop.communicate(timeout=60)
    finally:
        loop.kill()
    assert loop.returncode == code
    kit.assert_aborted()


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(delay=st.floats(min_value=0, max_value=1.5))
def test_sigterm_at_any_moment_leaves_a_clean_production(delay: float) -> None:
    """From a fresh production: whenever SIGTERM comes, either nothing had started or the
    abort completed; no job is left and no run is half-way."""
    with tempfile.TemporaryDirectory() as folder:
        kit = Kit(Path(folder))
        kit.ok("init")
        (kit.data / "gate").touch()
        loop = kit.start("run")
        try:
            time.sleep(delay)
            loop.send_signal(signal.SIGTERM)
            loop.communicate(timeout=60)
        finally:
            loop.kill()
        assert loop.returncode in (143, -signal.SIGTERM)
        kit.assert_aborted()
