"""Raw tiles to named float bands, and the lazy band set that channel functions read.

Indices are computed on the tile's own integers as float32 (as the seed did), not on
reflectance: ``-32768`` (missing) becomes NaN and nothing else is rescaled. The tiles'
integers behave like Landsat Collection 2 Level-2 scaled numbers,
``DN = (reflectance + 0.2) / 2.75e-5``, so water sits near 7,500-9,000 and vegetation's NIR
near 15,000-22,000.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import BAND_NAMES, MISSING

if TYPE_CHECKING:
    from kelpseg.features.entry import IndexEntry

BASE_BANDS: tuple[str, ...] = BAND_NAMES
SPECTRAL_BANDS: tuple[str, ...] = BAND_NAMES[:5]
# spyndex's band symbols for the five Landsat bands a tile holds.
SYMBOLS: dict[str, str] = {"B": "B", "G": "G", "R": "R", "N": "NIR", "S1": "SWIR1"}


def decode_raw(
    raw: torch.Tensor, *, dem_clip_zero: bool = True, missing_value: float = float("nan")
) -> dict[str, torch.Tensor]:
    """Split a (N, 7, H, W) batch into named (N, H, W) float32 bands.

    Args:
        raw: tiles in band order SWIR1, NIR, R, G, B, QA, DEM (int16 or any numeric dtype).
        dem_clip_zero: clip the DEM at 0, so "no DEM" (-32768) and any negative height become
            sea level (the seed's ``np.maximum(0, dem)``); otherwise missing DEM is NaN.
        missing_value: what missing pixels (-32768) become in every band before any index is
            computed: NaN (kelpseg), or 0.0 (the 2nd-place author's ``fill_value=0.0`` runs).

    Returns:
        A dict from band name to tensor.
    """
    if raw.ndim != 4 or raw.shape[1] != len(BASE_BANDS):
        raise KelpsegError(
            f"expected a (N, {len(BASE_BANDS)}, H, W) batch of tiles, got {tuple(raw.shape)}"
        )
    x = raw.to(torch.float32)
    bands = torch.where(x == MISSING, missing_value, x)
    out = {name: bands[:, i] for i, name in enumerate(BASE_BANDS)}
    if dem_clip_zero:
        out["DEM"] = torch.nan_to_num(out["DEM"], nan=0.0).clamp_min(0.0)
    return out


class BandSet:
    """The bands of one batch plus every channel computed from them so far.

    A channel function reads ``bands["NIR"]`` (a base band), ``bands["N"]`` (its spyndex
    symbol) or ``bands["NDVI"]`` (another registry entry, computed once and cached), and
    ``bands.constant(name, default)`` for formula constants, so per-tile spatial channels
    can use the whole batch.

    Args:
        bands: output of :func:`decode_raw`.
        registry: the index registry used to resolve entry names.
        constants: overrides of formula constants (``FeatureConfig.index_constants``).
    """

    def __init__(
        self,
        bands: Mapping[str, torch.Tensor],
        registry: Mapping[str, IndexEntry],
        constants: Mapping[str, float] | None = None,
    ) -> None:
        self._cache: dict[str, torch.Tensor] = dict(bands)
        self._registry = registry
        self._constants = dict(constants or {})
        self._busy: set[str] = set()

    def __getitem__(self, name: str) -> torch.Tensor:
        name = SYMBOLS.get(name, name)
        if name in self._cache:
            return self._cache[name]
        entry = self._registry.get(name)
        if entry is None:
            raise KelpsegError(f"unknown channel {name!r}")
        if name in self._busy:
            raise KelpsegError(f"channel {name!r} depends on itself")
        self._busy.add(name)
        try:
            value = entry.compute(self)
        finally:
            self._busy.discard(name)
        self._cache[name] = value
        return value

    def constant(self, name: str, default: float) -> float:
        """A formula constant: the configured override, else ``default``."""
        return float(self._constants.get(name, default))

    @property
    def reference(self) -> torch.Tensor:
        """A band to take shape, dtype and device from."""
        return self._cache["NIR"]
