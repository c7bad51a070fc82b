"""Where the labels (and, for the gallery and post-processing, the tiles) of a set come from.

Accepted sources: a catalog (object, DataFrame or parquet), a dataset folder (download layout
or flat), a folder of ``<tile_id>_kelp.tif`` labels (e.g. the demo's ``test_labels/``), or an
in-memory mapping ``tile_id -> label``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kelpseg.errors import KelpsegError
from kelpseg.io.catalog import Catalog, build_catalog, load_catalog
from kelpseg.io.tiles import read_label, read_tile, tile_id_from_path

PathLike = str | os.PathLike[str]
LabelSource = Catalog | pd.DataFrame | Mapping[str, np.ndarray] | PathLike
ImageSource = Catalog | pd.DataFrame | Mapping[str, np.ndarray] | PathLike


@dataclass
class LabelSet:
    """Labels by tile id, and the raw tiles where known (paths are read on demand)."""

    labels: Mapping[str, Path | np.ndarray]
    images: Mapping[str, Path | np.ndarray] = field(default_factory=dict)

    @property
    def tile_ids(self) -> list[str]:
        """Sorted ids of the labelled tiles."""
        return sorted(self.labels)

    def label(self, tile_id: str) -> np.ndarray:
        """The (H, W) 0/1 label of ``tile_id``."""
        value = self.labels[tile_id]
        return read_label(value) if isinstance(value, Path) else np.asarray(value)

    def has_image(self, tile_id: str) -> bool:
        """Whether the raw tile of ``tile_id`` is known."""
        return tile_id in self.images

    def image(self, tile_id: str) -> np.ndarray:
        """The raw (7, H, W) int16 tile of ``tile_id``."""
        if tile_id not in self.images:
            raise KelpsegError(f"no satellite tile found for {tile_id} (pass --images)")
        value = self.images[tile_id]
        if isinstance(value, Path):
            return read_tile(value, expected_size=None, allow_all_missing=True).data
        return np.asarray(value)


def _from_frame(frame: pd.DataFrame) -> tuple[dict[str, Path], dict[str, Path]]:
    if "tile_id" not in frame.columns:
        raise KelpsegError("a tile table needs a 'tile_id' column")
    labels, images = {}, {}
    for row in frame.itertuples(index=False):
        tile_id = str(row.tile_id)
        mask = getattr(row, "mask_path", "")
        image = getattr(row, "image_path", "")
        if isinstance(mask, str) and mask:
            labels[tile_id] = Path(mask)
        if isinstance(image, str) and image:
            images[tile_id] = Path(image)
    return labels, images


def _scan(folder: Path, suffix: str, depth: int) -> dict[str, Path]:
    found = {tile_id_from_path(p): p for p in sorted(folder.glob(f"*{suffix}"))}
    if depth > 0:
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            found = {**_scan(sub, suffix, depth - 1), **found}
    return found


def _images_from(source: ImageSource) -> Mapping[str, Path | np.ndarray]:
    if isinstance(source, Mapping):
        return source
    if isinstance(source, Catalog | pd.DataFrame):
        return _from_frame(source.tiles if isinstance(source, Catalog) else source)[1]
    path = Path(source)
    if path.is_file():
        return _from_frame(load_catalog(path))[1]
    if not path.is_dir():
        raise KelpsegError("image folder does not exist", path)
    return _scan(path, "_satellite.tif", depth=1)


def resolve_labels(source: LabelSource, images: ImageSource | None = None) -> LabelSet:
    """Find the labels (and tiles) of a labelled set.

    Args:
        source: catalog, catalog parquet, dataset folder, label folder or mapping.
        images: where the satellite tiles are, when ``source`` does not say (default: beside
            the labels and in the sibling folders of a label folder, e.g. ``test_satellite/``).

    Raises:
        KelpsegError: the source does not exist or holds no labels.
    """
    extra = _images_from(images) if images is not None else {}
    if isinstance(source, Mapping):
        return LabelSet(dict(source), extra)
    if isinstance(source, Catalog | pd.DataFrame):
        frame = source.tiles if isinstance(source, Catalog) else source
        labels, found = _from_frame(frame)
    else:
        path = Path(source)
        if path.is_file():
            labels, found = _from_frame(load_catalog(path))
        elif not path.is_dir():
            raise KelpsegError("label source does not exist", path)
        elif any(path.glob("*_kelp.tif")):
            labels = _scan(path, "_kelp.tif", depth=0)
            found = {**_scan(path.parent, "_satellite.tif", 1), **_scan(path, "_satellite.tif", 0)}
        else:
            labels, found = _from_frame(build_catalog(path).tiles)
    if not labels:
        raise KelpsegError("no labels found", str(source))
    return LabelSet(labels, {**found, **extra})
