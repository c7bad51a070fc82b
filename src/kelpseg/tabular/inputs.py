"""Raw tiles to per-pixel feature rows, through the feature stage's own channel builder.

Trees read the channels *before* normalisation (:meth:`InputBuilder.raw_channels`), so the
tabular path and the networks compute every index with the same code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from kelpseg.errors import KelpsegError
from kelpseg.features import NORMALIZERS, BandStats, FeatureConfig, InputBuilder
from kelpseg.io.tiles import BAND_NAMES

_STATLESS = next(n for n, norm in NORMALIZERS.items() if not norm.needs_stats)


def make_builder(features: FeatureConfig, stats: BandStats | None = None) -> InputBuilder:
    """An :class:`InputBuilder` for tree features; band statistics are optional.

    Trees never see normalised input, so when no statistics are given a normalisation that
    needs them is swapped for one that does not: it only lets the builder be constructed.
    """
    if stats is None and NORMALIZERS[features.normalization].needs_stats:
        features = features.model_copy(update={"normalization": _STATLESS})
    return InputBuilder(features, stats)


def as_raw_tensor(raw: Any) -> torch.Tensor:
    """A (N, 7, H, W) numpy array or tensor as a tensor (no copy where possible).

    Raises:
        KelpsegError: the batch does not have 7 bands in 4 dimensions.
    """
    tensor = raw if isinstance(raw, torch.Tensor) else torch.from_numpy(np.asarray(raw))
    if tensor.ndim != 4 or tensor.shape[1] != len(BAND_NAMES):
        raise KelpsegError(
            f"expected a (N, {len(BAND_NAMES)}, H, W) batch of raw tiles, got {tuple(tensor.shape)}"
        )
    return tensor


def channel_rows(channels: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) channels -> (N * H * W, C) float32 rows, pixel order N, H, W."""
    n, c, h, w = channels.shape
    rows = channels.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).reshape(n * h * w, c)
    return np.ascontiguousarray(rows.numpy())
