"""Open an HTML report in headless Chromium and say what a reader would see go wrong.

One helper for every report test. :func:`load_page` loads a copy of the page that carries a
few lines of script in front of its own (and a ``<base>`` pointing at the page's folder, so its
relative links still resolve); the script records script errors, ``console.error`` calls and
resources that fail to load, and, once the page has loaded, how many images it holds and which
did not decode (``naturalWidth`` 0). Chromium's ``--dump-dom`` prints the DOM with that record,
and its log (on stderr) gives the console's errors too. The page itself is never changed.

Tests that use it carry :data:`browser_test` (the ``browser`` marker, skipped with a reason
when Debian's ``chromium`` is not installed).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from matplotlib.image import imread

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
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


def browser_test(function: Any) -> Any:
    """Mark a test as a browser test, skipped (with the reason) without Chromium."""
    skip = pytest.mark.skipif(
        CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"
    )
    return pytest.mark.browser(skip(function))


# Runs before anything of the page's own; writes its findings on <html> when the page has loaded.
_CHECK = """<script>
(function () {
  var errors = [];
  function where(url) {  // data URIs cut short, file URLs whole
    url = String(url || '');
    return url.indexOf('data:') === 0 ? url.slice(0, 60) : url;
  }
  window.addEventListener('error', function (e) {
    var t = e.target;
    errors.push(t && t !== window && t.tagName
      ? 'failed to load ' + t.tagName + ' ' + where(t.src || t.href)
      : String(e.message));
  }, true);
  var consoleError = console.error;
  console.error = function () {
    errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    consoleError.apply(console, arguments);
  };
  window.addEventListener('load', function () {
    var images = Array.prototype.slice.call(document.images);
    var broken = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); });
    document.documentElement.setAttribute('data-page-check', JSON.stringify({
      errors: errors,
      images: images.length,
      broken: broken.map(function (img) { return where(img.src); }),
      plots: document.querySelectorAll('.js-plotly-plot .main-svg').length
    }));
  });
})();
</script>"""


@dataclass
class PageCheck:
    """What loading a page showed.

    Attributes:
        errors: script errors, ``console.error`` calls and resources that failed to load.
        console: error lines of Chromium's console log.
        images: ``<img>`` elements on the page.
        broken: the sources of images that did not decode (data URIs cut short).
        plots: plotly charts drawn (their SVG layers).
        missing_links: relative links and sources whose file does not exist.
    """

    errors: list[str]
    console: list[str]
    images: int
    broken: list[str]
    plots: int
    missing_links: list[str] = field(default_factory=list)

    def assert_clean(self, images: int | None = None) -> None:
        """No error of any kind; exactly ``images`` images when given."""
        assert self.errors == [], self.errors
        assert self.console == [], self.console
        assert self.broken == [], self.broken
        assert self.missing_links == [], self.missing_links
        if images is not None:
            assert self.images == images


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a fresh profile folder."""
    assert CHROMIUM is not None
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


class _Links(HTMLParser):
    """Relative ``href`` and ``src`` targets of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value and not value.startswith("#"):
                parsed = urlparse(value)
                if not parsed.scheme and not parsed.netloc:
                    self.targets.append(unquote(parsed.path))


def missing_links(page: Path) -> list[str]:
    """Relative links and sources of ``page`` that name no existing file."""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return [t for t in parser.targets if t and not (page.parent / t).exists()]


def _with_check(text: str, folder: Path) -> str:
    head = f'<base href="{escape(folder.as_uri())}/">{_CHECK}'
    found = re.search(r"<head[^>]*>", text, flags=re.IGNORECASE)
    if found:
        return text[: found.end()] + head + text[found.end() :]
    return head + text


def load_page(page: Path, tmp_path: Path, budget_ms: int = 10_000) -> PageCheck:
    """Load ``page`` in headless Chromium and return what went wrong (see the module doc)."""
    copy = tmp_path / f"checked-{page.name}"
    copy.write_text(_with_check(page.read_text(encoding="utf-8"), page.parent), encoding="utf-8")
    profile = tmp_path / f"profile-{page.stem}"
    done = chromium([f"--virtual-time-budget={budget_ms}", "--dump-dom", copy.as_uri()], profile)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'data-page-check="([^"]*)"', done.stdout)
    assert found, "the page never finished loading (no load event)"
    record = json.loads(unescape(found.group(1)))
    console = [
        line
        for line in done.stderr.splitlines()
        if ":CONSOLE" in line and ("Uncaught" in line or "ERROR:" in line)
    ]
    return PageCheck(
        errors=record["errors"],
        console=console,
        images=record["images"],
        broken=record["broken"],
        plots=record["plots"],
        missing_links=missing_links(page),
    )


def screenshot(page: Path, tmp_path: Path, size: tuple[int, int] = (1280, 2000)) -> Any:
    """A screenshot of ``page`` at ``size`` (width, height) as an (H, W, 3 or 4) float array."""
    shot = tmp_path / f"{page.stem}.png"
    done = chromium(
        [f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}", page.as_uri()],
        tmp_path / f"profile-shot-{page.stem}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return imread(shot)
