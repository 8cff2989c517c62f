"""Parsers of quota commands' output: pure functions from captured text to used and limit.

* ``mmlsquota`` (GPFS/Spectrum Scale), the human table or ``-Y`` colon-separated lines;
  the limit is the soft quota, else the hard limit.
* ``lfs`` (``lfs quota -u USER /fs``, Lustre), including the wrapped line it prints when
  the file system name is long and the ``*`` it appends to a value over quota.
* ``df`` (``df -P -k DIR``): used against used + available, as df computes ``Use%``.

Several lines (user, group, fileset quotas) give the most constraining one.  Output that
holds no usable line raises ValueError.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["PARSERS", "SpaceUse", "parse_df", "parse_lfs", "parse_mmlsquota"]

_QUOTA_TYPES = {"USR", "GRP", "FILESET"}
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)i?B?\*?$", re.IGNORECASE)


@dataclass(frozen=True)
class SpaceUse:
    """Bytes used and the bytes allowed (0: no limit) on the data file system."""

    used: int
    limit: int
    source: str = ""

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.limit if self.limit else 0.0


def _bytes(token: str, unit: int) -> int:
    """A size such as ``4567890``, ``4567890*`` or ``4.35G``; plain numbers are in ``unit``."""
    match = _SIZE.match(token)
    if not match:
        raise ValueError(f"not a size: {token!r}")
    number, suffix = match.groups()
    scale = _UNITS[suffix.upper()] if suffix else unit
    return int(float(number) * scale)


def _tightest(uses: list[SpaceUse], what: str) -> SpaceUse:
    if not uses:
        raise ValueError(f"no quota line found in the {what} output")
    return max(uses, key=lambda u: (u.percent, u.used))


def _unit_of(header: str) -> int:
    """Block size named in a header: ``KB``, ``MB``, ``1024-blocks``, ``1K-blocks``…"""
    for token in header.split():
        found = re.match(r"^(\d*)([KMGT]?)(?:B|-blocks)$", token, re.IGNORECASE)
        if found:
            count = int(found.group(1) or 1)
            return count * _UNITS[found.group(2).upper()]
    return 1 << 10


def parse_mmlsquota(text: str) -> SpaceUse:
    lines = text.splitlines()
    header = next((line for line in lines if ":HEADER:" in line), None)
    if header is not None:
        return _parse_mmlsquota_y(header, lines)
    unit = 1 << 10
    uses = []
    for line in lines:
        fields = line.split("|")[0].split()
        if "Filesystem" in fields:
            unit = _unit_of(line.split("|")[0])
            continue
        # Newer releases put a Fileset column before the type: find the type, sizes follow.
        kind = next((i for i, f in enumerate(fields[1:3], 1) if f in _QUOTA_TYPES), None)
        if kind is None:
            continue
        try:
            used, quota, limit = (_bytes(f, unit) for f in fields[kind + 1 : kind + 4])
        except ValueError:  # "no limits", a truncated line
            continue
        uses.append(SpaceUse(used, quota or limit, f"mmlsquota {' '.join(fields[: kind + 1])}"))
    return _tightest(uses, "mmlsquota")


_Y_BLOCKS = ("blockUsage", "blockQuota", "blockLimit")  # in KiB


def _parse_mmlsquota_y(header: str, lines: list[str]) -> SpaceUse:
    names = header.split(":")
    uses = []
    for line in lines:
        values = line.split(":")
        if ":HEADER:" in line or len(values) != len(names):
            continue
        row = dict(zip(names, values, strict=True))
        try:
            used, quota, limit = (int(row[k]) << 10 for k in _Y_BLOCKS)
        except (KeyError, ValueError):
            continue
        where = f"mmlsquota {row.get('filesystemName', '?')} {row.get('quotaType', '?')}"
        uses.append(SpaceUse(used, quota or limit, where))
    return _tightest(uses, "mmlsquota -Y")


def parse_lfs(text: str) -> SpaceUse:
    uses = []
    pending = ""  # a file system name printed alone, its numbers on the next line
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] in {"Disk", "Filesystem"}:
            continue
        if len(fields) == 1:
            pending = fields[0]
            continue
        if not _SIZE.match(fields[0]):
            name, fields = fields[0], fields[1:]
        else:
            name = pending
        pending = ""
        try:
            used, quota, limit = (_bytes(f, 1 << 10) for f in fields[:3])
        except ValueError:
            continue
        uses.append(SpaceUse(used, quota or limit, f"lfs {name}"))
    return _tightest(uses, "lfs quota")


def parse_df(text: str) -> SpaceUse:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Filesystem")), None)
    if start is None:
        raise ValueError("no 'Filesystem' header in the df output")
    unit = _unit_of(lines[start])
    tokens = " ".join(lines[start + 1 :]).split()
    # Filesystem, blocks, used, available, capacity, mount point (the name may have wrapped).
    sizes = [i for i, t in enumerate(tokens) if t.isdigit()]
    if len(sizes) < 3:
        raise ValueError("no size columns in the df output")
    first = sizes[0]
    used = int(tokens[first + 1]) * unit
    available = int(tokens[first + 2]) * unit
    mount = tokens[-1]
    return SpaceUse(used, used + available, f"df {mount}")


PARSERS: dict[str, Callable[[str], SpaceUse]] = {
    "mmlsquota": parse_mmlsquota,
    "lfs": parse_lfs,
    "df": parse_df,
}
