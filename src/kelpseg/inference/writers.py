"""Writing predicted tiles: masks (and probabilities) in a thread pool, each file atomically.

The mask is written last, so a tile whose mask exists is complete: an interrupted prediction
run is simply started again and skips it.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from kelpseg.inference.postprocess import PostprocessConfig, apply_postprocess
from kelpseg.inference.rasters import MASK_SUFFIX, PROB_SUFFIX, binarize
from kelpseg.io.tiles import write_mask, write_probability


def output_paths(out_dir: Path, tile_id: str) -> tuple[Path, Path]:
    """The (mask, probability) files of a tile in a prediction folder."""
    return out_dir / f"{tile_id}{MASK_SUFFIX}", out_dir / f"{tile_id}{PROB_SUFFIX}"


def is_done(out_dir: Path, tile_id: str, soft: bool) -> bool:
    """Whether a tile's outputs exist (the mask is written last: its presence is enough)."""
    mask, prob = output_paths(out_dir, tile_id)
    return mask.is_file() and (prob.is_file() or not soft)


def write_tile_outputs(
    out_dir: Path,
    tile_id: str,
    prob: np.ndarray,
    raw: np.ndarray | None,
    threshold: float,
    soft: bool,
    postprocess: PostprocessConfig | None,
) -> None:
    """Write one tile's probabilities (with ``soft``) and then its thresholded mask."""
    mask_path, prob_path = output_paths(out_dir, tile_id)
    if soft:  # probabilities stay raw: evaluate sweeps thresholds and steps over them
        write_probability(prob_path, prob)
    mask = binarize(prob, threshold)
    if postprocess is not None:
        mask = apply_postprocess(mask, raw, postprocess)
    write_mask(mask_path, mask.astype(np.uint8))  # last: its presence marks the tile done


class Writers:
    """Writes tiles in a thread pool; at most ``limit`` wait, so memory stays bounded."""

    def __init__(
        self, out_dir: Path, threshold: float, soft: bool, post: PostprocessConfig | None
    ) -> None:
        self.args = (threshold, soft, post)
        self.out_dir, self.needs_tile = out_dir, post is not None and post.needs_tile
        self.pending: deque[Future[None]] = deque()
        self.written = 0

    def submit(self, pool: ThreadPoolExecutor, probs: np.ndarray, batch: dict[str, Any]) -> None:
        raw = np.asarray(batch["image"]) if self.needs_tile else None
        for i, tile_id in enumerate(batch["tile_id"]):
            tile = None if raw is None else raw[i]
            job = (self.out_dir, tile_id, probs[i], tile, *self.args)
            self.pending.append(pool.submit(write_tile_outputs, *job))

    def wait(self, limit: int = 0) -> None:
        """Wait until at most ``limit`` writes are pending (re-raising a failed write)."""
        while len(self.pending) > limit:
            self.pending.popleft().result()
            self.written += 1
