"""What every step of one production works with: settings, store, the production record."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alcapctl.batch.base import JobSpec
from alcapctl.config import Limits, Production, Settings
from alcapctl.store import Owner, ProductionRecord, Store

__all__ = ["StepContext", "open_production"]

_OUTPUTS_CACHED = 1024


@dataclass(frozen=True)
class StepContext:
    settings: Settings
    store: Store
    record: ProductionRecord
    # run -> its outputs: the loop asks several times per run; emptied when full
    _outputs: dict[int, dict[str, Path]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    # directory -> whether it lies in the staging directory, symlinks resolved
    _staging: dict[str, bool] = field(default_factory=dict, init=False, compare=False, repr=False)
    # job name -> (the run's input, its job) for job directories written ahead of submit
    prepared_jobs: dict[str, tuple[str | None, JobSpec]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def prod(self) -> Production:
        assert self.settings.production is not None
        return self.settings.production

    @property
    def owner(self) -> Owner:
        return (self.settings.user, self.settings.host)

    @property
    def limits(self) -> Limits:
        return self.settings.limits

    @functools.cached_property
    def workdir(self) -> Path:
        """Job scripts, exit files and locks of this production on this site."""
        return self.settings.work / self.record.name

    @functools.cached_property
    def staging_dir(self) -> Path:
        """Where this production's raw inputs are staged; only files here are ever deleted."""
        return self.settings.staging / self.record.name

    def is_staged(self, path: Path) -> bool:
        """Whether ``path`` lies in this production's staging directory: only such raw
        inputs are ever deleted.  Its directory is resolved once (a dozen system calls)."""
        folder = str(path.parent)
        inside = self._staging.get(folder)
        if inside is None:
            inside = path.parent.resolve().is_relative_to(self.staging_dir.resolve())
            self._staging[folder] = inside
        return inside

    def fields(self, run: int) -> dict[str, Any]:
        """Values every template may use for ``run``."""
        return {
            "run": run,
            "version": self.record.version,
            "tag": self.record.software,
            "data": str(self.settings.data),
            "type": self.record.type,
            "base": self.record.base,
            "user": self.settings.user,
        }

    def output_paths(self, run: int) -> dict[str, Path]:
        """Every declared output of ``run``, templates filled in."""
        paths = self._outputs.get(run)
        if paths is None:
            if len(self._outputs) >= _OUTPUTS_CACHED:
                self._outputs.clear()
            values = self.fields(run)
            paths = self._outputs[run] = {
                name: Path(template.format(**values)).expanduser()
                for name, template in self.prod.output_templates().items()
            }
        return paths


def open_production(settings: Settings, store: Store) -> StepContext:
    """Find the registered production the settings' TOML describes."""
    assert settings.production is not None
    return StepContext(settings, store, store.find(settings.production))
