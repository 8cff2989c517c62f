"""``file:///dir``: a local or mounted archive; inputs are hard-linked, or copied when needed.

A hard link costs no space and no time, so it is tried first; another file system, a file
system without links, or a file owned by someone else (Linux ``protected_hardlinks``) falls
back to a copy through ``<name>.part``.
"""

from __future__ import annotations

import errno
import os
import urllib.parse
from pathlib import Path

from alcapctl.archive.base import (
    Archive,
    ArchiveUnavailable,
    FetchError,
    Progress,
    part_path,
    pump,
    replace_part,
)
from alcapctl.errors import ConfigError

__all__ = ["LocalArchive"]

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EIO}
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


class LocalArchive(Archive):
    """Inputs from a directory on this machine."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"{url}: a file:// archive must be local (file:///dir)")
        self.url = url
        self.directory = Path(urllib.parse.unquote(parts.path))

    def fetch(self, name: str, dest: Path, progress: Progress | None = None) -> Path:
        source = self.directory / name
        part = part_path(dest)
        try:
            _link(source, part)
        except FileNotFoundError:
            raise self._missing(name) from None
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise FetchError(f"{name}: cannot link from {self.directory}: {exc}") from None
        else:
            os.replace(part, dest)
            part.unlink(missing_ok=True)  # a rename onto another link of one inode does nothing
            return dest
        return self._copy(source, part, dest, progress)

    def _missing(self, name: str) -> FetchError:
        """A missing input, or a whole archive missing (not mounted here, a typo)."""
        if not self.directory.is_dir():
            return ArchiveUnavailable(f"{self.url}: no such directory {self.directory}")
        return FetchError(f"{name}: not in the archive {self.directory}")

    def _copy(self, source: Path, part: Path, dest: Path, progress: Progress | None) -> Path:
        name = source.name
        try:
            with source.open("rb") as src:
                size = os.fstat(src.fileno()).st_size
                if progress is not None:
                    progress.start(name, size)
                try:
                    pump(src.readinto, part, name, progress)
                finally:
                    if progress is not None:
                        progress.finish(name)
        except FileNotFoundError:
            raise self._missing(name) from None
        except OSError as exc:
            part.unlink(missing_ok=True)
            if exc.errno in _NO_SPACE:  # the staging disk, not the run: a transient fault
                raise
            raise FetchError(f"{name}: copy from {self.directory} failed: {exc}") from None
        except BaseException:  # interrupted or cancelled: no partial file stays
            part.unlink(missing_ok=True)
            raise
        return replace_part(part, dest, size)


def _link(source: Path, part: Path) -> None:
    try:
        os.link(source, part)
    except FileExistsError:  # left by a process that died between link and rename
        part.unlink()
        os.link(source, part)
