"""Batch backends: one module per scheduler behind the interface in ``base``.

Backend modules are imported only when a production uses them.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from alcapctl.batch.base import Backend
from alcapctl.errors import UsageError

__all__ = ["BACKENDS", "get_backend"]

# backend name -> "module:class", relative to alcapctl.batch
BACKENDS = {
    "local": "local:LocalBackend",
    "slurm": "slurm:SlurmBackend",
    "sge": "sge:SgeBackend",
    "htcondor": "htcondor:HTCondorBackend",
}


def get_backend(name: str, workdir: Path) -> Backend:
    """The backend called ``name``, working in the production's ``workdir``."""
    valid = ", ".join(sorted(BACKENDS))
    if name not in BACKENDS:
        raise UsageError(f"backend {name!r}: unknown; valid backends: {valid}")
    module, attr = BACKENDS[name].split(":")
    try:
        cls: type[Backend] = getattr(import_module(f"alcapctl.batch.{module}"), attr)
    except ModuleNotFoundError as exc:
        if exc.name != f"alcapctl.batch.{module}":
            raise
        raise UsageError(f"backend {name!r}: not available in this build; valid: {valid}") from None
    return cls(workdir)  # type: ignore[call-arg]
