"""One channel of one tile as a 2-D image, for plots (``kelpseg eda plot --channels ...``)."""

from __future__ import annotations

import os

import numpy as np
import torch

from kelpseg.config import validate_config
from kelpseg.errors import KelpsegError
from kelpseg.features.channels import ChannelStack, InputBuilder
from kelpseg.features.config import FeatureConfig
from kelpseg.features.stats import BandStats
from kelpseg.io.tiles import Tile, read_tile


def render_channel(
    tile: Tile | np.ndarray | str | os.PathLike[str],
    name: str,
    config: FeatureConfig | None = None,
    stats: BandStats | None = None,
) -> np.ndarray:
    """The channel ``name`` of ``tile`` as a (H, W) float32 image.

    Without ``stats`` the values are the channel's own (masked under ``config``'s options,
    NaN where masked or missing, so plots leave those pixels blank). With ``stats`` they are
    the model input: filled and normalised exactly as :class:`InputBuilder` does.

    Args:
        tile: a :class:`Tile`, a (7, H, W) array or a satellite GeoTIFF path.
        name: a base band or registry entry.
        config: masking, fill and normalisation options (its ``channels`` are ignored).
        stats: band statistics covering ``name``, or ``None``.
    """
    data = _tile_array(tile)
    base = config or FeatureConfig()
    single = validate_config(FeatureConfig, {**base.model_dump(), "channels": [name]})
    raw = torch.from_numpy(np.ascontiguousarray(data))[None]
    with torch.inference_mode():
        if stats is None:
            out = ChannelStack.from_config(single)(raw)
        else:
            out = InputBuilder(single, stats)(raw)
    return out[0, 0].numpy().astype(np.float32)


def _tile_array(tile: Tile | np.ndarray | str | os.PathLike[str]) -> np.ndarray:
    if isinstance(tile, Tile):
        return tile.data
    if isinstance(tile, np.ndarray):
        if tile.ndim != 3 or tile.shape[0] != 7:
            raise KelpsegError(f"a tile array must be (7, H, W), got {tile.shape}")
        return tile
    return read_tile(tile, expected_size=None, allow_all_missing=True).data
