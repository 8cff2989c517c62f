"""The report page in a real browser: Debian's headless Chromium opens it from a file.

It must load nothing from outside (no URL in the file, and Chromium reports no blocked
load: a control page with one external image shows that the check sees one), and draw
every chart: each expected series is an SVG group with a non-empty path in the page's
DOM, and the screenshot shows the series' colours.  `make test` installs Chromium.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from alcapctl.report.charts import COLOURS
from tests import report_support
from tests.conftest import run_process

pytestmark = pytest.mark.browser

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]
_BLOCKED = "Content Security Policy"  # what Chromium logs for every load the page refused


def _chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    browser = shutil.which("chromium")
    assert browser, "Debian's chromium is not installed; `make test` installs it"
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [browser, *_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


class _Series(HTMLParser):
    """Per chart, the series whose SVG group holds a path with a non-empty outline."""

    def __init__(self) -> None:
        super().__init__()
        self.chart: str | None = None
        self.group: list[str | None] = []
        self.drawn: dict[str, set[str]] = defaultdict(set)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "figure":
            self.chart = values.get("data-chart")
        elif tag == "g":
            self.group.append(values.get("id"))
        elif tag == "path" and (values.get("d") or "").strip() and self.chart:
            for gid in self.group:
                found = re.fullmatch(rf"{self.chart}-series-(\d+)-\d+", gid or "")
                if found:
                    self.drawn[self.chart].add(found.group(1))

    def handle_endtag(self, tag: str) -> None:
        if tag == "g" and self.group:
            self.group.pop()


def test_page_loads_nothing_external_and_draws_every_series(tmp_path: Path) -> None:
    db = tmp_path / "production.db"
    report_support.build(db, 100)
    page = tmp_path / "report.html"
    done = run_process("report", "--all", "--database", db, "--html", page, "--json")
    assert done.returncode == 0, done.stderr
    [data] = json.loads(done.stdout)
    text = page.read_text()
    assert not re.search(r"(?i)\b(?:https?|ftp)://|<script|<link|<img|\bsrc=", text)

    loaded = _chromium(tmp_path, page, "--dump-dom")
    assert _BLOCKED not in loaded.stderr
    control = tmp_path / "control.html"
    control.write_text(text.replace("<body>", '<body><img src="https://example.invalid/x.png">'))
    assert _BLOCKED in _chromium(tmp_path, control, "--dump-dom").stderr

    parser = _Series()
    parser.feed(loaded.stdout)
    expected = {
        "progress": sum(len(kinds) for kinds in data["progress"]["datasets"].values()),
        "timeline": len({bar["outcome"] for bar in data["timeline"]["bars"]}),
        "durations": len(data["run_time_seconds"]["counts"]),
        "failures": 1,
    }
    assert expected == {"progress": 7, "timeline": 4, "durations": 2, "failures": 1}
    assert {chart: len(series) for chart, series in parser.drawn.items()} == expected

    shot = tmp_path / "report.png"
    _chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1200,3400")
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None
    seen: dict[str, int] = {}
    for n, rgb in colours:
        assert isinstance(rgb, tuple)  # an RGB image's colours are (r, g, b)
        r, g, b = rgb
        seen[f"#{r:02x}{g:02x}{b:02x}"] = n
    for outcome in ("finished", "failed", "retried", "running"):
        assert seen.get(COLOURS[outcome], 0) > 50, outcome
