"""Normalisation strategies, by name: batched torch ops on (N, C, H, W) channels.

Global strategies take per-channel parameters from band statistics once (``prepare``) and
apply them with element-wise ops only, so they run on any device and export to ONNX.
Per-sample strategies compute their parameters from each tile and need no statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from kelpseg.features.config import FeatureConfig
    from kelpseg.features.stats import BandStats

Params = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Normalizer:
    """One strategy: ``prepare`` turns statistics into (C,) tensors, ``apply`` uses them.

    Attributes:
        name: the key users type.
        description: one line for docs.
        needs_stats: whether band statistics are required.
        prepare: (stats, channels, config) -> named (C,) float32 tensors.
        apply: (x, params reshaped to (1, C, 1, 1), config) -> normalised x.
        affine: ``apply`` is ``(x - offset) / scale`` with ``prepare``'s ``offset`` and
            ``scale`` (clamped to [0, 1] when ``clip``), so the input builder may fuse it with
            the fill, channel by channel.
        clip: see ``affine``.
    """

    name: str
    description: str
    needs_stats: bool
    prepare: Callable[[BandStats, Sequence[str], FeatureConfig], dict[str, torch.Tensor]]
    apply: Callable[[torch.Tensor, Params, FeatureConfig], torch.Tensor]
    affine: bool = False
    clip: bool = False

    def __call__(self, x: torch.Tensor, params: Params, config: FeatureConfig) -> torch.Tensor:
        """Normalise ``x`` (N, C, H, W)."""
        return self.apply(x, params, config)


def _vector(values: np.ndarray, fallback: float) -> torch.Tensor:
    # A channel never observed (all pixels masked) has NaN statistics: use a neutral value.
    clean = np.where(np.isfinite(values), values, fallback)
    return torch.as_tensor(clean, dtype=torch.float32)


def _offset_scale(low: np.ndarray, high: np.ndarray) -> dict[str, torch.Tensor]:
    span = high - low
    scale = np.where(np.isfinite(span) & (span > 0), span, 1.0)
    return {"offset": _vector(low, 0.0), "scale": _vector(scale, 1.0)}


def _none(
    stats: BandStats, channels: Sequence[str], config: FeatureConfig
) -> dict[str, torch.Tensor]:
    return {}


def _zscore_params(
    stats: BandStats, channels: Sequence[str], config: FeatureConfig
) -> dict[str, torch.Tensor]:
    std = stats.vector("std", channels)
    scale = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    return {"offset": _vector(stats.vector("mean", channels), 0.0), "scale": _vector(scale, 1.0)}


def _minmax_params(
    stats: BandStats, channels: Sequence[str], config: FeatureConfig
) -> dict[str, torch.Tensor]:
    return _offset_scale(stats.vector("min", channels), stats.vector("max", channels))


def _quantile_params(
    stats: BandStats, channels: Sequence[str], config: FeatureConfig
) -> dict[str, torch.Tensor]:
    low, high = config.quantiles
    return _offset_scale(stats.quantile(low, channels), stats.quantile(high, channels))


def _affine(x: torch.Tensor, params: Params, config: FeatureConfig) -> torch.Tensor:
    return (x - params["offset"]) / params["scale"]


def _affine_clipped(x: torch.Tensor, params: Params, config: FeatureConfig) -> torch.Tensor:
    return ((x - params["offset"]) / params["scale"]).clamp(0.0, 1.0)


def _rescale(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    span = high - low
    span = torch.where(span > 0, span, torch.ones_like(span))
    return ((x - low) / span).clamp(0.0, 1.0)


def _per_sample_minmax(x: torch.Tensor, params: Params, config: FeatureConfig) -> torch.Tensor:
    return _rescale(x, x.amin(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True))


def _per_sample_quantile(x: torch.Tensor, params: Params, config: FeatureConfig) -> torch.Tensor:
    flat = x.flatten(2)
    n = flat.shape[-1]
    # Nearest-rank quantile per tile and channel; kthvalue is linear time, no full sort.
    k_low, k_high = (round(q * (n - 1)) + 1 for q in config.quantiles)
    low = flat.kthvalue(k_low, dim=-1, keepdim=True).values.unsqueeze(-1)
    high = flat.kthvalue(k_high, dim=-1, keepdim=True).values.unsqueeze(-1)
    return _rescale(x, low, high)


#: ImageNet per-channel mean and std (R, G, B) that pretrained stems expect.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _clip_imagenet_params(
    stats: BandStats, channels: Sequence[str], config: FeatureConfig
) -> dict[str, torch.Tensor]:
    params = _quantile_params(stats, channels, config)
    # Input channel i meets the stem weights of ImageNet channel i % 3 (how smp and
    # load_encoder_weights widen a 3-channel stem), so it gets that channel's mean and std.
    index = [i % 3 for i in range(len(channels))]
    params["mean"] = torch.tensor([IMAGENET_MEAN[i] for i in index], dtype=torch.float32)
    params["std"] = torch.tensor([IMAGENET_STD[i] for i in index], dtype=torch.float32)
    return params


def _clip_imagenet(x: torch.Tensor, params: Params, config: FeatureConfig) -> torch.Tensor:
    unit = ((x - params["offset"]) / params["scale"]).clamp(0.0, 1.0)
    return (unit - params["mean"]) / params["std"]


NORMALIZERS: dict[str, Normalizer] = {
    n.name: n
    for n in (
        Normalizer(
            "z-score", "(x - mean) / std over the dataset", True, _zscore_params, _affine, True
        ),
        Normalizer(
            "quantile",
            "(x - q_low) / (q_high - q_low) over the dataset, clipped to [0, 1]",
            True,
            _quantile_params,
            _affine_clipped,
            affine=True,
            clip=True,
        ),
        Normalizer(
            "min-max",
            "(x - min) / (max - min) over the dataset",
            True,
            _minmax_params,
            _affine,
            True,
        ),
        Normalizer(
            "clip-imagenet",
            "clipped to the dataset's [q_low, q_high] and scaled to [0, 1], then ImageNet "
            "mean/std (channel i takes RGB channel i % 3; the 3rd place's, for pretrained stems)",
            True,
            _clip_imagenet_params,
            _clip_imagenet,
        ),
        Normalizer(
            "per-sample-quantile",
            "like quantile, with each tile's own quantiles per channel",
            False,
            _none,
            _per_sample_quantile,
        ),
        Normalizer(
            "per-sample-min-max",
            "like min-max, with each tile's own min and max per channel",
            False,
            _none,
            _per_sample_minmax,
        ),
    )
}
