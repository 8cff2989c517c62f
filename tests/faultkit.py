"""The fault-injection suite's kit: a six-run production whose jobs wait at a gate, faults to
switch on and off, and what the database, the files and the processes say.

Everything is driven through the command line (``python -m alcapctl`` subprocesses) so
the suite does not depend on how the steps are built.  Faults an outsider cannot cause
(a scheduler command that times out sooner than 60 s, an exception inside a step) are
planted by ``tests/faultkit_site/sitecustomize.py`` in the subprocess only.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from alcapctl.cli import cli
from alcapctl.store import DatasetRow, Store
from tests.conftest import ALCAPCTL, write_toml

RUNS = list(range(3001, 3007))
SITECUSTOMIZE = Path(__file__).with_name("faultkit_site")

# The payload counts every start in a ledger, records its PID, waits while the gate file
# exists, then writes the outputs from its input.
PAYLOAD = """\
echo "$5" >>"$6/ledger"
echo $$ >"$6/pids/.$5" && mv "$6/pids/.$5" "$6/pids/$5"
while [ -e "$6/gate" ]; do sleep 0.05; done
cat "$1" >"$2"
cp "$2" "$3"
echo odb >"$4"
"""

Row = tuple[str, int, str | None]  # status, attempts, job id
Snapshot = tuple[dict[int, Row], int, set[str], dict[int, int]]
_ORDER = "NCSRF"  # the way runs move forward


def wait_for(predicate: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class Kit:
    """One production on one site, and its view from outside."""

    root: Path
    backend: str = "local"
    archive_url: str = ""
    staging: Path | None = None
    work: Path | None = None
    quota: Path | None = None  # a file in df's format that the site's quota command prints

    def __post_init__(self) -> None:
        self.data = self.root / "data"
        (self.data / "pids").mkdir(parents=True)
        self.db = self.root / "production.db"
        store, _ = Store.create(f"sqlite:///{self.db}")
        store.import_datasets([DatasetRow(run, "Faults", "gold") for run in RUNS], "faultkit")
        store.close()
        if not self.archive_url:
            archive = self.root / "archive"
            archive.mkdir()
            for run in RUNS:
                (archive / f"run{run:05d}.mid").write_text(raw(run))
            self.archive_url = f"file://{archive}"
        script = self.root / "payload.sh"
        script.write_text(PAYLOAD)
        site: dict[str, Any] = {
            "database": str(self.db),
            "data": str(self.data),
            "backend": self.backend,
            "archive": {"url": self.archive_url, "timeout": 5, "retries": 1},
        }
        if self.quota is not None:
            set_quota(self.quota, 10)
            site["quota"] = {"command": ["cat", str(self.quota)], "parser": "df"}
        for key in ("staging", "work"):
            if getattr(self, key) is not None:
                site[key] = str(getattr(self, key))
        write_toml(self.root / "site.toml", site)
        self.prod = write_toml(
            self.root / "faults.toml",
            {
                "type": "alcapana",
                "tag": "faults_test",
                "version": 1,
                "site": str(self.root / "site.toml"),
                "job": {
                    "command": f"sh {script} {{input}} {{tree}} {{hist}} {{odb}} {{run}} "
                    f"{self.data}"
                },
                "limits": {
                    "nproc": 3,
                    "nprep": 2,
                    "pause": 0.05,
                    "max_attempts": 2,
                    "grace": 0,
                    "array": 0,
                },
            },
        )

    # --- driving it --------------------------------------------------------------------

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = {**os.environ, **(extra or {})}
        env["PYTHONPATH"] = os.pathsep.join([str(SITECUSTOMIZE), env.get("PYTHONPATH", "")])
        return env

    def cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``alcapctl ARGS`` on this production (its TOML inserted after the command)."""
        argv = [*ALCAPCTL, args[0], str(self.prod), *args[1:]]
        return subprocess.run(
            argv, capture_output=True, text=True, env=self._env(env), timeout=timeout
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """``alcapctl ARGS`` in the background."""
        argv = [*ALCAPCTL, args[0], str(self.prod), *args[1:]]
        return subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self._env(env)
        )

    def ok(self, *args: str) -> None:
        """``alcapctl ARGS`` in this process (fast: for setting a scene), which must succeed."""
        done = CliRunner().invoke(cli, [args[0], str(self.prod), *args[1:]])
        assert done.exit_code == 0, f"{args}: {done.output}"

    def arrange(self) -> None:
        """Two runs R with their jobs running (held at the gate), one S, one C, the rest N."""
        (self.data / "gate").touch()
        for step in (
            ("init",),
            ("claim", "-n", "2"),
            ("stage",),
            ("submit",),
            ("claim", "-n", "2"),
            ("stage", "--nprep", "1"),
        ):
            self.ok(*step)
        wait_for(lambda: len(self.running_pids()) == 2, what="two jobs running")
        states = [status for status, _, _ in self.rows().values()]
        assert sorted(states[:4]) == ["C", "R", "R", "S"] and set(states[4:]) == {"N"}

    def open_gate(self) -> None:
        (self.data / "gate").unlink(missing_ok=True)

    # --- what it says ------------------------------------------------------------------

    def rows(self) -> dict[int, Row]:
        conn = sqlite3.connect(self.db)
        try:
            rows = conn.execute("SELECT run, status, attempts, job_id FROM alcapana_v1")
            return {run: (status, attempts or 0, job_id) for run, status, attempts, job_id in rows}
        finally:
            conn.close()

    def failures(self) -> int:
        """Failed attempts recorded in alcapctl_failures."""
        conn = sqlite3.connect(self.db)
        try:
            return int(conn.execute("SELECT count(*) FROM alcapctl_failures").fetchone()[0])
        finally:
            conn.close()

    def ledger(self) -> Counter[int]:
        """How many times each run's job started."""
        path = self.data / "ledger"
        return (
            Counter(int(line) for line in path.read_text().split()) if path.exists() else Counter()
        )

    def pids(self) -> dict[int, int]:
        return {int(p.name): int(p.read_text()) for p in (self.data / "pids").glob("[0-9]*")}

    def running_pids(self) -> dict[int, int]:
        return {run: pid for run, pid in self.pids().items() if alive(pid)}

    def job_processes(self) -> list[int]:
        """Live processes running this kit's payload, whether or not they wrote their PID."""
        marker = str(self.root / "payload.sh").encode()
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
        return [pid for pid in found if alive(pid)]

    def staging_dir(self) -> Path:
        return (self.staging or self.data / "raw") / "alcapana_v1"

    def staged(self) -> set[str]:
        """Files in the production's staging directory."""
        folder = self.staging_dir()
        return {p.name for p in folder.iterdir()} if folder.exists() else set()

    def snapshot(self) -> Snapshot:
        return self.rows(), self.failures(), self.staged(), self.running_pids()

    # --- checks ------------------------------------------------------------------------

    def assert_untouched(self, before: Snapshot, *, progress: bool = False) -> None:
        """No run changed state (with ``progress``, none went back: steps the fault does not
        block may move runs on), no attempt counted, every job that ran still alive, every
        staged input still there, no job started twice."""
        rows, failures, staged, running = before
        now = self.rows()
        if progress:
            for run, (status, _, job_id) in rows.items():
                later = _ORDER[_ORDER.index(status) :]
                assert now[run][0] in later, (run, now[run])
                assert status != "R" or now[run][2] == job_id, (run, now[run])
        else:
            assert {run: row[0] for run, row in now.items()} == {
                run: row[0] for run, row in rows.items()
            }
        assert self.failures() == failures == 0
        assert {attempts for _, attempts, _ in now.values()} == {0}
        held = {f"run{run:05d}.mid" for run, (status, _, _) in now.items() if status in "SR"}
        assert self.staged() >= staged | held
        assert self.running_pids().items() >= running.items()
        assert max(self.ledger().values()) == 1

    def assert_finished_once(self, done: subprocess.CompletedProcess[str] | None = None) -> None:
        """Every run F, each job started exactly once, nothing left in staging."""
        if done is not None:
            assert done.returncode == 0, done.stderr
        assert {status for status, _, _ in self.rows().values()} == {"F"}
        assert self.ledger() == Counter(RUNS)
        assert self.failures() == 0
        assert self.staged() == set()

    def assert_aborted(self) -> None:
        """The 2014 abort, completed: no job alive, every unfinished run N, staging empty."""
        assert self.job_processes() == []
        assert {status for status, _, _ in self.rows().values()} <= {"N", "F"}
        assert self.staged() == set()


def raw(run: int) -> str:
    return f"raw data of run {run}\n"


@contextmanager
def database_locked(db: Path) -> Iterator[None]:
    """Another process holds the SQLite write lock (BEGIN IMMEDIATE) within the block."""
    code = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('BEGIN IMMEDIATE')\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield
    finally:
        holder.kill()
        holder.wait()


@contextmanager
def step_lock_held(kit: Kit, *command: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holds this user's step lock on the production, through
    alcapctl.steplock, as ``alcapctl COMMAND`` would."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from alcapctl.steplock import step_lock\n"
        "workdir, user = Path(sys.argv[1]), sys.argv[2]\n"
        "sys.argv[1:] = sys.argv[3:]\n"
        "with step_lock(workdir, user):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    workdir = (kit.work or kit.data / "work") / "alcapana_v1"
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(workdir), os.environ["ALCAPCTL_USER"], *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()


@contextmanager
def small_tmpfs(where: Path, size: str = "8m") -> Iterator[Path]:
    """A real, small file system at ``where`` (root only; the test is skipped elsewhere);
    ``resize(where, size)`` makes it smaller or larger."""
    where.mkdir(parents=True)
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def resize(mount: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)


def set_quota(report: Path, percent: int) -> None:
    """What the quota command (``cat report``, parsed as df) says of the data file system."""
    used = percent * 10_000
    report.write_text(
        "Filesystem     1024-blocks    Used Available Capacity Mounted on\n"
        f"gpfs_data          1000000 {used} {1_000_000 - used} {percent}% /gpfs/data\n"
    )


def lock_holder_pid(kit: Kit) -> int | None:
    """The PID the production's step lock file names, if any."""
    lock = (kit.work or kit.data / "work") / "alcapana_v1.tester.lock"
    try:
        text = lock.read_text()
    except OSError:
        return None
    return int(text.split()[1]) if text.startswith("pid ") else None
