"""Expected adler32 checksums (the HEP standard, as dCache and EOS keep them) of inputs.

The production names a file of ``name adler32`` lines (blank lines and ``#`` comments
allowed).  It is read once per process and again only when it changes.  A file that
cannot be read or parsed is a ConfigError, also when that happens under a running loop
(it then drains).
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

from alcapctl.archive.base import FetchError
from alcapctl.errors import ConfigError

__all__ = ["adler32", "expected_checksums", "verify_checksum"]

_HEX = re.compile(r"^(0x)?[0-9a-fA-F]{1,8}$")
_cache: dict[Path, tuple[tuple[int, int], dict[str, str]]] = {}


def adler32(path: Path, chunk: int = 1 << 20) -> str:
    """The file's adler32 as 8 lowercase hex digits."""
    value = 1
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            value = zlib.adler32(block, value)
    return f"{value:08x}"


def _parse(path: Path, text: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2 or not _HEX.match(fields[1]):
            raise ConfigError(
                f"{path}:{number}: expected 'name adler32' (8 hex digits), got {line!r}"
            )
        sums[fields[0]] = f"{int(fields[1], 16):08x}"
    return sums


def expected_checksums(path: Path) -> dict[str, str]:
    """name -> adler32 from the checksum file, cached while the file is unchanged."""
    try:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = _cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the checksum file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the checksum file is not UTF-8 text") from None
    sums = _parse(path, text)
    _cache[path] = (key, sums)
    return sums


def verify_checksum(path: Path, expected: str) -> None:
    """Raise FetchError unless the file's adler32 is ``expected``."""
    actual = adler32(path)
    if actual != expected:
        raise FetchError(f"{path.name}: adler32 {actual}, the archive lists {expected}")
