"""Shared fixtures: crafted tiles and tiny generated datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kelpseg.io.tiles import MISSING, write_label, write_tile


def make_tile_array(size: int = 350, seed: int = 0, land_cols: int = 0) -> np.ndarray:
    """A plausible (7, size, size) int16 tile: water reflectance, QA clear, DEM 0 (land on the left)."""
    rng = np.random.default_rng(seed)
    data = np.empty((7, size, size), dtype=np.int16)
    for band, base in enumerate((7600, 8000, 8100, 8300, 8500)):
        data[band] = base + rng.integers(-50, 50, (size, size))
    data[5] = 0
    data[6] = 0
    if land_cols:
        data[6, :, :land_cols] = 20
    data[6, :, -5:] = MISSING
    return data


@pytest.fixture
def tile_factory(tmp_path: Path) -> Callable[..., Path]:
    """Write a crafted tile (and optional label) into ``tmp_path``; returns the image path."""

    def make(
        tile_id: str = "AA001",
        folder: str = "train_satellite",
        data: np.ndarray | None = None,
        label: np.ndarray | None = None,
        size: int = 350,
        root: Path | None = None,
    ) -> Path:
        base = root or tmp_path
        arr = make_tile_array(size) if data is None else data
        image = write_tile(base / folder / f"{tile_id}_satellite.tif", arr)
        if label is not None:
            label_folder = "train_kelp" if folder == "train_satellite" else folder
            write_label(base / label_folder / f"{tile_id}_kelp.tif", label)
        return image

    return make
