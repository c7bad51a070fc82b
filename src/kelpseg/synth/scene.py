"""One image of an AOI: surface reflectance, atmosphere, clouds, sensor faults, integer bands.

Reflectance is computed as floats (bands SWIR1, NIR, R, G, B) and stored as scaled integers:
by default Landsat Collection 2 Level-2's ``DN = (reflectance + 0.2) / 2.75e-5``, clipped to
int16; ``SynthConfig.encoding`` picks another of :data:`kelpseg.io.encoding.ENCODINGS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kelpseg.io.encoding import ENCODINGS, TILE_ENCODING
from kelpseg.io.tiles import MISSING
from kelpseg.synth.noise import fractal_noise, smooth_noise, soft_step, threshold_at_share
from kelpseg.synth.plan import TilePlan
from kelpseg.synth.terrain import Terrain

SCALE = TILE_ENCODING.scale
OFFSET = TILE_ENCODING.offset

# Surface reflectance, bands SWIR1, NIR, R, G, B.
WATER = np.array([0.006, 0.011, 0.026, 0.042, 0.052], dtype=np.float32)
TURBIDITY = np.array([0.002, 0.006, 0.016, 0.02, 0.012], dtype=np.float32)
KELP_CANOPY = np.array([0.07, 0.24, 0.012, 0.04, 0.02], dtype=np.float32)
BLOOM = np.array([0.05, 0.6, 0.15, 0.5, 0.1], dtype=np.float32)
CLOUD = np.array([0.38, 0.56, 0.55, 0.56, 0.58], dtype=np.float32)
HAZE = np.array([0.002, 0.006, 0.012, 0.018, 0.026], dtype=np.float32)
SHADOW_DEPTH = np.array([0.65, 0.65, 0.55, 0.5, 0.42], dtype=np.float32)
SENSOR_NOISE = {"L5": 0.004, "L7": 0.003, "L8": 0.0015, "L9": 0.0015}
# TM and ETM+ digitise to 8 bits: reflectance comes in visible steps.
QUANTUM = {"L5": 0.004, "L7": 0.003, "L8": 0.0, "L9": 0.0}
CLOUD_QA_ALPHA = 0.35


def reflectance_to_dn(rho: np.ndarray, encoding: str = "c2l2") -> np.ndarray:
    """Reflectance to int16 in ``encoding`` (default Collection 2); saturates at 32767."""
    return ENCODINGS[encoding].to_dn(rho)


def dn_to_reflectance(dn: np.ndarray, encoding: str = "c2l2") -> np.ndarray:
    """Inverse of :func:`reflectance_to_dn` (``MISSING`` becomes NaN)."""
    return ENCODINGS[encoding].to_reflectance(dn)


@dataclass(frozen=True)
class Scene:
    """One rendered image: the 7-band tile and what the truth needs from it."""

    data: np.ndarray
    cloud: np.ndarray
    missing: np.ndarray


def _col(v: np.ndarray) -> np.ndarray:
    return v[:, None, None]


def water_surface(rng: np.random.Generator, terrain: Terrain, kelp: np.ndarray) -> np.ndarray:
    """(5, H, W) reflectance of the sea: turbidity, shallows near shore, glint, kelp canopy."""
    shape = kelp.shape
    base = WATER * rng.uniform(0.8, 1.25, 5).astype(np.float32)
    turbid = rng.uniform(0, 0.8) * np.maximum(smooth_noise(rng, shape, 60) + 0.6, 0)
    turbid += rng.uniform(0, 1.0) * np.exp(-terrain.sea_dist / 12)
    water = _col(base) + _col(TURBIDITY) * turbid
    strong = rng.random() < 0.25
    amp = rng.uniform(0.005, 0.02) if strong else rng.uniform(0.0, 0.004)
    glint = np.maximum(smooth_noise(rng, shape, 70) + 0.8, 0)
    glint *= np.maximum(1 + 0.4 * smooth_noise(rng, shape, 1.0), 0)
    water += amp * glint[None] * _col(np.array([0.9, 1, 1, 1, 1], np.float32))
    if rng.random() < 0.2:
        # Drifting algae and blooms offshore: greenish, a little NIR, not kelp.
        bloom = soft_step(smooth_noise(rng, shape, 25), 0.8, 1.2) * (terrain.sea_dist > 25)
        water += rng.uniform(0.01, 0.04) * bloom[None] * _col(BLOOM)
    return (1 - kelp) * water + kelp * _col(KELP_CANOPY)


def surface(
    rng: np.random.Generator, terrain: Terrain, kelp: np.ndarray, green_up: float
) -> np.ndarray:
    """(5, H, W) surface reflectance: land mixed with sea by the shore's land fraction."""
    land = terrain.land_spectra.copy()
    land[1] *= green_up
    land[2] /= green_up**0.5
    water = water_surface(rng, terrain, kelp)
    return terrain.land * land + (1 - terrain.land) * water


def cloud_alpha(rng: np.random.Generator, shape: tuple[int, int], cover: float) -> np.ndarray:
    """Cloud opacity (0..1) covering about ``cover`` of the tile, with thin fringes."""
    if cover <= 0:
        return np.zeros(shape, dtype=np.float32)
    s = shape[0] / 350
    field = fractal_noise(rng, shape, [70 * s, 22 * s, 6, 2], [1.0, 0.5, 0.2, 0.08])
    thr = threshold_at_share(field, cover)
    return soft_step(field, thr - 0.25, 0.9)


def draw_cover(rng: np.random.Generator, free: float, mostly: float, cover_max: float) -> float:
    """Cloud cover of one image: clear, partly cloudy or mostly cloudy."""
    u = rng.random()
    if u < free:
        return 0.0
    if u < free + mostly:
        return float(rng.uniform(0.7, 1.0))
    return float(rng.uniform(0.02, max(cover_max, 0.02)))


def _shifted(field: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``field`` moved by (dy, dx) pixels, zero where nothing moved in (no wrap-around)."""
    out = np.zeros_like(field)
    h, w = field.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = field[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def add_clouds(rng: np.random.Generator, rho: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blend bright clouds over the scene and darken their shadows."""
    if not alpha.any():
        return rho
    size = alpha.shape[0]
    dist = rng.uniform(8, 30) * size / 350
    angle = rng.uniform(0, 2 * np.pi)
    dy, dx = int(np.rint(dist * np.sin(angle))), int(np.rint(dist * np.cos(angle)))
    shadow = _shifted(alpha, dy, dx) * (1 - alpha)
    rho = rho * (1 - _col(SHADOW_DEPTH) * shadow)
    bright = rng.uniform(0.75, 1.25) * (1 + 0.08 * smooth_noise(rng, alpha.shape, 5))
    return (1 - alpha) * rho + alpha * _col(CLOUD) * bright


def atmosphere(rng: np.random.Generator, rho: np.ndarray) -> np.ndarray:
    """Residual haze, calibration gain and offset left after atmospheric correction."""
    shape = rho.shape[1:]
    haze = rng.uniform(0, 1) ** 2 * np.maximum(1 + 0.4 * smooth_noise(rng, shape, 120), 0)
    gain = rng.uniform(0.92, 1.08) * rng.uniform(0.97, 1.03, 5).astype(np.float32)
    offset = rng.normal(0, 0.003, 5).astype(np.float32)
    return _col(gain) * rho + _col(HAZE) * haze + _col(offset)


def sensor(rng: np.random.Generator, rho: np.ndarray, platform: str) -> np.ndarray:
    """Sensor noise and, for TM/ETM+, coarse quantisation."""
    rho = rho + np.float32(SENSOR_NOISE[platform]) * rng.standard_normal(rho.shape, np.float32)
    q = QUANTUM[platform]
    return np.round(rho / q) * q if q else rho


def slc_off_gaps(rng: np.random.Generator, size: int) -> np.ndarray:
    """Diagonal, slightly wedge-shaped stripes of the Landsat 7 scan-line-corrector failure."""
    angle = np.deg2rad(rng.uniform(8, 16))
    period = rng.uniform(28, 34) * size / 350
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    across = yy * np.cos(angle) - xx * np.sin(angle)
    along = (xx * np.cos(angle) + yy * np.sin(angle)) / size
    width = rng.uniform(1.5, 12) * size / 350 * (1 + rng.uniform(-0.4, 0.4) * (along - 0.5))
    return (across + rng.uniform(0, period)) % period < width


def corrupted_pixels(rng: np.random.Generator, size: int) -> np.ndarray:
    """(5, H, W) mask of dropped or saturated pixels: scattered, some in one band only."""
    bad = np.zeros((5, size, size), dtype=bool)
    n = int(rng.integers(3, 80))
    rows, cols = rng.integers(0, size, n), rng.integers(0, size, n)
    one_band = rng.random(n) < 0.3
    bands = rng.integers(0, 5, n)
    bad[:, rows[~one_band], cols[~one_band]] = True
    bad[bands[one_band], rows[one_band], cols[one_band]] = True
    if rng.random() < 0.3:
        row, start = int(rng.integers(size)), int(rng.integers(size))
        bad[:, row, start : start + int(rng.integers(20, 200))] = True
    return bad


def render_scene(
    rng: np.random.Generator,
    terrain: Terrain,
    kelp: np.ndarray,
    plan: TilePlan,
    cover: float,
    corrupted: bool,
    encoding: str = "c2l2",
) -> Scene:
    """Render one image of an AOI as a (7, H, W) int16 tile.

    Args:
        rng: the tile's own random generator.
        terrain: the AOI's terrain.
        kelp: canopy density (0..1) on this date.
        plan: the tile's platform, SLC state and DEM shift.
        cover: cloud cover share (0 for a clear image).
        corrupted: whether to drop a few scattered pixels.
        encoding: integer encoding of the reflectance (a key of ``ENCODINGS``).
    """
    size = terrain.size
    rho = surface(rng, terrain, kelp, rng.uniform(0.8, 1.15))
    alpha = cloud_alpha(rng, (size, size), cover)
    rho = sensor(rng, atmosphere(rng, add_clouds(rng, rho, alpha)), plan.platform)
    bands = reflectance_to_dn(rho, encoding)
    missing = np.zeros(bands.shape, dtype=bool)
    if plan.slc_off:
        missing |= slc_off_gaps(rng, size)[None]
    if corrupted:
        missing |= corrupted_pixels(rng, size)
    bands[missing] = MISSING
    cloud = alpha > CLOUD_QA_ALPHA
    any_missing: np.ndarray = np.any(missing, axis=0)
    qa = (cloud | any_missing).astype(np.int16)
    data = np.concatenate([bands, qa[None], terrain.dem_tile(plan.dem_shift)[None]])
    return Scene(data, cloud, any_missing)
