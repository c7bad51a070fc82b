"""Pictures of single tiles: colour composites, DEM, QA, NDVI and the kelp mask.

Composites are stretched per band between two percentiles of the *valid* pixels, so -32768
gaps neither darken nor flatten the picture; missing pixels are drawn black (composites) or
grey (single bands).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kelpseg.console import progress
from kelpseg.eda.config import EdaConfig
from kelpseg.eda.plots import save_figure
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.report_media import png_bytes
from kelpseg.io.tiles import MISSING, Tile, read_label, read_tile

COMPOSITES: dict[str, tuple[str, str, str]] = {
    "true_color": ("R", "G", "B"),
    "color_infrared": ("NIR", "R", "G"),
    "shortwave_infrared": ("SWIR1", "NIR", "R"),
}
_BAD_COLOR = "#808080"


@dataclass(frozen=True)
class Panel:
    """One picture of a tile: an (H, W, 3) RGB image or an (H, W) band with a colour map."""

    name: str
    title: str
    image: np.ndarray
    cmap: str | None = None
    vmin: float | None = None
    vmax: float | None = None


def stretch(band: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Scale a band to [0, 1] between two percentiles of its non-missing pixels.

    Returns:
        float32 array; missing pixels (-32768) are NaN, and so is everything if none is valid.
    """
    valid = band != MISSING
    out = np.full(band.shape, np.nan, dtype=np.float32)
    if not valid.any():
        return out
    lo, hi = np.percentile(band[valid], [low, high])
    span = float(hi - lo) if hi > lo else 1.0
    out[valid] = np.clip((band[valid].astype(np.float32) - lo) / span, 0.0, 1.0)
    return out


def composite(tile: Tile, bands: Sequence[str], low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """An (H, W, 3) float32 RGB composite of three named bands; missing pixels are black."""
    rgb = np.stack([stretch(tile.band(name), low, high) for name in bands], axis=-1)
    return np.nan_to_num(rgb, nan=0.0)


def ndvi(tile: Tile) -> np.ndarray:
    """(NIR - R) / (NIR + R) as float32; NaN where either band is missing or the sum is 0."""
    nir = tile.band("NIR").astype(np.float32)
    red = tile.band("R").astype(np.float32)
    total = nir + red
    bad = (tile.band("NIR") == MISSING) | (tile.band("R") == MISSING) | (total == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (nir - red) / total
    out[bad] = np.nan
    return out


def check_channels(names: Sequence[str]) -> None:
    """Fail early on a channel name that neither NDVI nor the features registry knows."""
    others = [name for name in names if name.upper() != "NDVI"]
    if not others:
        return
    # Imported here: kelpseg.features loads torch, needed only for these channels.
    from kelpseg.features.indices import unknown_channels

    unknown = unknown_channels(others)
    if unknown:
        raise KelpsegError(
            f"unknown channel(s) {', '.join(map(repr, unknown))}; NDVI or any name of "
            "kelpseg.features.available_channels() (e.g. ATSAVI, CDOM, ClGreen)"
        )


def render_channel(tile: Tile, name: str) -> np.ndarray:
    """A derived (H, W) float32 channel by name; NaN where missing or masked.

    NDVI is computed here; any other name (spectral indices, base bands) is rendered by
    :func:`kelpseg.features.render_channel` with its default masking, imported only then.
    """
    if name.upper() == "NDVI":
        return ndvi(tile)
    check_channels([name])
    from kelpseg.features import render_channel as render_feature

    return render_feature(tile, name)


def _channel_panel(tile: Tile, name: str, config: EdaConfig) -> Panel:
    values = np.ma.masked_invalid(render_channel(tile, name))
    if name.upper() == "NDVI":
        return Panel(name.lower(), "NDVI", values, "RdYlGn", -1.0, 1.0)
    finite = values.compressed()
    low, high = config.plots.percentile_low, config.plots.percentile_high
    vmin, vmax = np.percentile(finite, [low, high]) if finite.size else (0.0, 1.0)
    return Panel(name.lower(), name, values, "viridis", float(vmin), float(vmax))


def _masked(band: np.ndarray) -> np.ndarray:
    return np.ma.masked_where(band == MISSING, band.astype(np.float32))


def tile_panels(tile: Tile, label: np.ndarray | None, config: EdaConfig) -> list[Panel]:
    """Every panel of a tile, in display order (the kelp mask last, when there is a label)."""
    low, high = config.plots.percentile_low, config.plots.percentile_high
    panels = [
        Panel(
            name, f"{name.replace('_', ' ')} ({','.join(bands)})", composite(tile, bands, low, high)
        )
        for name, bands in COMPOSITES.items()
    ]
    dem = _masked(tile.band("DEM"))
    panels.append(Panel("dem", "DEM (m)", dem, "terrain"))
    panels.append(Panel("qa", "QA (1 = cloud/bad)", _masked(tile.band("QA")), "gray", 0, 1))
    check_channels(config.plots.channels)
    panels.extend(_channel_panel(tile, name, config) for name in config.plots.channels)
    if label is not None:
        kelp = int(label.sum())
        panels.append(Panel("kelp", f"kelp mask ({kelp} px)", label, "Greens", 0, 1))
    return panels


def _cmap(name: str | None) -> matplotlib.colors.Colormap | None:
    return None if name is None else matplotlib.colormaps[name].with_extremes(bad=_BAD_COLOR)


def plot_tile(tile: Tile, label: np.ndarray | None, config: EdaConfig) -> Figure:
    """One figure with every panel of a tile (four per row)."""
    panels = tile_panels(tile, label, config)
    ncols = 4
    nrows = -(-len(panels) // ncols)
    height = 3.2 * nrows + 0.6
    fig = Figure(figsize=(3.0 * ncols, height))
    # Fixed margins (in inches from the top) rather than a layout engine: twice as fast.
    fig.subplots_adjust(
        left=0.01, right=0.99, bottom=0.01, top=1 - 0.65 / height, wspace=0.05, hspace=0.12
    )
    fig.suptitle(tile.tile_id, y=1 - 0.12 / height, va="top")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        ax.imshow(
            panel.image,
            cmap=_cmap(panel.cmap),
            vmin=panel.vmin,
            vmax=panel.vmax,
            interpolation="nearest",
        )
        ax.set_title(panel.title, fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    return fig


def panel_rgb(panel: Panel) -> np.ndarray:
    """A panel as an (H, W, 3) uint8 image: its colour map applied, masked pixels grey."""
    if panel.image.ndim == 3:
        return np.round(np.clip(panel.image, 0.0, 1.0) * 255).astype(np.uint8)
    values = np.ma.masked_invalid(np.ma.asarray(panel.image, dtype=np.float32))
    cmap = _cmap(panel.cmap or "gray")
    if values.mask.all():
        return np.broadcast_to(
            (np.array(matplotlib.colors.to_rgb(_BAD_COLOR)) * 255).astype(np.uint8),
            (*values.shape, 3),
        ).copy()
    norm = matplotlib.colors.Normalize(panel.vmin, panel.vmax)
    rgba = cmap(norm(values), bytes=True)  # type: ignore[misc]
    return np.ascontiguousarray(rgba[..., :3])


def tile_strip(panels: Sequence[Panel], slots: int = 0, gap: int = 4) -> np.ndarray:
    """Panels side by side at native resolution with white gaps (a fast gallery image).

    Args:
        panels: the panels, left to right.
        slots: pad with white up to this many panels, so strips with and without a kelp mask
            line up.
        gap: white pixels between panels.
    """
    images = [panel_rgb(p) for p in panels]
    height, width = images[0].shape[:2]
    images += [np.full((height, width, 3), 255, np.uint8)] * max(0, slots - len(images))
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    parts = [part for image in images for part in (image, spacer)][:-1]
    return np.concatenate(parts, axis=1)


def save_panel(panel: Panel, path: str | os.PathLike[str]) -> Path:
    """Write one panel as a PNG at the tile's own resolution (one image pixel per tile pixel)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(png_bytes(panel_rgb(panel)))
    return Path(path)


def save_tile_plots(
    tile: Tile, label: np.ndarray | None, out_dir: str | os.PathLike[str], config: EdaConfig
) -> list[Path]:
    """Write ``<tile_id>.png`` (all panels) and ``<tile_id>_<panel>.png`` for each panel."""
    folder = Path(out_dir) / tile.tile_id
    paths = [
        save_figure(
            plot_tile(tile, label, config), folder / f"{tile.tile_id}.png", config.plots.dpi
        )
    ]
    for panel in tile_panels(tile, label, config):
        paths.append(save_panel(panel, folder / f"{tile.tile_id}_{panel.name}.png"))
    return paths


def read_for_plot(row: pd.Series) -> tuple[Tile, np.ndarray | None]:
    """Read a catalog row's tile and label (label ``None`` when ``mask_path`` is empty)."""
    tile = read_tile(str(row["image_path"]), expected_size=None, allow_all_missing=True)
    mask = row.get("mask_path")
    label = (
        read_label(str(mask), expected_size=tile.shape) if isinstance(mask, str) and mask else None
    )
    return tile, label


def pick_tiles(
    catalog: pd.DataFrame, tile_ids: Sequence[str] | None, sample: int | None, seed: int = 0
) -> pd.DataFrame:
    """Catalog rows of the named tiles, or a random sample of ``sample`` tiles."""
    if tile_ids:
        unknown = sorted(set(tile_ids) - set(catalog["tile_id"]))
        if unknown:
            raise KelpsegError(f"tile id(s) not in the dataset: {', '.join(unknown[:10])}")
        return catalog.set_index("tile_id", drop=False).loc[list(tile_ids)].reset_index(drop=True)
    if sample is None or sample < 1:
        raise KelpsegError("name tiles (--tiles) or a sample size (--sample N >= 1)")
    n = min(sample, len(catalog))
    return catalog.sample(n=n, random_state=seed).reset_index(drop=True)


def plot_tiles(
    catalog: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    config: EdaConfig,
    *,
    tile_ids: Sequence[str] | None = None,
    sample: int | None = None,
    seed: int = 0,
    show_progress: bool = True,
) -> tuple[list[Path], list[str]]:
    """Plot chosen tiles of a catalog (by id, or a random sample) into ``out_dir``.

    Returns:
        The PNG files written, and one error line per tile that could not be plotted.
    """
    check_channels(config.plots.channels)
    rows = pick_tiles(catalog, tile_ids, sample, seed)
    written: list[Path] = []
    errors: list[str] = []
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("tile plots", total=len(rows))
        for _, row in rows.iterrows():
            try:
                tile, label = read_for_plot(row)
            except KelpsegError as exc:
                errors.append(str(exc))
            else:
                written.extend(save_tile_plots(tile, label, out_dir, config))
            bar.advance(task)
    return written, errors
