from __future__ import annotations

import base64
import io
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.image import imread

from kelpseg.eda.config import DaskSettings, EdaConfig, ReportSettings
from kelpseg.eda.plots import statistic_columns
from kelpseg.eda.report import gallery_groups, write_report
from kelpseg.eda.runner import run_stats
from kelpseg.errors import KelpsegError
from tests.eda.conftest import write_dataset

CHROMIUM = Path("/usr/bin/chromium")
TRAIN = {"AA001": 0, "AA002": 7, "AA003": 41, "AA004": 0}
TEST = ["TT001", "TT002"]


class _Images(HTMLParser):
    """Collects <img> sources and the attributes of <body>."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs).get("src") or "")
        elif tag == "body":
            self.body = dict(attrs)


def _parse(text: str) -> _Images:
    parser = _Images()
    parser.feed(text)
    return parser


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, dask_cluster: object) -> Path:
    """A stats folder of a crafted dataset (one corrupt tile) with its report.html."""
    root = tmp_path_factory.mktemp("report")
    data = write_dataset(root / "data", TRAIN, TEST, corrupt=["BAD01"])
    config = EdaConfig(
        tile_size=0,
        stats=["label", "dem", "qa"],  # fewer plots to render: the per-band counts add nothing here
        dask=DaskSettings(chunk_size=3),
        report=ReportSettings(title="Kelp <EDA> & co", gallery_per_group=2),
    )
    run_stats(
        data,
        root / "stats",
        config,
        plots=False,
        show_progress=False,
        scheduler=dask_cluster.scheduler_address,  # type: ignore[attr-defined]
    )
    return write_report(root / "stats", show_progress=False)


def _expected_images(stats_dir: Path) -> int:
    stats = pd.read_parquet(stats_dir / "tile_stats.parquet")
    gallery = sum(len(g) for g in gallery_groups(stats, 2).values())
    return len(statistic_columns(stats)) + 1 + gallery


def test_report_is_self_contained_and_every_image_decodes(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    page = _parse(text)
    assert len(page.sources) == _expected_images(report.parent)
    for src in page.sources:
        assert src.startswith("data:image/png;base64,")
        image = imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert image.shape[0] >= 10 and image.shape[1] >= 10
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", text)
    assert "<link" not in text
    assert "<title>Kelp &lt;EDA&gt; &amp; co</title>" in text  # title from the saved config
    assert "BAD01" in text  # the failed tile is listed


def test_gallery_groups_pick_the_right_tiles(report: Path) -> None:
    stats = pd.read_parquet(report.parent / "tile_stats.parquet")
    groups = gallery_groups(stats, per_group=2)
    assert list(groups) == ["with kelp", "without kelp", "most corrupted", "most water"]
    assert groups["with kelp"]["has_kelp"].all()
    assert not groups["without kelp"]["has_kelp"].any()
    most_water = groups["most water"]["water_pixels_pct"].tolist()
    assert most_water[0] == stats["water_pixels_pct"].max()
    assert gallery_groups(stats, per_group=0) == {}


def test_report_needs_a_stats_folder(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="run 'kelpseg eda stats' first"):
        write_report(tmp_path)


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM),
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
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _load_in_chromium(page: Path, profile: Path) -> tuple[dict[str, str | None], list[str]]:
    """Body attributes set by the page's load-time check, and console error lines."""
    done = _chromium(["--virtual-time-budget=10000", "--dump-dom", page.as_uri()], profile)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [
        line
        for line in done.stderr.splitlines()
        if ":CONSOLE" in line and ("Uncaught" in line or "ERROR:" in line)
    ]
    return _parse(done.stdout).body, console


browser = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium not installed: apt-get install chromium"
)


@pytest.mark.browser
@browser
def test_report_loads_in_chromium_without_errors(report: Path, tmp_path: Path) -> None:
    body, console = _load_in_chromium(report, tmp_path / "profile")
    assert body.get("data-ready") == "1", "the page's load handler did not run"
    assert json.loads(body["data-errors"] or "null") == []
    assert console == []
    assert body["data-images-broken"] == "0"
    assert int(body["data-image-count"] or 0) == _expected_images(report.parent)


@pytest.mark.browser
@browser
def test_report_screenshot(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = _chromium(
        [f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri()], tmp_path / "p"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    image = imread(shot)
    assert image.shape[:2] == (2000, 1280)
    gray = image[..., :3].mean(axis=-1)
    assert (gray < 0.3).mean() > 0.002  # text and plots drawn, not a blank page
    assert (gray > 0.9).mean() > 0.3  # on the white page background


@pytest.mark.browser
@browser
def test_chromium_check_catches_a_broken_image_and_a_script_error(
    report: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.html"
    bad = '<img src="data:image/png;base64,iVBORw0KGgoAAAA"><script>noSuchFunction();</script>'
    broken.write_text(report.read_text().replace("</body>", bad + "</body>"))
    body, console = _load_in_chromium(broken, tmp_path / "profile")
    assert body["data-images-broken"] == "1"
    assert any("noSuchFunction" in e for e in json.loads(body["data-errors"] or "[]"))
    assert any("noSuchFunction" in line for line in console)
