"""Crafted tiles for the data-quality tests: a coastline, a DEM moved by a known shift."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from kelpseg.io.tiles import MISSING
from kelpseg.quality.alignment import REFLECTANCE_OFFSET, REFLECTANCE_SCALE

SIZE = 128
LAND_SWIR1 = 0.2  # surface reflectance of the crafted land
WATER_SWIR1 = 0.01


def coast_field(size: int = SIZE, seed: int = 0) -> np.ndarray:
    """A smooth field on a canvas 16 px wider each side; land where it is positive."""
    rng = np.random.default_rng(seed)
    n = size + 32
    noise = ndimage.gaussian_filter(rng.standard_normal((n, n)), 6)
    yy, xx = np.mgrid[0:n, 0:n] / n - 0.5
    return noise / noise.std() + 3.0 * (0.8 * yy + 0.6 * xx)


def dn(reflectance: np.ndarray | float) -> np.ndarray:
    """Reflectance as the tiles' scaled integers."""
    return np.rint((np.asarray(reflectance) - REFLECTANCE_OFFSET) / REFLECTANCE_SCALE).astype(
        np.int16
    )


def crafted_tile(
    shift: tuple[int, int] = (0, 0), *, seed: int = 0, land: np.ndarray | None = None
) -> np.ndarray:
    """A (7, SIZE, SIZE) tile whose DEM land is the image's land moved by ``shift`` (np.roll).

    Args:
        shift: (rows, cols) the DEM's content is moved by.
        seed: seed of the coastline.
        land: a (SIZE + 32)-px canvas of land to use instead of the random coastline.
    """
    canvas = coast_field(SIZE, seed) > 0 if land is None else land
    inner = canvas[16 : 16 + SIZE, 16 : 16 + SIZE]
    dem_land = canvas[16 - shift[0] : 16 - shift[0] + SIZE, 16 - shift[1] : 16 - shift[1] + SIZE]
    rng = np.random.default_rng(seed + 1)
    data = np.empty((7, SIZE, SIZE), dtype=np.int16)
    swir = np.where(inner, LAND_SWIR1, WATER_SWIR1) + rng.normal(0, 0.005, inner.shape)
    data[0] = dn(swir)
    for band in range(1, 5):
        data[band] = dn(np.where(inner, 0.1, 0.03) + rng.normal(0, 0.003, inner.shape))
    data[5] = 0
    data[6] = np.where(dem_land, 25, 0)
    return data


def add_clouds_and_gaps(data: np.ndarray) -> np.ndarray:
    """A cloud over a third of the tile (QA 1, bright) and missing diagonal stripes."""
    out = data.copy()
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    cloud = (yy - 30) ** 2 + (xx - 90) ** 2 < 40**2
    out[:5, cloud] = dn(0.45)
    out[5, cloud] = 1
    stripes = (yy + 3 * xx) % 40 < 4
    out[:5, stripes] = MISSING
    out[5, stripes] = 1
    return out
