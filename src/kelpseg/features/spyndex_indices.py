"""Entries taken from the Awesome Spectral Indices catalogue (the ``spyndex`` package).

Every catalogue index whose bands are among Landsat's B, G, R, N and S1 becomes an entry,
computed from spyndex's own formula string (compiled by :mod:`kelpseg.features.expression`,
never retyped). Constants take spyndex's defaults; central wavelengths (``lambdaG`` ...) are
Landsat 7 ETM+'s, the middle of the three sensors the tiles come from (TM, ETM+ and OLI differ
by at most 45 nm). Indices needing a constant with no default (``PAR``) are left out.
"""

from __future__ import annotations

import spyndex

from kelpseg.features.bands import SYMBOLS
from kelpseg.features.entry import IndexEntry, formula_entry

WAVELENGTH_PLATFORM = "landsat7"


def landsat_constants() -> dict[str, float]:
    """spyndex's constant defaults plus Landsat central wavelengths (nm) for ``lambda*``."""
    values: dict[str, float] = {}
    for key in spyndex.constants:
        default = spyndex.constants[key].default
        if isinstance(default, int | float) and not isinstance(default, bool):
            values[key] = float(default)
    for symbol in SYMBOLS:
        band = getattr(spyndex.bands[symbol], WAVELENGTH_PLATFORM)
        values[f"lambda{symbol}"] = float(band.wavelength)
    return values


def spyndex_entries() -> tuple[dict[str, IndexEntry], dict[str, str]]:
    """Entries for every computable catalogue index, and the reasons others were skipped.

    Returns:
        (entries by name, skipped index name -> why).
    """
    constants = landsat_constants()
    band_keys = set(spyndex.bands)
    entries: dict[str, IndexEntry] = {}
    skipped: dict[str, str] = {}
    for name in sorted(spyndex.indices):
        index = spyndex.indices[name]
        needed = set(index.bands)
        bands = needed & band_keys
        if not bands or not bands <= SYMBOLS.keys():
            continue  # radar, kernel, or a band the tiles lack (red edge, SWIR2, thermal ...)
        missing = needed - bands - constants.keys()
        if missing:
            skipped[name] = f"constant(s) without a default: {', '.join(sorted(missing))}"
            continue
        entries[name] = formula_entry(
            name,
            index.formula,
            f"{index.long_name} ({index.application_domain})",
            source="spyndex",
            constants={c: constants[c] for c in needed - bands},
            reference=str(index.reference),
        )
    return entries, skipped
