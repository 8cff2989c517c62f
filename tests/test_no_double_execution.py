"""Nothing runs twice at once: a payload that outlived its killed wrapper is taken down,
and gone, before its run is tried again (a ledger of start and end times per payload PID)."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.local_site import local_site

# A slow input's payload logs its start and end (also when it is terminated) and works a
# while; every payload writes the tree.
PAYLOAD = """\
read mode <"$1"
if [ "$mode" = slow ]; then
  stamp() { echo "$1 $$ $(date +%s.%N)" >>"$LEDGER"; }
  trap 'stamp end; exit 143' TERM
  stamp start
  sleep 4 & wait $!
  stamp end
fi
cat "$1" >"$2"
"""


def _ledger(path: Path) -> dict[int, list[float]]:
    """PID -> [start, end] of every payload that ran."""
    spans: dict[int, list[float]] = {}
    for line in path.read_text().splitlines():
        what, pid, at = line.split()
        spans.setdefault(int(pid), []).append(float(at))
        assert what == ("start" if len(spans[int(pid)]) == 1 else "end")
    return spans


def test_a_lost_jobs_payload_is_gone_before_the_retry_starts(
    run_cli: Callable[..., Result],
    tmp_path: Path,
    make_production: Callable[..., Path],
    db_path: Path,
) -> None:
    payload = tmp_path / "payload.sh"
    payload.write_text(PAYLOAD)
    ledger = tmp_path / "ledger.txt"
    site = local_site(
        tmp_path, db_path, range(2119, 2125), lambda run: "slow\n" if run == 2119 else "fast\n"
    )
    prod = make_production(
        "twice.toml",
        site=str(site),
        datasets=["Al100"],
        limits={"nproc": 1, "pause": 0.05, "grace": 0, "max_attempts": 3},
        outputs={"hist": "", "odb": ""},
        job={"command": f"sh {payload} {{input}} {{tree}}", "env": {"LEDGER": str(ledger)}},
    )
    assert run_cli("init", prod).exit_code == 0
    assert run_cli("claim", prod, "-n", "1").exit_code == 0
    assert run_cli("stage", prod).exit_code == 0
    assert run_cli("submit", prod).exit_code == 0
    with sqlite3.connect(db_path) as conn:
        (job_id,) = conn.execute("SELECT job_id FROM alcapana_v1 WHERE run=2119").fetchone()
    deadline = time.monotonic() + 10
    while not (ledger.exists() and ledger.read_text()):
        assert time.monotonic() < deadline, "the payload never started"
        time.sleep(0.02)
    os.kill(int(job_id.split("-")[0]), signal.SIGKILL)  # the wrapper; its payload runs on

    ran = run_cli("run", prod)
    assert ran.exit_code == 0, ran.output

    spans = sorted(_ledger(ledger).values())
    assert len(spans) == 2, spans  # the orphaned payload, then the retry
    assert all(len(span) == 2 for span in spans), spans  # every payload ended
    (_, old_end), (new_start, _) = spans
    assert old_end <= new_start, f"the retry started {old_end - new_start:.2f} s too early"
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT status, attempts FROM alcapana_v1 WHERE run=2119").fetchone()
    assert row == ("F", 1)
