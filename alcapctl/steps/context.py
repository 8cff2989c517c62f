"""What every step of one production works with: settings, store, the production record.

Immutable: it holds no cache and no loop state, so two steps given one context can never
see each other's leftovers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alcapctl.config import Limits, Production, Settings
from alcapctl.store import Owner, ProductionRecord, Store

__all__ = ["StepContext", "open_production"]


@dataclass(frozen=True)
class StepContext:
    settings: Settings
    store: Store
    record: ProductionRecord

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

    @property
    def workdir(self) -> Path:
        """Job scripts, exit files and locks of this production on this site."""
        return self.settings.work / self.record.name

    @property
    def staging_dir(self) -> Path:
        """Where this production's raw inputs are staged; only files here are ever deleted."""
        return self.settings.staging / self.record.name

    def is_staged(self, path: Path) -> bool:
        """Whether ``path`` lies in this production's staging directory: only such raw
        inputs are ever deleted."""
        return path.parent.resolve().is_relative_to(self.staging_dir.resolve())

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
        values = self.fields(run)
        return {
            name: Path(template.format(**values)).expanduser()
            for name, template in self.prod.output_templates().items()
        }


def open_production(settings: Settings, store: Store) -> StepContext:
    """Find the registered production the settings' TOML describes."""
    assert settings.production is not None
    return StepContext(settings, store, store.find(settings.production))
