"""URLs as the TOMLs give them: archive URLs checked for scheme, host and path, and
passwords kept out of sight.

A password never belongs in a TOML (they are shared, printed by ``check``, copied into
logs and cron mail): an archive URL that carries one is refused, and every URL shown to
people goes through :func:`mask_url` first.
"""

from __future__ import annotations

import urllib.parse

__all__ = ["check_archive_url", "mask_url"]

_SCHEMES = ("ftp", "file")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``ftp://user:***@host/dir``)."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("@")[-1] if "@" in url else url
    if not password:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def check_archive_url(url: str) -> str:
    """``url`` if it is a usable ``ftp://host/dir`` or ``file:///dir``; else ValueError
    saying what is wrong (the message never holds a password)."""
    shown = mask_url(url)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{shown!r}: not a valid URL ({exc})") from None
    if parts.scheme not in _SCHEMES or not url.startswith(f"{parts.scheme}://"):
        raise ValueError(f"{shown!r}: archive url must start with ftp:// or file://")
    if parts.password is not None:
        raise ValueError(
            f"{shown!r}: a password in the URL is refused; put it in ~/.netrc "
            f"('machine {parts.hostname} login NAME password SECRET', chmod 600)"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{shown!r}: an archive url takes no ?query or #fragment")
    if parts.scheme == "ftp":
        if not parts.hostname:
            raise ValueError(f"{shown!r}: an ftp:// archive url needs a host (ftp://host/dir)")
        if port == 0:
            raise ValueError(f"{shown!r}: port 0 is not a port")
        return url
    if parts.netloc not in ("", "localhost"):
        raise ValueError(
            f"{shown!r}: a file:// archive must be on this machine (file:///dir, "
            f"not file://{parts.netloc}/...); mount it and name the local directory"
        )
    if not parts.path.startswith("/") or parts.path == "/":
        raise ValueError(f"{shown!r}: a file:// archive url needs a directory (file:///dir)")
    return url
