"""`alcapctl report`: figures against a production the real steps ran, JSON, bad input,
reading only (with a writer holding the lock), and the page's size at 100,000 runs."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import Result

from alcapctl.clock import parse_iso
from alcapctl.report.figures import GroupBy
from alcapctl.report.model import ProductionReport, build_report
from alcapctl.store.report import read_report
from tests import report_support
from tests.conftest import GOLD_RUNS, digest, run_process
from tests.legacy import make_legacy_db

FAILING, FLAKY = GOLD_RUNS[1], GOLD_RUNS[2]

# The job: behaves as the first line of its input says, then writes its outputs.
JOB = """\
read mode <"$1"
case $mode in
  fail) echo "bad calibration" >&2; exit 3 ;;
  flaky) [ -e "$2.tried" ] || { : >"$2.tried"; echo "crashed once" >&2; exit 4; } ;;
esac
cat "$1" >"$2"
cp "$2" "$3"
echo odb >"$4"
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(production TOML, database) of a production `alcapctl run` took to its end on the
    local backend: one run failed for good (X) and one was retried and then finished."""
    tmp = tmp_path_factory.mktemp("ran")
    archive = tmp / "archive"
    archive.mkdir()
    for run in GOLD_RUNS:
        mode = {FAILING: "fail", FLAKY: "flaky"}.get(run, "ok")
        (archive / f"run{run:05d}.mid").write_text(f"{mode}\nraw data of run {run}\n")
    (tmp / "job.sh").write_text(JOB)
    db = tmp / "production.db"
    site = tmp / "site.toml"
    site.write_text(f'database = "{db}"\ndata = "{tmp / "data"}"\nbackend = "local"\n')
    prod = tmp / "prod.toml"
    prod.write_text(
        f'type = "alcapana"\ntag = "alcapana_test"\nsite = "{site}"\n'
        f'[job]\ncommand = "sh {tmp / "job.sh"} {{input}} {{tree}} {{hist}} {{odb}}"\n'
        f'[archive]\nurl = "file://{archive}"\n'
        "[limits]\nnproc = 3\nnprep = 2\npause = 0.05\nmax_attempts = 2\ngrace = 0\n"
    )
    env = {"ALCAPCTL_USER": "tester", "ALCAPCTL_HOST": "testhost", "HOME": str(tmp)}
    from alcapctl.store import DatasetRow, Store
    from tests.conftest import RUNLIST

    store, _ = Store.create(f"sqlite:///{db}")
    store.import_datasets([DatasetRow(r.run, r.dataset, r.quality) for r in RUNLIST], "test")
    store.close()
    assert run_process("init", prod, env=env).returncode == 0
    done = run_process("run", prod, env=env)
    assert done.returncode == 1, done.stderr  # one run ended X
    yield prod, db


def _report(db: Path, group_by: GroupBy = "host") -> ProductionReport:
    location, [snapshot] = read_report(f"sqlite:///{db}", 5.0, None)
    return build_report(snapshot, location, group_by=group_by)


def _rows(db: Path) -> list[tuple[int, str, str | None, str | None, str]]:
    with sqlite3.connect(db) as conn:
        query = (
            "SELECT d.run, p.status, p.start, p.stop, d.dataset FROM alcapana_v1 p"
            " JOIN datasets d ON d.run = p.run"
        )
        return conn.execute(query).fetchall()


def _ended_at(value: str | None) -> datetime:
    """A start or stop time of an ended run, which has both."""
    assert value is not None
    return parse_iso(value)


def test_states_per_dataset_count_a_run_in_every_dataset_it_belongs_to(
    ran: tuple[Path, Path],
) -> None:
    _, db = ran
    report = _report(db)
    expected: dict[str, Counter[str]] = {}
    for _, status, _, _, dataset in _rows(db):
        expected.setdefault(dataset, Counter())[status] += 1
    assert {d: {s: n for s, n in c.items() if n} for d, c in report.states.items()} == expected
    assert report.states["SiR2"]["X"] == 1 and report.states["Common"]["F"] == 1


def test_attempts_durations_and_progress_agree_with_the_rows(ran: tuple[Path, Path]) -> None:
    _, db = ran
    report = _report(db)
    assert report.attempts == {"finished": len(GOLD_RUNS) - 1, "failed": 1, "retried": 2}
    ended = {run: (start, stop) for run, status, start, stop, _ in _rows(db) if status in "FX"}
    assert sum(sum(c) for c in report.durations.counts.values()) == len(ended)
    longest = max((_ended_at(b) - _ended_at(a)).total_seconds() for a, b in ended.values())
    assert report.durations.edges[-1] == pytest.approx(longest, abs=1e-5)
    finished = Counter(d for _, status, _, _, d in _rows(db) if status == "F")
    assert {d: kinds["finished"][-1] for d, kinds in report.progress.series.items()} == finished
    assert report.progress.series["SiR2"]["failed"][-1] == 1
    assert "failed" not in report.progress.series["Al100"]


def test_timeline_groups_attempts_by_host_or_user(ran: tuple[Path, Path]) -> None:
    _, db = ran
    by_host = _report(db).timeline
    assert by_host.rows[0] == "testhost" and by_host.rows[-1] == "testhost failures"
    lanes: dict[int, list[tuple[float, float]]] = {}
    for bar in by_host.segments:
        if bar.outcome != "retried":
            lanes.setdefault(bar.row, []).append((bar.start, bar.end))
    for bars in lanes.values():  # one row, one job at a time
        bars.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(bars))
    outcomes = Counter(s.outcome for s in by_host.segments)
    assert outcomes == {"finished": len(GOLD_RUNS) - 1, "failed": 1, "retried": 2}
    retried_rows = {by_host.rows[s.row] for s in by_host.segments if s.outcome == "retried"}
    assert retried_rows == {"testhost failures"}
    by_user = _report(db, "user").timeline
    assert by_user.rows[0] == "tester" and len(by_user.segments) == len(by_host.segments)


def test_failures_grouped_by_reason_with_runs_and_elogs(ran: tuple[Path, Path]) -> None:
    prod, _ = ran
    done = run_process("report", prod, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    groups = {g["reason"]: g for g in data["failures"]}
    assert set(groups) == {"exit code 3", "exit code 4"}
    assert (groups["exit code 3"]["runs"], groups["exit code 3"]["attempts"]) == ([FAILING], 2)
    assert (groups["exit code 4"]["runs"], groups["exit code 4"]["attempts"]) == ([FLAKY], 1)
    assert "bad calibration" in groups["exit code 3"]["example"]
    for group in groups.values():
        [elog] = group["elogs"].values()
        assert Path(elog).is_file()
    assert data["provenance"]["tag"] == "alcapana_test"
    assert data["provenance"]["users"] == {"tester@testhost": len(GOLD_RUNS)}
    assert data["queue_wait_seconds"] is None


def test_all_reports_every_production(ran: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = ran
    page = tmp_path / "all.html"
    done = run_process("report", "--all", "--database", db, "--json", "--html", page)
    assert done.returncode == 0, done.stderr
    assert [r["production"] for r in json.loads(done.stdout)] == ["alcapana_v1"]
    assert '<section id="alcapana_v1">' in page.read_text()


def test_a_report_reads_while_another_session_holds_the_write_lock(
    ran: tuple[Path, Path], tmp_path: Path
) -> None:
    prod, db = ran
    before = digest(db)
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE alcapana_v1 SET status = 'N' WHERE status = 'X'")
        page = tmp_path / "page.html"
        done = run_process("report", prod, "--json", "--html", page, "--lock-timeout", "0")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["attempts"]["failed"] == 1  # the committed state
    assert page.stat().st_size > 0
    assert digest(db) == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--json"], "name a production TOML, or give --all"),
        (["{prod}"], "--html FILE, --json"),
        (["{other}", "--html", "{page}"], "no production"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    ran: tuple[Path, Path],
    tmp_path: Path,
    run_cli: Callable[..., Result],
    args: list[str],
    words: str,
) -> None:
    prod, db = ran
    other = tmp_path / "other.toml"
    other.write_text("version = 7\n" + prod.read_text().replace('"alcapana_test"', '"other"'))
    page = tmp_path / "page.html"
    before = digest(db)
    filled = [a.format(prod=prod, other=other, page=page) for a in args]
    result = run_cli("report", *filled, "--database", db)
    assert result.exit_code == 2
    assert words in result.stderr
    assert not page.exists() and digest(db) == before


@pytest.mark.slow
def test_a_page_of_100000_runs_stays_small(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    made = report_support.build(db, 100_000)
    page = tmp_path / "big.html"
    done = run_process("report", "--all", "--database", db, "--html", page, "--json")
    assert done.returncode == 0, done.stderr
    [data] = json.loads(done.stdout)
    assert sum(c[s] for c in data["states"].values() for s in c) == 100_000
    assert data["attempts"]["retried"] == made.retried
    assert data["attempts"]["failed"] == made.states["X"]
    assert len(data["timeline"]["bars"]) < 2_000
    assert page.stat().st_size < 400_000
    assert datetime.now(timezone.utc) > parse_iso(data["provenance"]["start"])


def test_a_2014_database_is_reported_as_it_is(tmp_path: Path) -> None:
    db = make_legacy_db(tmp_path / "production.db")
    before = digest(db)
    page = tmp_path / "legacy.html"
    done = run_process("report", "--all", "--database", db, "--json", "--html", page)
    assert done.returncode == 0, done.stderr
    v4 = {r["production"]: r for r in json.loads(done.stdout)}["alcapana_v4"]
    assert v4["states"]["SiR2"] == {"N": 2, "C": 2, "S": 0, "R": 2, "F": 1, "X": 0}
    assert v4["provenance"]["users"] == {"quirk_j": 5}
    assert digest(db) == before  # not migrated: a report only reads


def test_a_database_without_productions_gives_an_empty_report(
    db_path: Path, tmp_path: Path
) -> None:
    page = tmp_path / "none.html"
    done = run_process("report", "--all", "--database", db_path, "--json", "--html", page)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    assert "no productions" in page.read_text()
