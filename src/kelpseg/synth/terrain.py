"""Per-AOI terrain: coastline, DEM, land cover and kelp habitat, fixed across dates.

Terrain is drawn on a canvas ``PAD`` pixels wider than the tile on every side, so that
distances to land see coast just outside the tile and a misaligned DEM is simply another
crop of the same canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from kelpseg.io.tiles import MISSING
from kelpseg.synth.noise import fractal_noise, smooth_noise, soft_step, threshold_at_share

PAD = 64
AOI_KINDS = ("coastal", "islands", "mostly_land", "open_water")

# Land surface reflectance, bands SWIR1, NIR, R, G, B (Falklands grass, heath and peat).
VEGETATION = np.array([0.18, 0.26, 0.055, 0.065, 0.045], dtype=np.float32)
ROCK = np.array([0.22, 0.19, 0.12, 0.1, 0.08], dtype=np.float32)
PEAT = np.array([0.13, 0.15, 0.065, 0.055, 0.04], dtype=np.float32)
SAND = np.array([0.38, 0.33, 0.28, 0.24, 0.19], dtype=np.float32)
POND = np.array([0.01, 0.02, 0.025, 0.035, 0.035], dtype=np.float32)


@dataclass(frozen=True)
class Terrain:
    """Everything about an AOI that does not change between its images.

    Attributes:
        kind: one of ``AOI_KINDS``.
        size: tile size in pixels.
        dem: int16 DEM canvas of (size + 2*PAD) pixels a side.
        land: (size, size) float32 land fraction of each tile pixel (mixed at the shore).
        sea_dist: (size, size) distance to the nearest land pixel, in pixels (0 on land).
        land_spectra: (5, size, size) float32 land surface reflectance (where land > 0).
        habitat: (size, size) float32 kelp suitability, 0 where kelp never grows.
        bed_field: (size, size) float32 persistent part of the kelp-bed pattern.
    """

    kind: str
    size: int
    dem: np.ndarray
    land: np.ndarray
    sea_dist: np.ndarray
    land_spectra: np.ndarray
    habitat: np.ndarray
    bed_field: np.ndarray

    def dem_tile(self, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
        """The DEM of the tile, content moved by ``shift`` = (rows, cols) like ``np.roll``."""
        r0, c0 = PAD - shift[0], PAD - shift[1]
        return self.dem[r0 : r0 + self.size, c0 : c0 + self.size].copy()


def _crop(canvas: np.ndarray, size: int) -> np.ndarray:
    return canvas[PAD : PAD + size, PAD : PAD + size]


def draw_kind(rng: np.random.Generator, open_water: float, mostly_land: float) -> str:
    """Pick an AOI kind: open water, mostly land, or coast (with or without a mainland)."""
    u = rng.random()
    if u < open_water:
        return "open_water"
    if u < open_water + mostly_land:
        return "mostly_land"
    return "islands" if rng.random() < 0.25 else "coastal"


def land_mask(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """Boolean land mask of the canvas: smooth noise plus a tilt towards a mainland."""
    n = size + 2 * PAD
    s = size / 350.0
    field = fractal_noise(rng, (n, n), [140 * s, 45 * s, 14 * s, 4], [1.0, 0.45, 0.2, 0.06])
    if kind != "islands":
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n - 0.5
        field += rng.uniform(1.5, 3.5) * (np.cos(angle) * yy + np.sin(angle) * xx)
    inner = _crop(field, size)
    if kind == "open_water":
        return field > float(inner.max()) + 0.05
    share = {
        "coastal": rng.uniform(0.12, 0.55),
        "islands": rng.uniform(0.02, 0.12),
        "mostly_land": rng.uniform(0.65, 0.92),
    }[kind]
    land = ndimage.binary_opening(field > threshold_at_share(inner, share), iterations=1)
    # Rocky islets and stacks off the shore: land to the sensor, too small for the DEM.
    near = ndimage.distance_transform_edt(~land) < 40 if land.any() else np.zeros_like(land)
    return land | (near & (smooth_noise(rng, (n, n), 2.5) > 3.2))


def dem_land(rng: np.random.Generator, land: np.ndarray) -> np.ndarray:
    """Land as the DEM sees it: no islets, low-lying shore pixels at 0 in places."""
    labels, n = ndimage.label(land)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    big = (sizes >= 30)[labels] & land
    shore = big & ~ndimage.binary_erosion(big)
    low = shore & (smooth_noise(rng, land.shape, 12) > rng.uniform(-0.5, 1.0))
    return big & ~low


def make_dem(rng: np.random.Generator, land: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DEM canvas in metres and distance to land: > 0 on land, 0 near the shore, else MISSING.

    The DEM's land is :func:`dem_land`, close to but not exactly the land the sensor sees.
    """
    n = land.shape[0]
    if not land.any():
        return np.full(land.shape, MISSING, dtype=np.int16), np.full(land.shape, 1e6, np.float32)
    sea_dist = ndimage.distance_transform_edt(~land).astype(np.float32)
    land = dem_land(rng, land)
    inland = ndimage.distance_transform_edt(land).astype(np.float32)
    # Rugged where the log-normal factor is high, flat where low; rising inland everywhere.
    hills = np.exp(rng.uniform(0.3, 0.8) * fractal_noise(rng, (n, n), [60, 20], [1.0, 0.35]))
    elev = 1.5 + rng.uniform(0.6, 4.0) * inland**0.9 * hills
    dem = np.clip(np.rint(elev), 1, 705).astype(np.int16)
    # ASTER coverage ends a few kilometres offshore, along a ragged line.
    reach = rng.uniform(45, 100) + 8 * smooth_noise(rng, (n, n), 40)
    sea = np.where(sea_dist <= reach, 0, MISSING).astype(np.int16)
    return np.where(land, dem, sea), sea_dist


def land_cover(rng: np.random.Generator, land: np.ndarray, dem: np.ndarray) -> np.ndarray:
    """(5, H, W) land reflectance: grass, heath and peat, rock on the heights, ponds, beaches."""
    shape = land.shape
    veg = np.clip(
        0.5 + 0.35 * fractal_noise(rng, shape, [40, 12, 4, 1.5], [1, 0.6, 0.35, 0.2]), 0, 1
    )
    spectra = veg * VEGETATION[:, None, None] + (1 - veg) * PEAT[:, None, None]
    ridge = fractal_noise(rng, shape, [25, 6, 2], [1, 0.5, 0.2]) + dem.astype(np.float32) / 300
    rock = soft_step(ridge, rng.uniform(1.6, 2.6), 0.8)
    spectra = (1 - rock) * spectra + rock * ROCK[:, None, None]
    inland = ndimage.distance_transform_edt(land)
    beach = land & (inland <= 1.5) & (smooth_noise(rng, shape, 25) > 1.3)
    ponds = land & (inland > 4) & (smooth_noise(rng, shape, 5) > 2.6)
    spectra = np.where(beach, SAND[:, None, None], spectra)
    spectra = np.where(ponds, POND[:, None, None], spectra)
    texture = 1 + 0.05 * smooth_noise(rng, shape, 4) + 0.06 * smooth_noise(rng, shape, 1.5)
    return (spectra * texture).astype(np.float32)


def kelp_habitat(
    rng: np.random.Generator, sea_dist: np.ndarray, water: np.ndarray, has_kelp: bool
) -> np.ndarray:
    """Suitability for kelp: rocky stretches of shore, a band of water a few km wide."""
    if not has_kelp or not water.any():
        return np.zeros(sea_dist.shape, dtype=np.float32)
    shape = sea_dist.shape
    rocky = soft_step(smooth_noise(rng, shape, 35), rng.uniform(-1.2, 0.0), 0.6)
    reach = rng.uniform(5, 20) * (1 + 0.4 * smooth_noise(rng, shape, 30))
    band = soft_step(reach - sea_dist, 0.0, 3.0) * (sea_dist >= 1)
    reefs = soft_step(smooth_noise(rng, shape, 6), 2.5, 0.4) * (sea_dist < 90)
    return (np.maximum(rocky * band, reefs) * water).astype(np.float32)


def make_terrain(
    rng: np.random.Generator,
    size: int,
    open_water_share: float,
    mostly_land_share: float,
    kelp_share: float,
) -> Terrain:
    """Draw the terrain of one AOI.

    Args:
        rng: the AOI's own random generator.
        size: tile size in pixels.
        open_water_share: probability that the AOI holds no land.
        mostly_land_share: probability that the AOI is mostly land.
        kelp_share: probability that the AOI's shore holds kelp at all.
    """
    kind = draw_kind(rng, open_water_share, mostly_land_share)
    land_canvas = land_mask(rng, kind, size)
    dem, sea_dist_canvas = make_dem(rng, land_canvas)
    land_bool = _crop(land_canvas, size)
    land = ndimage.gaussian_filter(land_bool.astype(np.float32), 0.6)
    land = np.where(land_bool, np.maximum(land, 0.5), np.minimum(land, 0.5))
    sea_dist = _crop(sea_dist_canvas, size).copy()
    spectra = land_cover(rng, land_bool, _crop(dem, size))
    has_kelp = rng.random() < kelp_share
    habitat = kelp_habitat(rng, sea_dist, ~land_bool, has_kelp)
    bed_field = fractal_noise(rng, (size, size), [6, 2], [1.0, 0.6])
    return Terrain(kind, size, dem, land, sea_dist, spectra, habitat, bed_field)
