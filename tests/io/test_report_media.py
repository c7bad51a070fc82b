"""Report pictures: display-size WebP, and the linked folder replaced whole or not at all."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from kelpseg.io.report_media import (
    data_uri,
    figure_webp,
    files_folder,
    img_tag,
    linked_files,
    linked_thumbnail,
    thumbnail,
    webp_bytes,
)


def _decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_thumbnails_shrink_to_width_and_never_grow() -> None:
    image = np.zeros((350, 2800, 3), np.uint8)
    assert thumbnail(image, 1400).shape == (175, 1400, 3)
    assert thumbnail(image, 5000) is image


def test_a_one_pixel_speck_survives_the_shrink() -> None:
    image = np.zeros((40, 40, 3), np.uint8)
    image[21, 21] = 255
    small = thumbnail(image, 10)
    assert small.max() > 0  # averaged into a faint dot, not dropped


def test_webp_round_trips_lossless_charts_exactly() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)
    decoded = np.asarray(_decode(webp_bytes(image, lossless=True)).convert("RGB"))
    assert np.array_equal(decoded, image)
    lossy = _decode(webp_bytes(image, width=25))
    assert lossy.format == "WEBP" and lossy.size == (25, 15)


def test_figures_render_as_lossless_webp() -> None:
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    picture = _decode(figure_webp(fig, dpi=50))
    assert picture.format == "WEBP" and picture.size == (100, 50)


def test_img_tags_embed_the_bytes_and_link_the_full_size() -> None:
    tag = img_tag(b"abc", 'a "tile"', href="report_files/T 1.png")
    assert f'src="{data_uri(b"abc")}"' in tag and "&quot;tile&quot;" in tag
    assert tag.startswith('<a href="report_files/T 1.png"')
    assert base64.b64decode(data_uri(b"abc").split(",", 1)[1]) == b"abc"


def test_linked_files_replace_the_previous_folder_whole(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    old = files_folder(page)
    old.mkdir()
    (old / "stale.png").write_bytes(b"old")
    image = np.full((8, 16, 3), 100, np.uint8)
    with linked_files(page) as files:
        tag = linked_thumbnail(image, "T 1.png", "tile", files, width=8)
        assert files.add("T 1.png", b"again") == "report_files/T%201.png"  # once per name
    assert 'href="report_files/T%201.png"' in tag
    assert sorted(p.name for p in old.iterdir()) == ["T 1.png"]
    assert np.array_equal(np.asarray(Image.open(old / "T 1.png")), image)  # full size, PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report_files"]  # no staging left


def test_a_failed_report_leaves_the_previous_folder_untouched(tmp_path: Path) -> None:
    page = tmp_path / "gallery.html"
    folder = files_folder(page)
    folder.mkdir()
    (folder / "keep.png").write_bytes(b"old")
    with pytest.raises(RuntimeError), linked_files(page) as files:
        files.add("new.png", b"new")
        raise RuntimeError("interrupted")
    assert [p.name for p in folder.iterdir()] == ["keep.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery_files"]


def test_a_report_without_links_leaves_no_folder(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    files_folder(page).mkdir()
    with linked_files(page):
        pass
    assert list(tmp_path.iterdir()) == []
