"""Shared fixtures: a real SQLite database with a run list, site and production TOMLs, the CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import tomli_w
from click.testing import CliRunner, Result

from alcapctl.cli import cli
from alcapctl.store import DatasetRow, Store

# A small run list shaped like the experiment's: several datasets, one overlap (3200 in
# Common with NULL quality and in SiR2), and a non-gold run.
RUNLIST = [
    *(DatasetRow(r, "SiR2", "gold") for r in range(2091, 2104)),
    DatasetRow(2104, "SiR2", "silver"),
    *(DatasetRow(r, "Al100", "gold") for r in range(2119, 2125)),
    DatasetRow(3200, "Common", None),
    DatasetRow(3200, "SiR2", "gold"),
]
GOLD_RUNS = sorted({r.run for r in RUNLIST if r.quality == "gold"})


@pytest.fixture(autouse=True)
def _isolated_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's site config or act as the developer's user."""
    monkeypatch.setenv("ALCAPCTL_USER", "tester")
    monkeypatch.setenv("ALCAPCTL_HOST", "testhost")
    monkeypatch.delenv("ALCAPCTL_DATABASE", raising=False)
    monkeypatch.delenv("ALCAPCTL_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """A command run in-process configures structlog (its level filter too): reset after
    each test, so that no test sees the logging of the one before it."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A new database holding RUNLIST."""
    path = tmp_path / "production.db"
    store, _ = Store.create(f"sqlite:///{path}")
    store.import_datasets(RUNLIST, "fixture")
    store.close()
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def digest(path: Path) -> str:
    """The sha256 of a file's bytes: to show a command left it unchanged."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` by its path and sha256: to show a command changed none."""
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


def write_toml(path: Path, content: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(content))
    return path


@pytest.fixture
def site_toml(tmp_path: Path, db_path: Path, data_dir: Path) -> Path:
    return write_toml(
        tmp_path / "site.toml",
        {"database": str(db_path), "data": str(data_dir), "backend": "local"},
    )


@pytest.fixture
def make_production(tmp_path: Path, site_toml: Path) -> Callable[..., Path]:
    """Write a production TOML pointing at the test site; keyword arguments override keys."""

    def make(name: str = "prod.toml", **fields: Any) -> Path:
        content: dict[str, Any] = {
            "type": "alcapana",
            "tag": "alcapana_test",
            "site": str(site_toml),
            "job": {"command": "cat {input} > {tree}"},
        }
        content.update(fields)
        return write_toml(tmp_path / name, content)

    return make


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """Invoke the CLI in-process; stderr is kept apart from stdout."""
    runner = CliRunner()

    def invoke(*args: str, **kwargs: Any) -> Result:
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return invoke


ALCAPCTL = [sys.executable, "-m", "alcapctl"]


def run_process(
    *args: str | Path, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run alcapctl as a real process (for signals, concurrency, exit codes)."""
    return subprocess.run(
        [*ALCAPCTL, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=kwargs.pop("timeout", 120),
        **kwargs,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL of each dialect (not yet created): a test using it runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'production.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store_url(database_url: str) -> str:
    """A new database holding RUNLIST, on each dialect: the store's tests run on both."""
    store, _ = Store.create(database_url)
    store.import_datasets(RUNLIST, "fixture")
    store.close()
    return database_url


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """The store of ``db_path``, the SQLite file ``site_toml`` and ``make_production`` use."""
    s = Store.open(f"sqlite:///{db_path}")
    yield s
    s.close()


@pytest.fixture
def dialect_store(store_url: str) -> Iterator[Store]:
    """The store of ``store_url``: a test of the store's API taking it runs on SQLite and
    on PostgreSQL."""
    s = Store.open(store_url)
    yield s
    s.close()


# ftp_server: a real pyftpdlib server; pg_server / pg_url: a real PostgreSQL server;
# daq: a fake $DAQdir with the stand-ins
pytest_plugins = ["tests.ftpserver", "tests.pgserver", "tests.daq"]
