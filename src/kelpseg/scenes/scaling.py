"""Surface reflectance to the tiles' integer range, so models trained on tiles apply to scenes.

The tiles hold Landsat Collection 2 Level-2 scaled integers (docs/data.md)::

    DN = round((reflectance + 0.2) / 2.75e-5)        reflectance 0 -> 7273, 0.7 -> 32727

so Collection 2 Level-2 ``SR_B<n>`` pixels pass through unchanged. Other inputs are read as
``reflectance = value * scale + offset`` and converted. Values are clipped to 1..32767 (int16;
reflectance above ~0.70 saturates, as in the tiles) and nodata becomes -32768.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import MISSING

C2_SCALE = 2.75e-5
C2_OFFSET = -0.2
DN_MIN, DN_MAX = 1, 32767

#: Known scalings by name: ``(scale, offset)`` from stored values to reflectance.
SCALINGS: dict[str, tuple[float, float]] = {
    "c2l2": (C2_SCALE, C2_OFFSET),  # Collection 2 Level-2 SR (the tiles' own integers)
    "reflectance": (1.0, 0.0),  # float reflectance, 0..1
    "x10000": (1e-4, 0.0),  # Collection 1 SR, Sentinel-2 L2A before 2022, many processors
}
SCALING_CHOICES = ("auto", *SCALINGS, "custom")
_MTL_GROUP = "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"


@dataclass(frozen=True)
class Scaling:
    """``reflectance = value * scale + offset``; ``name`` says where the numbers came from."""

    name: str
    scale: float
    offset: float

    @property
    def is_tile_scale(self) -> bool:
        """True when stored values already are the tiles' integers (pass-through)."""
        return bool(np.isclose(self.scale, C2_SCALE, rtol=1e-9)) and bool(
            np.isclose(self.offset, C2_OFFSET, rtol=1e-9)
        )


def mtl_scaling(mtl: Mapping[str, str], band_number: int) -> Scaling | None:
    """The Level-2 reflectance scaling of one band from MTL metadata, if it is there.

    Only the ``LEVEL2_SURFACE_REFLECTANCE_PARAMETERS`` group counts: a Level-2 MTL also holds
    Level-1 top-of-atmosphere ``REFLECTANCE_MULT_BAND_n`` values that do not apply to SR.
    """
    mult = mtl.get(f"{_MTL_GROUP}.REFLECTANCE_MULT_BAND_{band_number}")
    add = mtl.get(f"{_MTL_GROUP}.REFLECTANCE_ADD_BAND_{band_number}")
    if mult is None or add is None:
        return None
    try:
        return Scaling("mtl", float(mult), float(add))
    except ValueError as exc:
        raise KelpsegError(f"MTL band {band_number} scaling is not numeric: {mult}, {add}") from exc


def resolve_scaling(
    name: str,
    dtype: str,
    *,
    scale: float | None = None,
    offset: float | None = None,
    mtl: Scaling | None = None,
) -> Scaling:
    """Pick the scaling of a band.

    Args:
        name: ``auto``, a :data:`SCALINGS` key or ``custom`` (then ``scale`` and ``offset``).
        dtype: the band's stored dtype; ``auto`` takes integers as Collection 2 Level-2 and
            floats as reflectance, unless the MTL says otherwise.
        scale: custom multiplier (``custom`` only).
        offset: custom offset (``custom`` only).
        mtl: the scaling the scene's MTL gives for this band, if any (``auto`` prefers it).
    """
    if name == "custom":
        if scale is None or offset is None or scale == 0:
            raise KelpsegError("scaling 'custom' needs a non-zero scale and an offset")
        return Scaling("custom", float(scale), float(offset))
    if name == "auto":
        if mtl is not None:
            return mtl
        name = "c2l2" if np.issubdtype(np.dtype(dtype), np.integer) else "reflectance"
    if name not in SCALINGS:
        raise KelpsegError(f"unknown scaling {name!r}; choose one of {', '.join(SCALING_CHOICES)}")
    return Scaling(name, *SCALINGS[name])


def invalid_mask(values: np.ndarray, nodata: float | None, scaling: Scaling) -> np.ndarray:
    """Pixels that hold no data: the file's nodata, NaN/inf, and 0 in Collection 2 integers."""
    bad = ~np.isfinite(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    if nodata is not None and not np.isnan(nodata):
        bad |= values == nodata
    if scaling.is_tile_scale and values.dtype.kind in "iu":
        bad |= values == 0  # Collection 2 Level-2 fill value
    return bad


def to_tile_dn(values: np.ndarray, scaling: Scaling, nodata: float | None = None) -> np.ndarray:
    """Stored band values -> int16 tile integers (``MISSING`` where there is no data).

    Collection 2 Level-2 integers pass through exactly (only clipped to int16); anything else
    goes through reflectance in float64.
    """
    bad = invalid_mask(values, nodata, scaling)
    if scaling.is_tile_scale and values.dtype.kind in "iu":
        dn = np.clip(values, DN_MIN, DN_MAX).astype(np.int16)
    else:
        rho = values.astype(np.float64) * scaling.scale + scaling.offset
        with np.errstate(invalid="ignore"):
            dn = np.clip(np.rint((rho - C2_OFFSET) / C2_SCALE), DN_MIN, DN_MAX)
        dn = np.where(bad, DN_MIN, dn).astype(np.int16)
    dn[bad] = MISSING
    return dn


def reflectance_to_tile_dn(rho: np.ndarray) -> np.ndarray:
    """Reflectance (float) -> int16 tile integers; NaN becomes ``MISSING``."""
    return to_tile_dn(np.asarray(rho, dtype=np.float64), Scaling("reflectance", 1.0, 0.0))
