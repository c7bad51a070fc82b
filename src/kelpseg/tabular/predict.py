"""Whole-tile prediction with a tree model: every pixel of a batch of raw tiles, batched.

:func:`predict_tiles` takes the same (N, 7, H, W) raw batch as the networks' input builder, as
numpy or torch, so a tree model's probability can be computed on the fly from torch code
(e.g. as an extra network channel). :func:`predict_dataset` writes the prediction folder
format of :mod:`kelpseg.inference.rasters` (``<tile_id>_kelp.tif`` masks and
``<tile_id>_prob.tif`` probabilities), which ``evaluate``, ``submit`` and ensembles read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import torch
import yaml

from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.features import FeatureConfig, InputBuilder
from kelpseg.inference.rasters import MASK_SUFFIX, PROB_SUFFIX, write_predictions
from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import Catalog, build_catalog, load_catalog
from kelpseg.io.tiles import Tile, read_tile
from kelpseg.tabular.artifact import load_model
from kelpseg.tabular.inputs import as_raw_tensor, channel_rows

PathLike = str | os.PathLike[str]
TileSource = Catalog | pd.DataFrame | PathLike
Split = Literal["test", "train", "all"]
INFO_FILE = "tabular_predict.yaml"


class PixelModel(Protocol):
    """Anything that turns per-pixel feature rows into kelp probabilities."""

    features: FeatureConfig
    threshold: float

    @property
    def builder(self) -> InputBuilder: ...

    def predict_pixels(self, x: np.ndarray, batch_pixels: int = ...) -> np.ndarray: ...


def predict_tiles(model: PixelModel, raw: Any, *, batch_pixels: int = 2_000_000) -> Any:
    """Kelp probability of every pixel of a batch of raw tiles.

    Args:
        model: a :class:`~kelpseg.tabular.TabularModel` (or any :class:`PixelModel`).
        raw: (N, 7, H, W) raw tiles, numpy array or torch tensor (any device).
        batch_pixels: pixels per model call (bounds memory).

    Returns:
        (N, H, W) float32 probabilities: a numpy array for numpy input, a tensor on ``raw``'s
        device for tensor input.
    """
    tensor = as_raw_tensor(raw)
    n, _, h, w = tensor.shape
    with torch.no_grad():
        channels = model.builder.raw_channels(tensor.to("cpu"))
    prob = model.predict_pixels(channel_rows(channels), batch_pixels).reshape(n, h, w)
    if isinstance(raw, torch.Tensor):
        return torch.from_numpy(prob).to(raw.device)
    return prob


def read_batches(tiles: pd.DataFrame, batch_tiles: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """Yield (tile ids, (N, 7, H, W) raw stack) of up to ``batch_tiles`` same-sized tiles."""
    ids: list[str] = []
    group: list[Tile] = []
    for tile_id, image_path in zip(tiles["tile_id"], tiles["image_path"], strict=True):
        tile = read_tile(str(image_path), expected_size=None, allow_all_missing=True)
        if group and (len(group) >= batch_tiles or tile.shape != group[0].shape):
            yield ids, np.stack([t.data for t in group])
            ids, group = [], []
        ids.append(str(tile_id))
        group.append(tile)
    if group:
        yield ids, np.stack([t.data for t in group])


def select_tiles(
    source: TileSource, split: Split = "test", fold: int | None = None
) -> pd.DataFrame:
    """Catalog rows to predict: a split (``"all"`` for both) and optionally one fold.

    Args:
        source: a catalog, a catalog DataFrame or parquet, or a dataset folder.
        split: which split's tiles.
        fold: only tiles of this fold (needs a ``fold`` column).

    Raises:
        KelpsegError: no tiles selected, or ``fold`` without a fold column.
    """
    if isinstance(source, Catalog):
        frame = source.tiles
    elif isinstance(source, pd.DataFrame):
        frame = source
    else:
        path = Path(source)
        frame = build_catalog(path).tiles if path.is_dir() else load_catalog(path)
    if split != "all":
        frame = frame[frame["split"] == split]
    if fold is not None:
        if "fold" not in frame.columns:
            raise KelpsegError("the catalog has no 'fold' column to select a fold from")
        frame = frame[pd.to_numeric(frame["fold"], errors="coerce") == fold]
    if frame.empty:
        raise KelpsegError(f"no tiles selected (split={split}, fold={fold})")
    return frame.reset_index(drop=True)


def predict_dataset(
    model_dir: PathLike,
    tiles: TileSource,
    out_dir: PathLike,
    *,
    threshold: float | None = None,
    soft: bool = True,
    split: Split = "test",
    fold: int | None = None,
    overwrite: bool = False,
    batch_tiles: int = 8,
    show_progress: bool = True,
) -> int:
    """Predict whole tiles into a prediction folder (masks and, with ``soft``, probabilities).

    Tiles whose outputs exist are skipped unless ``overwrite``, so an interrupted run resumes.

    Args:
        model_dir: a folder written by :func:`kelpseg.tabular.train_tabular`.
        tiles: catalog, catalog parquet or dataset folder (see :func:`select_tiles`).
        out_dir: the prediction folder.
        threshold: decision threshold of the masks (default: the model's saved threshold).
        soft: also write ``<tile_id>_prob.tif`` probabilities.
        split: which split's tiles; fold: only this fold's tiles.
        overwrite: rewrite existing outputs.
        batch_tiles: tiles predicted per batch.
        show_progress: draw a progress bar.

    Returns:
        The number of tiles written.
    """
    model = load_model(model_dir)
    cut = model.threshold if threshold is None else float(threshold)
    if not 0.0 <= cut <= 1.0:
        raise KelpsegError(f"threshold must be within [0, 1], got {cut}")
    frame = select_tiles(tiles, split, fold)
    out = Path(out_dir)
    if not overwrite:
        frame = frame[[not _done(out, str(t), soft) for t in frame["tile_id"]]]
    written = 0
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("predicting tiles", total=len(frame))
        for ids, raw in read_batches(frame, batch_tiles):
            prob = predict_tiles(model, raw)
            source = dict(zip(ids, prob, strict=True))
            written += write_predictions(
                source, out, threshold=cut, soft=soft, overwrite=True, show_progress=False
            )
            bar.advance(task, len(ids))
    info = {"model_dir": str(Path(model_dir).resolve()), "model": model.name, "threshold": cut}
    with atomic_path(out / INFO_FILE) as tmp:
        tmp.write_text(yaml.safe_dump({**info, "soft": soft, "split": split, "fold": fold}))
    return written


def _done(out: Path, tile_id: str, soft: bool) -> bool:
    mask = (out / f"{tile_id}{MASK_SUFFIX}").is_file()
    return mask and (not soft or (out / f"{tile_id}{PROB_SUFFIX}").is_file())
