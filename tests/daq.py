"""A fake AlcapDAQ installation ($DAQdir) with the stand-ins, and the shipped productions
made runnable against a test site: what the tests of the real AlCap jobs share, locally
and on the clusters (a pytest plugin: its fixtures are everyone's)."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alcapctl.config import load_settings
from alcapctl.steps.context import StepContext, open_production
from alcapctl.store import RunRecord, Store
from tests.conftest import run_process

REPO = Path(__file__).resolve().parent.parent
PRODUCTIONS = REPO / "productions"
STANDINS = Path(__file__).resolve().parent / "standins"
# the default ODBs, in the name order the job must load them
DEFAULT_ODBS = ("Analyzer_WireMap.odb", "Defaults.odb", "compression.odb")
MODULES = "common/MUnCompressRawData\nFADC/MOctalFADCProcessRaw\n"
AL100 = [2119, 2120, 2121, 2122, 2123, 2124]  # the Al100 gold runs of the fixture run list


@dataclass(frozen=True)
class Daq:
    root: Path  # $DAQdir

    @property
    def alcapana(self) -> Path:
        return self.root / "analyzer" / "work" / "production" / "alcapana"

    @property
    def modules(self) -> Path:
        return self.root / "analyzer" / "work" / "production" / "MODULES"

    @property
    def odbedit_log(self) -> Path:
        """pid, MIDAS_DIR and command of every odbedit call, one a line."""
        return self.root / "bin" / "odbedit.log"

    def odbedit_calls(self) -> list[tuple[str, str]]:
        """(MIDAS_DIR, command) of every odbedit call so far."""
        if not self.odbedit_log.exists():
            return []
        return [
            (fields[1], fields[2])
            for fields in (line.split("\t") for line in self.odbedit_log.read_text().splitlines())
        ]


def make_daq(root: Path) -> Daq:
    """$DAQdir as the jobs see it: thisdaq.sh (puts odbedit on PATH), alcapana with its
    MODULES, the default ODBs, rootana."""
    daq = Daq(root)
    (root / "bin").mkdir(parents=True)
    shutil.copy(STANDINS / "odbedit", root / "bin" / "odbedit")
    (root / "thisdaq.sh").write_text('PATH="$DAQdir/bin:$PATH"; export PATH\n')
    daq.alcapana.parent.mkdir(parents=True)
    shutil.copy(STANDINS / "alcapana", daq.alcapana)
    daq.modules.write_text(MODULES)
    odb = root / "analyzer" / "odb"
    odb.mkdir()
    for name in DEFAULT_ODBS:
        (odb / name).write_text(f"[/Analyzer/{name}]\ndefault = INT : 1\n")
    (root / "analyzer" / "rootana").mkdir()
    shutil.copy(STANDINS / "rootana", root / "analyzer" / "rootana" / "rootana")
    return daq


def write_run_odbs(data: Path, runs: Iterable[int]) -> None:
    """Each run's ODB and its corrections, at the 2014 paths under the data root."""
    (data / "odb").mkdir(parents=True, exist_ok=True)
    (data / "corr").mkdir(parents=True, exist_ok=True)
    for run in runs:
        (data / "odb" / f"run{run:05d}.odb").write_text(f"[/Runinfo]\nRun number = INT : {run}\n")
        (data / "corr" / f"corr{run:05d}.odb").write_text(f"[/Corrections]\nrun = INT : {run}\n")


def shipped_production(
    name: str, dest: Path, site: Path, archive_url: str | None, **replace: str
) -> Path:
    """The shipped production ``name`` (``alcapana_v4.toml``), copied to ``dest`` with its
    files made absolute, the test site named, the archive at ``archive_url`` (a file://
    archive takes no tape recall) and ``replace``'s keys' lines replaced."""
    text = (PRODUCTIONS / name).read_text()
    text = re.sub(
        r'^(script|modules) = "(?!\$)([^"]+)"',
        lambda m: f'{m.group(1)} = "{PRODUCTIONS / m.group(2)}"',
        text,
        flags=re.M,
    )
    if archive_url is not None:
        text = re.sub(r'^url = ".*"', f'url = "{archive_url}"', text, flags=re.M)
        if archive_url.startswith("file://"):
            text = re.sub(r"^recall = .*\n", "", text, flags=re.M)
    for key, value in replace.items():
        text, count = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
        assert count == 1, key
    path = dest / name
    path.write_text(f'site = "{site}"\n{text}')
    return path


@pytest.fixture
def daq(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Daq:
    """$DAQdir, set in this shell; a space in its path: every path must reach a job quoted."""
    installed = make_daq(tmp_path / "DAQ dir")
    monkeypatch.setenv("DAQdir", str(installed.root))
    return installed


@pytest.fixture
def archive(tmp_path: Path, data_dir: Path) -> Path:
    """A file:// archive of the Al100 raw files, and their ODBs under the data root."""
    path = tmp_path / "archive"
    path.mkdir()
    for run in AL100:
        (path / f"run{run:05d}.mid").write_text(f"raw data of run {run}\n")
    write_run_odbs(data_dir, AL100)
    return path


@pytest.fixture
def context() -> Iterator[Callable[[Path], StepContext]]:
    stores: list[Store] = []

    def open_context(prod: Path) -> StepContext:
        settings = load_settings(prod)
        stores.append(Store.open(settings.database))
        return open_production(settings, stores[-1])

    yield open_context
    for store in stores:
        store.close()


def runs_of(ctx: StepContext) -> dict[int, RunRecord]:
    return {r.run: r for r in ctx.store.runs(ctx.record, lambda t: t.select(), write=False)}


def legacy_modules(db_path: Path, table: str) -> dict[int, str | None]:
    """The legacy ``modules`` column, as a 2014 reader sees it."""
    with sqlite3.connect(db_path) as conn:
        return dict(conn.execute(f"SELECT run, modules FROM {table}").fetchall())


def produce(prod: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``init`` (which must succeed), then ``run`` with ``args``."""
    done = run_process("init", prod)
    assert done.returncode == 0, done.stderr
    return run_process("run", prod, *args, **kwargs)
