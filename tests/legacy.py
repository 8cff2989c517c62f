"""A production database as the 2014 scripts made it: exact DDL, realistic rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

LEGACY_DDL = """
CREATE TABLE datasets (run INT, dataset TEXT, quality TEXT);
CREATE TABLE productions (type TEXT, version INTEGER, software TEXT, start TIMESTAMP,
                          stop TIMESTAMP, base INTEGER);
CREATE TABLE alcapana_v3 (run INTEGER, status TEXT, user TEXT, start TIMESTAMP,
                          stop TIMESTAMP, tree TEXT, hist TEXT, odb TEXT, olog TEXT,
                          elog TEXT, modules TEXT);
CREATE TABLE alcapana_v4 (run INTEGER, status TEXT, user TEXT, start TIMESTAMP,
                          stop TIMESTAMP, tree TEXT, hist TEXT, odb TEXT, olog TEXT,
                          elog TEXT, modules TEXT);
"""

MODULES = "MODULES = {\n  analyse_pulses\n  make_tree\n}\n" * 20
FINISHED_V3 = list(range(2091, 2104))
V4_ROWS = [
    (2091, "F", "quirk_j"),
    (2092, "R", "quirk_j"),
    (2093, "R", "quirk_j"),
    (2094, "C", "quirk_j"),
    (2095, "C", "quirk_j"),
    (2096, "N", None),
    (2097, "N", None),
]


def make_legacy_db(path: Path) -> Path:
    """Several datasets, three alcapana productions, a finished alcapana_v3, a v4 in flight."""
    conn = sqlite3.connect(path)
    conn.executescript(LEGACY_DDL)
    rows: list[tuple[int, str, str | None]] = [(r, "SiR2", "gold") for r in range(2091, 2104)]
    rows += [(r, "Al100", "gold") for r in range(2119, 2125)]
    rows += [(r, "Common", None) for r in range(3200, 3205)]
    rows += [(r, "SiR21pct", "gold") for r in range(3200, 3205)]
    rows += [(2130, "Al50b", "bad")]
    conn.executemany("INSERT INTO datasets VALUES (?, ?, ?)", rows)
    conn.executemany(
        "INSERT INTO productions VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("alcapana", 1, "alcapana_v1", "2014-04-30 00:00:00", "2014-05-05 00:00:00", None),
            ("alcapana", 2, "alcapana_v2", "2014-05-29 00:00:00", "2014-06-02 00:00:00", None),
            ("alcapana", 3, "alcapana_v3", "2014-06-16 00:00:00", "2014-06-20 00:00:00", None),
            ("alcapana", 4, "alcapana_v4", "2014-08-01 10:00:00.123456", None, None),
        ],
    )
    data = "/gpfs/home/quirk_j/data"
    conn.executemany(
        "INSERT INTO alcapana_v3 VALUES (?, 'F', 'quirk_j', ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r,
                "2014-06-16 10:00:00",
                "2014-06-16 11:00:00",
                f"{data}/tree/v3/tree{r:05d}.root",
                f"{data}/hist/v3/hist{r:05d}.root",
                f"{data}/dump/v3/dump{r:05d}.root",
                f"{data}/log/v3/alcapana.run{r:05d}.out",
                f"{data}/log/v3/alcapana.run{r:05d}.err",
                MODULES,
            )
            for r in FINISHED_V3
        ],
    )
    conn.executemany("INSERT INTO alcapana_v4 (run, status, user) VALUES (?, ?, ?)", V4_ROWS)
    conn.commit()
    conn.close()
    return path
