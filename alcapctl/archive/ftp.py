"""``ftp://host[:port]/dir``: the PSI tape archive, reached with netrc credentials.

Each fetch opens its own connection (transfers run in threads), asks the server the file's
``SIZE``, retrieves it in binary mode into ``<name>.part`` and renames it into place once
the size matches.  A dropped transfer is resumed with ``REST`` (restarted if the server
refuses), up to ``retries`` times with a growing pause when no byte came through; a
transfer still dropped or stalled after the last try is the archive's fault
(``ArchiveUnavailable``), one whose server reported the wrong size is the run's.  The
directory is taken relative to the login directory, as curl does.
"""

from __future__ import annotations

import contextlib
import errno
import ftplib
import os
import socket
import time
import urllib.parse
from pathlib import Path

import structlog

from alcapctl.archive.base import (
    Archive,
    ArchiveRefused,
    ArchiveUnavailable,
    FetchError,
    Progress,
    part_path,
    pump,
)
from alcapctl.archive.credentials import netrc_credentials, netrc_path
from alcapctl.errors import ConfigError
from alcapctl.urls import mask_url

__all__ = ["FtpArchive"]

log = structlog.get_logger("alcapctl.archive.ftp")

# What a dropped or stalled transfer raises; the next try resumes it.
_TRANSIENT = (OSError, EOFError, ftplib.error_temp, ftplib.error_reply, ftplib.error_proto)
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EIO}  # our side: retrying cannot help


class FtpArchive(Archive):
    """Fetch inputs over FTP; optionally recall them from tape first."""

    parallel = True

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        recalls: bool = False,
        netrc: Path | None = None,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if not parts.hostname:
            raise ConfigError(f"{url}: an ftp:// archive URL needs a host")
        self.url = mask_url(url)  # shown in messages only
        self.host = parts.hostname
        self.port = parts.port or ftplib.FTP_PORT
        self.directory = urllib.parse.unquote(parts.path).strip("/")
        self.netrc = netrc or netrc_path()
        self.user, self.password = netrc_credentials(self.host, self.netrc)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._recalls = recalls
        self._resume = True  # cleared once the server refuses REST

    @property
    def recalls(self) -> bool:
        return self._recalls

    def _connect(self) -> ftplib.FTP:
        ftp = ftplib.FTP(timeout=self.timeout)
        try:
            ftp.connect(self.host, self.port)
        except (OSError, EOFError, ftplib.Error) as exc:
            ftp.close()
            raise ArchiveUnavailable(f"{self.url}: cannot connect: {_why(exc)}") from None
        try:
            ftp.login(self.user, self.password)
            ftp.voidcmd("TYPE I")
            if self.directory:
                ftp.cwd(self.directory)
        except ftplib.error_perm as exc:
            ftp.close()
            if str(exc).startswith("530"):
                raise ArchiveRefused(
                    f"{self.url}: login as {self.user!r} refused ({_why(exc)}); "
                    f"check 'machine {self.host}' in {self.netrc}"
                ) from None
            raise ConfigError(f"{self.url}: the archive refused the directory ({exc})") from None
        except _TRANSIENT as exc:
            ftp.close()
            raise ArchiveUnavailable(f"{self.url}: {_why(exc)}") from None
        return ftp

    def recall(self, commands: list[str]) -> list[str]:
        """Send each recall command once, on one connection; returns those sent."""
        sent: list[str] = []
        with self._connect() as ftp:
            for command in commands:
                try:
                    ftp.sendcmd(command)
                except ftplib.error_perm as exc:
                    log.warning(
                        "the archive refused a recall command", command=command, reply=str(exc)
                    )
                except _TRANSIENT as exc:
                    log.warning("recall interrupted; will retry", command=command, reason=_why(exc))
                    break
                sent.append(command)
        return sent

    def fetch(self, name: str, dest: Path, progress: Progress | None = None) -> Path:
        part = part_path(dest)
        part.unlink(missing_ok=True)
        try:
            return self._fetch(name, part, dest, progress)
        except BaseException:  # failed, interrupted or cancelled: no partial file stays
            part.unlink(missing_ok=True)
            raise

    def _fetch(self, name: str, part: Path, dest: Path, progress: Progress | None) -> Path:
        delay = self.backoff
        reason = ""
        dropped = False  # the last try lost its connection: the archive's fault, not the run's
        for attempt in range(self.retries + 1):
            before = _size(part)
            try:
                expected = self._download(name, part, progress)
            except ArchiveUnavailable as exc:
                if attempt == self.retries:
                    raise
                reason, dropped = str(exc), True
            except _TRANSIENT as exc:
                if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
                    raise  # the staging disk: a transient fault of the step, not the run's
                reason, dropped = _why(exc), True
            else:
                have = _size(part)
                if expected is None or have == expected:
                    os.replace(part, dest)
                    return dest
                reason, dropped = f"the transfer ended at {have} of {expected} bytes", False
                if have > expected:
                    part.unlink()
            if attempt < self.retries:
                # A transfer that moved on is resumed at once; a stuck server gets a pause.
                if _size(part) <= before:
                    time.sleep(delay)
                    delay = min(delay * 2, self.max_backoff)
                log.info("retrying transfer", file=name, attempt=attempt + 2, reason=reason)
        error = ArchiveUnavailable if dropped else FetchError
        raise error(
            f"{name}: failed after {self.retries + 1} tries (timeout {self.timeout:g} s): {reason}"
        )

    def _download(self, name: str, part: Path, progress: Progress | None) -> int | None:
        """One try: resume or start ``part``; returns the size the server announced.

        The connection is closed without QUIT: after a transfer cut short (Ctrl-C, a
        cancelled step) the server's next reply is its 426 for that transfer, which
        ftplib's QUIT on leaving would raise in place of the interrupt."""
        with contextlib.closing(self._connect()) as ftp:
            try:
                expected: int | None = ftp.size(name)
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    raise FetchError(f"{name}: not on the archive ({_why(exc)})") from None
                expected = None  # the server has no SIZE: trust its 226 reply alone
            offset = _size(part) if self._resume else 0
            conn, offset = self._open_data(ftp, name, offset)
            if progress is not None:
                progress.start(name, expected, offset)
            try:
                with conn:
                    pump(conn.recv_into, part, name, progress, append=offset > 0)
                ftp.voidresp()
            finally:
                if progress is not None:
                    progress.finish(name)
            return expected

    def _open_data(self, ftp: ftplib.FTP, name: str, offset: int) -> tuple[socket.socket, int]:
        if offset:
            try:
                conn, _ = ftp.ntransfercmd(f"RETR {name}", rest=offset)
                return conn, offset
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    raise FetchError(f"{name}: not on the archive ({_why(exc)})") from None
                log.info("the archive cannot resume; restarting", file=name, reply=str(exc))
                self._resume = False
        try:
            conn, _ = ftp.ntransfercmd(f"RETR {name}")
        except ftplib.error_perm as exc:
            raise FetchError(f"{name}: the archive refused it ({_why(exc)})") from None
        return conn, 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "the server stopped answering (timeout)"
    return str(exc) or type(exc).__name__
