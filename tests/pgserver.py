"""A real PostgreSQL server for the tests: Debian's package, ``initdb`` in a temporary
directory and ``pg_ctl`` on a free loopback port, run as the ``postgres`` user (the server
refuses root).  One server per test session; each test gets its own empty database.

``ALCAPCTL_PG=skip`` skips every PostgreSQL test; otherwise a missing package is installed
(as the cluster harness installs Slurm) and a server that does not start fails the tests.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "alcap"
PASSWORD = "s3cret-pw"
_counter = itertools.count()


@dataclass(frozen=True)
class PgServer:
    """A running server: the URL of a new database is ``url(name)``."""

    host: str
    port: int
    bindir: Path
    datadir: Path

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@{self.host}:{self.port}/{database}"

    def psql(self, database: str, sql: str) -> str:
        """Run SQL as the superuser (peer login over the socket) and return its output."""
        out = subprocess.run(
            [
                "runuser", "-u", "postgres", "--",
                str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.datadir.parent), "-p", str(self.port), "-d", database, "-c", sql,
            ],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout

    def new_database(self) -> str:
        name = f"t{os.getpid()}_{next(_counter)}"
        self.psql("postgres", f"CREATE DATABASE {name} OWNER {USER} TEMPLATE template0")
        return name

    def drop_database(self, name: str) -> None:
        self.psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bindir / "pg_ctl"),
             "-D", str(self.datadir), "-w", *args],
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        _apt_install("postgresql")
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent


def _apt_install(package: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(options: str = "") -> PgServer:
    """initdb + pg_ctl start (``options``: more ``-c name=value`` for the server); the
    caller stops it with ``stop_server``."""
    bindir = _bindir()
    postgres = pwd.getpwnam("postgres")
    top = Path(tempfile.mkdtemp(prefix="alcapctl-pg-"))
    os.chown(top, postgres.pw_uid, postgres.pw_gid)
    server = PgServer("127.0.0.1", _free_port(), bindir, top / "data")
    pwfile = top / "pw"
    pwfile.write_text("postgres-admin\n")
    os.chown(pwfile, postgres.pw_uid, postgres.pw_gid)
    subprocess.run(
        ["runuser", "-u", "postgres", "--", str(bindir / "initdb"), "-D", str(server.datadir),
         "-U", "postgres", "--pwfile", str(pwfile), "-E", "UTF8", "--locale", "C",
         "--auth-local", "peer", "--auth-host", "scram-sha-256", "--no-sync"],
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    options = (
        f"-k {top} -p {server.port} -c listen_addresses=127.0.0.1 -c fsync=off "
        f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 {options}"
    )
    server.pg_ctl("-l", str(top / "log"), "-o", options, "start")
    server.psql("postgres", f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
    return server


def stop_server(server: PgServer) -> None:
    server.pg_ctl("-m", "immediate", "stop")
    shutil.rmtree(server.datadir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if os.environ.get("ALCAPCTL_PG") == "skip":
        pytest.skip("ALCAPCTL_PG=skip")
    server = start_server()
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def pg_url(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The URL of a new empty database; the password reaches libpq as $PGPASSWORD."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    name = pg_server.new_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)
