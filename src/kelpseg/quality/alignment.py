"""DEM misalignment: the shift between the spectral land/water boundary and the DEM land mask.

Land in the spectral bands (SWIR1 above a cut, on clear pixels) is matched against land in the
DEM (``DEM > 0``) by masked normalised cross-correlation over every integer shift up to
``max_shift`` pixels, computed with FFTs, and the peak is refined to a fraction of a pixel by a
parabola through it and its neighbours.

The cut adapts to each tile: Otsu's threshold on the clear SWIR1 values (water absorbs SWIR,
land reflects it, so a tile with both is bimodal). It does not depend on how the integers encode
reflectance (Collection 2's ``(reflectance + 0.2) / 2.75e-5``, reflectance x 10,000, Sentinel-2's
x 10,000 + 1,000: :mod:`kelpseg.io.encoding`), since Otsu's cut moves with any affine rescaling.
A tile whose SWIR1 is not clearly two-moded (Otsu's between-class share of the variance below
``min_separation``) is not measured. A fixed reflectance cut (``land_swir1``) assumes the
Collection 2 encoding: on reflectance x 10,000 every pixel reads as water and nothing is found.

Why not plain phase correlation: it needs two complete images, while Landsat tiles have clouds,
SLC-off stripes and dropped pixels. Zero-filling them puts false edges into the spectral land
map; the masked form (Padfield, "Masked object registration in the Fourier domain", 2012)
simply leaves those pixels out of the sums at every shift.

The sign follows ``np.roll``: a shift of ``(row, col)`` means the DEM's content sits ``row``
pixels further down and ``col`` pixels further right than the land it shows, so
``np.roll(dem, (-row, -col), axis=(0, 1))`` puts it back (:func:`realign_dem` does so without
wrapping around). A tile without both land and water, or with too few clear pixels, has no
measurable shift: every value is NaN and it is never flagged.

This module needs only :mod:`kelpseg.io`, so the EDA statistics can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft

from kelpseg.io.encoding import TILE_ENCODING
from kelpseg.io.tiles import BAND_NAMES, MISSING, SPECTRAL_BANDS

# Landsat Collection 2 Level-2 scaling of the tiles' integers to surface reflectance.
REFLECTANCE_SCALE = TILE_ENCODING.scale
REFLECTANCE_OFFSET = TILE_ENCODING.offset
_SWIR1 = BAND_NAMES.index("SWIR1")
_QA = BAND_NAMES.index("QA")
_DEM = BAND_NAMES.index("DEM")


@dataclass(frozen=True)
class AlignmentSettings:
    """Knobs of :func:`estimate_dem_shift`.

    Attributes:
        max_shift: largest shift searched, in pixels, along rows and columns.
        land_swir1: SWIR1 surface reflectance (Collection 2 encoding) above which a clear
            pixel is land; ``None`` (default): Otsu's cut on the tile's own SWIR1 values, which
            any encoding allows. Water and kelp canopy stay below about 0.05 (SWIR is absorbed
            by water, even under a canopy); vegetation, peat, rock and sand lie above 0.1.
        min_separation: with the Otsu cut, the share of the clear SWIR1 variance between the
            two classes below which the tile is not measured (a single Gaussian gives 0.64).
        min_class_fraction: land and water must each cover at least this share of the clear
            pixels (spectral) and of the tile (DEM), else the shift is NaN.
        min_clear_fraction: share of the tile that must be clear (no cloud, no gap).
        min_overlap: share of the clear pixels that must overlap at a shift for it to count.
        min_score: correlation at the peak below which the match is not trusted (NaN).
    """

    max_shift: int = 8
    land_swir1: float | None = None
    min_separation: float = 0.75
    min_class_fraction: float = 0.005
    min_clear_fraction: float = 0.1
    min_overlap: float = 0.5
    min_score: float = 0.3


@dataclass(frozen=True)
class DemShift:
    """The estimated DEM shift of one tile (all NaN when not measurable).

    Attributes:
        row: shift along rows in pixels (positive: the DEM sits lower than the image).
        col: shift along columns in pixels (positive: the DEM sits right of the image).
        score: normalised cross-correlation of the two land masks at the peak (-1..1).
    """

    row: float
    col: float
    score: float

    @property
    def px(self) -> float:
        """Length of the shift in pixels."""
        return float(np.hypot(self.row, self.col))

    @property
    def measured(self) -> bool:
        """Whether the tile allowed a measurement."""
        return bool(np.isfinite(self.row))


NOT_MEASURED = DemShift(float("nan"), float("nan"), float("nan"))


def otsu_threshold(values: np.ndarray, bins: int = 256) -> tuple[float, float]:
    """Otsu's threshold of a sample, and the share of its variance between the two classes.

    The histogram spans the 0.1-99.9 percentiles, so a few saturated pixels do not squeeze it.

    Returns:
        ``(cut, separation)``: values above ``cut`` form the upper class; ``separation`` is
        the between-class variance over the total (1.0: two spikes; NaN if fewer than two
        distinct values).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = np.percentile(v, [0.1, 99.9]) if v.size else (0.0, 0.0)
    if not hi > lo:
        return float("nan"), float("nan")
    counts, edges = np.histogram(np.clip(v, lo, hi), bins=bins, range=(lo, hi))
    centres = 0.5 * (edges[:-1] + edges[1:])
    p = counts / counts.sum()
    w0 = np.cumsum(p)[:-1]
    m0 = np.cumsum(p * centres)[:-1]
    mean = float((p * centres).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean * w0 - m0) ** 2 / (w0 * (1.0 - w0))
    between = np.nan_to_num(between, nan=0.0, posinf=0.0)
    best = int(np.argmax(between))
    total = float((p * (centres - mean) ** 2).sum())
    return float(edges[best + 1]), float(between[best] / total) if total > 0 else float("nan")


def spectral_land(
    data: np.ndarray, land_swir1: float | None = None, min_separation: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Land as the sensor sees it, and where it can be seen.

    Args:
        data: a raw (7, H, W) int16 tile.
        land_swir1: SWIR1 reflectance (Collection 2 encoding) above which a pixel is land;
            ``None``: Otsu's cut on the tile's clear SWIR1 values (any encoding).
        min_separation: with the Otsu cut, no land at all when the SWIR1 values are not
            two-moded enough (see :class:`AlignmentSettings`).

    Returns:
        ``(land, clear)``: boolean (H, W) maps; ``clear`` is False under clouds (QA != 0) and
        where any spectral band is missing.
    """
    bands = data[: len(SPECTRAL_BANDS)]
    clear = np.logical_and.reduce(bands != MISSING, axis=0) & (data[_QA] == 0)
    if land_swir1 is not None:
        cut = TILE_ENCODING.dn_of(land_swir1)
    elif clear.any():
        cut, separation = otsu_threshold(data[_SWIR1][clear])
        if not separation >= min_separation:
            return np.zeros_like(clear), clear
    else:
        return np.zeros_like(clear), clear
    return (data[_SWIR1] > cut) & clear, clear


def dem_land(data: np.ndarray) -> np.ndarray:
    """Land as the DEM sees it: ``DEM > 0`` (sea level and missing, far offshore, are water)."""
    return np.asarray(data[_DEM] > 0)


def masked_correlation(
    fixed: np.ndarray,
    fixed_mask: np.ndarray,
    moving: np.ndarray,
    max_shift: int,
    min_overlap: float,
) -> np.ndarray:
    """Normalised cross-correlation of ``fixed`` (on its mask) with ``moving`` at every shift.

    Entry ``[r + R, c + R]`` (``R = max_shift``) correlates ``fixed[p]`` with
    ``moving[p + (r, c)]`` over the pixels where both exist; shifts whose overlap holds fewer
    than ``min_overlap`` of the mask's pixels, or where either side is constant, are NaN.
    Zero padding by ``R`` keeps the FFT's circular correlation from wrapping around.
    """
    h, w = fixed.shape
    shape = (fft.next_fast_len(h + max_shift), fft.next_fast_len(w + max_shift))
    m = fixed_mask.astype(np.float64)
    f = fixed.astype(np.float64) * m
    g = moving.astype(np.float64)
    support = np.ones_like(g)

    def spectrum(a: np.ndarray) -> np.ndarray:
        return fft.rfft2(a, s=shape)

    fm, ff, fs, fg = spectrum(m), spectrum(f), spectrum(support), spectrum(g)

    def corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        full = fft.irfft2(np.conj(a) * b, s=shape)
        idx_r = np.arange(-max_shift, max_shift + 1) % shape[0]
        idx_c = np.arange(-max_shift, max_shift + 1) % shape[1]
        return full[np.ix_(idx_r, idx_c)]

    # Binary maps: f**2 == f and g**2 == g, so the squared sums equal the plain ones.
    n = np.rint(corr(fm, fs))
    sf, sg, sfg = corr(ff, fs), corr(fm, fg), corr(ff, fg)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_f = sf - sf**2 / n
        var_g = sg - sg**2 / n
        ncc = (sfg - sf * sg / n) / np.sqrt(var_f * var_g)
    eps = 1e-6 * np.maximum(n, 1.0)
    bad = (n < min_overlap * m.sum()) | (var_f <= eps) | (var_g <= eps) | ~np.isfinite(ncc)
    return np.where(bad, np.nan, ncc)


def _parabola_offset(left: float, centre: float, right: float) -> float:
    """Vertex of the parabola through three equally spaced samples, relative to the centre."""
    if not (np.isfinite(left) and np.isfinite(right)):
        return 0.0
    curvature = left - 2.0 * centre + right
    if curvature >= 0.0:  # not a maximum: keep the integer peak
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))


def refine_peak(surface: np.ndarray) -> tuple[float, float, float]:
    """Sub-pixel (row, col) of the maximum of a correlation surface, centred on shift 0.

    Returns:
        ``(row, col, value)``; NaN everywhere if the surface holds no finite value.
    """
    if not np.isfinite(surface).any():
        return float("nan"), float("nan"), float("nan")
    r, c = np.unravel_index(int(np.nanargmax(surface)), surface.shape)
    radius = surface.shape[0] // 2
    peak = float(surface[r, c])
    pad = np.pad(surface, 1, constant_values=np.nan)
    dr = _parabola_offset(pad[r, c + 1], peak, pad[r + 2, c + 1])
    dc = _parabola_offset(pad[r + 1, c], peak, pad[r + 1, c + 2])
    return float(r - radius + dr), float(c - radius + dc), peak


def _has_both(land: np.ndarray, support: np.ndarray, min_fraction: float) -> bool:
    total = int(support.sum())
    if total == 0:
        return False
    share = int((land & support).sum()) / total
    return min_fraction <= share <= 1.0 - min_fraction


def estimate_dem_shift(data: np.ndarray, settings: AlignmentSettings | None = None) -> DemShift:
    """Estimate how far the DEM layer of a raw tile is shifted against its spectral bands.

    Args:
        data: a raw (7, H, W) int16 tile (band order of :data:`kelpseg.io.tiles.BAND_NAMES`).
        settings: search radius, land threshold and the trust criteria.

    Returns:
        The shift (``np.roll`` convention) and the peak correlation; :data:`NOT_MEASURED`
        when the tile lacks land or water (in either layer), clear pixels, or a trusted peak.
    """
    s = settings or AlignmentSettings()
    land, clear = spectral_land(data, s.land_swir1, s.min_separation)
    dem = dem_land(data)
    h, w = dem.shape
    radius = min(s.max_shift, h // 4, w // 4)
    if radius < 1 or clear.mean() < s.min_clear_fraction:
        return NOT_MEASURED
    if not (
        _has_both(land, clear, s.min_class_fraction)
        and _has_both(dem, np.ones_like(dem), s.min_class_fraction)
    ):
        return NOT_MEASURED
    surface = masked_correlation(land, clear, dem, radius, s.min_overlap)
    row, col, score = refine_peak(surface)
    if not np.isfinite(score) or score < s.min_score:
        return NOT_MEASURED
    return DemShift(row, col, score)


def shift_with_edge(band: np.ndarray, row: int, col: int) -> np.ndarray:
    """``band`` moved by (row, col) pixels like ``np.roll``, edges repeated instead of wrapped."""
    h, w = band.shape
    pad_r, pad_c = abs(row), abs(col)
    padded = np.pad(band, ((pad_r, pad_r), (pad_c, pad_c)), mode="edge")
    return padded[pad_r - row : pad_r - row + h, pad_c - col : pad_c - col + w].copy()


def realign_dem(data: np.ndarray, shift: DemShift | tuple[float, float]) -> np.ndarray:
    """A copy of a raw tile with its DEM moved back by the (rounded) estimated shift.

    The strip uncovered at the edge repeats the nearest DEM row or column: a missing value
    (``-32768``) there would read as "far offshore", which is wrong for land.
    """
    row, col = (shift.row, shift.col) if isinstance(shift, DemShift) else shift
    out = data.copy()
    if not (np.isfinite(row) and np.isfinite(col)):
        return out
    out[_DEM] = shift_with_edge(data[_DEM], -round(row), -round(col))
    return out
