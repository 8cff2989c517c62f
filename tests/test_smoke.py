"""The basic path through the foundation: init, claim, status."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.conftest import GOLD_RUNS


def test_init_claim_status(
    run_cli: Callable[..., Result], make_production: Callable[..., Path]
) -> None:
    prod = make_production()
    result = run_cli("init", prod)
    assert result.exit_code == 0, result.output
    assert "Starting new production, version 1" in result.stdout
    result = run_cli("claim", prod, "-n", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"Claimed run: {r}" for r in GOLD_RUNS[:3]]
    result = run_cli("status", prod, "--json")
    data = json.loads(result.stdout)
    assert data["totals"]["C"] == 3
    assert data["total"] == len(GOLD_RUNS)
