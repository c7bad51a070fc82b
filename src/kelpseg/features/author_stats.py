"""Band statistics as the 2nd-place author computed them (``stats_method: author``).

His definitions differ from kelpseg's streaming statistics (:mod:`kelpseg.features.sketch`):

- quantiles: each tile's own 1% and 99% quantiles (``torch.nanquantile``, linear
  interpolation, masked pixels left out), then their mean over the tiles;
- min and max: over the tiles where the channel has no masked or missing pixel at all (his
  ``torch.amin`` returned NaN for any other tile, and NaN tiles were skipped);
- mean and std: sums over the unmasked pixels divided by *every* pixel of every tile, masked
  ones included (``std = sqrt(sum(x**2) / n - mean**2)``);
- ``QA`` and every ``...WM`` channel are forced to min 0, max 1, mean 0, std 1 and quantiles
  0 and 1 (his "adjust stats for binary band" step);
- masked index pixels are NaN while computing; the missing band pixels (-32768) are NaN
  ("nan-adjusted", his fill value NaN) or 0 ("zero-adjusted", his fill value 0.0), as
  ``missing_bands`` says.

Only the two quantile levels of ``FeatureConfig.quantiles`` exist in the result.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from kelpseg import __version__
from kelpseg.errors import KelpsegError
from kelpseg.features.channels import ChannelStack
from kelpseg.features.config import FeatureConfig
from kelpseg.features.stats import BandStats
from kelpseg.io.tiles import read_tile


def is_binary_channel(name: str) -> bool:
    """QA and the water-mask channels, whose statistics the author fixed to [0, 1]."""
    return name == "QA" or name.endswith("WM")


class AuthorStatsAccumulator:
    """Running sums of the author's statistics over tiles (one (C, H, W) tile at a time)."""

    def __init__(self, channels: Sequence[str], quantiles: tuple[float, float]) -> None:
        c = len(channels)
        self.channels = list(channels)
        self.levels = quantiles
        self.min = np.full(c, np.inf)
        self.max = np.full(c, -np.inf)
        self.sum = np.zeros(c)
        self.sum_sq = np.zeros(c)
        self.count = np.zeros(c, dtype=np.int64)
        self.pixels = 0
        self.tile_quantiles: list[np.ndarray] = []

    def update(self, tile: torch.Tensor) -> None:
        """Add one tile's channels (C, H, W), masked pixels NaN."""
        x = tile.to(torch.float64).flatten(1)
        lo = torch.amin(x, dim=1).cpu().numpy()  # NaN for a tile with any NaN pixel
        hi = torch.amax(x, dim=1).cpu().numpy()
        self.min = np.where(np.isnan(lo), self.min, np.minimum(self.min, lo))
        self.max = np.where(np.isnan(hi), self.max, np.maximum(self.max, hi))
        self.sum += torch.nansum(x, dim=1).cpu().numpy()
        self.sum_sq += torch.nansum(x**2, dim=1).cpu().numpy()
        self.count += (~torch.isnan(x)).sum(dim=1).cpu().numpy()
        self.pixels += int(x.shape[1])
        levels = torch.tensor(self.levels, dtype=torch.float64, device=x.device)
        self.tile_quantiles.append(torch.nanquantile(x, levels, dim=1).cpu().numpy())

    def result(self, options: dict[str, object]) -> BandStats:
        """The statistics, with the binary channels forced to [0, 1]."""
        if self.pixels == 0:
            raise KelpsegError("no tiles to compute band statistics over")
        mean = self.sum / self.pixels
        std = np.sqrt(np.maximum(self.sum_sq / self.pixels - mean**2, 0.0))
        with np.errstate(all="ignore"):
            stacked = np.stack(self.tile_quantiles)  # (tiles, 2, C)
            q = np.nanmean(stacked, axis=0) if np.isfinite(stacked).any() else stacked[0]
        lo = np.where(np.isinf(self.min), np.nan, self.min)
        hi = np.where(np.isinf(self.max), np.nan, self.max)
        values = {"min": lo, "max": hi, "mean": mean, "std": std}
        fixed = {"min": 0.0, "max": 1.0, "mean": 0.0, "std": 1.0}
        out: dict[str, dict[str, float]] = {k: {} for k in values}
        quantiles: dict[float, dict[str, float]] = {level: {} for level in self.levels}
        for i, name in enumerate(self.channels):
            binary = is_binary_channel(name)
            for key, vec in values.items():
                out[key][name] = fixed[key] if binary else float(vec[i])
            for j, level in enumerate(self.levels):
                quantiles[level][name] = float(j) if binary else float(q[j, i])
        return BandStats(
            channels=list(self.channels),
            min=out["min"],
            max=out["max"],
            mean=out["mean"],
            std=out["std"],
            count={c: int(n) for c, n in zip(self.channels, self.count, strict=True)},
            quantiles=quantiles,
            options=options,
        )


def author_band_stats(
    paths: Sequence[str | os.PathLike[str]], config: FeatureConfig, *, device: str = "cpu"
) -> BandStats:
    """The author's statistics of ``config.channels`` over the tiles at ``paths``.

    Masking follows ``config`` (``mask_using_qa``, ``mask_using_water_mask``); masked and
    undefined index pixels are left out of every sum but the pixel count of the mean.
    """
    stack = ChannelStack.from_config(config).to(device)
    acc = AuthorStatsAccumulator(config.channels, config.quantiles)
    with torch.inference_mode():
        for path in paths:
            raw = read_tile(Path(path), expected_size=None, allow_all_missing=True).data
            x = stack(torch.from_numpy(raw[None]).to(device))[0]
            acc.update(x)
    options: dict[str, object] = {
        "method": "author",
        "mask_using_qa": config.mask_using_qa,
        "mask_using_water_mask": config.mask_using_water_mask,
        "fill_value": config.fill_value,
        "adjustment": config.adjustment,
        "dem_clip_zero": config.dem_clip_zero,
        "missing_bands": config.missing_bands,
        "index_constants": dict(config.index_constants),
        "tiles": len(paths),
        "n_pixels": acc.pixels,
        "masked_or_missing": {
            c: int(acc.pixels - n) for c, n in zip(acc.channels, acc.count, strict=True)
        },
        "quantile_method": "mean over tiles of each tile's torch.nanquantile (linear)",
        "kelpseg_version": __version__,
    }
    return acc.result(options)
