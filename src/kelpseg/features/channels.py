"""Raw tiles to model input: channel stack, masking, fill and normalisation, as torch modules.

Everything in ``forward`` is element-wise or a reduction over fixed dimensions: no numpy, no
``.item()``, no branch on data, so it runs on any device without syncing and can be exported
with ``torch.onnx.export`` (the per-sample-quantile strategy uses ``kthvalue``). Per-channel
constants (fill values, normalisation offsets) are Python floats fixed when the module is
built, so fill and an affine normalisation run as one pass per channel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from kelpseg.errors import KelpsegError
from kelpseg.features.bands import BandSet, decode_raw
from kelpseg.features.config import FeatureConfig
from kelpseg.features.entry import IndexEntry
from kelpseg.features.indices import INDICES, check_channels
from kelpseg.features.masking import fill_non_finite, invalid_mask, per_sample_bounds
from kelpseg.features.normalize import NORMALIZERS
from kelpseg.features.stats import BandStats


class ChannelStack(torch.nn.Module):
    """(N, 7, H, W) raw tiles -> (N, C, H, W) float32 channels, NaN where missing or masked.

    Args:
        channels: base bands and registry entries, in output order.
        mask_using_qa: mask index pixels that QA flags (cloud, corrupt).
        mask_using_water_mask: mask index pixels on land (DEM > 0).
        dem_clip_zero: clip the DEM at 0 before use.
        missing_bands: ``"nan"`` or ``"zero"``: what -32768 band pixels become before indices.
        index_constants: overrides of formula constants.
        registry: the index registry (default :data:`INDICES`).
    """

    def __init__(
        self,
        channels: Sequence[str],
        *,
        mask_using_qa: bool = True,
        mask_using_water_mask: bool = True,
        dem_clip_zero: bool = True,
        missing_bands: str = "nan",
        index_constants: Mapping[str, float] | None = None,
        registry: Mapping[str, IndexEntry] = INDICES,
    ) -> None:
        super().__init__()
        check_channels(channels, registry)
        self.channels = list(channels)
        self.mask_using_qa = mask_using_qa
        self.mask_using_water_mask = mask_using_water_mask
        self.dem_clip_zero = dem_clip_zero
        self.missing_value = 0.0 if missing_bands == "zero" else float("nan")
        self.index_constants = dict(index_constants or {})
        self.registry = registry
        masking = mask_using_qa or mask_using_water_mask
        self.maskable = [masking and n in registry and registry[n].masked for n in self.channels]

    @classmethod
    def from_config(cls, config: FeatureConfig) -> ChannelStack:
        """The stack for ``config.channels`` with the config's masking options."""
        return cls(
            config.channels,
            mask_using_qa=config.mask_using_qa,
            mask_using_water_mask=config.mask_using_water_mask,
            dem_clip_zero=config.dem_clip_zero,
            missing_bands=config.missing_bands,
            index_constants=config.index_constants,
        )

    def channel_list(self, raw: torch.Tensor) -> list[torch.Tensor]:
        """The channels as a list of (N, H, W) tensors, masked pixels NaN."""
        bands = decode_raw(raw, dem_clip_zero=self.dem_clip_zero, missing_value=self.missing_value)
        band_set = BandSet(bands, self.registry, self.index_constants)
        out = [band_set[name] for name in self.channels]
        if any(self.maskable):
            bad = invalid_mask(bands, qa=self.mask_using_qa, land=self.mask_using_water_mask)[:, 0]
            out = [
                ch.masked_fill(bad, float("nan")) if m else ch
                for ch, m in zip(out, self.maskable, strict=True)
            ]
        return out

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """Compute the channels of a batch; masked and undefined pixels are NaN."""
        return torch.stack(self.channel_list(raw), dim=1)


class InputBuilder(torch.nn.Module):
    """Turns a batch of raw tiles into normalised, finite model input.

    Args:
        config: channels and the masking, fill and normalisation options.
        stats: band statistics for ``config`` (needed by global normalisations and by
            ``fill_value="min"``; without them "min" uses each tile's own minimum).

    Raises:
        KelpsegError: the statistics lack a channel or were computed with other options, or
            the normalisation needs statistics and none were given.
    """

    def __init__(self, config: FeatureConfig, stats: BandStats | None = None) -> None:
        super().__init__()
        check_channels(config.channels)
        self.config = config.model_copy(deep=True)
        self.channels = list(config.channels)
        self.stack = ChannelStack.from_config(config)
        self.normalizer = NORMALIZERS[config.normalization]
        if stats is not None:
            stats.check_compatible(config)
        elif self.normalizer.needs_stats:
            raise KelpsegError(
                f"normalization {config.normalization!r} needs band statistics: run "
                "`kelpseg stats` and pass the stats file, or use a per-sample normalization"
            )
        self.fill_values = self._fill_values(config, stats)
        params = self.normalizer.prepare(stats, self.channels, config) if stats else {}
        self.param_names = sorted(params)
        for name in self.param_names:
            self.register_buffer(f"norm_{name}", params[name].view(1, -1, 1, 1))
        self.affine: list[tuple[float, float]] | None = None
        if self.normalizer.affine and self.fill_values is not None:
            offset, scale = params["offset"].tolist(), params["scale"].tolist()
            self.affine = [(o, 1.0 / s) for o, s in zip(offset, scale, strict=True)]

    def _fill_values(
        self, config: FeatureConfig, stats: BandStats | None
    ) -> list[tuple[float, float]] | None:
        """Per-channel (low, high) fill constants, or ``None`` for per-tile minima."""
        if config.fill_value == "zero":
            return [(0.0, 0.0)] * len(self.channels)
        if stats is None:
            return None
        # A channel never observed (all pixels masked) has NaN extremes: fill it with 0.
        low = [v if math.isfinite(v) else 0.0 for v in stats.vector("min", self.channels).tolist()]
        high = [v if math.isfinite(v) else 0.0 for v in stats.vector("max", self.channels).tolist()]
        return list(zip(low, high, strict=True))

    def masked_channels(self, raw: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) channels with NaN where missing, masked or undefined (no fill)."""
        return self.stack(raw)

    def raw_channels(self, raw: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float32 channels after masking and fill, before normalisation.

        With ``fill_value="nan"`` masked pixels stay NaN (for tree models that handle them).
        """
        if self.config.fill_value == "nan":
            x = self.stack(raw)
            return torch.where(torch.isinf(x), float("nan"), x)
        return self._filled(self.stack.channel_list(raw))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float32 normalised model input, finite, on ``raw``'s device."""
        channels = self.stack.channel_list(raw)
        if self.affine is not None and self.fill_values is not None:
            clip = self.normalizer.clip
            out = []
            for ch, (low, high), (offset, inv) in zip(
                channels, self.fill_values, self.affine, strict=True
            ):
                ch = torch.nan_to_num(ch, nan=low, posinf=high, neginf=low).sub_(offset).mul_(inv)
                out.append(ch.clamp_(0.0, 1.0) if clip else ch)
            return torch.stack(out, dim=1)
        x = self._filled(channels)
        params = {n: getattr(self, f"norm_{n}").to(x.device) for n in self.param_names}
        return self.normalizer(x, params, self.config)

    def _filled(self, channels: list[torch.Tensor]) -> torch.Tensor:
        if self.fill_values is not None:
            filled = [
                torch.nan_to_num(ch, nan=low, posinf=high, neginf=low)
                for ch, (low, high) in zip(channels, self.fill_values, strict=True)
            ]
            return torch.stack(filled, dim=1)
        x = torch.stack(channels, dim=1)
        low, high = per_sample_bounds(x)
        return fill_non_finite(x, low, high)
