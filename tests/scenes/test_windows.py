"""Window placement and blend weights: full coverage and a partition of unity (no seams)."""

from __future__ import annotations

import numpy as np
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import MISSING
from kelpseg.scenes.windows import BLENDS, WindowGrid, skip_reason, window_starts

SHAPES = [
    (700, 1000, 350, 64),
    (351, 360, 350, 64),
    (200, 90, 350, 30),
    (400, 400, 100, 0),
    (600, 597, 100, 90),
    (1234, 567, 128, 64),
    (96, 96, 48, 47),
]


def _coverage(grid: WindowGrid) -> tuple[np.ndarray, np.ndarray]:
    total = np.zeros((grid.height, grid.width))
    count = np.zeros((grid.height, grid.width), int)
    for i, j, row, col in grid.windows():
        cells = np.s_[row : row + grid.window_height, col : col + grid.window_width]
        total[cells] += grid.weights(i, j)
        count[cells] += 1
    return total, count


@pytest.mark.parametrize(("height", "width", "tile", "overlap"), SHAPES)
def test_windows_cover_the_scene_with_at_least_the_overlap(
    height: int, width: int, tile: int, overlap: int
) -> None:
    for size in (height, width):
        starts = window_starts(size, tile, overlap)
        assert starts[0] == 0 and starts[-1] + min(tile, size) == size
        steps = np.diff(starts)
        assert (steps > 0).all() and (tile - steps >= overlap).all()
        # Evenly spread: no near-duplicate last window.
        assert len(steps) == 0 or steps.max() - steps.min() <= 1


@pytest.mark.parametrize("blend", sorted(BLENDS))
@pytest.mark.parametrize(("height", "width", "tile", "overlap"), SHAPES)
def test_blend_weights_are_a_partition_of_unity(
    height: int, width: int, tile: int, overlap: int, blend: str
) -> None:
    grid = WindowGrid(height, width, tile, overlap, blend)
    total, count = _coverage(grid)
    assert count.min() >= 1
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-12)
    for i, j, _, _ in grid.windows():
        w = grid.weights(i, j)
        assert w.min() >= 0 and w.max() <= 1


def test_weights_fade_towards_inner_window_edges_only() -> None:
    grid = WindowGrid(300, 300, 100, 40, "cosine")
    inner = grid.weights(1, 1)
    assert inner[50, 50] == 1.0  # the centre is the window's own
    assert inner[0, 50] < 0.05 and inner[50, -1] < 0.05  # edges shared with neighbours
    corner = grid.weights(0, 0)
    assert corner[0, 0] == 1.0  # the scene's edge is nobody else's: full weight
    profile = inner[50]
    assert (np.diff(profile[:50]) >= 0).all() and (np.diff(profile[50:]) <= 0).all()


def test_cosine_blend_is_smoother_than_a_hard_cut() -> None:
    soft = WindowGrid(200, 200, 100, 40, "cosine").weights(0, 0)[0]
    hard = WindowGrid(200, 200, 100, 40, "none").weights(0, 0)[0]
    assert np.abs(np.diff(soft)).max() < 0.1
    assert np.abs(np.diff(hard)).max() == 1.0
    assert set(np.unique(hard)) == {0.0, 1.0}


def test_bad_settings_are_errors() -> None:
    with pytest.raises(KelpsegError, match="overlap"):
        WindowGrid(100, 100, 50, 50)
    with pytest.raises(KelpsegError, match="unknown blend"):
        WindowGrid(100, 100, 50, 10, "gaussian")


def test_skip_reasons() -> None:
    raw = np.zeros((7, 4, 4), np.int16)
    assert skip_reason(raw) is None
    raw[6] = 5
    assert skip_reason(raw) == "land"
    raw[6, 0, 0] = 0
    assert skip_reason(raw) is None  # one sea pixel is enough to predict
    raw[6, 0, 0] = MISSING
    assert skip_reason(raw) is None  # no DEM there: could be sea
    raw[:5] = MISSING
    assert skip_reason(raw) == "nodata"
