"""check: validate a production and show what it would do, without changing anything.

Beyond the TOML's own validation it refuses (exit 2) what would fail only once runs are
claimed: output paths that escape the data root or clash (``steps.outputs``) and a
checksums file that does not exist.
"""

from __future__ import annotations

from typing import Any

from alcapctl.config import Settings
from alcapctl.errors import ConfigError
from alcapctl.jobenv import preflight
from alcapctl.states import RunState
from alcapctl.steps.claim import wanted
from alcapctl.steps.context import StepContext
from alcapctl.steps.outputs import check_outputs
from alcapctl.store import ProductionRecord, RunTable, Store
from alcapctl.urls import mask_url

__all__ = ["check_production"]


def check_production(settings: Settings, store: Store) -> dict[str, Any]:
    """Resolved settings, sample output paths, the runs init or claim would take, and
    warnings about the job command; refuses (ConfigError) what every run would fail on."""
    prod = settings.production
    assert prod is not None
    warnings = preflight(settings)
    check_outputs(settings, store)
    checksums = settings.archive.checksums
    if checksums is not None and not checksums.is_file():
        raise ConfigError(
            f"{settings.production_file}: archive.checksums: {checksums}: no such file"
        )
    version, registered, new_runs = store.preview_init(prod)
    record = ProductionRecord(prod.type, version, prod.tag, None, None, prod.base)
    report: dict[str, Any] = {
        "production": record.name,
        "registered": registered,
        "settings": {
            "file": str(settings.production_file),
            "database": mask_url(settings.database),
            "data": str(settings.data),
            "staging": str(settings.staging),
            "work": str(settings.work),
            "backend": settings.backend,
            "user": settings.owner,
            "archive": settings.archive.model_dump(mode="json"),
            "limits": settings.limits.model_dump(mode="json"),
            "job": prod.job.model_dump(mode="json"),
            "datasets": list(prod.datasets) or "all",
            "quality": list(prod.quality) or "any",
        },
        "init_would_add": new_runs,
        "warnings": warnings,
    }
    if registered:
        record = store.find(prod)
    ctx = StepContext(settings, store, record)
    sample = new_runs[0] if new_runs else 2091
    report["sample_run"] = sample
    report["sample_outputs"] = {k: str(v) for k, v in ctx.output_paths(sample).items()}
    report["matches"] = len(new_runs)
    if registered:
        report["matches"] += store.runs(record, lambda runs: runs.count(RunState), write=False)

        def would_claim(runs: RunTable) -> list[int]:
            n = wanted(ctx, runs)
            return [r.run for r in runs.select(states=(RunState.NEW,), limit=n)] if n else []

        report["claim_would_take"] = store.runs(record, would_claim, write=False)
    return report
