"""Timestamps as the database keeps them: ISO text with microseconds and a zone."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["now_iso", "parse_iso", "seconds_since"]


def now_iso() -> str:
    """``2026-11-24 20:45:39.123456+00:00``: sortable, and readable beside legacy rows."""
    return datetime.now(timezone.utc).isoformat(sep=" ")


def parse_iso(value: str) -> datetime:
    """Parse new and legacy (zone-less, taken as UTC) timestamps."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def seconds_since(value: str | None) -> float | None:
    if not value:
        return None
    return (datetime.now(timezone.utc) - parse_iso(value)).total_seconds()
