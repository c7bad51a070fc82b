"""Crafted tiles and the ONNX Runtime vs torch check that every export ends with.

The tiles hold what trips an input pipeline: SLC-off stripes of missing pixels, a cloud (QA set,
bright), a land strip (DEM > 0), no-DEM sea (-32768) and bright near-shore canopy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import MISSING
from kelpseg.portable.manifest import Verification


def crafted_tiles(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(n, 7, height, width) int16 tiles with what real tiles hold: water, a land strip, a
    cloud, SLC-off stripes of missing pixels, no-DEM sea, and bright near-shore patches."""
    rng = np.random.default_rng(seed)
    tiles = np.empty((n, 7, height, width), dtype=np.int16)
    rows, cols = np.mgrid[0:height, 0:width]
    for i in range(n):
        t = tiles[i]
        for band, base in enumerate((7600, 8000, 8100, 8300, 8500)):
            t[band] = base + rng.integers(-60, 60, (height, width))
        shore = max(1, width // 5 + int(rng.integers(-2, 3)))
        land = cols < shore
        t[:5, land] = np.array([12000, 16000, 9500, 9300, 9000], dtype=np.int16)[:, None]
        kelp = (cols >= shore) & (cols < shore + 3) & (rows % 7 < 4)
        t[1][kelp] += 3000  # NIR up over a canopy
        t[5] = 0
        top, left = int(rng.integers(0, height // 2 + 1)), int(rng.integers(0, width // 2 + 1))
        t[5, top : top + height // 4, left : left + width // 4] = 1
        t[:5, top : top + height // 4, left : left + width // 4] = 20000
        t[6] = np.where(land, rng.integers(1, 200, (height, width)), 0)
        t[6, :, -max(1, width // 10) :] = MISSING
        stripes = (rows + cols + i * 5) % 23 < 2
        t[:5, stripes] = MISSING
    return tiles


def verify_export(
    net: torch.nn.Module,
    path: Path,
    sizes: Sequence[tuple[int, int]],
    threshold: float,
    tiles_per_size: int = 3,
) -> Verification:
    """Run ONNX Runtime and torch on the same crafted tiles; measure their difference.

    Returns:
        The largest absolute probability difference and the share of pixels whose mask (at
        ``threshold``) differs, over every tile of every size.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst, mismatched, pixels, count = 0.0, 0, 0, 0
    for k, (height, width) in enumerate(sizes):
        raw = crafted_tiles(tiles_per_size, height, width, seed=100 + k)
        with torch.inference_mode():
            expected = net(torch.from_numpy(raw)).float().numpy()
        got = session.run(None, {"raw": raw})[0]
        if got.shape != expected.shape:
            raise KelpsegError(f"the ONNX graph returns {got.shape}, torch {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
        mismatched += int(((got >= threshold) != (expected >= threshold)).sum())
        pixels += expected.size
        count += tiles_per_size
    return Verification(
        tiles=count,
        sizes=[list(s) for s in sizes],
        max_abs_diff=worst,
        mask_mismatch_share=mismatched / max(1, pixels),
        threshold=threshold,
        provider="CPUExecutionProvider",
    )
