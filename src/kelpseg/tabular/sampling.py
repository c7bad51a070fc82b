"""Which pixels of a tile become training rows: kelp, a ring around it, a background sample.

The ring (``buffer_px`` dilation steps around kelp, square neighbourhood) holds the hard
negatives next to kelp beds; the random background sample stands for the rest of the tile, and
its rows carry a weight (background pixels / sampled) so weighted sums estimate whole tiles.
Sampling is seeded by the config's seed and the tile id, so it does not depend on workers.
"""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa
import torch
from scipy import ndimage

from kelpseg.features import InputBuilder
from kelpseg.io.tiles import read_label, read_tile
from kelpseg.tabular.config import TabularConfig
from kelpseg.tabular.dataset import KIND_BACKGROUND, KIND_KELP, KIND_RING, pixel_schema
from kelpseg.tabular.inputs import as_raw_tensor, make_builder

TileJob = tuple[str, str, str, int]  # tile_id, image_path, mask_path, fold


def sample_pixels(
    label: np.ndarray, buffer_px: int, n_background: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Choose pixels of one tile: kelp, the ring around it, and a background sample.

    Returns:
        Sorted flat pixel indices, their kind (``KIND_*``) and weight (tile pixels each row
        stands for: 1 for kelp and ring, background size / sample size for the sample).
    """
    kelp = np.asarray(label).astype(bool)
    ring = np.zeros_like(kelp)
    if buffer_px > 0 and kelp.any():
        # A square structuring element: the ring is buffer_px wide in every direction.
        grown = ndimage.binary_dilation(kelp, structure=np.ones((3, 3), bool), iterations=buffer_px)
        ring = grown & ~kelp
    background = np.flatnonzero(~(kelp | ring))
    k = min(n_background, background.size)
    chosen = rng.choice(background, size=k, replace=False) if k else background[:0]
    idx = np.concatenate([np.flatnonzero(kelp), np.flatnonzero(ring), chosen])
    kind = np.concatenate(
        [
            np.full(int(kelp.sum()), KIND_KELP, np.uint8),
            np.full(int(ring.sum()), KIND_RING, np.uint8),
            np.full(k, KIND_BACKGROUND, np.uint8),
        ]
    )
    weight = np.ones(idx.size, np.float32)
    weight[kind == KIND_BACKGROUND] = background.size / k if k else 0.0
    order = np.argsort(idx, kind="stable")
    return idx[order], kind[order], weight[order]


def tile_rng(seed: int, tile_id: str) -> np.random.Generator:
    """The sampling generator of one tile: same seed and id, same pixels, on any worker."""
    return np.random.default_rng([seed, zlib.crc32(tile_id.encode())])


def tile_pixels(
    job: TileJob, config: TabularConfig, builder: InputBuilder | None = None
) -> pa.Table:
    """The sampled pixels of one tile as a table of ``pixel_schema`` columns."""
    tile_id, image_path, mask_path, _fold = job
    tile = read_tile(image_path, expected_size=None, allow_all_missing=True)
    label = read_label(mask_path, expected_size=tile.shape)
    idx, kind, weight = sample_pixels(
        label, config.buffer_px, config.non_kelp_per_tile, tile_rng(config.seed, tile_id)
    )
    builder = builder or make_builder(config.features)
    with torch.no_grad():
        channels = builder.raw_channels(as_raw_tensor(tile.data[None]))[0]
    flat = channels.reshape(channels.shape[0], -1)[:, torch.from_numpy(idx)].numpy()
    rows, cols = np.divmod(idx, tile.shape[1])
    columns = {
        "tile_id": pa.array([tile_id] * idx.size, pa.string()),
        "row": rows.astype(np.int32),
        "col": cols.astype(np.int32),
        "label": label.ravel()[idx].astype(np.uint8),
        "kind": kind,
        "weight": weight,
    }
    columns.update(
        {name: flat[i].astype(np.float32) for i, name in enumerate(config.features.channels)}
    )
    return pa.table(columns, schema=pixel_schema(config.features.channels))
