"""Sliding-window kelp prediction over a whole scene, in bounded memory.

The scene is processed one strip of window rows at a time: the strip is read (the next one is
read in a background thread while the model runs), its windows are predicted in batches, and
the blended probabilities are accumulated in a buffer one window tall and one scene wide.
Rows that no later window touches are final: they are thresholded and written at once. So
memory holds one strip, one buffer and one batch, whatever the scene size.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import rasterio
from rasterio.windows import Window

from kelpseg import __version__
from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.io.encoding import EncodingGuard, encoding_guard
from kelpseg.io.tiles import BAND_NAMES, MISSING
from kelpseg.scenes.cog import MASK_NODATA, StripRasters
from kelpseg.scenes.dem import require_dem
from kelpseg.scenes.reader import LandsatScene
from kelpseg.scenes.windows import WindowGrid, skip_reason

PathLike = str | os.PathLike[str]
# Blend weights reach 0 near inner window edges. Where the neighbour that would take over was
# skipped (all land or no data), this floor lets the window that was predicted fill in.
WEIGHT_FLOOR = 1e-9
GDAL_CACHE_BYTES = 128 * 1024**2


@runtime_checkable
class TilePredictor(Protocol):
    """What scene prediction needs from a model (``kelpseg.inference.predict.Predictor`` fits).

    ``predict_batch`` maps raw (N, 7, h, w) int16 tiles in tile band order (SWIR1, NIR, R, G,
    B, QA, DEM; -32768 missing) to (N, h, w) float32 kelp probabilities.
    """

    tile_size: int
    needs_dem: bool
    threshold: float

    def predict_batch(self, raw: np.ndarray) -> np.ndarray:
        """Kelp probabilities of a batch of raw tiles."""
        ...


@dataclass
class SceneResult:
    """What :func:`predict_scene` wrote and counted."""

    mask_path: Path
    prob_path: Path | None
    height: int
    width: int
    threshold: float
    windows: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: {"nodata": 0, "land": 0})
    kelp_pixels: int = 0
    observed_pixels: int = 0
    seconds: float = 0.0


class _RowBuffer:
    """Weighted probability and weight sums for the rows one strip of windows covers."""

    def __init__(self, rows: int, width: int) -> None:
        self.acc = np.zeros((rows, width), dtype=np.float64)
        self.weight = np.zeros((rows, width), dtype=np.float64)

    def add(self, col: int, prob: np.ndarray, weight: np.ndarray) -> None:
        h, w = weight.shape
        self.acc[:h, col : col + w] += prob * weight
        self.weight[:h, col : col + w] += weight

    def take(self, n: int) -> np.ndarray:
        """Blended probabilities of the first ``n`` rows; the buffer moves down by ``n``."""
        weight = self.weight[:n]
        prob = np.divide(self.acc[:n], weight, out=np.zeros_like(weight), where=weight > 0)
        for arr in (self.acc, self.weight):
            keep = len(arr) - n
            arr[:keep] = arr[n:].copy()
            arr[keep:] = 0.0
        return prob.astype(np.float32)


def _pad(raw: np.ndarray, tile: int) -> np.ndarray:
    """Pad a window smaller than the tile (tiny scenes) with missing pixels."""
    h, w = raw.shape[1:]
    if (h, w) == (tile, tile):
        return raw
    out = np.full((raw.shape[0], tile, tile), MISSING, dtype=raw.dtype)
    out[:, :h, :w] = raw
    return out


def _run_batch(
    predictor: TilePredictor, batch: list[tuple[int, np.ndarray]], tile: int
) -> list[tuple[int, np.ndarray]]:
    raw = np.stack([_pad(window, tile) for _, window in batch])
    probs = np.asarray(predictor.predict_batch(raw))
    if probs.shape != (len(batch), tile, tile):
        raise KelpsegError(
            f"the model returned shape {probs.shape} for {len(batch)} tiles of {tile} x {tile}"
        )
    if not np.isfinite(probs).all():
        raise KelpsegError("the model returned NaN or infinite probabilities")
    if probs.min() < 0 or probs.max() > 1:
        raise KelpsegError("the model returned values outside [0, 1] (logits, not probabilities?)")
    h, w = batch[0][1].shape[1:]
    return [(j, probs[k, :h, :w]) for k, (j, _) in enumerate(batch)]


def _predict_strip(
    raw: np.ndarray,
    i: int,
    grid: WindowGrid,
    predictor: TilePredictor,
    batch_size: int,
    buffer: _RowBuffer,
    result: SceneResult,
) -> None:
    """Predict the windows of strip ``i`` and add their weighted probabilities."""
    todo: list[tuple[int, np.ndarray]] = []
    for j, col in enumerate(grid.cols):
        window = raw[:, :, col : col + grid.window_width]
        reason = skip_reason(window)
        if reason is not None:
            result.skipped[reason] += 1
        else:
            todo.append((j, window))
    for start in range(0, len(todo), batch_size):
        for j, prob in _run_batch(predictor, todo[start : start + batch_size], grid.tile):
            buffer.add(grid.cols[j], prob, np.maximum(grid.weights(i, j), WEIGHT_FLOOR))
    result.windows += len(grid.cols)


def _finish_rows(
    prob: np.ndarray, raw: np.ndarray, threshold: float, nodata_on_qa: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Mask (uint8) and probability (float32) of final rows; ``raw`` holds the same rows."""
    fill = np.all(raw[:5] == MISSING, axis=0)
    mask = (prob.astype(np.float64) >= threshold).astype(np.uint8)
    mask[(fill | (raw[5] > 0)) if nodata_on_qa else fill] = MASK_NODATA
    prob = np.where(fill, np.float32(np.nan), prob)
    return mask, prob


def default_prob_path(mask_path: PathLike) -> Path:
    """``kelp.tif`` -> ``kelp_prob.tif``."""
    path = Path(mask_path)
    return path.with_name(f"{path.stem}_prob{path.suffix or '.tif'}")


def predict_scene(
    scene: LandsatScene,
    predictor: TilePredictor,
    out_path: PathLike,
    *,
    overlap: int | None = None,
    blend: str = "cosine",
    batch_size: int = 8,
    write_prob: bool = False,
    prob_path: PathLike | None = None,
    threshold: float | None = None,
    nodata_on_qa: bool = True,
    show_progress: bool = True,
    ignore_encoding: bool = False,
) -> SceneResult:
    """Predict kelp over a whole scene and write a mask COG (and a probability COG).

    Args:
        scene: an open scene (:func:`kelpseg.scenes.open_scene`).
        predictor: any :class:`TilePredictor`; windows are its ``tile_size``.
        out_path: the mask COG: uint8, 1 kelp, 0 not, 255 no data, with the scene's grid.
        overlap: minimum overlap of neighbouring windows in pixels (default: a quarter tile).
        blend: how overlapping predictions are weighted (``cosine``, ``linear``, ``none``).
        batch_size: windows per call of ``predictor.predict_batch``.
        write_prob: also write the probability COG (float32, NaN outside the footprint).
        prob_path: where (default ``<out>_prob.tif``).
        threshold: kelp where probability >= threshold (default: the predictor's).
        nodata_on_qa: mark QA-flagged pixels (cloud, shadow, saturation ...) 255 in the mask,
            so areas count only what was seen; otherwise only the footprint's outside is 255.
        show_progress: draw a progress bar over the windows.
        ignore_encoding: go on (one warning) when the scene, as read, is in another integer encoding
            than the model trained on; else stop before the mask is placed.

    Raises:
        KelpsegError: the model needs a DEM the scene lacks, bad settings, unreadable data,
            a scene in another encoding than the model's (without ``ignore_encoding``).
    """
    start = time.perf_counter()
    require_dem(bool(predictor.needs_dem), scene.has_dem, scene.name)
    if batch_size < 1:
        raise KelpsegError(f"batch size must be >= 1, got {batch_size}")
    tile = int(predictor.tile_size)
    overlap = tile // 4 if overlap is None else overlap
    grid = WindowGrid(scene.height, scene.width, tile, overlap, blend)
    thr = float(predictor.threshold if threshold is None else threshold)
    prob_out = (prob_path or default_prob_path(out_path)) if write_prob else None
    result = SceneResult(
        Path(out_path), Path(prob_out) if prob_out else None, scene.height, scene.width, thr
    )
    # GDAL's block cache defaults to 5% of RAM (6 GB on a 128 GB machine): bound it too.
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        rasters = StripRasters(
            out_path,
            prob_out,
            height=scene.height,
            width=scene.width,
            crs=scene.crs,
            transform=scene.transform,
            tags=_tags(scene, thr, overlap, blend),
        )
        guard = encoding_guard(predictor, ignore_encoding)
        with rasters:
            _run(
                scene, predictor, grid, rasters, result, batch_size, nodata_on_qa,
                show_progress, guard,
            )  # fmt: skip
    result.seconds = time.perf_counter() - start
    return result


def _run(
    scene: LandsatScene,
    predictor: TilePredictor,
    grid: WindowGrid,
    rasters: StripRasters,
    result: SceneResult,
    batch_size: int,
    nodata_on_qa: bool,
    show_progress: bool,
    guard: EncodingGuard,
) -> None:
    """Strip by strip: read, predict, blend, and write the rows no later window touches."""
    buffer = _RowBuffer(grid.window_height, scene.width)

    def read_strip(i: int) -> np.ndarray:
        return scene.read(Window(0, grid.rows[i], scene.width, grid.window_height))

    # The reader thread fetches strip i + 1 while the model works on strip i.
    with progress(disable=not show_progress) as bar, ThreadPoolExecutor(1) as reader:
        task = bar.add_task(f"predicting {scene.name}", total=len(grid))
        pending = reader.submit(read_strip, 0)
        for i, row in enumerate(grid.rows):
            raw = pending.result()
            guard.check(raw[: len(BAND_NAMES)], [f"{scene.name} (rows {row}+)"])
            if i + 1 < len(grid.rows):
                pending = reader.submit(read_strip, i + 1)
            _predict_strip(raw, i, grid, predictor, batch_size, buffer, result)
            end = grid.rows[i + 1] if i + 1 < len(grid.rows) else scene.height
            done = buffer.take(end - row)
            mask, prob = _finish_rows(done, raw[:, : end - row], result.threshold, nodata_on_qa)
            rasters.write(row, mask, prob)
            result.kelp_pixels += int((mask == 1).sum())
            result.observed_pixels += int((mask != MASK_NODATA).sum())
            bar.update(task, completed=result.windows)


def _tags(scene: LandsatScene, threshold: float, overlap: int, blend: str) -> dict[str, str]:
    info: dict[str, Any] = {
        "KELPSEG_VERSION": __version__,
        "SCENE": scene.name,
        "ACQUISITION_DATE": scene.date.isoformat() if scene.date else "",
        "THRESHOLD": threshold,
        "OVERLAP": overlap,
        "BLEND": blend,
    }
    return {k: str(v) for k, v in info.items()}
