"""Per-tile statistics computed from the raw arrays: pure functions, no I/O scheduling.

Each statistic group is a :class:`TileStat`: a function from one tile (and its label, if any)
to a dict of named values, plus the pandas dtype of each column. :data:`TILE_STATS` is the one
registry; :func:`tile_stats_row` merges the selected groups into one row per tile. To add a
statistic (e.g. a DEM misalignment estimate), write ``fn(tile: TileInput, config: EdaConfig)``
returning a dict, and add a ``TileStat`` entry to :data:`TILE_STATS`.

Every ``*_pct`` value is a fraction in [0, 1]; flags are booleans. docs/eda.md explains each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from kelpseg.eda.config import EdaConfig
from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import BAND_NAMES, MISSING, SPECTRAL_BANDS, Tile
from kelpseg.quality.alignment import estimate_dem_shift

StatValues = dict[str, Any]


@dataclass(frozen=True)
class TileInput:
    """One tile's arrays as the statistic functions see them.

    Attributes:
        tile: the satellite tile (7 bands, ``MISSING`` = -32768).
        label: the (H, W) 0/1 kelp label, or ``None`` for an unlabelled (test) tile.
    """

    tile: Tile
    label: np.ndarray | None = None

    @cached_property
    def pixels(self) -> int:
        """Pixels per band (height x width)."""
        height, width = self.tile.shape
        return height * width

    @cached_property
    def spectral_missing(self) -> np.ndarray:
        """(H, W) True where at least one spectral band is ``MISSING``."""
        # logical_or.reduce: several times faster than .any(axis=0) on a (5, H, W) mask.
        return np.logical_or.reduce(self.tile.data[: len(SPECTRAL_BANDS)] == MISSING, axis=0)


@dataclass(frozen=True)
class TileStat:
    """A named group of per-tile statistics.

    Attributes:
        name: registry key, as users type it in ``EdaConfig.stats``.
        compute: ``(TileInput, EdaConfig) -> {column: value}``.
        columns: output column -> pandas dtype, in output order.
        needs_label: the group describes the label (NA for unlabelled tiles).
    """

    name: str
    compute: Callable[[TileInput, EdaConfig], StatValues]
    columns: Mapping[str, str] = field(default_factory=dict)
    needs_label: bool = False


def _fraction(count: int, total: int) -> float:
    return float(count) / total if total else 0.0


def label_stats(inp: TileInput, config: EdaConfig) -> StatValues:
    """Kelp pixel counts and fraction of the label."""
    if inp.label is None:
        raise KelpsegError("label statistics need a label", inp.tile.path)
    kelp = int(np.count_nonzero(inp.label == 1))
    pct = _fraction(kelp, inp.pixels)
    return {
        "has_kelp": kelp > 0,
        "kelp_pixels": kelp,
        "non_kelp_pixels": inp.pixels - kelp,
        "kelp_pixels_pct": pct,
        "high_kelp_pixels_pct": pct > config.thresholds.high_kelp_pixels_pct,
    }


def dem_stats(inp: TileInput, config: EdaConfig) -> StatValues:
    """DEM gaps, sea-level pixels and water (DEM <= 0 or missing)."""
    dem = inp.tile.band("DEM")
    nan = int(np.count_nonzero(dem == MISSING))
    zero = int(np.count_nonzero(dem == 0))
    # MISSING (-32768) is <= 0 too: "no DEM" only happens far over the sea.
    water = int(np.count_nonzero(dem <= 0))
    water_pct = _fraction(water, inp.pixels)
    return {
        "dem_nan_pixels": nan,
        "dem_has_nans": nan > 0,
        "dem_nan_pixels_pct": _fraction(nan, inp.pixels),
        "dem_zero_pixels": zero,
        "dem_zero_pixels_pct": _fraction(zero, inp.pixels),
        "water_pixels": water,
        "water_pixels_pct": water_pct,
        "almost_all_water": water_pct > config.thresholds.almost_all_water,
    }


def qa_stats(inp: TileInput, config: EdaConfig) -> StatValues:
    """QA-flagged pixels, and the share of them that are cloud rather than dropped pixels."""
    qa = inp.tile.band("QA")
    flagged = qa != 0
    corrupted = int(np.count_nonzero(flagged))
    pct = _fraction(corrupted, inp.pixels)
    # QA flags clouds and faulty pixels alike; faulty pixels are MISSING in some spectral
    # band, clouds are not, so a flagged pixel with every band present counts as cloud.
    cloud = int(np.count_nonzero(flagged & ~inp.spectral_missing))
    return {
        "qa_corrupted_pixels": corrupted,
        "qa_ok": corrupted == 0,
        "qa_corrupted_pixels_pct": pct,
        "high_corrupted_pixels_pct": pct > config.thresholds.high_corrupted_pixels_pct,
        "cloud_fraction": _fraction(cloud, inp.pixels),
    }


def missing_column(band: str) -> str:
    """Column name of a band's missing-pixel count: ``"NIR"`` -> ``"nir_missing_pixels"``."""
    return f"{band.lower()}_missing_pixels"


def missing_stats(inp: TileInput, config: EdaConfig) -> StatValues:
    """Pixels equal to -32768 in each band, and in any spectral band."""
    values: StatValues = {"pixels": inp.pixels}
    # Band by band: count_nonzero over axes of the whole stack is five times slower.
    for name, band in zip(BAND_NAMES, inp.tile.data, strict=True):
        values[missing_column(name)] = int(np.count_nonzero(band == MISSING))
    values["spectral_missing_pixels"] = int(np.count_nonzero(inp.spectral_missing))
    return values


def alignment_stats(inp: TileInput, config: EdaConfig) -> StatValues:
    """Shift of the DEM against the spectral land/water boundary (NaN if not measurable).

    See :mod:`kelpseg.quality.alignment`; tiles without land or water are never flagged.
    """
    shift = estimate_dem_shift(inp.tile.data)
    return {
        "dem_shift_row": shift.row,
        "dem_shift_col": shift.col,
        "dem_shift_px": shift.px,
        "dem_shift_score": shift.score,
        "dem_misaligned": shift.measured and shift.px > config.thresholds.dem_misaligned_px,
    }


_MISSING_COLUMNS = {missing_column(b): "int64" for b in BAND_NAMES}

TILE_STATS: dict[str, TileStat] = {
    "label": TileStat(
        "label",
        label_stats,
        {
            "has_kelp": "boolean",
            "kelp_pixels": "Int64",
            "non_kelp_pixels": "Int64",
            "kelp_pixels_pct": "Float64",
            "high_kelp_pixels_pct": "boolean",
        },
        needs_label=True,
    ),
    "dem": TileStat(
        "dem",
        dem_stats,
        {
            "dem_nan_pixels": "int64",
            "dem_has_nans": "bool",
            "dem_nan_pixels_pct": "float64",
            "dem_zero_pixels": "int64",
            "dem_zero_pixels_pct": "float64",
            "water_pixels": "int64",
            "water_pixels_pct": "float64",
            "almost_all_water": "bool",
        },
    ),
    "qa": TileStat(
        "qa",
        qa_stats,
        {
            "qa_corrupted_pixels": "int64",
            "qa_ok": "bool",
            "qa_corrupted_pixels_pct": "float64",
            "high_corrupted_pixels_pct": "bool",
            "cloud_fraction": "float64",
        },
    ),
    "missing": TileStat(
        "missing",
        missing_stats,
        {"pixels": "int64", **_MISSING_COLUMNS, "spectral_missing_pixels": "int64"},
    ),
    "alignment": TileStat(
        "alignment",
        alignment_stats,
        {
            "dem_shift_row": "float64",
            "dem_shift_col": "float64",
            "dem_shift_px": "float64",
            "dem_shift_score": "float64",
            "dem_misaligned": "bool",
        },
    ),
}


def select_stats(config: EdaConfig) -> list[TileStat]:
    """The statistic groups named in ``config.stats`` (all of :data:`TILE_STATS` if ``None``)."""
    if config.stats is None:
        return list(TILE_STATS.values())
    unknown = [name for name in config.stats if name not in TILE_STATS]
    if unknown:
        known = ", ".join(TILE_STATS)
        raise KelpsegError(f"config key 'stats': unknown group(s) {unknown}; known: {known}")
    return [TILE_STATS[name] for name in config.stats]


def stat_columns(stats: list[TileStat]) -> dict[str, str]:
    """Output column -> dtype of the selected groups, in order; errors on a duplicate column."""
    columns: dict[str, str] = {}
    for stat in stats:
        for column, dtype in stat.columns.items():
            if column in columns:
                raise KelpsegError(f"statistic column {column!r} defined twice ({stat.name})")
            columns[column] = dtype
    return columns


def tile_stats_row(inp: TileInput, config: EdaConfig, stats: list[TileStat]) -> StatValues:
    """One merged row of every selected group; label groups are ``None`` without a label."""
    row: StatValues = {}
    for stat in stats:
        if stat.needs_label and inp.label is None:
            values: StatValues = dict.fromkeys(stat.columns)
        else:
            values = stat.compute(inp, config)
        if set(values) != set(stat.columns):
            raise KelpsegError(
                f"statistic group {stat.name!r} returned {sorted(values)}, "
                f"declared {sorted(stat.columns)}"
            )
        row.update(values)
    return row


def stats_frame(rows: list[StatValues], columns: Mapping[str, str]) -> pd.DataFrame:
    """Rows of :func:`tile_stats_row` as a typed DataFrame (nullable dtypes for label columns)."""
    frame = pd.DataFrame(rows, columns=list(columns))
    return frame.astype(dict(columns))
