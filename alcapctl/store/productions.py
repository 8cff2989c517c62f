"""The ``productions`` table: registering a production, finding it again, closing it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, Update, func, insert, select, update

from alcapctl.clock import now_iso
from alcapctl.config import Production
from alcapctl.errors import DatabaseError, UsageError
from alcapctl.states import RunState
from alcapctl.store.datasets import validate_datasets
from alcapctl.store.records import ProductionRecord
from alcapctl.store.schema import datasets, ensure_production_table, production_table, productions

__all__ = [
    "EmptySelection",
    "InitResult",
    "all_productions",
    "close_if_done",
    "find",
    "init_production",
    "reopen",
]


@dataclass(frozen=True)
class InitResult:
    record: ProductionRecord
    created: bool
    added: int


def all_productions(conn: Connection) -> list[ProductionRecord]:
    p = productions
    rows = conn.execute(select(p).order_by(p.c.type, p.c.version))
    return [ProductionRecord.from_row(r) for r in rows if r.version is not None]


def _get(conn: Connection, ptype: str, version: int) -> ProductionRecord | None:
    p = productions
    row = conn.execute(select(p).where(p.c.type == ptype, p.c.version == version)).first()
    return ProductionRecord.from_row(row) if row else None


def _by_tag(conn: Connection, prod: Production) -> ProductionRecord | None:
    p = productions
    query = select(p).where(p.c.type == prod.type, p.c.software == prod.tag)
    if prod.base is not None:
        query = query.where(p.c.base == prod.base)
    row = conn.execute(query.order_by(p.c.version.desc())).first()
    return ProductionRecord.from_row(row) if row else None


def find(conn: Connection, prod: Production) -> ProductionRecord:
    """The registered production a TOML describes: by version, else by type and tag."""
    record = _get(conn, prod.type, prod.version) if prod.version else _by_tag(conn, prod)
    if record is None:
        which = f"{prod.type} version {prod.version}" if prod.version else f"{prod.type} {prod.tag}"
        raise DatabaseError(
            f"no production {which} in the database; register it with alcapctl init"
        )
    _check_same(record, prod)
    return record


def _check_same(record: ProductionRecord, prod: Production) -> None:
    if record.software != prod.tag:
        raise DatabaseError(
            f"{record.name} exists with tag {record.software!r}, not {prod.tag!r}; "
            "pick another version or leave version out to allocate one"
        )
    if record.base != prod.base:
        raise DatabaseError(f"{record.name} exists with base {record.base}, not {prod.base}")


class EmptySelection(UsageError):
    """No run of the database matches a production's datasets and quality."""

    def __init__(self, prod: Production, location: str = "the database") -> None:
        self.prod = prod
        datasets_asked = ", ".join(prod.datasets) or "all"
        quality_asked = ", ".join(prod.quality) or "any"
        base = f" finished in alcapana_v{prod.base}" if prod.type == "rootana" else ""
        super().__init__(
            f"no run{base} in {location} matches datasets {datasets_asked} and quality "
            f"{quality_asked}; import a run list (run, dataset, quality) into this database "
            "with: alcapctl datasets import RUNS.tsv --production PROD.toml"
        )


def _selection(datasets_: tuple[str, ...] | None, quality: tuple[str, ...] | None) -> str:
    shown_datasets = ", ".join(datasets_ or ()) or "all"
    shown_quality = ", ".join(quality or ()) or "any"
    return f"datasets {shown_datasets}, quality {shown_quality}"


def _check_selection(record: ProductionRecord, prod: Production) -> None:
    """A registered production keeps the selection it was made with (a legacy row, whose
    selection is unknown, takes any)."""
    if record.datasets is None or record.quality is None:
        return
    same = sorted(record.datasets) == sorted(prod.datasets) and sorted(record.quality) == sorted(
        prod.quality
    )
    if not same:
        raise UsageError(
            f"{record.name} was registered with {_selection(record.datasets, record.quality)}; "
            f"the TOML asks for {_selection(prod.datasets, prod.quality)}. A production keeps "
            "its selection: restore it in the TOML, or leave version out to start a new one"
        )


def _selected_runs(conn: Connection, prod: Production, version: int) -> list[int]:
    query = select(datasets.c.run).distinct()
    if prod.datasets:
        query = query.where(datasets.c.dataset.in_(prod.datasets))
    if prod.quality:
        query = query.where(datasets.c.quality.in_(prod.quality))
    if prod.type == "rootana":
        assert prod.base is not None  # validated by config
        base = production_table("alcapana", prod.base)
        finished = select(base.c.run).where(base.c.status == RunState.FINISHED.value)
        query = query.where(datasets.c.run.in_(finished))
    return sorted(int(r) for r in conn.execute(query).scalars() if r is not None)


def _check_base(conn: Connection, base: int) -> None:
    """A rootana production's base must exist and have finished runs to read."""
    if _get(conn, "alcapana", base) is None:
        raise DatabaseError(f"base production alcapana_v{base} is not in the database")
    table = production_table("alcapana", base)
    done = select(table.c.run).where(table.c.status == RunState.FINISHED.value).limit(1)
    if conn.execute(done).first() is None:
        raise DatabaseError(
            f"base: base production alcapana_v{base} has no finished run (F) yet: a rootana "
            "production reads only finished trees; run it first, or pick another base"
        )


def init_production(conn: Connection, prod: Production) -> InitResult:
    """Register ``prod`` and give each selected run an N row; a repeat adds only new runs.

    A selection that matches no run is refused (EmptySelection) before anything is
    written, so an empty production never takes a version number.
    """
    validate_datasets(conn, prod.datasets)
    if prod.type == "rootana":
        assert prod.base is not None
        _check_base(conn, prod.base)
        ensure_production_table(conn, "alcapana", prod.base)
    record = _get(conn, prod.type, prod.version) if prod.version else _by_tag(conn, prod)
    have: set[int] = set()
    if record is not None:
        _check_same(record, prod)
        _check_selection(record, prod)
        version = record.version
        have = set(conn.execute(select(record.table.c.run)).scalars())
    else:
        version = prod.version or _next_version(conn, prod.type)
    selected = _selected_runs(conn, prod, version)
    if not selected and not have:
        raise EmptySelection(prod)
    table = ensure_production_table(conn, prod.type, version)
    if record is None:
        selection = {"datasets": list(prod.datasets), "quality": list(prod.quality)}
        conn.execute(
            insert(productions).values(
                type=prod.type,
                version=version,
                software=prod.tag,
                start=now_iso(),
                base=prod.base,
                selection=json.dumps(selection),
            )
        )
    created = record is None
    record = _get(conn, prod.type, version)
    assert record is not None
    new = [run for run in selected if run not in have]
    if new:
        conn.execute(insert(table), [{"run": run, "status": "N", "attempts": 0} for run in new])
        if record.stop is not None:
            conn.execute(_this(record).values(stop=None))
    return InitResult(_get(conn, record.type, record.version) or record, created, len(new))


def _next_version(conn: Connection, ptype: str) -> int:
    highest = conn.execute(
        select(func.max(productions.c.version)).where(productions.c.type == ptype)
    ).scalar()
    return int(highest or 0) + 1


def _this(record: ProductionRecord) -> Update:
    p = productions
    return update(p).where(p.c.type == record.type, p.c.version == record.version)


def close_if_done(conn: Connection, record: ProductionRecord) -> bool:
    """Set the production's ``stop`` once every run is F (as in 2014); True when it did."""
    unfinished = [s.value for s in RunState if s is not RunState.FINISHED]
    open_run = select(record.table.c.run).where(record.table.c.status.in_(unfinished)).limit(1)
    if conn.execute(open_run).first() is not None:  # by the status index, at any size
        return False
    stmt = _this(record).where(productions.c.stop.is_(None)).values(stop=now_iso())
    return bool(conn.execute(stmt).rowcount)


def reopen(conn: Connection, record: ProductionRecord) -> None:
    """Clear the production's ``stop``: runs were put back to work (retry)."""
    conn.execute(_this(record).values(stop=None))


def preview_init(conn: Connection, prod: Production) -> tuple[int, bool, list[int]]:
    """What init would do, without writing: (version, already registered, runs it would add)."""
    validate_datasets(conn, prod.datasets)
    record = _get(conn, prod.type, prod.version) if prod.version else _by_tag(conn, prod)
    if record is not None:
        _check_same(record, prod)
        _check_selection(record, prod)
    version = record.version if record else (prod.version or _next_version(conn, prod.type))
    if prod.type == "rootana":
        assert prod.base is not None
        _check_base(conn, prod.base)
    have: set[int] = set()
    if record is not None:
        ensure = production_table(record.type, record.version)
        have = set(conn.execute(select(ensure.c.run)).scalars())
    runs = [r for r in _selected_runs(conn, prod, version) if r not in have]
    return version, record is not None, runs
