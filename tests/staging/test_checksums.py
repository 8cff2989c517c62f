"""The adler32 checksum file: parsing, caching, and what a bad line says."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from alcapctl.archive.checksums import adler32, expected_checksums
from alcapctl.errors import ConfigError


def test_adler32_matches_zlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000
    path = tmp_path / "run02091.mid"
    path.write_bytes(data)
    assert adler32(path, chunk=1000) == f"{zlib.adler32(data):08x}"


def test_file_is_parsed_and_reread_when_changed(tmp_path: Path) -> None:
    sums = tmp_path / "sums.txt"
    sums.write_text("# from the archive\n\nrun02091.mid 0x1A2B3C4D\nrun02092.mid 00ff  # short\n")
    assert expected_checksums(sums) == {"run02091.mid": "1a2b3c4d", "run02092.mid": "000000ff"}
    sums.write_text("run02093.mid deadbeef extra-bytes\n")
    with pytest.raises(ConfigError, match=r"sums\.txt:1: expected 'name adler32'"):
        expected_checksums(sums)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the checksum file"):
        expected_checksums(tmp_path / "nope.txt")
