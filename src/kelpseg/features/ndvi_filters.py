"""An NDVI filter bank (the 1st place's spatial features): edges, sharpening, smoothing, contrast.

Every channel filters NDVI within each tile with kornia on the device. Missing NDVI (a missing
band, a zero denominator) cannot enter a filter, so it is first replaced by the tile's median
NDVI (0 in a tile without any), the ``NDVI_FILLED`` channel; a filtered pixel whose own NDVI was
missing is NaN again, so masking and fill treat it like any gap. Clouds and land are filtered as
they are (the coast is an edge worth seeing); QA and land masking apply to the outputs.

Borders: Sobel replicates the edge pixel (kornia's ``spatial_gradient``); the others mirror
the tile without repeating the edge (torch's ``reflect``, scipy's ``mirror``). The kernel size
is part of each name; a tile must be larger than half the kernel.

The directional channels (``NDVI_SOBELX3``, ``NDVI_SOBELY3``) are computed before the batch
augmentations: after a flip or a quarter turn their sign or axis no longer matches the image.
The others are invariant to flips and quarter turns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import kornia.filters as kf
import torch
from torch import Tensor

from kelpseg.errors import KelpsegError
from kelpseg.features.bands import BandSet
from kelpseg.features.entry import IndexEntry
from kelpseg.features.spatial import tile_nanmedian

REFERENCE = "Kelp Wanted 1st place (Team Epoch IV) feature set; filters from kornia"
MEDIAN_SIZES = (3, 5, 7)
UNSHARP_SIZES = (5, 9)
LCE_SIZES = (7, 15)
LCE_EPS = 1e-3


def unsharp_sigma(size: int) -> float:
    """The Gaussian sigma used with a kernel of ``size`` (OpenCV's rule for a given size)."""
    return 0.3 * ((size - 1) * 0.5 - 1.0) + 0.8


def _filled_ndvi(bands: BandSet) -> Tensor:
    ndvi = bands["NDVI"]
    median = torch.nan_to_num(tile_nanmedian(ndvi), nan=0.0)
    return torch.where(torch.isfinite(ndvi), ndvi, median[:, None, None])


def _input(bands: BandSet, size: int) -> Tensor:
    """Filled NDVI as (N, 1, H, W), checked to be larger than half the kernel."""
    x = bands["NDVI_FILLED"]
    if min(x.shape[-2:]) <= size // 2:
        raise KelpsegError(
            f"tiles of {tuple(x.shape[-2:])} px are too small for a {size}x{size} NDVI filter"
        )
    return x.unsqueeze(1)


def _restore_gaps(bands: BandSet, out: Tensor) -> Tensor:
    """(N, 1, H, W) filter output -> (N, H, W), NaN where NDVI itself was missing."""
    return torch.where(torch.isfinite(bands["NDVI"]), out[:, 0], float("nan"))


def _sobel_axis(axis: int) -> Callable[[BandSet], Tensor]:
    def compute(bands: BandSet) -> Tensor:
        # normalized=True: a ramp of slope s per pixel gives s (kernel divided by its L1 norm).
        grad = kf.spatial_gradient(_input(bands, 3), mode="sobel", order=1, normalized=True)
        return _restore_gaps(bands, grad[:, :, axis])

    return compute


def _sobel_magnitude(bands: BandSet) -> Tensor:
    return torch.hypot(bands["NDVI_SOBELX3"], bands["NDVI_SOBELY3"])


def _median(size: int) -> Callable[[BandSet], Tensor]:
    def compute(bands: BandSet) -> Tensor:
        return _restore_gaps(bands, kf.median_blur(_input(bands, size), size, "reflect"))

    return compute


def _unsharp(size: int) -> Callable[[BandSet], Tensor]:
    sigma = unsharp_sigma(size)

    def compute(bands: BandSet) -> Tensor:
        x = _input(bands, size)
        return _restore_gaps(bands, kf.unsharp_mask(x, size, (sigma, sigma), "reflect"))

    return compute


def _local_contrast(size: int) -> Callable[[BandSet], Tensor]:
    def compute(bands: BandSet) -> Tensor:
        x = _input(bands, size)
        eps = bands.constant("lce_eps", LCE_EPS)
        mean = kf.box_blur(x, size, "reflect")
        var = (kf.box_blur(x * x, size, "reflect") - mean * mean).clamp_min(0.0)
        return _restore_gaps(bands, (x - mean) / (var.sqrt() + eps))

    return compute


def _entry(
    name: str,
    compute: Callable[[BandSet], Tensor],
    formula: str,
    description: str,
    constants: Mapping[str, float] | None = None,
) -> IndexEntry:
    return IndexEntry(
        name=name,
        compute=compute,
        bands=("NIR", "R"),
        source="kelpseg",
        description=description,
        formula=formula,
        constants=MappingProxyType(dict(constants or {})),
        reference=REFERENCE,
    )


def filter_bank_entries() -> dict[str, IndexEntry]:
    """The filter-bank entries by name: filled NDVI, Sobel, median, unsharp mask, contrast."""
    entries = [
        _entry(
            "NDVI_FILLED",
            _filled_ndvi,
            "NDVI if defined else median(NDVI | tile)",
            "NDVI with missing pixels replaced by the tile's median NDVI (the filters' input)",
        ),
        _entry(
            "NDVI_SOBELX3",
            _sobel_axis(0),
            "sobel_x(NDVI, 3)",
            "horizontal NDVI gradient per pixel, left to right (Sobel 3x3)",
        ),
        _entry(
            "NDVI_SOBELY3",
            _sobel_axis(1),
            "sobel_y(NDVI, 3)",
            "vertical NDVI gradient per pixel, top to bottom (Sobel 3x3)",
        ),
        _entry(
            "NDVI_SOBEL3",
            _sobel_magnitude,
            "hypot(sobel_x(NDVI, 3), sobel_y(NDVI, 3))",
            "NDVI edge strength: Sobel 3x3 gradient magnitude",
        ),
    ]
    entries += [
        _entry(
            f"NDVI_MEDIAN{k}",
            _median(k),
            f"median{k}x{k}(NDVI)",
            f"local median of NDVI over {k}x{k} pixels",
        )
        for k in MEDIAN_SIZES
    ]
    entries += [
        _entry(
            f"NDVI_UNSHARP{k}",
            _unsharp(k),
            f"2 NDVI - gauss{k}x{k}(NDVI)",
            f"unsharp mask of NDVI: Gaussian {k}x{k}, sigma {unsharp_sigma(k):g}",
        )
        for k in UNSHARP_SIZES
    ]
    entries += [
        _entry(
            f"NDVI_LCE{k}",
            _local_contrast(k),
            f"(NDVI - mean{k}x{k}(NDVI)) / (std{k}x{k}(NDVI) + lce_eps)",
            f"local contrast enhancement: NDVI standardised by its {k}x{k} mean and std",
            constants={"lce_eps": LCE_EPS},
        )
        for k in LCE_SIZES
    ]
    return {entry.name: entry for entry in entries}
