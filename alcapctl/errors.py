"""Domain errors and the exit codes they map to; the CLI turns them into exits in one place."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75  # EX_TEMPFAIL from sysexits.h: try again later
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_HANGUP = 129  # 128 + SIGHUP: the terminal or ssh session went away
EXIT_TERMINATED = 143  # 128 + SIGTERM: kill, systemd, a scheduler


class AlcapError(Exception):
    """Base of every error alcapctl reports without a traceback."""

    exit_code = EXIT_FAILURE


class UsageError(AlcapError):
    """Bad input: configuration, arguments, files. Nothing was written."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A TOML file is malformed or does not validate, or a file it names (the netrc, the
    checksum file, the job script, the MODULES file) is missing or cannot be used."""


class DatabaseError(UsageError):
    """The database is missing, is not a database, or does not hold what was asked for."""


class LockTimeout(AlcapError):
    """Another session held the database lock for longer than we were told to wait."""

    exit_code = EXIT_TEMPFAIL


class TransitionError(AlcapError):
    """A run state change that the state machine does not allow."""


class DatabaseUnavailable(LockTimeout):
    """The database server cannot be reached (down, restarting, connection dropped):
    transient like a held lock, so no run is to blame."""
