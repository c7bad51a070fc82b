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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kelpseg.console import err_console
from kelpseg.errors import KelpsegError
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


# -- Telling encodings apart ------------------------------------------------------------------
#
# Water absorbs near and short-wave infrared: clear open water is brighter in green than in NIR
# and reads SWIR1 reflectance of about 0 to 0.04 in any product. Taking a tile's water pixels
# (green above NIR by 0.01 reflectance: a difference, so the encodings' offsets cancel) and
# decoding their median SWIR1 under each encoding, only the right one lands near 0: the DN of
# reflectance 0 is ~7,300 in c2l2, 0 in x10000 and 1,000 in s2l2a, far more apart than scenes
# vary. A tile with too little water to measure says so (None) rather than guess.

#: Reflectance by which water's green exceeds its NIR, at least.
WATER_GREEN_OVER_NIR = 0.01
#: Reflectance range that the median water SWIR1 reads in the right encoding.
WATER_SWIR1 = (-0.03, 0.05)
#: Water pixels a tile needs before it is measured.
MIN_WATER = 500
_SWIR1, _NIR, _G, _QA = 0, 1, 3, 5  # kelpseg.io.tiles.BAND_NAMES: SWIR1, NIR, R, G, B, QA, DEM


def water_swir1(raw: np.ndarray, encoding: Encoding) -> float | None:
    """Median SWIR1 reflectance of a raw tile's ``(7, H, W)`` water pixels read in ``encoding``
    (None with fewer than 500 clear water pixels)."""
    swir1, nir, green = (raw[i].astype(np.float64) for i in (_SWIR1, _NIR, _G))
    clear = (raw[:5] != MISSING).all(axis=0) & (raw[_QA] == 0)
    water = clear & ((green - nir) * encoding.scale > WATER_GREEN_OVER_NIR)
    if int(water.sum()) < MIN_WATER:
        return None
    return float(np.median(swir1[water])) * encoding.scale + encoding.offset


def detect_encoding(raw: np.ndarray) -> str | None:
    """The encoding of one raw tile ``(7, H, W)`` from its water, or None when it has too
    little water to measure (or fits no known encoding, or several)."""
    low, high = WATER_SWIR1
    names = []
    for name, enc in ENCODINGS.items():
        rho = water_swir1(raw, enc)
        if rho is not None and low <= rho <= high:
            names.append(name)
    return names[0] if len(names) == 1 else None


def dataset_encoding(tiles: list[np.ndarray]) -> str | None:
    """The encoding most of ``tiles`` read as (None when none can be measured)."""
    found = [name for name in map(detect_encoding, tiles) if name is not None]
    return max(set(found), key=found.count) if found else None


class EncodingGuard:
    """Stops (with ``force``: warns once) when inputs are not in the encoding a model trained on.

    Args:
        expected: the training data's encoding; None (older models): nothing is checked.
        force: warn once and go on instead of stopping.
        warn: how the one warning line is shown.
        what: the model, as messages name it.
    """

    def __init__(
        self,
        expected: str | None,
        *,
        force: bool = False,
        warn: Callable[[str], None] | None = None,
        what: str = "the model",
    ) -> None:
        self.expected, self.force, self.what = expected, force, what
        self.warn = warn or (lambda line: None)
        self.mismatched: list[str] = []

    def check(self, raw: np.ndarray, names: Sequence[str]) -> None:
        """Check a batch ``(N, 7, H, W)`` (or one ``(7, H, W)`` array) of raw inputs.

        Raises:
            KelpsegError: an input reads as another encoding, without ``force``.
        """
        if self.expected is None:
            return
        batch = np.asarray(raw)
        batch = batch[None] if batch.ndim == 3 else batch
        for name, item in zip(names, batch, strict=True):
            found = detect_encoding(item)
            if found is None or found == self.expected:
                continue
            first = not self.mismatched
            self.mismatched.append(str(name))
            message = (
                f"its water reads as {ENCODING_TITLES[found]} "
                f"({found}), while {self.what} trained on {ENCODING_TITLES[self.expected]} "
                f"({self.expected}); convert the inputs (kelpseg.io.encoding)"
            )
            if not self.force:
                raise KelpsegError(f"{message}, or pass --ignore-encoding", name)
            if first:
                self.warn(f"{name}: {message} (--ignore-encoding: going on)")


def encoding_guard(predictor: object, force: bool) -> EncodingGuard:
    """The input check of a predictor (its ``input_encoding``), warning on stderr when ``force``."""
    return EncodingGuard(
        getattr(predictor, "input_encoding", None),
        force=force,
        warn=lambda line: err_console.print(f"[yellow]warning:[/] {line}", highlight=False),
    )


#: Encodings in words, for messages.
ENCODING_TITLES = {
    "c2l2": "Landsat Collection 2 Level-2",
    "x10000": "reflectance x 10,000",
    "s2l2a": "Sentinel-2 L2A",
}
