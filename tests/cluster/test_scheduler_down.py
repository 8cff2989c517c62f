"""Real Slurm with slurmctld stopped mid-production: a transient fault, so ``run --once``
exits 75 with no run changed and the jobs still running; once slurmctld is back the
production finishes, every run F exactly once.  The daemon is restarted in any case."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import CLUSTERS
from tests.faultkit import Kit, alive, wait_for

pytestmark = pytest.mark.cluster

PIDFILE = Path("/run/slurmctld.pid")
HARNESS_PIDS = Path(os.environ.get("CLUSTER_STATE", "/var/tmp/alcapctl-cluster")) / "pids"
SLURM = CLUSTERS[0]


def _controller() -> int | None:
    try:
        pid = int(PIDFILE.read_text())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def _start_controller() -> None:
    """slurmctld again, recovering its saved state (no -c: the queue keeps its jobs);
    recorded for cluster/down.sh like the first one."""
    PIDFILE.unlink(missing_ok=True)
    subprocess.run(["slurmctld"], check=True)
    wait_for(lambda: _controller() is not None, timeout=30, what="slurmctld's pid file")
    with HARNESS_PIDS.open("a") as pids:
        pids.write(f"slurmctld {_controller()}\n")
    wait_for(SLURM.up, timeout=60, what="slurmctld answering")


@pytest.fixture
def controller() -> Iterator[None]:
    if not SLURM.up():
        pytest.skip("slurm is not up (make test-cluster starts it)")
    try:
        yield
    finally:
        if _controller() is None:
            _start_controller()


def _stop_controller() -> None:
    pid = _controller()
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), timeout=30, what="slurmctld to stop")


def test_slurmctld_down_costs_nothing_then_the_production_finishes(
    tmp_path: Path, controller: None
) -> None:
    kit = Kit(tmp_path, backend="slurm")
    try:
        kit.arrange()  # two runs R, their jobs running on the node
        before = kit.snapshot()
        _stop_controller()
        done = kit.cli("run", "--once", timeout=300)
        assert done.returncode == 75, done.stderr
        kit.assert_untouched(before, progress=True)  # staging goes on while Slurm is down
        _start_controller()
        queued = SLURM.queued_ids()
        assert {job_id for _, _, job_id in before[0].values() if job_id} <= queued
        kit.open_gate()
        kit.assert_finished_once(kit.cli("run", timeout=300))
    finally:
        kit.open_gate()
