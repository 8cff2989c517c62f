"""FTP credentials from a netrc file, refused when others can read it (as ftp clients do).

No error from here ever shows a token of the file: any of them may be a password.  Every
one is a ConfigError: the file is read again at each staging, so a netrc that becomes
unreadable or malformed under a running loop drains it instead of aborting it.
"""

from __future__ import annotations

import netrc
import os
import stat
from pathlib import Path

from alcapctl.errors import ConfigError

__all__ = ["netrc_credentials", "netrc_path"]


def netrc_path() -> Path:
    """``$NETRC`` if set, else ``~/.netrc``."""
    return Path(os.environ.get("NETRC") or "~/.netrc").expanduser()


def netrc_credentials(host: str, path: Path | None = None) -> tuple[str, str]:
    """(login, password) of ``machine host`` (or the ``default`` entry) in the netrc."""
    path = path or netrc_path()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no netrc file; the archive {host} needs one with "
            f"'machine {host} login NAME password SECRET' (then chmod 600 {path})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the netrc file: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: readable by group or others (mode {stat.S_IMODE(mode):03o}); "
            f"it holds passwords: run chmod 600 {path}"
        )
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except netrc.NetrcParseError as exc:
        # Its message quotes the token it stumbled on, which may be a password.
        raise ConfigError(
            f"{path}: malformed near line {exc.lineno}; expected "
            "'machine HOST login NAME password SECRET' (the line is not shown: it may hold "
            "a password)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the netrc file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the netrc file is not UTF-8 text") from None
    if entry is None:
        raise ConfigError(f"{path}: no 'machine {host}' entry for the archive")
    login, _, password = entry
    return login, password or ""
