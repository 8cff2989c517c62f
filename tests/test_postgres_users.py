"""Several users on one server: four ``alcapctl run`` processes with different
ALCAPCTL_USER finish one production on one PostgreSQL database (local backend, file://
archive); every job appends its run to a ledger file, which is what the tests count."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from alcapctl.store import DatasetRow, Store
from tests.conftest import ALCAPCTL, run_process, write_toml
from tests.local_site import local_site
from tests.pgserver import PASSWORD, PgServer, start_server, stop_server

RUNS = list(range(3000, 3024))
USERS = [f"user{i}" for i in range(4)]


def _shared_production(tmp_path: Path, url: str) -> Path:
    store, _ = Store.create(url)
    store.import_datasets([DatasetRow(r, "SiR2", "gold") for r in RUNS], "test")
    store.close()
    site = local_site(tmp_path, Path("unused"), RUNS, database=url)
    ledger = tmp_path / "ledger"
    prod = write_toml(
        tmp_path / "shared.toml",
        {
            "type": "alcapana",
            "tag": "t",
            "site": str(site),
            "limits": {"nproc": 2, "nprep": 1, "pause": 0.05, "grace": 0, "lease": 1},
            "outputs": {"hist": "", "odb": ""},
            "job": {"command": f"echo {{run}} >> {ledger}; sleep 0.3; cat {{input}} > {{tree}}"},
        },
    )
    assert run_process("init", prod).returncode == 0
    return prod


@pytest.fixture
def production(tmp_path: Path, pg_url: str) -> Path:
    return _shared_production(tmp_path, pg_url)


def _rows(server: PgServer, url: str) -> list[tuple[int, str, str]]:
    out = server.psql(url.rsplit("/", 1)[1], 'SELECT run, status, "user" FROM alcapana_v1')
    rows = [line.split("|") for line in out.split()]
    return [(int(run), status, user) for run, status, user in rows]


def _ledger(tmp_path: Path) -> Counter[int]:
    return Counter(int(line) for line in (tmp_path / "ledger").read_text().split())


@pytest.fixture
def start() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``start(user, prod, host="testhost", node=[])``: ``alcapctl run`` as ``user`` on
    ``host``; ``node`` prefixes the command (``ip netns exec NS``)."""
    started: list[subprocess.Popen[bytes]] = []

    def run(
        user: str, prod: Path, host: str = "testhost", node: Sequence[str] = ()
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [*node, *ALCAPCTL, "-q", "run", str(prod)],
            env={**os.environ, "ALCAPCTL_USER": user, "ALCAPCTL_HOST": host},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        proc.kill()
        proc.wait()


def _finish(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()


def _assert_every_run_finished_once(server: PgServer, url: str) -> list[tuple[int, str, str]]:
    rows = _rows(server, url)
    assert sorted(run for run, _, _ in rows) == RUNS  # one row a run
    assert {status for _, status, _ in rows} == {"F"}
    return rows


def test_four_users_finish_one_production_each_job_once(
    tmp_path: Path, production: Path, pg_url: str, pg_server: PgServer, start: Callable[..., Any]
) -> None:
    _finish([start(user, production) for user in USERS])
    rows = _assert_every_run_finished_once(pg_server, pg_url)
    assert _ledger(tmp_path) == Counter(RUNS)  # every job ran exactly once
    assert len({user for _, _, user in rows}) >= 2  # the work was shared
    trees = sorted((tmp_path / "data/tree/v1").glob("tree*.root"))
    assert len(trees) == len(RUNS)


def test_kill_9_of_one_user_loses_nothing(
    tmp_path: Path, production: Path, pg_url: str, pg_server: PgServer, start: Callable[..., Any]
) -> None:
    """user0 is killed with SIGKILL once it has a job running.  What is asserted, and why:

    * every run ends F, in one row: the others take over user0's runs once its lease
      (1 s) expires — C and S back to N, R reaped where its job ran;
    * a run F when user0 died never runs again, and a run user0 held as R (its submit
      recorded) runs exactly once: its job is reaped, not redone;
    * only a run whose result was never recorded may run twice (user0 started its job in
      a transaction that the kill rolled back, so the database still said C, S or N),
      and no run runs more than twice.
    """
    victim = start(USERS[0], production)
    others = [start(user, production) for user in USERS[1:]]
    deadline = time.monotonic() + 60
    while not any(s == "R" and u == USERS[0] for _, s, u in _rows(pg_server, pg_url)):
        assert time.monotonic() < deadline, "user0 never had a job running"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    at_kill = {run: (status, user) for run, status, user in _rows(pg_server, pg_url)}
    _finish(others)

    _assert_every_run_finished_once(pg_server, pg_url)
    ran = _ledger(tmp_path)
    assert set(ran) == set(RUNS)
    again = {run for run, n in ran.items() if n > 1}
    assert max(ran.values()) <= 2
    finished_before = {run for run, (status, _) in at_kill.items() if status == "F"}
    held_running = {run for run, state in at_kill.items() if state == ("R", USERS[0])}
    assert held_running
    assert not again & (finished_before | held_running)
    assert all(ran[run] == 1 for run in held_running)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def login_nodes() -> Iterator[tuple[list[str], str]]:
    """Two login nodes: this network namespace and a new one joined by a veth pair; yields
    (the command prefix that runs on the second, the first one's veth address)."""
    if os.environ.get("ALCAPCTL_PG") == "skip":
        pytest.skip("ALCAPCTL_PG=skip")
    tag = os.getpid() % 10_000
    ns, here, there = f"alcap-login2-{tag}", f"vaq{tag}", f"vbq{tag}"
    address, peer = f"10.231.{tag % 250}.1", f"10.231.{tag % 250}.2"
    try:
        _ip("netns", "add", ns)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no network namespaces here (needs root and ip netns)")
    inside = ["ip", "netns", "exec", ns]
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        _ip("link", "set", there, "netns", ns)
        _ip("addr", "add", f"{address}/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("netns", "exec", ns, "ip", "addr", "add", f"{peer}/30", "dev", there)
        _ip("netns", "exec", ns, "ip", "link", "set", there, "up")
        yield inside, address
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", here], check=False, capture_output=True)


def test_two_login_nodes_share_one_server(
    tmp_path: Path,
    login_nodes: tuple[list[str], str],
    start: Callable[..., subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server listening only on a veth address; two users on each side of the veth
    pair (hosts login1 and login2) finish the production, each job once."""
    node2, address = login_nodes
    server = start_server(f"-c listen_addresses={address}")
    try:
        with (server.datadir / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {address.rsplit('.', 1)[0]}.0/30 scram-sha-256\n")
        server.pg_ctl("reload")
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
        url = f"postgresql://alcap@{address}:{server.port}/{server.new_database()}"
        prod = _shared_production(tmp_path, url)
        procs = [
            start("user0", prod, "login1"),
            start("user1", prod, "login1"),
            start("user2", prod, "login2", node2),
            start("user3", prod, "login2", node2),
        ]
        _finish(procs)
        rows = _assert_every_run_finished_once(server, url)
        assert _ledger(tmp_path) == Counter(RUNS)
        hosts = server.psql(url.rsplit("/", 1)[1], "SELECT DISTINCT host FROM alcapana_v1")
        assert set(hosts.split()) == {"login1", "login2"}  # both nodes took part
        assert len(rows) == len(RUNS)
    finally:
        stop_server(server)
