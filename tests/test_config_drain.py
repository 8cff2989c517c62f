"""A configuration file broken under a running loop drains it instead of aborting it.

The fault kit's scene (tests/faultkit.py: two runs R with their jobs held at a gate, one
S, one C, two N) under ``alcapctl run``; once the loop's first cycle has submitted run 3003,
a file the production reads again mid-run is broken: the FTP archive's ``~/.netrc`` (or
its directory on the server), the checksum file or the ``[job] script``.  The loop must
take no new work, hand its claims back, reap the jobs that were running to the end and
exit 2: no run failed, no attempt counted, no job cancelled.  With the file repaired,
``run`` finishes every run once.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

from tests.conftest import write_toml
from tests.faultkit import RUNS, Kit, raw, wait_for
from tests.ftpserver import FtpServer, write_netrc


@dataclass
class Breakage:
    """A kit whose production reads a file again every cycle; ``broken`` breaks that file
    and ``repaired`` puts it back."""

    kit: Kit
    broken: Callable[[], object]
    repaired: Callable[[], object]


def _swap_for_directory(path: Path) -> None:
    """Root reads any file whatever its mode: a directory in its place cannot be read."""
    path.unlink()
    path.mkdir(mode=0o700)


def _restore_file(path: Path, write: Callable[[], object]) -> Callable[[], None]:
    def restore() -> None:
        if path.is_dir():
            path.rmdir()
        write()

    return restore


def _ftp(tmp_path: Path, start: Callable[..., FtpServer], how: str) -> Breakage:
    server = start()
    for run in RUNS:
        server.put(f"run{run:05d}.mid", raw(run).encode())
    kit = Kit(tmp_path, archive_url=server.url)
    netrc, folder = server.netrc, server.root / "raw"
    if how == "directory removed":  # the server answers 550 to CWD
        moved = server.root / "moved"
        return Breakage(kit, lambda: folder.rename(moved), lambda: moved.rename(folder))

    def broken() -> None:
        if how == "netrc malformed":
            netrc.write_text("machine 127.0.0.1\n  login alcap s3cret-tape\n")  # no 'password'
        else:
            _swap_for_directory(netrc)

    return Breakage(kit, broken, _restore_file(netrc, lambda: write_netrc(netrc)))


def _checksums(tmp_path: Path, how: str) -> Breakage:
    kit = Kit(tmp_path)
    sums = tmp_path / "adler32.txt"

    def write() -> None:
        lines = (f"run{r:05d}.mid {zlib.adler32(raw(r).encode()):08x}\n" for r in RUNS)
        sums.write_text("".join(lines))

    write()
    site = tomllib.loads((kit.root / "site.toml").read_text())
    site["archive"]["checksums"] = str(sums)
    write_toml(kit.root / "site.toml", site)

    def broken() -> None:
        if how == "removed":
            sums.unlink()
        else:
            _swap_for_directory(sums)

    return Breakage(kit, broken, _restore_file(sums, write))


def _script(tmp_path: Path) -> Breakage:
    kit = Kit(tmp_path)
    script = kit.root / "payload.sh"
    text = script.read_text()
    prod = tomllib.loads(kit.prod.read_text())
    prod["job"]["script"] = str(script)
    prod["job"]["command"] = prod["job"]["command"].replace(f"sh {script}", "sh {script}")
    write_toml(kit.prod, prod)
    return Breakage(kit, script.unlink, lambda: script.write_text(text))


CASES = [
    "ftp netrc malformed",
    "ftp netrc unreadable",
    "ftp directory removed",
    "checksums removed",
    "checksums unreadable",
    "script removed",
]


@pytest.fixture
def breakage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Breakage]:
    name: str = request.param
    what, how = name.split(" ", 1)
    if what == "ftp":
        made = _ftp(tmp_path, request.getfixturevalue("ftp_server"), how)
    elif what == "checksums":
        made = _checksums(tmp_path, how)
    else:
        made = _script(tmp_path)
    try:
        yield made
    finally:
        made.kit.open_gate()


@pytest.mark.parametrize("breakage", CASES, indirect=True)
def test_a_file_broken_mid_run_drains_the_loop(breakage: Breakage) -> None:
    kit = breakage.kit
    kit.arrange()
    running = {3001, 3002, 3003}  # once the loop's first cycle has submitted 3003
    loop = kit.start("run")
    try:
        wait_for(lambda: set(kit.running_pids()) == running, what="the loop to submit run 3003")
        breakage.broken()
        kit.open_gate()
        _, err = loop.communicate(timeout=60)
    finally:
        loop.kill()
    assert loop.returncode == 2, err
    rows = kit.rows()
    assert all(rows[run][0] == "F" for run in running)  # reaped to the end, not cancelled
    assert kit.failures() == 0 and {attempts for _, attempts, _ in rows.values()} == {0}
    assert max(kit.ledger().values()) == 1
    left = {run: status for run, (status, _, _) in rows.items() if status != "F"}
    assert 3006 in left and set(left.values()) <= {"S", "N"}  # claims handed back
    assert kit.staged() >= {f"run{run:05d}.mid" for run, status in left.items() if status == "S"}
    breakage.repaired()
    kit.assert_finished_once(kit.cli("run"))
