"""The shared browser check (tests/browser.py) catches what a reader would see go wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kelpseg.io.report_media import img_tag, webp_bytes
from tests.browser import browser_test, load_page, missing_links

GOOD = img_tag(webp_bytes(np.full((8, 8, 3), 200, np.uint8)), "grey square")


def _page(folder: Path, body: str) -> Path:
    page = folder / "page.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>")
    return page


def test_missing_links_are_found_without_a_browser(tmp_path: Path) -> None:
    (tmp_path / "page_files").mkdir()
    (tmp_path / "page_files" / "a b.png").write_bytes(b"x")
    page = _page(
        tmp_path,
        '<a href="page_files/a%20b.png">ok</a><a href="page_files/gone.png">gone</a>'
        '<a href="#top">anchor</a><a href="https://example.org/">web</a>',
    )
    assert missing_links(page) == ["page_files/gone.png"]


@browser_test
def test_a_clean_page_passes(tmp_path: Path) -> None:
    load_page(_page(tmp_path / "", GOOD + GOOD), tmp_path).assert_clean(images=2)


@browser_test
def test_broken_images_script_errors_and_console_errors_are_caught(tmp_path: Path) -> None:
    body = (
        GOOD
        + '<img src="data:image/webp;base64,UklGRgAAAA">'  # not a decodable image
        + '<img src="page_files/nowhere.png">'
        + "<script>noSuchFunction();</script>"
        + "<script>console.error('drawn wrong');</script>"
    )
    check = load_page(_page(tmp_path, body), tmp_path)
    assert check.images == 3 and len(check.broken) == 2
    assert any("noSuchFunction" in e for e in check.errors)
    assert any("drawn wrong" in e for e in check.errors)
    assert any("failed to load IMG" in e and "nowhere.png" in e for e in check.errors)
    assert any("noSuchFunction" in line for line in check.console)
    assert check.missing_links == ["page_files/nowhere.png"]
