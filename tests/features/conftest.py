"""Crafted tiles with known clouds, land, missing pixels and stripes, for the feature tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from kelpseg.features import BandStats
from kelpseg.io.tiles import MISSING, write_tile
from tests.conftest import make_tile_array

SIZE = 32


def crafted_tile(seed: int = 0, size: int = SIZE) -> np.ndarray:
    """A (7, size, size) int16 tile: land in the left 8 columns, a cloud block, a missing stripe.

    Rows 0-3 / cols 20-27 are cloud (QA 1); column 12 is missing in every spectral band;
    the last 5 columns have no DEM (-32768); land (DEM 20..) covers columns 0-7.
    """
    data = make_tile_array(size=size, seed=seed, land_cols=8)
    rng = np.random.default_rng(seed + 100)
    data[1, :, :8] = 15000 + rng.integers(-3000, 3000, (size, 8))  # vegetated land: bright NIR
    data[6, :, :8] = rng.integers(1, 300, (size, 8))
    data[5, :4, 20:28] = 1
    data[:5, :, 12] = MISSING
    return data


def fake_stats(channels: list[str], **options: Any) -> BandStats:
    """Statistics with recognisable values: min -100-i, max 100+i, mean i, std 1, q +-50."""
    return BandStats(
        channels=list(channels),
        min={c: -100.0 - i for i, c in enumerate(channels)},
        max={c: 100.0 + i for i, c in enumerate(channels)},
        mean={c: float(i) for i, c in enumerate(channels)},
        std=dict.fromkeys(channels, 1.0),
        count=dict.fromkeys(channels, 10),
        quantiles={0.01: dict.fromkeys(channels, -50.0), 0.99: dict.fromkeys(channels, 50.0)},
        options={
            "mask_using_qa": True,
            "mask_using_water_mask": True,
            "adjustment": "nan-adjusted",
            "dem_clip_zero": True,
            "index_constants": {},
            **options,
        },
    )


@pytest.fixture
def raw_batch() -> torch.Tensor:
    """Three crafted tiles as one (3, 7, 32, 32) int16 batch."""
    return torch.from_numpy(np.stack([crafted_tile(seed=s) for s in range(3)]))


@pytest.fixture(scope="session")
def stats_tiles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six crafted tiles written as GeoTIFFs (one fully clouded, one with a saturated block)."""
    root = tmp_path_factory.mktemp("feature_tiles")
    paths = []
    for i in range(6):
        data = crafted_tile(seed=10 + i)
        if i == 2:
            data[5] = 1
        if i == 4:
            data[:5, 20:, 20:] = 32767
        paths.append(write_tile(root / f"T{i:03d}_satellite.tif", data))
    return paths
