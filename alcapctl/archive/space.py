"""How full the data file system is, and whether another input may be fetched.

The use is measured once per ``stage`` call: statvfs on the staging directory, or the
site's ``[quota]`` command read by its parser.  Bytes fetched later in the same call are
added to it, so the limit holds before every fetch without probing again.  Crossing the
limit is logged once, in each direction, even across processes (a flag file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from alcapctl.archive.quota import PARSERS, SpaceUse
from alcapctl.config import Quota
from alcapctl.errors import AlcapError, ConfigError

__all__ = ["SpaceGate", "SpaceUnknown", "announce", "command_use", "probe_space", "statvfs_use"]

log = structlog.get_logger("alcapctl.archive.space")

QUOTA_TIMEOUT = 60.0  # seconds; mmlsquota can be slow on a loaded GPFS cluster


class SpaceUnknown(AlcapError):
    """The quota command failed this time; nothing is fetched until it answers."""


def statvfs_use(path: Path) -> SpaceUse:
    """Use of the file system holding ``path`` (or its nearest existing parent), as df."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    st = os.statvfs(existing)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    return SpaceUse(used, used + st.f_bavail * st.f_frsize, f"statvfs {existing}")


def command_use(quota: Quota) -> SpaceUse:
    """Run the site's quota command and parse its output."""
    import sh  # costs ~70 ms to import: only sites with a quota command pay it

    argv = list(quota.command)
    shown = " ".join(argv)
    try:
        output = str(sh.Command(argv[0])(*argv[1:], _tty_out=False, _timeout=QUOTA_TIMEOUT))
    except sh.CommandNotFound:
        raise ConfigError(f"quota.command: {argv[0]!r} not found") from None
    except sh.ErrorReturnCode as exc:
        err = exc.stderr.decode(errors="replace").strip()
        raise SpaceUnknown(f"{shown}: exit {exc.exit_code}: {err}") from None
    except sh.TimeoutException:
        raise SpaceUnknown(f"{shown}: no answer within {QUOTA_TIMEOUT:g} s") from None
    try:
        return PARSERS[quota.parser](output)
    except ValueError as exc:
        raise ConfigError(
            f"quota.parser: {quota.parser!r} cannot read the output of {shown}: {exc}"
        ) from None


def probe_space(quota: Quota | None, staging: Path) -> SpaceUse:
    return statvfs_use(staging) if quota is None else command_use(quota)


@dataclass
class SpaceGate:
    """Allows fetches while used + fetched stays below ``spacelim`` percent of the limit."""

    use: SpaceUse
    spacelim: float
    added: int = 0

    @property
    def percent(self) -> float:
        return 100.0 * (self.use.used + self.added) / self.use.limit if self.use.limit else 0.0

    def allows(self) -> bool:
        return self.percent < self.spacelim

    def add(self, nbytes: int) -> None:
        self.added += nbytes


def announce(flag: Path, gate: SpaceGate) -> None:
    """Say once that fetching stopped for space, and once that it resumed."""
    was_full = flag.exists()
    full = not gate.allows()
    fields = {"percent": round(gate.percent, 1), "spacelim": gate.spacelim, "by": gate.use.source}
    if full and not was_full:
        log.warning("data file system above spacelim: no new inputs fetched", **fields)
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
    elif was_full and not full:
        log.info("space freed: fetching resumes", **fields)
        flag.unlink(missing_ok=True)
