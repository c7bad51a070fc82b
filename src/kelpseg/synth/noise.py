"""Smooth random fields: the raw material of coastlines, clouds, haze and kelp beds."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def _spline_taps(n_out: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights of the 4 coarse-grid samples behind each output pixel.

    Cubic B-spline weights; output pixel ``i`` sits at coarse coordinate ``1 + i / scale``.
    """
    pos = 1.0 + np.arange(n_out) / scale
    base = np.floor(pos).astype(np.int64) - 1
    idx = base[:, None] + np.arange(4)[None, :]
    x = np.abs(pos[:, None] - idx)
    w = np.where(x < 1, 2 / 3 - x**2 + x**3 / 2, np.where(x < 2, (2 - x) ** 3 / 6, 0.0))
    return idx, w.astype(np.float32)


def _upsample_axis0(grid: np.ndarray, n_out: int, scale: float) -> np.ndarray:
    idx, w = _spline_taps(n_out, scale)
    out = w[:, 0, None] * grid[idx[:, 0]]
    for k in range(1, 4):
        out += w[:, k, None] * grid[idx[:, k]]
    return out


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """A zero-mean, unit-variance random field whose features are about ``scale`` pixels wide.

    White noise on a coarse grid, upsampled with separable cubic B-splines: much faster than
    a wide Gaussian filter at full resolution, just as smooth, and free of BLAS, so the
    result is bit-identical on every machine and in every process.

    Args:
        rng: the random generator to draw from.
        shape: (height, width) of the field.
        scale: feature size in pixels (>= 1).
    """
    scale = max(float(scale), 1.0)
    coarse = (int(shape[0] / scale) + 4, int(shape[1] / scale) + 4)
    grid = rng.standard_normal(coarse, dtype=np.float32)
    rows = _upsample_axis0(grid, shape[0], scale)
    field = _upsample_axis0(np.ascontiguousarray(rows.T), shape[1], scale).T
    std = float(field.std())
    return np.ascontiguousarray((field - field.mean()) / (std if std > 0 else 1.0))


def fractal_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    scales: Sequence[float],
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Sum of :func:`smooth_noise` octaves, normalised to zero mean and unit variance.

    Args:
        rng: the random generator to draw from.
        shape: (height, width) of the field.
        scales: feature sizes of the octaves, in pixels.
        weights: amplitude of each octave (default: proportional to its scale).
    """
    weights = list(scales) if weights is None else list(weights)
    field = np.zeros(shape, dtype=np.float32)
    for scale, weight in zip(scales, weights, strict=True):
        field += np.float32(weight) * smooth_noise(rng, shape, scale)
    std = float(field.std())
    return (field - field.mean()) / (std if std > 0 else 1.0)


def threshold_at_share(field: np.ndarray, share: float) -> float:
    """The value above which ``share`` of the field's pixels lie."""
    share = float(np.clip(share, 0.0, 1.0))
    if share <= 0.0:
        return float(field.max()) + 1.0
    if share >= 1.0:
        return float(field.min()) - 1.0
    return float(np.quantile(field, 1.0 - share))


def soft_step(field: np.ndarray, edge: float, width: float) -> np.ndarray:
    """0 below ``edge``, 1 above ``edge + width``, linear in between (float32)."""
    return np.clip((field - edge) / max(width, 1e-6), 0.0, 1.0).astype(np.float32)
