"""Images for the HTML reports: small enough to mail, full detail one click away.

Every report embeds its pictures at the size they are shown, as WebP: lossy for pictures of
tiles (a 1,400 px strip of eight panels is ~25 kB instead of ~850 kB of native-size PNG),
lossless for charts (lines and text stay sharp at a quarter of the PNG's bytes). Full-size
pictures of single tiles go to a folder beside the page (``report.html`` ->
``report_files/``) and are linked from their thumbnails, so the page alone stays small and
complete, and nothing is lost to a reader who has the folder too.
"""

from __future__ import annotations

import base64
import html
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np
from PIL import Image

from kelpseg.errors import KelpsegError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Quality of lossy WebP thumbnails (Pillow's 0-100 scale): no visible blocking on tiles.
WEBP_QUALITY = 80
WEBP = "image/webp"
PNG = "image/png"


def thumbnail(image: np.ndarray, width: int) -> np.ndarray:
    """An (H, W, 3) uint8 image scaled down to ``width`` pixels (never up), by pixel averaging.

    Averaging (a box filter) keeps a one-pixel kelp speck visible as a faint dot instead of
    dropping it, as nearest-neighbour sampling would.
    """
    height, full = image.shape[:2]
    if full <= width:
        return image
    size = (width, max(1, round(height * width / full)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))


def webp_bytes(image: np.ndarray, *, width: int | None = None, lossless: bool = False) -> bytes:
    """Encode an (H, W, 3) uint8 image as WebP, first scaled down to ``width`` when given."""
    small = thumbnail(image, width) if width is not None else image
    buffer = io.BytesIO()
    options = {"lossless": True} if lossless else {"quality": WEBP_QUALITY, "method": 6}
    Image.fromarray(np.ascontiguousarray(small)).save(buffer, format="WEBP", **options)
    return buffer.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 image as PNG (full-size files beside a report)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def figure_webp(fig: Figure, dpi: int = 100, *, tight: bool = False) -> bytes:
    """Render a matplotlib figure as lossless WebP (charts: sharp lines, few bytes)."""
    buffer = io.BytesIO()
    fig.savefig(
        buffer,
        format="webp",
        dpi=dpi,
        bbox_inches="tight" if tight else None,
        pil_kwargs={"lossless": True},
    )
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = WEBP) -> str:
    """``data:<mime>;base64,...`` for embedding an image in HTML."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def img_tag(data: bytes, alt: str, *, mime: str = WEBP, href: str | None = None) -> str:
    """An embedded ``<img>``; wrapped in a link to ``href`` (the full-size file) when given."""
    tag = f'<img src="{data_uri(data, mime)}" alt="{html.escape(alt)}">'
    if href is None:
        return tag
    title = html.escape(f"{alt}: full size")
    return f'<a href="{html.escape(href)}" title="{title}">{tag}</a>'


def linked_thumbnail(
    image: np.ndarray, name: str, alt: str, files: LinkedFiles | None, width: int
) -> str:
    """An (H, W, 3) uint8 picture embedded at ``width`` pixels (lossy WebP), linked to its full
    resolution PNG written as ``name`` into ``files`` (no link when ``files`` is ``None``)."""
    href = None if files is None else files.add(name, png_bytes(image))
    return img_tag(webp_bytes(image, width=width), alt, href=href)


class LinkedFiles:
    """The folder of files a report links to, written in a temporary folder first.

    Use :func:`linked_files`; :meth:`add` returns the link to put in the page.
    """

    def __init__(self, page: Path, staging: Path) -> None:
        self.folder = files_folder(page)
        self._staging = staging
        self.names: list[str] = []

    def add(self, name: str, data: bytes) -> str:
        """Write ``data`` as ``name`` in the folder (once per name); returns its relative URL."""
        if name not in self.names:
            (self._staging / name).write_bytes(data)
            self.names.append(name)
        return f"{quote(self.folder.name)}/{quote(name)}"


def files_folder(page: str | os.PathLike[str]) -> Path:
    """Where a page's linked files go: ``report.html`` -> ``report_files/`` beside it."""
    path = Path(page)
    return path.with_name(f"{path.stem}_files")


@contextmanager
def linked_files(page: str | os.PathLike[str]) -> Iterator[LinkedFiles]:
    """Collect the files a page links to; on success they replace ``<page stem>_files/``.

    Files are written into a hidden folder beside the page and moved into place only when the
    block finishes without error, so an interrupted report leaves the previous folder whole.
    A report that links nothing leaves no folder (and removes a previous one).
    """
    target = files_folder(page)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the files from a web server
    except OSError as exc:
        raise KelpsegError(f"cannot create output folder ({exc.strerror})", target.parent) from exc
    files = LinkedFiles(Path(page), staging)
    try:
        yield files
        if target.is_dir():
            shutil.rmtree(target)
        if files.names:
            staging.rename(target)
    except OSError as exc:
        raise KelpsegError(f"cannot write ({exc.strerror or exc})", target) from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging)
