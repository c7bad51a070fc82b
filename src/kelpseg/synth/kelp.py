"""Kelp beds per date and the citizen-science noise of the training labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from kelpseg.synth.config import SynthConfig
from kelpseg.synth.noise import smooth_noise
from kelpseg.synth.terrain import Terrain

# Below this many pixels a bed is too small for volunteers (or a 30 m sensor) to see.
MIN_BED_PIXELS = 3


def kelp_density(
    rng: np.random.Generator, terrain: Terrain, absent_share: float, abundance: float
) -> np.ndarray:
    """Canopy density (0..1, 0 = no kelp) of the AOI's beds on one date.

    Beds keep their places between dates (the terrain's bed field) but their extent
    changes with season and storms, and on some dates the canopy is absent altogether.
    """
    size = terrain.size
    suitable = terrain.habitat > 0.05
    if not suitable.any() or rng.random() < absent_share:
        return np.zeros((size, size), dtype=np.float32)
    field = 0.7 * terrain.bed_field + 0.5 * smooth_noise(rng, (size, size), 3)
    field += 1.5 * (terrain.habitat - 1.0)
    extent = min(rng.uniform(0.1, 0.42) * abundance, 0.95)
    thr = float(np.quantile(field[suitable], 1.0 - extent))
    beds = (field > thr) & suitable
    beds = _drop_small(beds, MIN_BED_PIXELS)
    span = max(float(field[beds].max() - thr), 1e-3) if beds.any() else 1.0
    # Sparse canopy at the edges of a bed, denser (rarely full) in its core.
    density = 0.04 + 0.55 * np.clip((field - thr) / (0.8 * span), 0, 1)
    # Tide and current drag part of the canopy under water on some dates.
    density *= rng.uniform(0.35, 1.0)
    return np.where(beds, density, 0).astype(np.float32)


def _drop_small(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[labels]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice agreement of two boolean masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


@dataclass(frozen=True)
class NoisyLabel:
    """A training label as volunteers drew it, and how it departs from the truth."""

    label: np.ndarray
    corruption: str
    mislabelled: bool


def _missed_blobs(rng: np.random.Generator, truth: np.ndarray, rate: float) -> np.ndarray:
    """Drop whole beds (connected components), at least one."""
    labels, n = ndimage.label(truth, structure=np.ones((3, 3)))
    drop = rng.random(n + 1) < rate
    drop[0] = False
    if not drop[1:].any():
        drop[int(rng.integers(1, n + 1))] = True
    return truth & ~drop[labels]


def _false_blob(rng: np.random.Generator, terrain: Terrain, big: bool = False) -> np.ndarray:
    """An elliptic blob on water near the shore, where a volunteer might see kelp."""
    size = terrain.size
    water = terrain.land < 0.5
    near = water & (terrain.sea_dist < 60)
    candidates = np.flatnonzero(near if near.any() else water)
    out = np.zeros((size, size), dtype=bool)
    if candidates.size == 0:
        return out
    centre = np.unravel_index(int(rng.choice(candidates)), (size, size))
    a, b = (
        (rng.uniform(8, 25), rng.uniform(3, 8)) if big else (rng.uniform(3, 9), rng.uniform(2, 4))
    )
    theta = rng.uniform(0, np.pi)
    yy, xx = np.ogrid[0:size, 0:size]
    dy, dx = yy - centre[0], xx - centre[1]
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / a
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / b
    return (u**2 + v**2 <= 1) & water


def _wrong_tile(
    rng: np.random.Generator, truth: np.ndarray, others: list[np.ndarray], terrain: Terrain
) -> np.ndarray:
    """A label unrelated to the image: empty, another date's, or invented beds."""
    options = []
    if truth.sum() >= 50:
        options.append("empty")
    far = [o for o in others if o.sum() >= 50 and dice(o, truth) < 0.4]
    if far:
        options.append("other_date")
    pick = options[int(rng.integers(len(options)))] if options else "invented"
    if pick == "empty":
        return np.zeros_like(truth)
    if pick == "other_date":
        return far[int(rng.integers(len(far)))].copy()
    blobs = [_false_blob(rng, terrain, big=True) for _ in range(int(rng.integers(2, 5)))]
    return np.logical_or.reduce(blobs)


def noisy_label(
    rng: np.random.Generator,
    truth: np.ndarray,
    others: list[np.ndarray],
    terrain: Terrain,
    config: SynthConfig,
) -> NoisyLabel:
    """Corrupt a true kelp mask the way citizen-science labels are corrupted.

    Args:
        rng: the tile's label-noise generator.
        truth: the true (visible) kelp mask of the tile.
        others: true masks of the AOI's other dates (for labels of the wrong date).
        terrain: the AOI's terrain (false blobs go on water near the shore).
        config: the noise rates.

    Returns:
        The label, the corruptions applied joined by ``+`` (``"none"`` if clean), and
        whether the label is wrong as a whole (a wrong tile, or Dice with the truth < 0.5).
    """
    if rng.random() < config.wrong_tile_rate:
        label = _wrong_tile(rng, truth, others, terrain)
        return NoisyLabel(label, "wrong_tile", True)
    label, kinds = truth.copy(), []
    if truth.any() and rng.random() < config.missed_blob_tile_rate:
        label = _missed_blobs(rng, label, config.missed_blob_rate)
        kinds.append("missed")
    if rng.random() < config.false_blob_rate:
        label |= _false_blob(rng, terrain)
        kinds.append("false_blob")
    severe = int(label.sum() + truth.sum()) >= 200 and dice(label, truth) < 0.5
    return NoisyLabel(label, "+".join(kinds) or "none", severe)
