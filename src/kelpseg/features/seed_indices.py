"""The seed's spectral indices, computed as the 2nd-place author computed them.

Every name of the author's index lookup (the seed's 46 and the 13 more his later runs used)
keeps the author's definition, constants included: his
indices divide by ``denominator + 1e-10`` (so a zero denominator gives 0 or a huge value, not
NaN), several differ from the catalogue's namesakes (TVI is ``sqrt((R - G)/(R + G) + 0.5)``,
ARVI ``-0.18 + 1.17 NDVI``, AFRI1600 ``N - 0.66 S1 / (N + 0.66 S1)``, GARI divides by
``N - (G + (B - R))``, NDWI is ``(N - G)/(N + G)``, IPVI and CYA are his own variants), and the
three "water masks" are not masks: ``DEMWM = max(DEM, 0)``, ``NDVIWM = max(NDVI, 0)`` and
``NDWIWM = max(NDWI, 0)``. A missing DEM (NaN, with ``dem_clip_zero: false``) stays NaN in
DEMWM, and masking then hides the indices there (see :mod:`kelpseg.features.masking`).

Where the catalogue (``spyndex``) has another index under the same name, it stays reachable as
``spyndex.<name>``; kelpseg's own earlier 0/1 water masks are ``kelpseg.DEMWM``,
``kelpseg.NDVIWM`` and ``kelpseg.NDWIWM`` (see :mod:`kelpseg.features.indices`). Formulas are
written in spyndex symbols and computed on the tiles' integers, as the author did.
"""

from __future__ import annotations

import torch

from kelpseg.features.bands import BandSet
from kelpseg.features.entry import IndexEntry, formula_entry

IDB = "Index DataBase, https://www.indexdatabase.de (the 2nd-place author's index list)"
WQ = "Sentinel Hub se2waq water-quality script (the 2nd-place author's index list)"
AQ = "aquatic vegetation literature (the 2nd-place author's index list)"
EPS = 1e-10  # the author's denominator guard
_E = "1e-10"

# name: (formula, description, reference); "+1e-10" wherever the author added his EPS.
AUTHOR_FORMULAS: dict[str, tuple[str, str, str]] = {
    "AFRI1600": (f"N-0.66*(S1/(N+0.66*S1+{_E}))", "Aerosol free vegetation index 1600", IDB),
    "ARVI": (f"-0.18+1.17*((N-R)/(N+R+{_E}))", "Atmospherically Resistant VI", IDB),
    "ATSAVI": (
        f"1.22*(N-1.22*R-0.03)/(1.22*N+R-1.22*0.03+0.08*(1.0+1.22**2.0)+{_E})",
        "Adjusted transformed soil-adjusted VI (soil line 1.22, 0.03)",
        IDB,
    ),
    "AVI": ("2.0*N-R", "Ashburn Vegetation Index", IDB),
    "BWDRVI": (f"(0.1*N-B)/(0.1*N+B+{_E})", "Blue-wide dynamic range VI", IDB),
    "CDOM": (f"537.0*exp(-2.93*G/(R+{_E}))", "Coloured dissolved organic matter", WQ),
    "CHLA": (
        f"4.23*((G/65535.0)/(B/65535.0+{_E}))**3.94",
        "Chlorophyll-a (bands scaled by 1/65535)",
        WQ,
    ),
    "CI": (f"(R-B)/(R+{_E})", "Coloration Index", IDB),
    "ClGreen": (f"N/(G+{_E})-1.0", "Chlorophyll Index Green", IDB),
    "CYA": (
        f"(((G/65535.0)*(R/65535.0)+{_E})/(B/65535.0+{_E}))**2.38",
        "Cyanobacteria density (bands scaled by 1/65535, without the 115530.31 factor)",
        WQ,
    ),
    "DOC": (f"432.0*exp(-2.24*G/(R+{_E}))", "Dissolved organic carbon", WQ),
    "EVI22": (f"2.5*(N-R)/(N+2.4*R+1.0+{_E})", "Enhanced Vegetation Index 2 -2", IDB),
    "GARI": (
        f"(N-(G-(B-R)))/(N-(G+(B-R))+{_E})",
        "Green atmospherically resistant VI (the author's denominator)",
        IDB,
    ),
    "GBNDVI": (f"(N-(G+B))/(N+G+B+{_E})", "Green-Blue NDVI", IDB),
    "GDVI": ("N-G", "Green Difference Vegetation Index", IDB),
    "GVMI": (
        f"((N+0.1)-(S1+0.02))/((N+0.1)+(S1+0.02)+{_E})",
        "Global Vegetation Moisture Index",
        IDB,
    ),
    "I": (f"(1.0/30.5)*(R+G+B+{_E})", "Intensity", IDB),
    "IPVI": (
        f"(N/(N+R+{_E})/2.0)*(((R-G)/(R+{_E})+G)+1.0+{_E})",
        "Infrared percentage VI (the author's variant)",
        IDB,
    ),
    "KIVU": (f"(B-R)/(G+{_E})", "KIVU", AQ),
    "Kab1": (f"1.67-3.94*ln(B+{_E})+3.78*ln(G+{_E})", "Kabbara Index 1", AQ),
    "LogR": (f"ln(N/(R+{_E})+{_E})", "Log Ratio", IDB),
    "MCARI": (
        f"((N-R)-0.2*(N-G))*(N/(R+{_E}))",
        "Modified Chlorophyll Absorption in Reflectance Index (Landsat bands)",
        IDB,
    ),
    "MSAVI": (
        "(2.0*N+1.0-sqrt((2.0*N+1.0)**2.0-8.0*(N-R)))/2.0",
        "Modified Soil Adjusted Vegetation Index",
        IDB,
    ),
    "MVI": (f"N/(S1+{_E})", "Mid-infrared vegetation index", IDB),
    "NDAVI": (f"(N-B)/(N+B+{_E})", "Normalized Difference Aquatic Vegetation Index", AQ),
    "NDVI": (f"(N-R)/(N+R+{_E})", "Normalized Difference Vegetation Index", IDB),
    "NDWI": (f"(N-G)/(N+G+{_E})", "Normalized Difference Water Index (NIR minus green)", IDB),
    "NLI": (f"(N**2.0-R)/(N**2.0+R+{_E})", "Nonlinear vegetation index", IDB),
    "NormNIR": (f"N/(N+R+G+{_E})", "Norm NIR", IDB),
    "NormR": (f"R/(N+R+G+{_E})", "Norm R", IDB),
    "PNDVI": (f"(N-(R+G+B))/(N+R+G+B+{_E})", "Pan NDVI", IDB),
    "RBNDVI": (f"(N-(R+B))/(N+R+B+{_E})", "Red-Blue NDVI", IDB),
    "SABI": (f"(N-R)/(G+B+{_E})", "Surface Algal Bloom Index", AQ),
    "SRGR": (f"G/(R+{_E})", "Simple Ratio green / red", IDB),
    "SRNIRR": (f"N/(R+{_E})", "Simple Ratio NIR / red", IDB),
    "SRNIRSWIR": (f"N/(S1+{_E})", "Simple Ratio NIR / SWIR", IDB),
    "TURB": (f"8.93*(G/(B+{_E}))-6.39", "Water turbidity", WQ),
    "TVI": (
        f"sqrt((R-G)/(R+G+{_E})+0.5)",
        "Transformed Vegetation Index (the author's, on red and green)",
        IDB,
    ),
    "WATERCOLOR": (f"25366.0*exp(-4.53*G/(R+{_E}))", "Water color index", WQ),
    "WAVI": (f"1.5*(N-B)/(N+B+0.5+{_E})", "Water Adjusted Vegetation Index", AQ),
    "WDRVI": (f"(0.1*N-R)/(0.1*N+R+{_E})", "Wide Dynamic Range Vegetation Index", IDB),
    # Also in his lookup, outside the seed's list: used by the continued log's 2024-01-06 runs.
    "CVI": (f"N*(R/(G**2.0+{_E}))", "Chlorophyll vegetation index", IDB),
    "DVIMSS": ("2.4*N-R", "Differenced Vegetation Index MSS", IDB),
    "EVI2": (f"2.4*(N-R)/(N+R+1.0+{_E})", "Enhanced Vegetation Index 2", IDB),
    "GNDVI": (f"(N-G)/(N+G+{_E})", "Green NDVI", IDB),
    "GRNDVI": (f"(N-(R+G))/(N+R+G+{_E})", "Green-Red NDVI", IDB),
    "MSRNirRed": (
        f"((N/R+{_E})-1.0)/sqrt(N/(R+{_E})+1.0)",
        "Modified Simple Ratio NIR / red",
        IDB,
    ),
    "NormG": (f"G/(N+R+G+{_E})", "Norm green", IDB),
    "SQRTNIRR": (f"sqrt(N/(R+{_E}))", "SQRT(NIR / red)", IDB),
    "SRNIRG": (f"N/(G+{_E})", "Simple Ratio NIR / green", IDB),
    "SRSWIRNIR": (f"S1/(N+{_E})", "Simple Ratio SWIR / NIR", IDB),
    "TNDVI": (f"sqrt((N-R)/(N+R+{_E})+0.5)", "Transformed NDVI", IDB),
    "VARIGreen": (f"(G-R)/(G+R-B+{_E})", "Visible Atmospherically Resistant Index Green", IDB),
}


def _evi(bands: BandSet) -> torch.Tensor:
    n, r, b = bands["N"], bands["R"], bands["B"]
    return (2.5 * ((n - r) / (n + 6 * r - 7.5 * b + 1 + EPS))).clamp(-20_000.0, 20_000.0)


def _hue(bands: BandSet) -> torch.Tensor:
    r, g, b = bands["R"], bands["G"], bands["B"]
    return torch.arctan(((2 * r - g - b) / 30.5) * (g - b))


def _mcrig(bands: BandSet) -> torch.Tensor:
    # Plain powers, as the author wrote them: a zero band gives inf (filled with the maximum).
    return (bands["B"].pow(-1.0) - bands["G"].pow(-1.0)) * bands["N"]


def _clipped(name: str) -> IndexEntry:
    """``max(<name>, 0)``; NaN stays NaN (torch.maximum propagates it)."""

    def compute(bands: BandSet) -> torch.Tensor:
        value = bands[name]
        return torch.maximum(value, torch.zeros_like(value))

    band = {"DEM": ("DEM",), "NDVI": ("NIR", "R"), "NDWI": ("NIR", "G")}[name]
    what = "the DEM" if name == "DEM" else f"the author's {name}"
    return IndexEntry(
        name=f"{name}WM",
        compute=compute,
        bands=band,
        source="author",
        description=f"{name} water mask as the author computed it: {what} clipped at 0 "
        "(NaN where it is missing)",
        formula=f"max({name}, 0)",
        masked=False,
        reference="the 2nd-place author's index list",
    )


def author_entries() -> dict[str, IndexEntry]:
    """The seed's index names with the author's definitions, by name."""
    entries = {
        name: formula_entry(name, formula, desc, source="author", reference=ref)
        for name, (formula, desc, ref) in AUTHOR_FORMULAS.items()
    }
    entries["EVI"] = IndexEntry(
        name="EVI",
        compute=_evi,
        bands=("NIR", "R", "B"),
        source="author",
        description="Enhanced Vegetation Index, clamped to [-20000, 20000] as the author did",
        formula=f"clamp(2.5*((N-R)/(N+6.0*R-7.5*B+1.0+{_E})), -20000, 20000)",
        reference=IDB,
    )
    entries["mCRIG"] = IndexEntry(
        name="mCRIG",
        compute=_mcrig,
        bands=("NIR", "G", "B"),
        source="author",
        description="Modified Carotenoid Reflectance Index Green",
        formula="(B**-1-G**-1)*N with torch powers (inf where a band is 0)",
        reference=IDB,
    )
    entries["H"] = IndexEntry(
        name="H",
        compute=_hue,
        bands=("R", "G", "B"),
        source="author",
        description="Hue",
        formula="arctan(((2*R-G-B)/30.5)*(G-B))",
        reference=IDB,
    )
    for name in ("DEM", "NDVI", "NDWI"):
        entry = _clipped(name)
        entries[entry.name] = entry
    return entries


AUTHOR_INDEX_NAMES: tuple[str, ...] = tuple(sorted(author_entries(), key=str.lower))
