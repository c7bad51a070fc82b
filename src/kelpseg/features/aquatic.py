"""Entries written here: the seed's water-colour, aquatic and mask channels spyndex lacks.

Also the few indices whose acronym spyndex uses for a different index (AVI, GDVI, MVI): the
seed's definition keeps the short name and spyndex's stays reachable as ``spyndex.<name>``
(see :mod:`kelpseg.features.indices`). Formulas follow the
seed's list of indices (after the Index DataBase, indexdatabase.de, and the water-quality
literature it drew on) and are written in spyndex symbols; they are computed on the tiles'
integers like every other index, so absolute levels of the water-quality ones (CDOM, CHLA ...)
are not physical units, only monotone features.
"""

from __future__ import annotations

import torch

from kelpseg.features.bands import BandSet
from kelpseg.features.entry import IndexEntry, formula_entry

IDB = "Index DataBase, https://www.indexdatabase.de (as listed by the seed)"
WQ = "Landsat water-quality regressions listed by the seed (kelp-wanted 2nd place)"

# name: (formula, description, reference, constants)
_FORMULAS: dict[str, tuple[str, str, str, dict[str, float]]] = {
    "AVI": ("2.0*N-R", "Ashburn Vegetation Index (spyndex's AVI is another index)", IDB, {}),
    "CDOM": ("537.0*exp(-2.93*G/R)", "Coloured dissolved organic matter", WQ, {}),
    "CHLA": ("4.23*(G/B)**3.94", "Chlorophyll-a concentration", WQ, {}),
    "CI": ("(R-B)/R", "Coloration Index", IDB, {}),
    "ClGreen": ("N/G-1.0", "Chlorophyll Index Green", IDB, {}),
    "CYA": ("115530.31*(G*R/B)**2.38", "Cyanobacteria concentration", WQ, {}),
    "DOC": ("432.0*exp(-2.24*G/R)", "Dissolved organic carbon", WQ, {}),
    "EVI22": ("2.5*(N-R)/(N+2.4*R+1.0)", "Enhanced Vegetation Index 2 (two-band)", IDB, {}),
    "GDVI": ("N-G", "Green Difference Vegetation Index (spyndex's GDVI is generalised)", IDB, {}),
    "GVMI": (
        "((N+0.1)-(S1+0.02))/((N+0.1)+(S1+0.02))",
        "Global Vegetation Moisture Index",
        IDB,
        {},
    ),
    "I": ("(R+G+B)/30.5", "Intensity", IDB, {}),
    "KIVU": ("(B-R)/G", "KIVU aquatic index", WQ, {}),
    "Kab1": ("1.67-3.94*ln(B)+3.78*ln(G)", "Kabbara chlorophyll index", WQ, {}),
    "LogR": ("ln(N/R)", "Log ratio of NIR and red", IDB, {}),
    "MCARI": (
        "((N-R)-0.2*(N-G))*(N/R)",
        "Modified Chlorophyll Absorption in Reflectance Index (Landsat bands)",
        IDB,
        {},
    ),
    "mCRIG": ("(1.0/B-1.0/G)*N", "Modified Carotenoid Reflectance Index Green", IDB, {}),
    "MVI": ("N/S1", "Mid-infrared Vegetation Index (spyndex's MVI is the Mangrove VI)", IDB, {}),
    "NDAVI": ("(N-B)/(N+B)", "Normalized Difference Aquatic Vegetation Index", WQ, {}),
    "PNDVI": ("(N-(G+R+B))/(N+(G+R+B))", "Pan NDVI", IDB, {}),
    "RBNDVI": ("(N-(R+B))/(N+(R+B))", "Red-Blue NDVI", IDB, {}),
    "SABI": ("(N-R)/(B+G)", "Surface Algal Bloom Index", WQ, {}),
    "SRGR": ("G/R", "Simple ratio green / red", IDB, {}),
    "SRNIRR": ("N/R", "Simple ratio NIR / red", IDB, {}),
    "SRNIRSWIR": ("N/S1", "Simple ratio NIR / SWIR1", IDB, {}),
    "TURB": ("8.93*(G/B)-6.39", "Turbidity", WQ, {}),
    "WATERCOLOR": ("25366.0*exp(-4.53*G/R)", "Water colour (Pt-Co scale regression)", WQ, {}),
    "WAVI": ("1.5*(N-B)/(N+B+0.5)", "Water Adjusted Vegetation Index", WQ, {}),
}


def _dem_water_mask(bands: BandSet) -> torch.Tensor:
    # No DEM (NaN when not clipped) means open sea, so only DEM > 0 counts as land.
    return (~(bands["DEM"] > 0)).to(torch.float32)


def _threshold_mask(index: str, constant: str, below: bool) -> IndexEntry:
    def compute(bands: BandSet) -> torch.Tensor:
        value = bands[index]
        cut = bands.constant(constant, 0.0)
        water = value < cut if below else value > cut
        return torch.where(torch.isnan(value), float("nan"), water.to(torch.float32))

    sign = "<" if below else ">"
    return IndexEntry(
        name=f"{index}WM",
        compute=compute,
        bands=("NIR", "R") if index == "NDVI" else ("NIR", "G"),
        source="kelpseg",
        description=f"{index} water mask: 1 where {index} {sign} {constant} (water), else 0",
        formula=f"1 if {index} {sign} {constant} else 0",
        constants={constant: 0.0},
        reference="the seed's water masks from NDVI / NDWI",
    )


def kelpseg_entries() -> dict[str, IndexEntry]:
    """The entries defined in this module, by name."""
    entries = {
        name: formula_entry(name, formula, desc, source="kelpseg", constants=const, reference=ref)
        for name, (formula, desc, ref, const) in _FORMULAS.items()
    }
    entries["DEMWM"] = IndexEntry(
        name="DEMWM",
        compute=_dem_water_mask,
        bands=("DEM",),
        source="kelpseg",
        description="DEM water mask: 1 at sea level or without DEM, 0 on land (DEM > 0)",
        formula="1 if not DEM > 0 else 0",
        masked=False,
        reference="the seed's DEM water mask",
    )
    entries["NDVIWM"] = _threshold_mask("NDVI", "ndvi_water_threshold", below=True)
    entries["NDWIWM"] = _threshold_mask("NDWI", "ndwi_water_threshold", below=False)
    return entries
