"""Sliding windows of the model's tile size over a scene, and weights that blend them seamlessly.

Windows are spread evenly along each axis so that neighbours overlap by at least ``overlap``
pixels and the first and last touch the scene's edges. Between two neighbours, the weight hands
over from one to the other across a ramp of ``ramp`` pixels centred in their overlap: the left
window's weight falls as the right one's rises, and the two always sum to 1. Weights are outer
products of per-axis profiles, so on the whole scene they form a partition of unity: a constant
prediction stays constant, and no seam can come from the weighting itself. Pixels nearest a
window's inner edges (where CNN predictions are worst) get little or no weight.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import MISSING


def _cosine(t: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * t)  # the rising half of a Hann window


def _linear(t: np.ndarray) -> np.ndarray:
    return t


def _step(t: np.ndarray) -> np.ndarray:
    return (t >= 0.5).astype(np.float64)


#: Blend name -> rising ramp f(t) on t in [0, 1], with f(0) = 0, f(1) = 1.
BLENDS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "cosine": _cosine,
    "linear": _linear,
    "none": _step,
}


def window_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``tile`` pixels covering ``size`` with >= ``overlap`` overlap.

    The windows are spread evenly: the first starts at 0, the last ends at ``size``. A scene
    smaller than a tile gets one window (read padded).
    """
    if tile < 1 or not 0 <= overlap < tile:
        raise KelpsegError(f"overlap must be in [0, tile size {tile}), got {overlap}")
    if size <= tile:
        return [0]
    n = math.ceil((size - tile) / (tile - overlap)) + 1
    return [round(i * (size - tile) / (n - 1)) for i in range(n)]


def _profiles(starts: list[int], size: int, tile: int, ramp: int, blend: str) -> list[np.ndarray]:
    """Per-window 1-D weights (length ``min(tile, size)``) along one axis."""
    extent = min(tile, size)
    rise = BLENDS[blend]
    profiles = [np.ones(extent) for _ in starts]
    for k in range(len(starts) - 1):
        left, right = starts[k], starts[k + 1]
        centre = (right + left + tile) / 2  # middle of the overlap [right, left + tile)
        pixels = np.arange(right, left + tile) + 0.5
        if ramp > 0:
            up = rise(np.clip((pixels - (centre - ramp / 2)) / ramp, 0.0, 1.0))
        else:
            up = (pixels >= centre).astype(np.float64)
        profiles[k][right - left :] *= 1.0 - up
        profiles[k + 1][: left + tile - right] *= up
    return profiles


def _ramp(starts: list[int], overlap: int) -> int:
    return int(min([overlap, *np.diff(starts).tolist()]))


class WindowGrid:
    """All windows of a scene and their blend weights.

    Args:
        height: scene rows.
        width: scene columns.
        tile: window size (the model's tile size).
        overlap: the minimum overlap between neighbouring windows, in pixels.
        blend: a :data:`BLENDS` name.

    Attributes:
        rows, cols: window start offsets along each axis.
        ramps: pixels over which the weight hands over between row / column neighbours
            (the overlap, capped by the smallest step between windows on that axis, so an
            overlap above half a tile puts the weight on window centres).
    """

    def __init__(
        self, height: int, width: int, tile: int, overlap: int, blend: str = "cosine"
    ) -> None:
        if blend not in BLENDS:
            raise KelpsegError(f"unknown blend {blend!r}; choose one of {', '.join(BLENDS)}")
        self.height, self.width, self.tile, self.overlap = height, width, tile, overlap
        self.blend = blend
        self.rows = window_starts(height, tile, overlap)
        self.cols = window_starts(width, tile, overlap)
        # The ramps on a window's two sides must not overlap: cap them by the smallest step.
        self.ramps = (_ramp(self.rows, overlap), _ramp(self.cols, overlap))
        self._row_w = _profiles(self.rows, height, tile, self.ramps[0], blend)
        self._col_w = _profiles(self.cols, width, tile, self.ramps[1], blend)

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    @property
    def window_height(self) -> int:
        """Rows a window covers inside the scene (the tile size, or less in a tiny scene)."""
        return min(self.tile, self.height)

    @property
    def window_width(self) -> int:
        """Columns a window covers inside the scene."""
        return min(self.tile, self.width)

    def windows(self) -> Iterator[tuple[int, int, int, int]]:
        """``(i, j, row, col)`` of every window, row by row."""
        for i, row in enumerate(self.rows):
            for j, col in enumerate(self.cols):
                yield i, j, row, col

    def weights(self, i: int, j: int) -> np.ndarray:
        """The (h, w) float64 blend weights of window (i, j)."""
        return np.outer(self._row_w[i], self._col_w[j])


def skip_reason(raw: np.ndarray) -> str | None:
    """Why a (7, h, w) window needs no prediction: ``"nodata"``, ``"land"`` or ``None``.

    ``nodata``: every pixel misses every spectral band (outside the scene footprint).
    ``land``: the DEM is above sea level everywhere (no water for kelp to float on).
    """
    if bool(np.all(raw[:5] == MISSING)):
        return "nodata"
    if bool(np.all(raw[6] > 0)):
        return "land"
    return None
