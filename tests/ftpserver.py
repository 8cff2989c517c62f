"""A real FTP server (pyftpdlib on 127.0.0.1) with a netrc for it, and handlers that misbehave.

``ftp_server()`` starts a server in a thread on a free port with one user; the handler
class can be swapped for one that drops the data connection half-way, refuses REST,
never answers RETR, or records the recall commands it receives.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())
logging.getLogger("pyftpdlib").propagate = False

USER = "alcap"
PASSWORD = "s3cret-tape"


class RecordingHandler(FTPHandler):
    """Answers at once (no delay after a bad password), knows the PSI archive's STAGE
    recall command, and records every command line it receives but passwords."""

    auth_failed_timeout = 0
    proto_cmds: ClassVar[dict[str, dict[str, Any]]] = {
        **FTPHandler.proto_cmds,
        "STAGE": {"perm": None, "auth": True, "arg": True, "help": "Syntax: STAGE <SP> name"},
    }
    received: ClassVar[list[str]] = []  # replaced per server by the fixture

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        if cmd != "PASS":
            self.received.append(line)
        super().pre_process_command(line, cmd, arg)

    def ftp_STAGE(self, line: str) -> None:
        self.respond("200 Recall queued.")


class DroppingDTP(DTPHandler):
    """Closes the data connection after ``drop_after`` bytes, ``drops`` times in all."""

    drop_after = 0
    drops = 0

    def send(self, data: bytes) -> int:
        cls = type(self)
        if cls.drops > 0 and self.tot_bytes_sent + len(data) >= cls.drop_after:
            cls.drops -= 1
            sent: int = super().send(data[: cls.drop_after - self.tot_bytes_sent])
            self.handle_close()  # 426 on the control connection, as a dropped link gives
            return sent
        result: int = super().send(data)
        return result


class NoRestHandler(RecordingHandler):
    def ftp_REST(self, line: str) -> None:
        self.respond("502 Command not implemented.")


class StallingHandler(RecordingHandler):
    def ftp_RETR(self, file: str) -> None:
        """Never answers: the client must give up by its timeout."""


@dataclass
class FtpServer:
    root: Path
    port: int
    netrc: Path
    received: list[str] = field(default_factory=list)

    def commands(self, verb: str) -> list[str]:
        """The arguments of every ``verb`` command received, in order."""
        return [line.split(" ", 1)[1] for line in self.received if line.startswith(verb + " ")]

    @property
    def url(self) -> str:
        return f"ftp://127.0.0.1:{self.port}/raw"

    def put(self, name: str, content: bytes) -> Path:
        path = self.root / "raw" / name
        path.write_bytes(content)
        return path


def write_netrc(path: Path, password: str = PASSWORD, mode: int = 0o600) -> Path:
    """Written aside and renamed into place: a loop reading it meanwhile (the fault suite
    changes the password under a running loop) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.new")
    aside.write_text(f"machine 127.0.0.1\n  login {USER}\n  password {password}\n")
    aside.chmod(mode)
    aside.replace(path)
    return path


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[Callable[..., FtpServer]]:
    """Start servers on demand: ``ftp_server(handler=..., dtp=...)``; all stop at the end."""
    stops: list[Callable[[], None]] = []

    def start(handler: type[FTPHandler] = RecordingHandler, **attrs: Any) -> FtpServer:
        root = tmp_path / f"ftp{len(stops)}"
        (root / "raw").mkdir(parents=True)
        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, PASSWORD, str(root), perm="elr")
        received: list[str] = []
        server_handler = type(
            "Handler", (handler,), {"authorizer": authorizer, "received": received, **attrs}
        )
        loop = IOLoop()
        server = FTPServer(("127.0.0.1", 0), server_handler, ioloop=loop)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
            server.close_all()

        thread = threading.Thread(target=serve, name="ftp-server", daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(timeout=10)

        stops.append(halt)
        netrc = write_netrc(Path(os.environ["HOME"]) / ".netrc")
        return FtpServer(root, server.address[1], netrc, received)

    yield start
    for halt in stops:
        halt()
