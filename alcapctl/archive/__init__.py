"""Archives that inputs are staged from: one module per URL scheme behind ``Archive``.

``open_archive`` picks the implementation: a rootana production reads its base
production's trees in place; an alcapana production fetches raw files from
``archive.url`` (``ftp://`` or ``file://``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alcapctl.archive.base import Archive, ArchiveUnavailable, FetchError, Progress
from alcapctl.errors import ConfigError

if TYPE_CHECKING:
    from alcapctl.steps.context import StepContext

__all__ = ["Archive", "ArchiveUnavailable", "FetchError", "Progress", "open_archive"]


def open_archive(ctx: StepContext) -> Archive:
    """The archive a production's inputs come from; a bad setting is a ConfigError (exit 2)."""
    if ctx.record.type == "rootana":
        from alcapctl.archive.trees import BaseTrees

        return BaseTrees()
    settings = ctx.settings.archive
    if settings.url is None:
        raise ConfigError(
            "archive.url: not set; an alcapana production needs one in the site or production "
            "TOML, e.g. [archive] url = 'ftp://archivftp.psi.ch/alcap/raw' or 'file:///data/raw'"
        )
    if settings.url.startswith("ftp://"):
        from alcapctl.archive.ftp import FtpArchive

        return FtpArchive(
            settings.url,
            timeout=settings.timeout,
            retries=settings.retries,
            recalls=settings.recall is not None,
        )
    if settings.recall is not None:
        raise ConfigError(f"archive.recall: {settings.url} is not an ftp:// archive; remove it")
    from alcapctl.archive.local import LocalArchive

    return LocalArchive(settings.url)
