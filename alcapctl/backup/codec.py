"""One SQLite value as one tab-free token, and back, exactly.

``NULL``; integers as decimals (``2091``); reals as Python's shortest round-trip ``repr``
(always with ``.``, ``e`` or ``inf``, so never mistaken for an integer); texts as JSON
strings (``"gold"``, ``""``, unicode kept readable, quotes, tabs and newlines escaped);
blobs as SQL literals (``X'00FF'``); a TEXT whose bytes are not UTF-8 as ``T'E9'``; a large
text as ``@<sha256>``, its exact UTF-8 bytes in ``blobs/<sha256>.txt``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from alcapctl.store.dump import RawText, Value

__all__ = ["LARGE_TEXT", "BlobRef", "TokenError", "decode", "encode"]

LARGE_TEXT = 1024  # UTF-8 bytes from which a text goes to its own file

_INT = re.compile(r"-?[0-9]+")
_REAL = re.compile(r"-?(?:[0-9]+\.[0-9]+(?:e[+-][0-9]+)?|[0-9]+e[+-][0-9]+|inf)")
_HEX = re.compile(r"([XT])'((?:[0-9A-F]{2})*)'")
_REF = re.compile(r"@([0-9a-f]{64})")
_INT64 = range(-(2**63), 2**63)


class TokenError(ValueError):
    """A token that is not one this module writes; the message says what is wrong."""


@dataclass(frozen=True)
class BlobRef:
    """A text kept in ``blobs/<sha256>.txt``."""

    sha256: str


def encode(value: Value, external: bool = False) -> tuple[str, bytes | None]:
    """The token for ``value`` and, for a text kept apart, the bytes of its file."""
    if value is None:
        return "NULL", None
    if isinstance(value, bool):  # never from SQLite; refuse rather than write 1/0 silently
        raise TypeError("booleans are not SQLite values")
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, float):
        return repr(value), None
    if isinstance(value, str):
        data = value.encode("utf-8")
        if external or len(data) >= LARGE_TEXT:
            return "@" + hashlib.sha256(data).hexdigest(), data
        return json.dumps(value, ensure_ascii=False), None
    if isinstance(value, bytes):
        return f"X'{value.hex().upper()}'", None
    return f"T'{value.data.hex().upper()}'", None


def decode(token: str) -> Value | BlobRef:
    """The value a token stands for; TokenError when it is not a well-formed token."""
    if token == "NULL":
        return None
    if _INT.fullmatch(token):
        number = int(token)
        if number not in _INT64:
            raise TokenError(f"integer {token} does not fit in 64 bits")
        return number
    if _REAL.fullmatch(token):
        return float(token)
    if token.startswith('"'):
        try:
            text = json.loads(token)
        except json.JSONDecodeError as exc:
            raise TokenError(f"malformed text {_shorten(token)}: {exc.msg}") from None
        if not isinstance(text, str):
            raise TokenError(f"malformed text {_shorten(token)}")
        return text
    if match := _HEX.fullmatch(token):
        data = bytes.fromhex(match[2])
        return data if match[1] == "X" else RawText(data)
    if match := _REF.fullmatch(token):
        return BlobRef(match[1])
    raise TokenError(f"not a value: {_shorten(token)}")


def _shorten(token: str) -> str:
    return repr(token if len(token) <= 40 else token[:37] + "...")
