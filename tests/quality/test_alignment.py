"""DEM misalignment estimate: known shifts recovered, unmeasurable tiles NaN, re-alignment."""

from __future__ import annotations

import numpy as np
import pytest

from kelpseg.eda.config import EdaConfig
from kelpseg.eda.tile_stats import TILE_STATS, TileInput, tile_stats_row
from kelpseg.io.encoding import ENCODINGS
from kelpseg.io.tiles import MISSING, Tile
from kelpseg.quality.alignment import (
    AlignmentSettings,
    estimate_dem_shift,
    otsu_threshold,
    realign_dem,
    refine_peak,
    shift_with_edge,
)
from tests.quality.conftest import SIZE, add_clouds_and_gaps, coast_field, crafted_tile

SHIFTS = [(0, 0), (2, 0), (0, -2), (3, -1), (-4, 4), (-1, -6)]


@pytest.mark.parametrize("shift", SHIFTS)
def test_known_integer_shift_is_recovered_within_half_a_pixel(shift: tuple[int, int]) -> None:
    found = estimate_dem_shift(crafted_tile(shift, seed=sum(shift) + 7))
    assert found.measured
    assert abs(found.row - shift[0]) <= 0.5 and abs(found.col - shift[1]) <= 0.5
    assert found.px == pytest.approx(np.hypot(found.row, found.col))
    assert found.score > 0.8


def test_shift_is_recovered_under_clouds_and_missing_stripes() -> None:
    data = add_clouds_and_gaps(crafted_tile((-3, 2), seed=3))
    assert (data[0] == MISSING).any() and (data[5] == 1).mean() > 0.3
    found = estimate_dem_shift(data)
    assert abs(found.row + 3) <= 0.5 and abs(found.col - 2) <= 0.5


def test_half_pixel_shift_is_recovered_within_half_a_pixel() -> None:
    # The DEM's coastline comes from the same smooth field sampled 2.5 rows lower.
    field = coast_field(seed=4)
    rows = np.arange(field.shape[0], dtype=float)
    moved = np.array([np.interp(rows - 2.5, rows, col) for col in field.T]).T
    image = crafted_tile(seed=4)
    dem = crafted_tile(seed=4, land=moved > 0)[6]
    image[6] = dem
    found = estimate_dem_shift(image)
    assert abs(found.row - 2.5) <= 0.5 and abs(found.col) <= 0.5


def _water_only() -> np.ndarray:
    data = crafted_tile(seed=1)
    data[0] = data[0].min()
    data[6] = MISSING  # no DEM far over the sea
    return data


def _land_only() -> np.ndarray:
    data = crafted_tile(seed=1)
    data[0] = data[0].max()
    data[6] = 30
    return data


def _cloud_only() -> np.ndarray:
    data = crafted_tile((3, 3), seed=1)
    data[5] = 1
    return data


@pytest.mark.parametrize("make", [_water_only, _land_only, _cloud_only])
def test_tiles_without_land_water_or_clear_pixels_have_nan_shift(make) -> None:  # type: ignore[no-untyped-def]
    found = estimate_dem_shift(make())
    assert not found.measured
    assert np.isnan([found.row, found.col, found.score, found.px]).all()


def test_dem_without_land_while_the_image_shows_some_is_not_measured() -> None:
    data = crafted_tile((4, 0), seed=2)
    data[6] = 0
    assert not estimate_dem_shift(data).measured


def test_low_peak_correlation_is_not_trusted() -> None:
    data = crafted_tile((2, 2), seed=5)
    flip = np.random.default_rng(0).random(data[6].shape) < 0.1  # a noisy DEM: imperfect match
    data[6] = np.where(flip, 25 - data[6], data[6])
    assert 0.3 < estimate_dem_shift(data).score < 0.999
    assert not estimate_dem_shift(data, AlignmentSettings(min_score=0.999)).measured


def test_shift_beyond_the_search_radius_is_not_found() -> None:
    found = estimate_dem_shift(crafted_tile((6, 0), seed=6), AlignmentSettings(max_shift=3))
    assert not (found.measured and abs(found.row - 6) <= 0.5)


def test_refine_peak_finds_the_vertex_of_a_parabola() -> None:
    r, c = np.mgrid[-3:4, -3:4].astype(float)
    surface = 1.0 - 0.1 * ((r - 1.3) ** 2 + (c + 0.6) ** 2)
    row, col, value = refine_peak(surface)
    assert (row, col) == (pytest.approx(1.3), pytest.approx(-0.6))
    assert value == surface.max()
    assert np.isnan(refine_peak(np.full((3, 3), np.nan))).all()


def test_shift_with_edge_moves_like_roll_and_repeats_edges() -> None:
    band = np.arange(25).reshape(5, 5)
    moved = shift_with_edge(band, 1, -2)
    assert np.array_equal(moved[1:, :3], np.roll(band, (1, -2), axis=(0, 1))[1:, :3])
    assert np.array_equal(moved[0], moved[1])  # the uncovered top row repeats the next
    assert np.array_equal(moved[:, 3], moved[:, 2]) and np.array_equal(moved[:, 4], moved[:, 2])


def test_realign_puts_the_dem_back() -> None:
    aligned = crafted_tile(seed=8)
    shifted = crafted_tile((3, -2), seed=8)
    fixed = realign_dem(shifted, estimate_dem_shift(shifted))
    inner = (slice(4, -4), slice(4, -4))
    assert np.array_equal(fixed[6][inner], aligned[6][inner])
    assert np.array_equal(fixed[:6], shifted[:6])  # spectral bands untouched
    remeasured = estimate_dem_shift(fixed)
    assert abs(remeasured.row) <= 0.5 and abs(remeasured.col) <= 0.5
    assert np.array_equal(realign_dem(shifted, (float("nan"), 1.0)), shifted)


def _stats(data: np.ndarray, **thresholds: float) -> dict:
    cfg = EdaConfig(tile_size=0, stats=["alignment"], thresholds=thresholds)  # type: ignore[arg-type]
    return tile_stats_row(TileInput(Tile("T1", data)), cfg, [TILE_STATS["alignment"]])


def test_eda_statistics_flag_tiles_shifted_by_more_than_a_pixel() -> None:
    shifted = _stats(crafted_tile((2, -2), seed=9))
    assert shifted["dem_misaligned"] is True
    assert shifted["dem_shift_row"] == pytest.approx(2, abs=0.5)
    assert shifted["dem_shift_col"] == pytest.approx(-2, abs=0.5)
    assert shifted["dem_shift_px"] == pytest.approx(np.hypot(2, 2), abs=0.5)
    assert _stats(crafted_tile(seed=9))["dem_misaligned"] is False
    assert _stats(crafted_tile((2, -2), seed=9), dem_misaligned_px=5.0)["dem_misaligned"] is False
    unmeasured = _stats(_water_only())
    assert unmeasured["dem_misaligned"] is False and np.isnan(unmeasured["dem_shift_px"])


def test_tiny_tiles_are_not_measured() -> None:
    small = crafted_tile((1, 1), seed=2)[:, :6, :6].copy()
    assert not estimate_dem_shift(small).measured
    assert SIZE > 6


def _reencode(data: np.ndarray, encoding: str) -> np.ndarray:
    """The tile with its spectral bands in another integer encoding (same reflectance)."""
    out = data.copy()
    rho = ENCODINGS["c2l2"].to_reflectance(data[:5])
    out[:5] = ENCODINGS[encoding].to_dn(rho)
    return out


@pytest.mark.parametrize("encoding", ["c2l2", "x10000", "s2l2a"])
def test_shift_is_found_whatever_the_integer_encoding(encoding: str) -> None:
    data = _reencode(add_clouds_and_gaps(crafted_tile((3, -2), seed=4)), encoding)
    found = estimate_dem_shift(data)
    assert found.measured and abs(found.row - 3) <= 0.5 and abs(found.col + 2) <= 0.5


def test_a_fixed_collection_2_cut_finds_nothing_on_reflectance_x_10000() -> None:
    data = crafted_tile((3, 0), seed=4)
    fixed = AlignmentSettings(land_swir1=0.08)
    assert estimate_dem_shift(data, fixed).measured
    assert not estimate_dem_shift(_reencode(data, "x10000"), fixed).measured


def test_otsu_separates_two_modes_and_not_one() -> None:
    rng = np.random.default_rng(0)
    two = np.concatenate([rng.normal(100, 5, 9000), rng.normal(400, 30, 1000)])
    cut, separation = otsu_threshold(two)
    assert 110 < cut < 300 and separation > 0.9
    assert (two > cut).mean() == pytest.approx(0.1, abs=0.002)
    _, single = otsu_threshold(rng.normal(100, 5, 10000))
    assert 0.55 < single < 0.75  # 2 / pi for a Gaussian
    assert np.isnan(otsu_threshold(np.full(50, 7.0))[0])
