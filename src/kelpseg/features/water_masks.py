"""kelpseg's 0/1 water masks, kept under ``kelpseg.<name>`` beside the author's namesakes.

The seed's ``DEMWM``, ``NDVIWM`` and ``NDWIWM`` are clipped values (see
:mod:`kelpseg.features.seed_indices`); these are true masks: 1 for water, 0 otherwise.
"""

from __future__ import annotations

import torch

from kelpseg.features.bands import BandSet
from kelpseg.features.entry import IndexEntry

PREFIX = "kelpseg."


def _dem_water_mask(bands: BandSet) -> torch.Tensor:
    # No DEM (NaN when not clipped) means open sea, so only DEM > 0 counts as land.
    return (~(bands["DEM"] > 0)).to(torch.float32)


def _threshold_mask(index: str, constant: str, below: bool) -> IndexEntry:
    source = f"spyndex.{index}"  # the catalogue's sign: NDWI = (G - N) / (G + N)

    def compute(bands: BandSet) -> torch.Tensor:
        value = bands[source]
        cut = bands.constant(constant, 0.0)
        water = value < cut if below else value > cut
        return torch.where(torch.isnan(value), float("nan"), water.to(torch.float32))

    sign = "<" if below else ">"
    return IndexEntry(
        name=f"{PREFIX}{index}WM",
        compute=compute,
        bands=("NIR", "R") if index == "NDVI" else ("NIR", "G"),
        source="kelpseg",
        description=f"{index} water mask: 1 where {source} {sign} {constant} (water), else 0",
        formula=f"1 if {source} {sign} {constant} else 0",
        constants={constant: 0.0},
        reference="kelpseg's reading of the seed's water masks",
    )


def water_mask_entries() -> dict[str, IndexEntry]:
    """``kelpseg.DEMWM``, ``kelpseg.NDVIWM`` and ``kelpseg.NDWIWM``, by name."""
    dem = IndexEntry(
        name=f"{PREFIX}DEMWM",
        compute=_dem_water_mask,
        bands=("DEM",),
        source="kelpseg",
        description="DEM water mask: 1 at sea level or without DEM, 0 on land (DEM > 0)",
        formula="1 if not DEM > 0 else 0",
        masked=False,
        reference="kelpseg's reading of the seed's DEM water mask",
    )
    entries = {dem.name: dem}
    for entry in (
        _threshold_mask("NDVI", "ndvi_water_threshold", below=True),
        _threshold_mask("NDWI", "ndwi_water_threshold", below=False),
    ):
        entries[entry.name] = entry
    return entries
