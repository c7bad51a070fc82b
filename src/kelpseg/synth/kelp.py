"""Kelp beds per date and the citizen-science noise of the training labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def hard_canopy(
    rng: np.random.Generator,
    terrain: Terrain,
    density: np.ndarray,
    fringe_share: float,
    sparse_share: float,
) -> tuple[np.ndarray, str]:
    """Make one date's canopy harder to see (hard mode): thin fringing beds, sparse canopy.

    A fringing bed is a band 1-3 px wide along the shore, broken by gaps, in place of the
    date's beds. Sparse canopy keeps 30-60% of the bed's pixels, at a third to half the density.

    Args:
        rng: the tile's hard-mode generator (a stream of its own, so that the default
            output does not change).
        terrain: the AOI's terrain.
        density: the date's canopy density from :func:`kelp_density`.
        fringe_share: probability that the beds become a thin fringe.
        sparse_share: probability that the canopy is sparse.

    Returns:
        The new density and what was done (``"fringe"``, ``"sparse"``, both joined by ``+``,
        or ``"normal"``).
    """
    kinds = []
    beds = density > 0
    if beds.any() and rng.random() < fringe_share:
        width = rng.uniform(1.0, 3.0)
        broken = smooth_noise(rng, density.shape, 8) > rng.uniform(-0.8, 0.2)
        fringe = (terrain.sea_dist >= 1) & (terrain.sea_dist <= width + 0.5)
        fringe &= (terrain.habitat > 0.05) & broken
        fringe = _drop_small(fringe, MIN_BED_PIXELS)
        if fringe.any():
            level = rng.uniform(0.15, 0.5)
            density = np.where(fringe, level, 0).astype(np.float32)
            beds = fringe
            kinds.append("fringe")
    if beds.any() and rng.random() < sparse_share:
        fill = rng.uniform(0.3, 0.6)
        keep = rng.random(density.shape) < fill
        density = np.where(keep, density * rng.uniform(0.33, 0.5), 0).astype(np.float32)
        kinds.append("sparse")
    return density, "+".join(kinds) or "normal"


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
    return _ellipse(size, centre, a, b, rng.uniform(0, np.pi)) & water


def _ellipse(size: int, centre: tuple[Any, ...], a: float, b: float, theta: float) -> np.ndarray:
    """A filled ellipse with half-axes ``a`` and ``b``, turned by ``theta``, on a square canvas."""
    yy, xx = np.ogrid[0:size, 0:size]
    dy, dx = yy - centre[0], xx - centre[1]
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / a
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / b
    return np.asarray(u**2 + v**2 <= 1)


def wrong_bed(rng: np.random.Generator, truth: np.ndarray, terrain: Terrain) -> np.ndarray:
    """A large compact bed (about 800-3,000 px on a 350 px tile) on water away from real kelp.

    Empty when the tile has no room for it.
    """
    size = terrain.size
    s = size / 350
    room = (terrain.land < 0.5) & ~ndimage.binary_dilation(truth, iterations=max(int(8 * s), 2))
    near = room & (terrain.sea_dist < 60 * s)
    candidates = np.flatnonzero(near if near.any() else room)
    if candidates.size == 0:
        return np.zeros_like(truth)
    centre = np.unravel_index(int(rng.choice(candidates)), (size, size))
    a, b = rng.uniform(22, 40) * s, rng.uniform(12, 24) * s
    return _ellipse(size, centre, a, b, rng.uniform(0, np.pi)) & room


def outline_error(
    rng: np.random.Generator, label: np.ndarray, water: np.ndarray
) -> tuple[np.ndarray, str]:
    """The label drawn one pixel loose (grown, on water) or tight (shrunk), at random.

    Shrinking spares beds that would vanish: a volunteer who sees a thin bed draws it.
    """
    cross = ndimage.generate_binary_structure(2, 1)
    if rng.random() < 0.5:
        return label | (ndimage.binary_dilation(label, cross) & water), "loose"
    eroded = ndimage.binary_erosion(label, cross)
    beds, n = ndimage.label(label, structure=np.ones((3, 3)))
    survives = np.bincount(beds[eroded].ravel(), minlength=n + 1) > 0
    survives[0] = True
    return eroded | (label & ~survives[beds]), "tight"


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
    hard_rng: np.random.Generator | None = None,
) -> NoisyLabel:
    """Corrupt a true kelp mask the way citizen-science labels are corrupted.

    Args:
        rng: the tile's label-noise generator.
        truth: the true (visible) kelp mask of the tile.
        others: true masks of the AOI's other dates (for labels of the wrong date).
        terrain: the AOI's terrain (false blobs go on water near the shore).
        config: the noise rates.
        hard_rng: the generator of the hard-mode noise (wrong beds, outline errors); a stream
            of its own so that the default output does not change. ``None``: no such noise.

    Returns:
        The label, the corruptions applied joined by ``+`` (``"none"`` if clean), and
        whether the label is wrong as a whole (a wrong tile, a wrong bed, or Dice with the
        truth < 0.5; outlines a pixel off do not count).
    """
    if rng.random() < config.wrong_tile_rate:
        label = _wrong_tile(rng, truth, others, terrain)
        return NoisyLabel(label, "wrong_tile", True)
    if hard_rng is None:
        return _citizen_noise(rng, truth, terrain, config)
    noisy = _citizen_noise(rng, truth, terrain, config)
    label, kinds, wrong = noisy.label, [noisy.corruption], noisy.mislabelled
    # Wrong beds beside real ones: only on tiles with real kelp (the audit's hard case).
    if truth.sum() >= 20 and hard_rng.random() < config.wrong_bed_rate:
        bed = wrong_bed(hard_rng, truth, terrain)
        if bed.sum() >= 100:
            label, wrong = label | bed, True
            kinds.append("wrong_bed")
    if label.any() and hard_rng.random() < config.outline_error_rate:
        label, kind = outline_error(hard_rng, label, terrain.land < 0.5)
        kinds.append(kind)
    kinds = [k for k in kinds if k != "none"]
    return NoisyLabel(label, "+".join(kinds) or "none", wrong)


def _citizen_noise(
    rng: np.random.Generator, truth: np.ndarray, terrain: Terrain, config: SynthConfig
) -> NoisyLabel:
    """Missed beds and small false blobs, as in every mode."""
    label, kinds = truth.copy(), []
    if truth.any() and rng.random() < config.missed_blob_tile_rate:
        label = _missed_blobs(rng, label, config.missed_blob_rate)
        kinds.append("missed")
    if rng.random() < config.false_blob_rate:
        label |= _false_blob(rng, terrain)
        kinds.append("false_blob")
    severe = int(label.sum() + truth.sum()) >= 200 and dice(label, truth) < 0.5
    return NoisyLabel(label, "+".join(kinds) or "none", severe)
