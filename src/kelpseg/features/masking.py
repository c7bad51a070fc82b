"""Which pixels an index must not be trusted on, and what undefined pixels become.

Masking (the seed's best setting) hides index values where the QA band flags a cloud or a
corrupt pixel and, optionally, on land, where kelp cannot grow and index values stretch the
statistics. The rules are the 2nd-place author's: an index pixel is kept where ``QA == 0`` and
where his DEM water mask ``max(DEM, 0)`` is 0, so land (DEM > 0) and a missing DEM (NaN, when
``dem_clip_zero`` is off) are masked. Base bands are never masked, only missing (-32768 -> NaN,
or 0 with ``missing_bands: zero``). After masking, NaN and ``-inf`` become the channel's
minimum and ``+inf`` its maximum.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def cloud_mask(bands: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """(N, H, W) bool: the QA band flags the pixel (any value but 0: cloud, corrupt, missing)."""
    return ~(bands["QA"] == 0)


def land_mask(bands: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """(N, H, W) bool: where ``max(DEM, 0)`` is not 0: land (above 0 m) or a missing DEM (NaN).

    With ``dem_clip_zero`` (the default) a missing DEM is 0 m, so only land is masked.
    """
    return ~(bands["DEM"] <= 0)


def invalid_mask(bands: Mapping[str, torch.Tensor], *, qa: bool, land: bool) -> torch.Tensor:
    """(N, 1, H, W) bool: pixels to mask in index channels under the chosen options."""
    mask = torch.zeros_like(bands["DEM"], dtype=torch.bool)
    if qa:
        mask = mask | cloud_mask(bands)
    if land:
        mask = mask | land_mask(bands)
    return mask.unsqueeze(1)


def fill_non_finite(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """NaN and ``-inf`` -> ``low``, ``+inf`` -> ``high`` (both broadcast to ``x``)."""
    x = torch.where(torch.isnan(x) | (x == -torch.inf), low, x)
    return torch.where(x == torch.inf, high, x)


def per_sample_bounds(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each tile's per-channel min and max over finite pixels, (N, C, 1, 1); 0 where none."""
    finite = torch.isfinite(x)
    low = torch.where(finite, x, torch.inf).amin(dim=(2, 3), keepdim=True)
    high = torch.where(finite, x, -torch.inf).amax(dim=(2, 3), keepdim=True)
    low = torch.where(torch.isfinite(low), low, 0.0)
    high = torch.where(torch.isfinite(high), high, 0.0)
    return low, high
