from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kelpseg.eda.config import DaskSettings, EdaConfig, ReportSettings
from kelpseg.eda.plots import statistic_columns
from kelpseg.eda.report import STRIP_WIDTH, gallery_groups, write_report
from kelpseg.eda.runner import run_stats
from kelpseg.errors import KelpsegError
from kelpseg.io.report_media import png_bytes, webp_bytes
from tests.browser import browser_test, load_page, screenshot
from tests.eda.conftest import SIZE, write_dataset

TRAIN = {"AA001": 0, "AA002": 7, "AA003": 41, "AA004": 0}
TEST = ["TT001", "TT002"]


class _Images(HTMLParser):
    """Collects <img> sources and the links around them."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs).get("src") or "")
        elif tag == "a":
            self.links.append(dict(attrs).get("href") or "")


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


def _decode(src: str) -> Image.Image:
    assert src.startswith("data:image/webp;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))


def test_report_is_self_contained_and_every_image_decodes(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    page = _parse(text)
    assert len(page.sources) == _expected_images(report.parent)
    for src in page.sources:
        image = _decode(src)
        assert image.format == "WEBP"
        assert image.size[0] >= 10 and image.size[1] >= 10
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", text)
    assert "<link" not in text
    assert "<title>Kelp &lt;EDA&gt; &amp; co</title>" in text  # title from the saved config
    assert "BAD01" in text  # the failed tile is listed


def test_gallery_thumbnails_link_their_full_resolution_strips(report: Path) -> None:
    page = _parse(report.read_text(encoding="utf-8"))
    stats = pd.read_parquet(report.parent / "tile_stats.parquet")
    shown = [t for group in gallery_groups(stats, 2).values() for t in group["tile_id"]]
    assert page.links == [f"report_files/{t}.png" for t in shown]
    files = sorted(p.name for p in (report.parent / "report_files").iterdir())
    assert files == sorted(f"{t}.png" for t in set(shown))  # one file per tile, even if twice
    full = Image.open(report.parent / "report_files" / files[0])
    assert full.format == "PNG" and full.size[1] == SIZE  # the tile's own resolution
    thumbs = [_decode(src) for src in page.sources[-len(page.links) :]]
    assert all(t.size[0] <= STRIP_WIDTH and t.size[1] == SIZE for t in thumbs)


def test_large_strips_are_shown_at_display_size() -> None:
    strip = np.random.default_rng(0).integers(0, 255, (350, 2828, 3), dtype=np.uint8)
    thumb = Image.open(io.BytesIO(webp_bytes(strip, width=STRIP_WIDTH)))
    assert thumb.size == (STRIP_WIDTH, round(350 * STRIP_WIDTH / 2828))
    assert len(webp_bytes(strip, width=STRIP_WIDTH)) < len(png_bytes(strip)) / 4


def test_a_report_elsewhere_gets_its_own_files_folder(report: Path, tmp_path: Path) -> None:
    out = write_report(report.parent, tmp_path / "mail" / "eda.html", show_progress=False)
    assert out.is_file() and (tmp_path / "mail" / "eda_files").is_dir()
    assert "eda_files/" in out.read_text() and "report_files/" not in out.read_text()
    assert sorted(p.name for p in (tmp_path / "mail").iterdir()) == ["eda.html", "eda_files"]


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


@browser_test
def test_report_loads_in_chromium_without_errors(report: Path, tmp_path: Path) -> None:
    load_page(report, tmp_path).assert_clean(images=_expected_images(report.parent))


@browser_test
def test_report_screenshot(report: Path, tmp_path: Path) -> None:
    image = screenshot(report, tmp_path)
    assert image.shape[:2] == (2000, 1280)
    gray = image[..., :3].mean(axis=-1)
    assert (gray < 0.3).mean() > 0.002  # text and plots drawn, not a blank page
    assert (gray > 0.9).mean() > 0.3  # on the white page background
