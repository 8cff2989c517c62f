"""The stage step end to end: real FTP server or directory, real database, files checked after."""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyftpdlib.handlers import ThrottledDTPHandler
from structlog.testing import capture_logs

from alcapctl.config import load_settings
from alcapctl.errors import ConfigError
from alcapctl.states import RunState
from alcapctl.steps.context import StepContext, open_production
from alcapctl.steps.stage import StageResult, stage
from alcapctl.store import RunRecord, RunTable, Store
from tests.conftest import GOLD_RUNS, write_toml
from tests.ftpserver import DroppingDTP, FtpServer

C, S, R, X = RunState.CLAIMED, RunState.STAGED, RunState.RUNNING, RunState.FAILED
OWNER = ("tester", "testhost")


def raw(run: int) -> bytes:
    """A fake MIDAS file whose content says which run it is."""
    return f"MIDAS run {run}\n".encode() * (200 + run)


@pytest.fixture
def open_ctx() -> Iterator[Callable[[Path], StepContext]]:
    stores: list[Store] = []

    def make(prod: Path) -> StepContext:
        """Register the production (init) and open it."""
        settings = load_settings(prod)
        store = Store.open(settings.database)
        stores.append(store)
        assert settings.production is not None
        store.init(settings.production)
        return open_production(settings, store)

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def production(
    make_production: Callable[..., Path], open_ctx: Callable[[Path], StepContext]
) -> Callable[..., StepContext]:
    """``production(archive, claim, site=None, **limits)``: registered, ``claim`` runs in C."""

    def make(
        archive: dict[str, Any], claim: int, site: Path | None = None, **limits: Any
    ) -> StepContext:
        fields: dict[str, Any] = {"site": str(site)} if site else {}
        prod = make_production(archive=archive, limits={"transfers": 1, **limits}, **fields)
        ctx = open_ctx(prod)
        ctx.store.runs(ctx.record, lambda runs: runs.claim(claim, OWNER), write=True)
        return ctx

    return make


@pytest.fixture
def served(ftp_server: Callable[..., FtpServer]) -> FtpServer:
    """A well-behaved server holding the raw files of the first four gold runs."""
    server = ftp_server()
    for run in GOLD_RUNS[:4]:
        server.put(f"run{run:05d}.mid", raw(run))
    return server


def rows(ctx: StepContext) -> dict[int, RunRecord]:
    return {r.run: r for r in ctx.store.runs(ctx.record, lambda t: t.select(), write=False)}


def states(ctx: StepContext) -> dict[int, str]:
    return {run: r.status.value for run, r in rows(ctx).items() if r.status is not RunState.NEW}


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    path = tmp_path / "archive"
    path.mkdir()
    for run in GOLD_RUNS:
        (path / f"run{run:05d}.mid").write_bytes(raw(run))
    return path


def test_ftp_staging_until_nprep(served: FtpServer, production: Callable[..., StepContext]) -> None:
    server = served
    ctx = production({"url": server.url}, claim=3, nprep=2)
    result = stage(ctx)
    lines = [e.text for e in result.events]
    assert lines == [
        "Staging runs: [2091, 2092]",
        "Downloading run: 2091",
        "... Success!",
        "Downloading run: 2092",
        "... Success!",
    ]
    assert result.staged == [2091, 2092] and result.failed == {}
    assert states(ctx) == {2091: "S", 2092: "S", 2093: "C"}
    for run in (2091, 2092):
        path = Path(str(rows(ctx)[run].input))
        assert path == ctx.staging_dir / f"run{run:05d}.mid"
        assert path.read_bytes() == raw(run)
    assert sorted(os.listdir(ctx.staging_dir)) == ["run02091.mid", "run02092.mid"]
    # nprep inputs are ready: the next call has nothing to do; run 2093 waits in C.
    again = stage(ctx)
    assert again == StageResult(claimed=1) and again.left == 1


def test_parallel_transfers_in_threads(
    served: FtpServer, production: Callable[..., StepContext]
) -> None:
    server = served
    ctx = production({"url": server.url}, claim=4, nprep=4, transfers=3)
    result = stage(ctx)
    assert sorted(result.staged) == GOLD_RUNS[:4]
    for run in GOLD_RUNS[:4]:
        assert Path(str(rows(ctx)[run].input)).read_bytes() == raw(run)


def test_recall_sent_once_per_run_ahead_of_its_download(
    served: FtpServer, production: Callable[..., StepContext]
) -> None:
    server = served
    archive = {"url": server.url, "recall": "STAGE {filename}"}
    ctx = production(archive, claim=3, nprep=1)
    first = stage(ctx)
    assert first.recalled == [2091, 2092, 2093] and first.staged == [2091]
    assert stage(ctx).recalled == []  # nprep full: nothing new, nothing resent
    ctx.store.runs(ctx.record, lambda t: t.move([2091], S, R), write=True)
    assert stage(ctx).staged == [2092]
    assert server.commands("STAGE") == ["run02091.mid", "run02092.mid", "run02093.mid"]
    retr = [line for line in server.received if line.startswith(("STAGE", "RETR"))]
    assert retr.index("RETR run02092.mid") > retr.index("STAGE run02092.mid")


def test_missing_file_counts_attempts_until_x(
    ftp_server: Callable[..., FtpServer], production: Callable[..., StepContext]
) -> None:
    server = ftp_server()
    ctx = production({"url": server.url}, claim=1, max_attempts=2)
    first = stage(ctx)
    lines = [e.text for e in first.events]
    assert list(first.failed) == [2091] and first.exhausted == []
    assert lines[-1].startswith("... Failed: run02091.mid: not on the archive (550")
    row = rows(ctx)[2091]
    assert (row.status, row.attempts, row.input) == (C, 1, None)
    assert "not on the archive" in str(row.error)
    second = stage(ctx)
    assert second.exhausted == [2091]
    assert rows(ctx)[2091].status is X
    failures = ctx.store.runs(ctx.record, lambda t: t.failures(), write=False)
    assert [(f.run, f.attempt, f.step) for f in failures] == [
        (2091, 1, "stage"),
        (2091, 2, "stage"),
    ]


def test_a_transfer_dropped_on_every_try_costs_the_run_nothing(
    ftp_server: Callable[..., FtpServer], production: Callable[..., StepContext]
) -> None:
    """A connection that drops mid-file is the archive's fault: no attempt counted, the
    run stays C, the partial file is removed and never recorded as the input."""
    dtp = type("Drop", (DroppingDTP,), {"drop_after": 1000, "drops": 99})
    server = ftp_server(dtp_handler=dtp, use_sendfile=False)
    server.put("run02091.mid", raw(2091))
    archive = {"url": server.url, "retries": 1}
    ctx = production(archive, claim=1)
    result = stage(ctx)
    assert result.failed == {}
    assert result.unavailable is not None and "failed after 2 tries" in result.unavailable
    row = rows(ctx)[2091]
    assert (row.status, row.input, row.attempts) == (C, None, 0)
    assert ctx.store.runs(ctx.record, lambda t: t.failures(), write=False) == []
    assert os.listdir(ctx.staging_dir) == []


def _site_with_quota(tmp_path: Path, db_path: Path, data_dir: Path, report: Path) -> Path:
    return write_toml(
        tmp_path / "quota-site.toml",
        {
            "database": str(db_path),
            "data": str(data_dir),
            "quota": {"command": ["cat", str(report)], "parser": "df"},
        },
    )


def _df(percent: int) -> str:
    used = percent * 10_000
    return (
        "Filesystem     1024-blocks    Used Available Capacity Mounted on\n"
        f"gpfs_data          1000000 {used} {1_000_000 - used} {percent}% /gpfs/data\n"
    )


def test_space_limit_stops_fetching_until_space_frees(
    production: Callable[..., StepContext],
    archive_dir: Path,
    tmp_path: Path,
    db_path: Path,
    data_dir: Path,
) -> None:
    report = tmp_path / "quota.txt"
    report.write_text(_df(95))
    site = _site_with_quota(tmp_path, db_path, data_dir, report)
    ctx = production({"url": archive_dir.as_uri()}, claim=2, site=site, spacelim=90)
    with capture_logs() as logs:
        full = stage(ctx)
        assert stage(ctx).waiting_for_space  # still full: still nothing, said once
        assert full.waiting_for_space and full.staged == [] and full.space_percent == 95.0
        assert states(ctx) == {2091: "C", 2092: "C"}
        assert not ctx.staging_dir.exists()
        report.write_text(_df(40))
        freed = stage(ctx)
    assert not freed.waiting_for_space and freed.staged == [2091, 2092]
    said = [(e["event"], e["percent"]) for e in logs if "spacelim" in e]
    assert said == [
        ("data file system above spacelim: no new inputs fetched", 95.0),
        ("space freed: fetching resumes", 40.0),
    ]
    assert states(ctx) == {2091: "S", 2092: "S"}


def test_file_archive_hard_links(production: Callable[..., StepContext], archive_dir: Path) -> None:
    ctx = production({"url": archive_dir.as_uri()}, claim=2)
    assert stage(ctx).staged == [2091, 2092]
    staged = ctx.staging_dir / "run02091.mid"
    assert staged.stat().st_ino == (archive_dir / "run02091.mid").stat().st_ino
    assert rows(ctx)[2091].input == str(staged)


def test_file_archive_on_another_file_system_is_copied(
    production: Callable[..., StepContext], tmp_path: Path
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system")
    archive = shm / f"alcapctl-test-{os.getpid()}"
    archive.mkdir()
    try:
        (archive / "run02091.mid").write_bytes(raw(2091))
        ctx = production({"url": archive.as_uri()}, claim=1)
        assert stage(ctx).staged == [2091]
        staged = ctx.staging_dir / "run02091.mid"
        assert staged.read_bytes() == raw(2091)
        assert staged.stat().st_nlink == 1
        assert os.listdir(ctx.staging_dir) == ["run02091.mid"]
    finally:
        for path in archive.iterdir():
            path.unlink()
        archive.rmdir()


def test_checksum_mismatch_deletes_the_file_and_fails(
    production: Callable[..., StepContext], archive_dir: Path, tmp_path: Path
) -> None:
    good = zlib.adler32(raw(2092))
    sums = tmp_path / "sums.txt"
    sums.write_text(f"# adler32 of the raw files\nrun02091.mid 0badc0de\nrun02092.mid {good:08x}\n")
    archive = {"url": archive_dir.as_uri(), "checksums": str(sums)}
    ctx = production(archive, claim=2)
    result = stage(ctx)
    assert result.staged == [2092]
    assert result.failed == {
        2091: "run02091.mid: adler32 "
        + f"{zlib.adler32(raw(2091)):08x}"
        + ", the archive lists 0badc0de"
    }
    assert os.listdir(ctx.staging_dir) == ["run02092.mid"]
    assert (archive_dir / "run02091.mid").read_bytes() == raw(2091)  # the archive is untouched
    assert rows(ctx)[2091].status is C


def _finish_base(
    store: Store, make_production: Callable[..., Path], trees: dict[int, Path]
) -> None:
    """An alcapana v1 whose given runs finished with these trees."""
    base = make_production("base.toml", version=1)
    settings = load_settings(base)
    assert settings.production is not None
    record = store.init(settings.production).record

    def finish(runs: RunTable) -> None:
        done = runs.claim(len(trees), OWNER)
        runs.move(done, C, S)
        runs.move(done, S, R)
        for run, tree in trees.items():
            runs.move([run], R, RunState.FINISHED, tree=str(tree))

    store.runs(record, finish, write=True)


def test_rootana_input_is_the_base_tree_checked_in_place(
    make_production: Callable[..., Path],
    open_ctx: Callable[[Path], StepContext],
    store: Store,
    data_dir: Path,
) -> None:
    trees = {run: data_dir / f"tree{run:05d}.root" for run in GOLD_RUNS[:2]}
    trees[2091].write_bytes(b"tree")  # 2092's tree was recorded but is gone
    _finish_base(store, make_production, trees)
    prod = make_production(
        "rootana.toml",
        type="rootana",
        tag="rootana_test",
        base=1,
        job={"command": "cat {input} > {out}"},
    )
    ctx = open_ctx(prod)
    ctx.store.runs(ctx.record, lambda runs: runs.claim(2, OWNER), write=True)
    result = stage(ctx)
    lines = [e.text for e in result.events]
    assert result.staged == [2091]
    assert "tree02092.root: the base production's tree is missing" in result.failed[2092]
    assert lines[:3] == ["Staging runs: [2091, 2092]", "Checking run: 2091", "... Success!"]
    assert rows(ctx)[2091].input == str(trees[2091])
    assert not ctx.staging_dir.exists()  # nothing copied
    assert trees[2091].read_bytes() == b"tree"


def test_nothing_claimed_is_one_read(production: Callable[..., StepContext]) -> None:
    ctx = production({"url": "ftp://unreachable.invalid/raw"}, 0)
    assert stage(ctx) == StageResult()  # no archive opened: no netrc needed, nothing reached


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        ({}, "archive.url: not set"),
        (
            {"url": "file:///archive", "recall": "STAGE {filename}"},
            "archive.recall: file:///archive",
        ),
    ],
)
def test_archive_settings_are_checked(
    production: Callable[..., StepContext], archive: dict[str, Any], message: str
) -> None:
    ctx = production(archive, claim=1)
    with pytest.raises(ConfigError, match=message) as err:
        stage(ctx)
    assert err.value.exit_code == 2
    assert states(ctx) == {2091: "C"}


def test_an_interrupted_step_stops_its_transfers_and_leaves_no_file(
    ftp_server: Callable[..., FtpServer], production: Callable[..., StepContext]
) -> None:
    slow = type("Slow", (ThrottledDTPHandler,), {"write_limit": 500_000})
    server = ftp_server(dtp_handler=slow)
    for run in GOLD_RUNS[:2]:
        server.put(f"run{run:05d}.mid", os.urandom(4 << 20))  # 8 s each at this rate
    ctx = production({"url": server.url}, claim=2, nprep=2, transfers=2)

    class InterruptOnceBothStarted:
        """Ctrl-C, as seen by the step, while both transfers are under way."""

        def __init__(self) -> None:
            self.started: set[str] = set()

        def start(self, name: str, total: int | None, done: int = 0) -> None:
            self.started.add(name)

        def advance(self, name: str, nbytes: int) -> None:
            if len(self.started) == 2:
                raise KeyboardInterrupt

        def finish(self, name: str) -> None:
            pass

    with pytest.raises(KeyboardInterrupt):
        stage(ctx, progress=InterruptOnceBothStarted())
    assert os.listdir(ctx.staging_dir) == []  # 2091 gave up mid-way, its .part removed
    assert states(ctx) == {2091: "C", 2092: "C"}
    assert {t.name for t in threading.enumerate()} & {"alcapctl-stage_0"} == set()
