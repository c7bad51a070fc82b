"""The 1st-place team's extra channels: offset NIR, land closeness (and the NDVI filter bank).

Unlike the per-pixel indices, these read a whole tile: the offsets subtract the tile's median
over clear water, land closeness measures the distance to the tile's nearest land pixel. Both
are computed per tile and in batch on the device (:mod:`kelpseg.features.spatial`), so a value
never depends on another tile of the batch. Channels computed on a training crop see only the
crop (``data.crop_size``): its water and its land.

The filter bank lives in :mod:`kelpseg.features.ndvi_filters`; :func:`firstplace_entries`
returns both sets for the registry.
"""

from __future__ import annotations

from types import MappingProxyType

import torch
from torch import Tensor

from kelpseg.errors import KelpsegError
from kelpseg.features.bands import BandSet
from kelpseg.features.entry import IndexEntry
from kelpseg.features.ndvi_filters import filter_bank_entries
from kelpseg.features.spatial import distance_to, tile_nanmedian

REFERENCE = "Kelp Wanted 1st place (Team Epoch IV) feature set"
LAND_CLOSENESS_K = 0.1


def clear_water(bands: BandSet) -> Tensor:
    """(N, H, W) bool: sea by the DEM (not above 0 m, or no DEM) and not flagged by QA."""
    return ~(bands["DEM"] > 0) & ~(bands["QA"] > 0)


def water_offset(values: Tensor, bands: BandSet) -> Tensor:
    """``values`` minus its tile's median over clear water pixels (NaN values left out).

    A tile without any clear-water pixel with a value (all land, all cloud, all missing) has no
    reference level: the whole tile is NaN, which masking and fill then treat like any gap.
    """
    median = tile_nanmedian(values, clear_water(bands))
    return values - median[:, None, None]


def _offset_nir(bands: BandSet) -> Tensor:
    return water_offset(bands["NIR"], bands)


def _offset_red_nir(bands: BandSet) -> Tensor:
    return water_offset(bands["R"] - bands["NIR"], bands)


def _land_closeness(bands: BandSet) -> Tensor:
    k = bands.constant("land_closeness_k", LAND_CLOSENESS_K)
    if k < 0:
        raise KelpsegError(f"index constant land_closeness_k must be >= 0, got {k}")
    distance = distance_to(bands["DEM"] > 0)
    # A tile without land is infinitely far from it: closeness 0, also when k = 0.
    return torch.where(torch.isinf(distance), 0.0, 1.0 / (1.0 + k * distance))


def _offset_entries() -> dict[str, IndexEntry]:
    offset = "the tile's median over clear water (DEM not above 0, QA clear, value present)"
    return {
        "OFFSET_NIR": IndexEntry(
            name="OFFSET_NIR",
            compute=_offset_nir,
            bands=("NIR", "QA", "DEM"),
            source="kelpseg",
            description=f"NIR minus {offset}; removes per-scene brightness shifts. "
            "NaN on tiles without clear water",
            formula="N - median(N | clear water)",
            reference=REFERENCE,
            tile_context=True,
        ),
        "OFFSET_RNIR": IndexEntry(
            name="OFFSET_RNIR",
            compute=_offset_red_nir,
            bands=("NIR", "R", "QA", "DEM"),
            source="kelpseg",
            description=f"(R - NIR) minus {offset} of (R - NIR). NaN on tiles without clear water",
            formula="(R - N) - median(R - N | clear water)",
            reference=REFERENCE,
            tile_context=True,
        ),
        "LANDCLOSE": IndexEntry(
            name="LANDCLOSE",
            compute=_land_closeness,
            bands=("DEM",),
            source="kelpseg",
            description="land closeness 1 / (1 + k d), d the Euclidean distance in pixels to "
            "the tile's nearest land pixel (DEM > 0): 1 on land, 0 in a tile without land",
            formula="1 / (1 + land_closeness_k * distance(DEM > 0))",
            constants=MappingProxyType({"land_closeness_k": LAND_CLOSENESS_K}),
            masked=False,
            reference=REFERENCE,
            tile_context=True,
        ),
    }


def firstplace_entries() -> dict[str, IndexEntry]:
    """The offset, land-closeness and NDVI filter-bank entries, by name."""
    return {**_offset_entries(), **filter_bank_entries()}


SPATIAL_ENTRIES: tuple[str, ...] = tuple(firstplace_entries())
