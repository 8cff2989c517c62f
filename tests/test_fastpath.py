"""The SQLite driver fast path gives what SQLAlchemy gives, and is built once per shape."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Executable, bindparam, select

from alcapctl.store import Store
from alcapctl.store.fastpath import Statements
from alcapctl.store.schema import datasets


def test_the_driver_path_and_the_expanding_fallback_read_alike(db_path: Path) -> None:
    store = Store.open(f"sqlite:///{db_path}")
    statements = Statements()
    built: list[str] = []

    def plain() -> Executable:
        built.append("plain")
        return select(datasets.c.run).where(datasets.c.run == bindparam("run"))

    def expanding() -> Executable:
        built.append("expanding")
        return (
            select(datasets.c.run)
            .where(datasets.c.run.in_(bindparam("runs", expanding=True)))
            .order_by(datasets.c.run)
        )

    def read(conn: Connection) -> tuple[list[int], list[int], list[int]]:
        one = [int(r[0]) for r in statements.rows(conn, ("plain",), plain, {"run": 2091})]
        again = [int(r[0]) for r in statements.rows(conn, ("plain",), plain, {"run": 2092})]
        many = statements.rows(conn, ("expanding",), expanding, {"runs": [2091, 2092]})
        return one, again, [int(r[0]) for r in many]

    one, again, many = store.read(read)
    store.close()
    assert set(one) == {2091} and set(again) == {2092}
    assert sorted(set(many)) == [2091, 2092]
    assert built == ["plain", "expanding"]  # each shape built once
