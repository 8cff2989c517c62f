"""The FTP archive against a real pyftpdlib server: downloads, failures, resume, recall, netrc."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from alcapctl.archive import ArchiveUnavailable, FetchError
from alcapctl.archive.ftp import FtpArchive
from alcapctl.errors import EXIT_USAGE, UsageError
from tests.ftpserver import (
    DroppingDTP,
    FtpServer,
    NoRestHandler,
    RecordingHandler,
    StallingHandler,
    write_netrc,
)

NAME = "run02091.mid"
CONTENT = os.urandom(3 << 20) + b"tail"  # a few chunks, not a round number


def _archive(
    server: FtpServer, *, timeout: float = 5.0, retries: int = 2, recalls: bool = False
) -> FtpArchive:
    return FtpArchive(server.url, timeout=timeout, retries=retries, recalls=recalls, backoff=0.01)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    path = tmp_path / "staging"
    path.mkdir()
    return path


def test_download_is_byte_identical(ftp_server: Callable[..., FtpServer], staging: Path) -> None:
    server = ftp_server()
    server.put(NAME, CONTENT)
    dest = staging / NAME
    assert _archive(server).fetch(NAME, dest) == dest
    assert dest.read_bytes() == CONTENT
    assert _leftovers(dest.parent) == [NAME]
    assert server.commands("TYPE") == ["I"]
    assert server.commands("SIZE") == [NAME]


def test_wrong_password_fails_clearly_and_leaves_nothing(
    ftp_server: Callable[..., FtpServer], staging: Path
) -> None:
    server = ftp_server()
    server.put(NAME, CONTENT)
    write_netrc(server.netrc, password="wrong")
    with pytest.raises(UsageError, match=r"login as 'alcap' refused .*530.*machine 127\.0\.0\.1"):
        _archive(server).fetch(NAME, staging / NAME)
    assert _leftovers(staging) == []
    assert server.commands("RETR") == []


def test_missing_remote_file_fails_at_once(
    ftp_server: Callable[..., FtpServer], staging: Path
) -> None:
    server = ftp_server()
    with pytest.raises(FetchError, match=r"run09999\.mid: not on the archive \(550"):
        _archive(server).fetch("run09999.mid", staging / "run09999.mid")
    assert _leftovers(staging) == []
    assert len(server.commands("SIZE")) == 1  # not retried: retrying cannot help


def _dropping(drops: int) -> type[DroppingDTP]:
    return type("Drop", (DroppingDTP,), {"drop_after": 1 << 20, "drops": drops})


def test_dropped_connection_resumes_with_rest(
    ftp_server: Callable[..., FtpServer], staging: Path
) -> None:
    server = ftp_server(dtp_handler=_dropping(1), use_sendfile=False)
    server.put(NAME, CONTENT)
    dest = _archive(server).fetch(NAME, staging / NAME)
    assert dest.read_bytes() == CONTENT
    assert server.commands("REST") == [str(1 << 20)]
    assert server.commands("RETR") == [NAME, NAME]


def test_dropped_connection_restarts_where_rest_is_refused(
    ftp_server: Callable[..., FtpServer], staging: Path
) -> None:
    server = ftp_server(NoRestHandler, dtp_handler=_dropping(1), use_sendfile=False)
    server.put(NAME, CONTENT)
    dest = _archive(server).fetch(NAME, staging / NAME)
    assert dest.read_bytes() == CONTENT
    assert server.commands("RETR") == [NAME, NAME]
    assert _leftovers(staging) == [NAME]


def test_truncated_part_is_never_renamed_into_place(
    ftp_server: Callable[..., FtpServer], staging: Path
) -> None:
    server = ftp_server(dtp_handler=_dropping(99), use_sendfile=False)
    server.put(NAME, CONTENT)
    with pytest.raises(FetchError, match=r"failed after 2 tries"):
        _archive(server, retries=1).fetch(NAME, staging / NAME)
    assert _leftovers(staging) == []


def test_a_server_that_never_answers_times_out(
    ftp_server: Callable[..., FtpServer], staging: Path
) -> None:
    server = ftp_server(StallingHandler)
    server.put(NAME, CONTENT)
    with pytest.raises(FetchError, match=r"timeout 0\.3 s\): the server stopped answering"):
        _archive(server, timeout=0.3, retries=1).fetch(NAME, staging / NAME)
    assert server.commands("RETR") == [NAME, NAME]
    assert _leftovers(staging) == []


def test_no_server_is_archive_unavailable(
    ftp_server: Callable[..., FtpServer], staging: Path
) -> None:
    server = ftp_server()
    archive = FtpArchive("ftp://127.0.0.1:1/raw", timeout=1, retries=0)
    with pytest.raises(ArchiveUnavailable, match="cannot connect"):
        archive.fetch(NAME, staging / NAME)
    assert server.received == []


def test_recall_sends_each_command(ftp_server: Callable[..., FtpServer]) -> None:
    server = ftp_server()
    archive = _archive(server, recalls=True)
    sent = archive.recall(["STAGE run02091.mid", "STAGE run02092.mid"])
    assert sent == ["STAGE run02091.mid", "STAGE run02092.mid"]
    assert server.commands("STAGE") == ["run02091.mid", "run02092.mid"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_netrc_readable_by_others_is_refused(
    ftp_server: Callable[..., FtpServer], mode: int
) -> None:
    server = ftp_server()
    server.netrc.chmod(mode)
    with pytest.raises(
        UsageError, match=rf"readable by group or others \(mode {mode:03o}\).*chmod 600"
    ) as err:
        _archive(server)
    assert err.value.exit_code == EXIT_USAGE
    assert server.received == []


def test_netrc_from_environment_and_missing_entry(
    ftp_server: Callable[..., FtpServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ftp_server()
    other = tmp_path / "other-netrc"
    other.write_text("machine archivftp.psi.ch login a password b\n")
    other.chmod(0o600)
    monkeypatch.setenv("NETRC", str(other))
    with pytest.raises(UsageError, match=r"other-netrc: no 'machine 127\.0\.0\.1' entry"):
        _archive(server)


class _AbortedOnQuit(RecordingHandler):
    """Answers QUIT as a server does that has just seen the data connection cut: 426."""

    def ftp_QUIT(self, line: str) -> None:
        self.respond("426 Transfer aborted.")
        self.close_when_done()


def test_ctrl_c_mid_transfer_is_not_taken_for_a_dropped_transfer(
    ftp_server: Callable[..., FtpServer], staging: Path
) -> None:
    """The 426 a server gives for the transfer Ctrl-C cut must not replace the interrupt
    (ftplib's QUIT on leaving would raise it): no retry, no partial file."""
    server = ftp_server(_AbortedOnQuit)
    server.put(NAME, CONTENT)

    class CtrlC:
        def start(self, name: str, total: int | None, done: int = 0) -> None:
            pass

        def advance(self, name: str, nbytes: int) -> None:
            raise KeyboardInterrupt

        def finish(self, name: str) -> None:
            pass

    with pytest.raises(KeyboardInterrupt):
        _archive(server).fetch(NAME, staging / NAME, CtrlC())
    assert _leftovers(staging) == []
    assert server.commands("RETR") == [NAME]
