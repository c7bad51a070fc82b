"""A PNG grid of tiles: true colour, false colour, DEM and label, to judge a dataset by eye."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.tiles import BAND_NAMES, MISSING, read_label, read_tile

PANELS = ("true colour (R,G,B)", "false colour (NIR,R,G)", "DEM (white: none)", "label")


def stretch(
    bands: np.ndarray, clear: np.ndarray | None = None, low: float = 1.0, high: float = 99.0
) -> np.ndarray:
    """(3, H, W) int16 bands to an (H, W, 3) RGB image in 0..1.

    One percentile stretch for all three bands, so hues stay true. Missing pixels
    (-32768) are left out of the percentiles and drawn black; so are pixels outside
    ``clear`` (e.g. clouds), when enough clear pixels remain.
    """
    out = np.zeros((*bands.shape[1:], 3), dtype=np.float32)
    valid = (bands != MISSING).all(axis=0)
    if not valid.any():
        return out
    sample = valid & clear if clear is not None and (valid & clear).sum() > 100 else valid
    lo, hi = np.percentile(bands[:, sample], [low, high])
    scaled = np.clip((bands.astype(np.float32) - lo) / max(hi - lo, 1.0), 0, 1) ** 0.8
    return np.where(valid[..., None], np.moveaxis(scaled, 0, -1), 0).astype(np.float32)


def _band(data: np.ndarray, *names: str) -> np.ndarray:
    return np.stack([data[BAND_NAMES.index(n)] for n in names])


def _find_tiles(data_dir: Path) -> list[tuple[str, Path, Path | None]]:
    """(tile_id, image, label) for train tiles with labels, then test tiles with test labels."""
    found = []
    for images, labels in (("train_satellite", "train_kelp"), ("test_satellite", "test_labels")):
        for image in sorted((data_dir / images).glob("*_satellite.tif")):
            tile_id = image.name.removesuffix("_satellite.tif")
            label = data_dir / labels / f"{tile_id}_kelp.tif"
            found.append((tile_id, image, label if label.exists() else None))
    return found


def pick_tiles(data_dir: Path, n: int) -> list[tuple[str, Path, Path | None]]:
    """Choose ``n`` varied tiles: kelp-rich first, then cloudy, striped, misaligned, any.

    Uses ``synth_truth.parquet`` when present, else the first tiles found.
    """
    tiles = _find_tiles(data_dir)
    truth_path = data_dir / "synth_truth.parquet"
    if not truth_path.exists():
        return tiles[:n]
    truth = pd.read_parquet(truth_path).set_index("tile_id")
    by_kelp = truth.sort_values(["kelp_pixels_true", "cloud_fraction"], ascending=[False, True])
    groups = [
        by_kelp.index[by_kelp.cloud_fraction < 0.1],
        by_kelp.index[(by_kelp.cloud_fraction > 0.1) & (by_kelp.cloud_fraction < 0.5)],
        by_kelp.index[by_kelp.slc_off],
        by_kelp.index[by_kelp.dem_shift_row.abs() + by_kelp.dem_shift_col.abs() > 0],
        by_kelp.index[by_kelp.land_fraction > 0.5],
        by_kelp.index[by_kelp.land_fraction < 0.05],
        by_kelp.index,
    ]
    chosen: list[str] = []
    seen_aois: set[int] = set()
    for group in groups:
        # A few from each group, from different AOIs while that is possible.
        fresh = [t for t in group if truth.aoi[t] not in seen_aois and t not in chosen]
        for tile_id in fresh[: max(n // 4, 1)]:
            if len(chosen) < n and truth.aoi[tile_id] not in seen_aois:
                chosen.append(tile_id)
                seen_aois.add(int(truth.aoi[tile_id]))
    chosen += [t for t in truth.index if t not in chosen][: n - len(chosen)]
    by_id = {t[0]: t for t in tiles}
    return [by_id[t] for t in chosen if t in by_id]


def _draw_dem(ax: Any, dem: np.ndarray) -> None:
    """Sea (0) in blue, land in earth tones, no-DEM (-32768) left white."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    land_colours = ListedColormap(colormaps["terrain"](np.linspace(0.3, 1.0, 256)))
    ax.imshow(np.ma.masked_where(dem != 0, dem), cmap=ListedColormap(["#2f6db5"]))
    top = max(float(dem.max()), 50.0)
    ax.imshow(np.ma.masked_where(dem <= 0, dem), cmap=land_colours, vmin=1, vmax=top)


def _draw_row(axes: np.ndarray, data: np.ndarray, label: np.ndarray | None) -> None:
    clear = data[BAND_NAMES.index("QA")] == 0
    rgb = stretch(_band(data, "R", "G", "B"), clear)
    axes[0].imshow(rgb)
    axes[1].imshow(stretch(_band(data, "NIR", "R", "G"), clear))
    _draw_dem(axes[2], data[BAND_NAMES.index("DEM")])
    overlay = rgb.copy()
    if label is not None:
        overlay[label == 1] = (1.0, 0.1, 0.6)
    axes[3].imshow(overlay)


def plot_preview(
    data_dir: str | os.PathLike[str], out_png: str | os.PathLike[str], n: int = 12
) -> Path:
    """Draw ``n`` tiles of a dataset as a grid (4 panels per tile) and save it as PNG.

    Args:
        data_dir: a dataset in the Kelp Wanted layout (generated or real).
        out_png: the PNG to write (atomically).
        n: how many tiles to show.

    Raises:
        KelpsegError: no satellite tiles found in ``data_dir``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data_dir = Path(data_dir)
    tiles = pick_tiles(data_dir, n)
    if not tiles:
        raise KelpsegError("no *_satellite.tif tiles to preview", data_dir)
    per_row = 2
    rows = (len(tiles) + per_row - 1) // per_row
    fig, axes = plt.subplots(rows, 4 * per_row, figsize=(4 * per_row * 2.2, rows * 2.3))
    axes = np.atleast_2d(axes)
    for ax in axes.ravel():
        ax.set_axis_off()
    for k, (tile_id, image, label_path) in enumerate(tiles):
        row_axes = axes[k // per_row, 4 * (k % per_row) : 4 * (k % per_row) + 4]
        label = read_label(label_path) if label_path is not None else None
        _draw_row(row_axes, read_tile(image, expected_size=None).data, label)
        for ax, title in zip(row_axes, PANELS, strict=True):
            ax.set_title(f"{tile_id}: {title}" if title == PANELS[0] else title, fontsize=7)
    fig.tight_layout()
    out = Path(out_png)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out
