"""The dump as files: ``schema.sql``, ``tables/<table>.tsv``, ``blobs/<sha256>.txt``.

A table file is a JSON header line (table name and columns), one row a line of tab-separated
tokens (see ``codec``) in the snapshot's order, and an ``# end`` line, so that a file cut
short at a line boundary is still caught.  ``schema.sql`` holds the CREATE statements as
SQLite has them, each after a ``-- <kind> <name>`` line, and ends the same way.  Parsing
checks everything and names the file and line of the first problem.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

from alcapctl.backup.codec import BlobRef, TokenError, decode, encode
from alcapctl.errors import UsageError
from alcapctl.store.dump import SCHEMA_KINDS, SchemaEntry, Snapshot, TableRows, Value

__all__ = [
    "BLOBS",
    "SCHEMA",
    "TABLES",
    "parse_dump",
    "parse_table",
    "read_lines",
    "render",
    "table_file",
]

SCHEMA = "schema.sql"
TABLES = "tables"
BLOBS = "blobs"
_SCHEMA_HEAD = "-- alcapctl backup-dump: the production database schema"
_END = {"schema": "-- end", "table": "# end"}
_VERSION = re.compile(r"PRAGMA user_version = (-?[0-9]+);")
_ENTRY = re.compile(r"-- (" + "|".join(SCHEMA_KINDS) + r") (.+)")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Texts kept apart whatever their length: the MODULES files.
EXTERNAL = frozenset({("alcapctl_blobs", "content")})


def table_file(name: str) -> str:
    """``tables/alcapana_v3.tsv``; a name unsafe as a file name goes by its hash."""
    stem = name if _SAFE_NAME.fullmatch(name) else "_" + hashlib.sha256(name.encode()).hexdigest()
    return f"{TABLES}/{stem}.tsv"


def _render_schema(snapshot: Snapshot) -> bytes:
    lines = [_SCHEMA_HEAD, f"PRAGMA user_version = {snapshot.user_version};"]
    for entry in snapshot.schema:
        lines += [f"-- {entry.kind} {json.dumps(entry.name, ensure_ascii=False)}", entry.sql + ";"]
    lines.append(_END["schema"])
    return ("\n".join(lines) + "\n").encode("utf-8")


def render(snapshot: Snapshot) -> dict[str, bytes]:
    """Every file of the dump, by path relative to the dump directory."""
    files = {SCHEMA: _render_schema(snapshot)}
    for table in snapshot.tables:
        header = {"columns": list(table.columns), "table": table.name}
        lines = [json.dumps(header, ensure_ascii=False)]
        external = [(table.name, column) in EXTERNAL for column in table.columns]
        for row in table.rows:
            tokens = []
            for value, apart in zip(row, external, strict=True):
                token, data = encode(value, apart)
                if data is not None:
                    files[f"{BLOBS}/{token[1:]}.txt"] = data
                tokens.append(token)
            lines.append("\t".join(tokens))
        lines.append(_END["table"])
        files[table_file(table.name)] = ("\n".join(lines) + "\n").encode("utf-8")
    return files


def read_lines(path: Path, label: str) -> list[str]:
    """The file's lines (only ``\\n`` ends a line); refuses a missing or non-UTF-8 file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{label}: missing from the dump") from None
    except OSError as exc:
        raise UsageError(f"{label}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"{label}:{line}: not UTF-8 text") from None
    if not text.endswith("\n"):
        raise UsageError(f"{label}:{text.count(chr(10)) + 1}: file cut short (no final newline)")
    return text[:-1].split("\n")


def _expect_end(lines: list[str], label: str, end: str) -> None:
    if not lines or lines[-1] != end:
        raise UsageError(f"{label}:{len(lines)}: file cut short (expected a last line {end!r})")


def _parse_schema(directory: Path) -> tuple[int, list[SchemaEntry]]:
    lines = read_lines(directory / SCHEMA, SCHEMA)
    if lines[0] != _SCHEMA_HEAD:
        raise UsageError(f"{SCHEMA}:1: not an alcapctl dump (expected {_SCHEMA_HEAD!r})")
    _expect_end(lines, SCHEMA, _END["schema"])
    version = _VERSION.fullmatch(lines[1]) if len(lines) > 1 else None
    if version is None:
        raise UsageError(f"{SCHEMA}:2: expected 'PRAGMA user_version = N;'")
    entries: list[SchemaEntry] = []
    i = 2
    while i < len(lines) - 1:
        head = _ENTRY.fullmatch(lines[i])
        name = _json_text(head[2]) if head else None
        if head is None or name is None:
            raise UsageError(f"{SCHEMA}:{i + 1}: expected '-- <table|view|index|trigger> \"name\"'")
        start, i = i + 1, i + 1
        while not sqlite3.complete_statement("\n".join(lines[start : i + 1])):
            i += 1
            if i >= len(lines) - 1:
                raise UsageError(f"{SCHEMA}:{start + 1}: statement never ends")
        sql = "\n".join(lines[start : i + 1])[:-1]
        # Only the CREATE the header names: a dump must not run other SQL (ATTACH, ...).
        if not re.match(rf"CREATE\s+(?:UNIQUE\s+)?{head[1]}\s", sql, re.IGNORECASE):
            raise UsageError(f"{SCHEMA}:{start + 1}: expected a CREATE {head[1].upper()}")
        entries.append(SchemaEntry(head[1], name, sql, f"{SCHEMA}:{start + 1}"))
        i += 1
    return int(version[1]), entries


def _json_text(token: str) -> str | None:
    try:
        value = json.loads(token)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, str) else None


def parse_table(lines: list[str], label: str) -> TableRows:
    """A table file's rows; texts kept apart stay BlobRef until ``parse_dump`` reads them."""
    _expect_end(lines, label, _END["table"])
    try:
        header = json.loads(lines[0])
        name, columns = header["table"], tuple(header["columns"])
        if not isinstance(name, str) or not all(isinstance(c, str) for c in columns):
            raise TypeError
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UsageError(f'{label}:1: expected {{"columns": [...], "table": "name"}}') from None
    rows = []
    for number, line in enumerate(lines[1:-1], start=2):
        tokens = line.split("\t")
        if len(tokens) != len(columns):
            raise UsageError(f"{label}:{number}: {len(tokens)} values for {len(columns)} columns")
        try:
            rows.append(tuple(decode(t) for t in tokens))
        except TokenError as exc:
            raise UsageError(f"{label}:{number}: {exc}") from None
    return TableRows(name, columns, rows, label, 2)  # type: ignore[arg-type]


def _blob(directory: Path, ref: BlobRef, where: str) -> str:
    label = f"{BLOBS}/{ref.sha256}.txt"
    try:
        data = (directory / label).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{where}: refers to {label}, which is missing") from None
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise UsageError(f"{label}: content does not match its sha256 (edited or cut short)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{label}: not UTF-8 text") from None


def _resolve(directory: Path, table: TableRows, texts: dict[str, str]) -> TableRows:
    """Replace BlobRefs by their texts; ``texts`` keeps each file read once, held once."""
    rows: list[tuple[Value, ...]] = []
    for i, row in enumerate(table.rows):
        values: list[Value] = []
        for value in row:
            if isinstance(value, BlobRef):
                if value.sha256 not in texts:
                    where = f"{table.origin}:{table.first_line + i}"
                    texts[value.sha256] = _blob(directory, value, where)
                value = texts[value.sha256]
            values.append(value)
        rows.append(tuple(values))
    return TableRows(table.name, table.columns, rows, table.origin, table.first_line)


def parse_dump(directory: Path) -> Snapshot:
    """Read a whole dump; UsageError naming file and line at the first problem."""
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such dump directory")
    version, schema = _parse_schema(directory)
    tables = []
    texts: dict[str, str] = {}
    expected = {table_file(e.name): e for e in schema if e.kind == "table"}
    for label, entry in sorted(expected.items()):
        table = parse_table(read_lines(directory / label, label), label)
        if table.name != entry.name:
            raise UsageError(f"{label}:1: holds table {table.name!r}, expected {entry.name!r}")
        tables.append(_resolve(directory, table, texts))
    extra = sorted(
        p for p in (directory / TABLES).glob("*.tsv") if f"{TABLES}/{p.name}" not in expected
    )
    if extra:
        raise UsageError(f"{TABLES}/{extra[0].name}:1: a table that {SCHEMA} does not declare")
    return Snapshot(version, schema, tables)
