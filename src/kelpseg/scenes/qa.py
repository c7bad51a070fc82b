"""Landsat Collection 2 QA_PIXEL / QA_RADSAT bit masks -> the tiles' QA band (0 clear, 1 bad).

QA_PIXEL bits (Collection 2, all missions): 0 fill, 1 dilated cloud, 2 cirrus (8/9 only),
3 cloud, 4 cloud shadow, 5 snow, 6 clear, 7 water. QA_RADSAT bit ``n - 1`` is set where band
``n`` saturated. As in the tiles, QA is also 1 wherever a spectral band is missing.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from kelpseg.config import StrictModel

#: Flag name (as users type it) -> QA_PIXEL bit.
QA_PIXEL_BITS: dict[str, int] = {
    "fill": 0,
    "dilated_cloud": 1,
    "cirrus": 2,
    "cloud": 3,
    "cloud_shadow": 4,
    "snow": 5,
}
DEFAULT_FLAGS = ("fill", "dilated_cloud", "cirrus", "cloud", "cloud_shadow")


class QaConfig(StrictModel):
    """Which QA bits make a pixel bad (QA = 1) for the model."""

    flags: list[str] = Field(
        default=list(DEFAULT_FLAGS),
        description=f"QA_PIXEL flags that count as bad, of {', '.join(QA_PIXEL_BITS)}",
    )
    saturation: bool = Field(
        default=True, description="pixels saturated (QA_RADSAT) in a used band count as bad"
    )

    @field_validator("flags")
    @classmethod
    def _known(cls, flags: list[str]) -> list[str]:
        unknown = [f for f in flags if f not in QA_PIXEL_BITS]
        if unknown:
            raise ValueError(f"unknown QA flags {unknown}; known: {', '.join(QA_PIXEL_BITS)}")
        return flags


def bit_mask(flags: list[str] | tuple[str, ...]) -> int:
    """The integer with the QA_PIXEL bits of ``flags`` set."""
    return sum(1 << QA_PIXEL_BITS[name] for name in set(flags))


def qa_pixel_bad(qa_pixel: np.ndarray, flags: list[str] | tuple[str, ...]) -> np.ndarray:
    """Boolean mask of pixels with any of ``flags`` set in QA_PIXEL."""
    return (qa_pixel.astype(np.int64) & bit_mask(flags)) != 0


def fill_pixels(qa_pixel: np.ndarray) -> np.ndarray:
    """Pixels outside the image footprint (QA_PIXEL bit 0)."""
    return (qa_pixel.astype(np.int64) & 1) != 0


def saturated(qa_radsat: np.ndarray, band_numbers: list[int]) -> np.ndarray:
    """Boolean mask of pixels saturated in any of the Landsat bands ``band_numbers``."""
    bits = sum(1 << (n - 1) for n in set(band_numbers))
    return (qa_radsat.astype(np.int64) & bits) != 0


def qa_band(
    spectral_missing: np.ndarray,
    config: QaConfig,
    *,
    qa_pixel: np.ndarray | None = None,
    qa_radsat: np.ndarray | None = None,
    band_numbers: list[int] | None = None,
) -> np.ndarray:
    """The tiles' QA band: int16, 1 where flagged, saturated or any spectral band missing.

    Args:
        spectral_missing: (H, W) bool, any spectral band missing at the pixel.
        config: which bits count.
        qa_pixel: the scene's QA_PIXEL window (without it, only missing data is flagged).
        qa_radsat: the scene's QA_RADSAT window, used when ``config.saturation``.
        band_numbers: the Landsat band numbers the model reads (saturation bits to test).
    """
    bad = spectral_missing.copy()
    if qa_pixel is not None:
        bad |= qa_pixel_bad(qa_pixel, config.flags)
    if qa_radsat is not None and config.saturation and band_numbers:
        bad |= saturated(qa_radsat, band_numbers)
    return bad.astype(np.int16)
