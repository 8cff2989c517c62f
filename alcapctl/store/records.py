"""Plain records the store hands out: productions, runs, dataset rows, failures."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table

from alcapctl.config import OUTPUT_NAMES
from alcapctl.states import RunState
from alcapctl.store.schema import production_table, table_name

__all__ = ["DatasetRow", "Failure", "ProductionRecord", "RunRecord"]


@dataclass(frozen=True)
class ProductionRecord:
    """One row of the ``productions`` table."""

    type: str
    version: int
    software: str | None
    start: str | None
    stop: str | None
    base: int | None
    datasets: tuple[str, ...] | None = None  # None: legacy row, selection unknown
    quality: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return table_name(self.type, self.version)

    @property
    def table(self) -> Table:
        return production_table(self.type, self.version)

    @property
    def short(self) -> str:
        """``rootana8``: the job-name prefix."""
        return f"{self.type}{self.version}"

    @classmethod
    def from_row(cls, row: Any) -> ProductionRecord:
        selection = json.loads(row.selection) if row.selection else {}
        ds = selection.get("datasets")
        q = selection.get("quality")
        return cls(
            type=row.type,
            version=int(row.version),
            software=row.software,
            start=row.start,
            stop=row.stop,
            base=row.base,
            datasets=tuple(ds) if ds is not None else None,
            quality=tuple(q) if q is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "version": self.version,
            "tag": self.software,
            "base": self.base,
            "start": self.start,
            "stop": self.stop,
            "datasets": list(self.datasets) if self.datasets is not None else None,
            "quality": list(self.quality) if self.quality is not None else None,
        }


@dataclass(frozen=True)
class RunRecord:
    """One run of one production, legacy columns and alcapctl's."""

    run: int
    status: RunState
    user: str | None = None
    host: str | None = None
    start: str | None = None
    stop: str | None = None
    claimed: str | None = None
    lease: str | None = None
    attempts: int = 0
    input: str | None = None
    job_id: str | None = None
    backend: str | None = None
    error: str | None = None
    modules_sha256: str | None = None
    outputs: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def from_row(cls, production_type: str, m: Mapping[Any, Any]) -> RunRecord:
        """From a row of the run table, by column name."""
        return cls(
            run=int(m["run"]),
            status=RunState(m["status"]),
            user=m["user"],
            host=m["host"],
            start=m["start"],
            stop=m["stop"],
            claimed=m["claimed"],
            lease=m["lease"],
            attempts=int(m["attempts"] or 0),
            input=m["input"],
            job_id=m["job_id"],
            backend=m["backend"],
            error=m["error"],
            modules_sha256=m["modules_sha256"],
            outputs={name: m[name] for name in OUTPUT_NAMES[production_type]},
        )

    @property
    def attempt(self) -> int:
        """The number of the attempt in progress (1 for the first)."""
        return self.attempts + 1

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "outputs"}
        data["status"] = self.status.value
        return {**data, **self.outputs}


@dataclass(frozen=True)
class DatasetRow:
    run: int
    dataset: str
    quality: str | None
    line: int = 0  # where it came from, for error messages


@dataclass(frozen=True)
class Failure:
    run: int
    attempt: int
    at: str
    step: str
    user: str | None
    job_id: str | None
    exit_code: int | None
    reason: str | None
