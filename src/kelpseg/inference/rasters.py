"""Prediction folders: naming, reading masks and probabilities, writing them back.

A prediction folder holds, per tile, ``<tile_id>_kelp.tif`` (the 0/1 mask, the submission
format) and optionally ``<tile_id>_prob.tif`` (float32 kelp probability, the "soft" output).
A folder of float ``<tile_id>_kelp.tif`` files is read as probabilities too, so a folder of
soft labels can be evaluated or ensembled without renaming.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import write_mask, write_probability

MASK_SUFFIX = "_kelp.tif"
PROB_SUFFIX = "_prob.tif"

PathLike = str | os.PathLike[str]
#: Anything that maps tile ids to (H, W) predictions: a :class:`PredictionDir`, a dict ...
PredictionSource = Mapping[str, np.ndarray]


def binarize(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Kelp mask ``prob >= threshold`` as bool, compared in float64.

    Comparing in float64 (not in the raster's float32) makes the mask agree exactly with the
    evaluation's threshold grid, so the Dice reported for a threshold is the Dice of the masks
    written with it.
    """
    return np.asarray(prob, dtype=np.float64) >= float(threshold)


def read_prediction(path: PathLike) -> np.ndarray:
    """Read one prediction raster as a (H, W) float32 array in [0, 1].

    Integer rasters are masks and must hold only 0 and 1; float rasters are probabilities.

    Raises:
        KelpsegError: unreadable, not one band, values outside [0, 1] or NaN.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                data = src.read()
    except RasterioError as exc:
        raise KelpsegError(f"not a readable GeoTIFF ({str(exc).splitlines()[0]})", path) from exc
    if data.shape[0] != 1:
        raise KelpsegError(f"expected 1 band in a prediction, found {data.shape[0]}", path)
    band = data[0]
    if np.issubdtype(band.dtype, np.integer):
        if ((band != 0) & (band != 1)).any():
            raise KelpsegError("mask values outside {0, 1}", path)
        return band.astype(np.float32)
    band = band.astype(np.float32)
    if not np.isfinite(band).all() or band.min() < 0.0 or band.max() > 1.0:
        raise KelpsegError("probabilities must be finite and within [0, 1]", path)
    return band


class PredictionDir(Mapping[str, np.ndarray]):
    """A prediction folder as a read-only mapping ``tile_id -> (H, W) float32``, read lazily.

    Args:
        folder: the folder of ``<tile_id>_kelp.tif`` / ``<tile_id>_prob.tif`` files.
        kind: ``"auto"`` prefers probabilities and falls back to masks, ``"prob"`` reads only
            ``_prob.tif`` files, ``"mask"`` only ``_kelp.tif`` files.
    """

    def __init__(self, folder: PathLike, kind: str = "auto") -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise KelpsegError("prediction folder does not exist", self.folder)
        if kind not in ("auto", "prob", "mask"):
            raise KelpsegError(f"unknown prediction kind {kind!r} (auto, prob, mask)")
        self.kind = kind
        self._paths = self._scan()

    def _scan(self) -> dict[str, Path]:
        masks = {p.name[: -len(MASK_SUFFIX)]: p for p in self.folder.glob(f"*{MASK_SUFFIX}")}
        probs = {p.name[: -len(PROB_SUFFIX)]: p for p in self.folder.glob(f"*{PROB_SUFFIX}")}
        if self.kind == "mask":
            return dict(sorted(masks.items()))
        if self.kind == "prob":
            return dict(sorted(probs.items()))
        return dict(sorted({**masks, **probs}.items()))

    def path(self, tile_id: str) -> Path:
        """The file read for ``tile_id``."""
        try:
            return self._paths[tile_id]
        except KeyError:
            raise KelpsegError(f"no prediction for tile {tile_id}", self.folder) from None

    def __getitem__(self, tile_id: str) -> np.ndarray:
        if tile_id not in self._paths:
            raise KeyError(tile_id)
        return read_prediction(self._paths[tile_id])

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __repr__(self) -> str:
        return f"PredictionDir({str(self.folder)!r}, kind={self.kind!r}, tiles={len(self)})"


def as_source(source: PredictionSource | PathLike, kind: str = "auto") -> PredictionSource:
    """A folder path becomes a :class:`PredictionDir`; a mapping is returned as it is."""
    if isinstance(source, Mapping):
        return source
    return PredictionDir(source, kind)


def write_predictions(
    source: PredictionSource,
    out_dir: PathLike,
    *,
    threshold: float = 0.5,
    soft: bool = False,
    overwrite: bool = False,
    show_progress: bool = True,
) -> int:
    """Write masks (``prob >= threshold``) and optionally probabilities of every tile.

    Tiles whose outputs already exist are skipped unless ``overwrite``; each file is written
    atomically, so an interrupted run can simply be started again.

    Returns:
        The number of tiles written.
    """
    out = Path(out_dir)
    written = 0
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("writing predictions", total=len(source))
        for tile_id in source:
            mask_path = out / f"{tile_id}{MASK_SUFFIX}"
            prob_path = out / f"{tile_id}{PROB_SUFFIX}"
            done = mask_path.exists() and (prob_path.exists() or not soft)
            if overwrite or not done:
                prob = np.asarray(source[tile_id], dtype=np.float32)
                if soft:
                    write_probability(prob_path, prob)
                write_mask(mask_path, binarize(prob, threshold).astype(np.uint8))
                written += 1
            bar.advance(task)
    return written
