"""The dump directory as a git work tree: check it, stage the dump, commit when it changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from alcapctl.errors import AlcapError, UsageError

__all__ = ["GitError", "commit_dump", "require_work_tree"]


class GitError(AlcapError):
    """A git command failed; the message carries its argv, exit code and stderr."""


def _git(
    directory: Path, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = ["git", "-C", str(directory), *args]
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise GitError("git is not installed (needed by --commit)") from None
    if check and done.returncode != 0:
        raise GitError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def require_work_tree(directory: Path) -> None:
    """UsageError (exit 2) unless ``directory``, or the folder it will be made in, is in git."""
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    inside = existing.is_dir() and _git(existing, "rev-parse", "--is-inside-work-tree", check=False)
    if not inside or inside.stdout.strip() != "true":
        raise UsageError(
            f"{directory}: not a git work tree; --commit needs one "
            f"(create it with: git init {directory})"
        )


def commit_dump(directory: Path, subject: str, body: list[str]) -> str | None:
    """Stage everything under ``directory`` and commit it; the commit id, None if unchanged."""
    _git(directory, "add", "--all", "--", ".")
    if _git(directory, "diff", "--cached", "--quiet", "--", ".", check=False).returncode == 0:
        return None
    numstat = _git(directory, "diff", "--cached", "--numstat", "--relative", "--", ".").stdout
    files = [f"  {path} +{added} -{removed}" for added, removed, path in _numstat(numstat)]
    message = "\n".join([subject, "", *body, "Files:", *files]) + "\n"
    _git(directory, "commit", "--quiet", "--file=-", "--", ".", stdin=message)
    return _git(directory, "rev-parse", "HEAD").stdout.strip()


def _numstat(text: str) -> list[tuple[str, str, str]]:
    rows = [line.split("\t", 2) for line in text.splitlines() if line]
    return [(a, r, p) for a, r, p in rows]
