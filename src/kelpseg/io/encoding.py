"""Integer encodings of surface reflectance that tiles may hold, by name.

``reflectance = DN * scale + offset`` (docs/data.md, "Integer encodings of reflectance"):

============  =============================  ===========================  ================
name          product                        DN of reflectance 0          DN of 0.1
============  =============================  ===========================  ================
``c2l2``      Landsat Collection 2 Level-2   7,273                        10,909
``x10000``    Landsat Collection 1, archives 0                            1,000
``s2l2a``     Sentinel-2 L2A (baseline 04+)  1,000                        2,000
============  =============================  ===========================  ================

The Kelp Wanted tiles hold ``c2l2``. Tiles are int16 with ``-32768`` as nodata, so encoded values
are clipped to ``[low, 32767]`` (``low`` is 1 where the product's own nodata is 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from kelpseg.io.tiles import MISSING

EncodingName = Literal["c2l2", "x10000", "s2l2a"]
DN_MAX = 32767


@dataclass(frozen=True)
class Encoding:
    """One integer encoding of reflectance: ``reflectance = DN * scale + offset``.

    Attributes:
        name: the name users type (a key of :data:`ENCODINGS`).
        scale: reflectance per DN.
        offset: reflectance of DN 0.
        low: smallest DN written (tiles are int16; ``-32768`` is nodata).
    """

    name: str
    scale: float
    offset: float
    low: int

    def to_dn(self, reflectance: np.ndarray) -> np.ndarray:
        """Reflectance to int16 DN, rounded and clipped to ``[low, 32767]`` (NaN -> nodata)."""
        # Computed in the input's own float type: the generator's bytes depend on it.
        rho = np.asarray(reflectance)
        dn = np.clip(np.rint((np.nan_to_num(rho) - self.offset) / self.scale), self.low, DN_MAX)
        return np.where(np.isnan(rho), MISSING, dn).astype(np.int16)

    def to_reflectance(self, dn: np.ndarray) -> np.ndarray:
        """DN to float32 reflectance (nodata becomes NaN)."""
        dn = np.asarray(dn)
        rho = dn.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)
        return np.where(dn == MISSING, np.float32(np.nan), rho)

    def dn_of(self, reflectance: float) -> float:
        """The (unrounded) DN of one reflectance value, e.g. to turn a reflectance cut into DN."""
        return (reflectance - self.offset) / self.scale


ENCODINGS: dict[str, Encoding] = {
    "c2l2": Encoding("c2l2", 2.75e-5, -0.2, 1),
    "x10000": Encoding("x10000", 1e-4, 0.0, -32767),
    "s2l2a": Encoding("s2l2a", 1e-4, -0.1, 1),
}
TILE_ENCODING = ENCODINGS["c2l2"]
