"""The generated job wrapper: golden file, quoting, exit file on success, failure and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from alcapctl.batch.wrapper import (
    EXIT_FILE,
    HEARTBEAT_FILE,
    read_exit,
    render_script,
    write_job,
)

GOLDEN = Path(__file__).parent / "data" / "wrapper"
# A scheduler's job script has a heartbeat helper; a local job's has none.
HEARTBEATS = pytest.mark.parametrize("heartbeat", [60, None], ids=["scheduler", "local"])


def _outputs(root: Path) -> dict[str, Path]:
    return {
        "tree": root / "tree/v4/tree02091.root",
        "hist": root / "hist/v4/hist02091.root",
        "odb": root / "dump/v4/dump02091.root",
        "olog": root / "log/v4/alcapana.run02091.out",
        "elog": root / "log/v4/alcapana.run02091.err",
    }


def _script(root: Path, command: str, jobdir: Path, heartbeat: int | None) -> str:
    return render_script(
        "alcap-alcapana4-02091-a1",
        jobdir,
        command,
        {"run": 2091, "input": str(root / "raw/it's run02091.mid"), "version": 4},
        _outputs(root),
        {"DAQdir": "/opt/daq dir", "ROOTSYS": "/opt/root"},
        "0123456789abcdef",
        heartbeat,
    )


@pytest.mark.parametrize(
    ("heartbeat", "golden"), [(60, "alcapana.sh"), (None, "alcapana-local.sh")]
)
def test_golden_script(heartbeat: int | None, golden: str) -> None:
    root = Path("/data")
    command = "$DAQdir/alcapana -i {input} -T {tree} -H {hist} -D {odb} -r {run:05d} -v {version}"
    jobdir = Path("/work/alcapana_v4/jobs/alcap-alcapana4-02091-a1")
    assert _script(root, command, jobdir, heartbeat) == (GOLDEN / golden).read_text()


def _run(
    tmp_path: Path, command: str, heartbeat: int | None
) -> tuple[Path, subprocess.Popen[bytes]]:
    jobdir = tmp_path / "job"
    script = write_job(jobdir, _script(tmp_path, command, jobdir, heartbeat))
    return jobdir, subprocess.Popen(["/bin/sh", str(script)], start_new_session=True)


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("cat {input} > {tree} && echo ok", 0),
        ("echo oops >&2; exit 7", 7),
        # The payload's failure is the job's whatever follows it in the script.
        ("false; status=$?; rm -rf {hist}; exit $status", 1),
    ],
)
@HEARTBEATS
def test_exit_code_is_the_payload(
    tmp_path: Path, command: str, code: int, heartbeat: int | None
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "it's run02091.mid").write_text("raw\n")
    jobdir, proc = _run(tmp_path, command, heartbeat)
    assert proc.wait(timeout=30) == code
    assert read_exit(jobdir) == code
    if heartbeat is None:  # the local backend finds its wrappers in /proc
        assert not (jobdir / HEARTBEAT_FILE).exists()
    else:
        assert int((jobdir / HEARTBEAT_FILE).read_text()) == proc.pid
    if code == 0:
        assert (tmp_path / "tree/v4/tree02091.root").read_text() == "raw\n"
        assert (tmp_path / "log/v4/alcapana.run02091.out").read_text() == "ok\n"
    if code == 7:
        assert (tmp_path / "log/v4/alcapana.run02091.err").read_text() == "oops\n"


@HEARTBEATS
def test_sigterm_writes_exit_file(tmp_path: Path, heartbeat: int | None) -> None:
    jobdir, proc = _run(tmp_path, "echo started; exec sleep 60", heartbeat)
    olog = tmp_path / "log/v4/alcapana.run02091.out"
    for _ in range(100):
        if olog.exists() and olog.read_text():
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)  # the scheduler signals the wrapper only
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert read_exit(jobdir) == 128 + signal.SIGTERM


def test_partial_exit_file_is_not_read(tmp_path: Path) -> None:
    (tmp_path / EXIT_FILE).write_text("")
    assert read_exit(tmp_path) is None
    (tmp_path / EXIT_FILE).write_text("1")
    assert read_exit(tmp_path) is None
    (tmp_path / EXIT_FILE).write_text("0\n")
    assert read_exit(tmp_path) == 0
