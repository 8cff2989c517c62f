"""Quota parsers on captured outputs of mmlsquota, lfs quota and df (tests/data/quota/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alcapctl.archive.quota import PARSERS, SpaceUse, parse_df, parse_lfs, parse_mmlsquota
from alcapctl.archive.space import SpaceGate, statvfs_use

SAMPLES = Path(__file__).parent.parent / "data" / "quota"
K, G, T = 1 << 10, 1 << 30, 1 << 40


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


@pytest.mark.parametrize(
    ("parser", "name", "expected"),
    [
        # the user's 90% beats the group's 50%; the "no limits" line is skipped
        (
            "mmlsquota",
            "mmlsquota.txt",
            SpaceUse(9437184 * K, 10485760 * K, "mmlsquota gpfs_home USR"),
        ),
        (
            "mmlsquota",
            "mmlsquota-Y.txt",
            SpaceUse(9437184 * K, 10485760 * K, "mmlsquota gpfs_home USR"),
        ),
        # fileset column and human units; a zero soft quota falls back to the hard limit
        (
            "mmlsquota",
            "mmlsquota-fileset-auto.txt",
            SpaceUse(int(1.5 * T), 2 * T, "mmlsquota gpfs0 alcap FILESET"),
        ),
        ("lfs", "lfs.txt", SpaceUse(9437184 * K, 10485760 * K, "lfs /lustre/data")),
        (
            "lfs",
            "lfs-wrapped-over.txt",
            SpaceUse(10737418 * K, 10485760 * K, "lfs /lustre/psi/scratch/alcap/production"),
        ),
        ("lfs", "lfs-human.txt", SpaceUse(9 * G, 10 * G, "lfs /lustre/data")),
        ("df", "df.txt", SpaceUse(878656140 * K, (878656140 + 97628460) * K, "df /data")),
        (
            "df",
            "df-wrapped.txt",
            SpaceUse(878656140 * K, (878656140 + 97628460) * K, "df /data/raw"),
        ),
    ],
)
def test_parsers_read_real_outputs(parser: str, name: str, expected: SpaceUse) -> None:
    assert PARSERS[parser](sample(name)) == expected


def test_percentages() -> None:
    assert parse_mmlsquota(sample("mmlsquota.txt")).percent == 90.0
    assert parse_lfs(sample("lfs-wrapped-over.txt")).percent == pytest.approx(102.4, abs=0.1)
    assert round(parse_df(sample("df.txt")).percent) == 90  # df rounds its 90.0x% up to 91%
    assert SpaceUse(5, 0).percent == 0.0  # no limit set


@pytest.mark.parametrize("parser", sorted(PARSERS))
def test_unreadable_output_is_an_error(parser: str) -> None:
    with pytest.raises(ValueError):
        PARSERS[parser]("command not found\n")


def test_gate_counts_bytes_fetched_since_the_probe() -> None:
    gate = SpaceGate(SpaceUse(80, 100), spacelim=90)
    assert gate.allows()
    gate.add(9)
    assert gate.allows()
    gate.add(1)
    assert not gate.allows() and gate.percent == 90.0


def test_statvfs_on_a_directory_not_made_yet(tmp_path: Path) -> None:
    use = statvfs_use(tmp_path / "not" / "yet")
    assert 0 < use.used <= use.limit
    assert use.source == f"statvfs {tmp_path}"
