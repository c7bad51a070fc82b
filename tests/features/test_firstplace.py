"""The 1st place's per-tile channels against independent numpy/scipy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from kelpseg.errors import KelpsegError
from kelpseg.features import INDICES, ChannelStack, FeatureConfig
from kelpseg.features.firstplace import SPATIAL_ENTRIES
from kelpseg.features.ndvi_filters import unsharp_sigma
from kelpseg.features.spatial import distance_to, squared_distance_to, tile_nanmedian
from kelpseg.io.tiles import MISSING
from tests.features.conftest import crafted_tile

SIZE = 24


def _tile(seed: int, land_cols: int = 5) -> np.ndarray:
    """A (7, SIZE, SIZE) tile: land on the left, a cloud block, a missing column, no-DEM strip."""
    rng = np.random.default_rng(seed)
    t = np.zeros((7, SIZE, SIZE), np.int16)
    t[:5] = rng.integers(7000, 9500, (5, SIZE, SIZE))
    t[1, 8:12, 10:16] = rng.integers(11000, 13000, (4, 6))  # a bright kelp-like patch
    t[6, :, :land_cols] = rng.integers(1, 200, (SIZE, land_cols))
    t[5, :4, 14:20] = 1
    t[:5, :, 9] = MISSING
    t[6, :, -3:] = MISSING
    return t


def _raw(*tiles: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(tiles))


def _channels(
    raw: torch.Tensor, names: list[str], constants: dict[str, float] | None = None
) -> np.ndarray:
    """Unmasked channels (QA and land masking off) as float64 numpy."""
    stack = ChannelStack(
        names, mask_using_qa=False, mask_using_water_mask=False, index_constants=constants
    )
    return stack(raw).double().numpy()


def _bands(tile: np.ndarray) -> dict[str, np.ndarray]:
    f = tile.astype(np.float64)
    f[:5][tile[:5] == MISSING] = np.nan
    dem = np.maximum(f[6], 0)
    return {"NIR": f[1], "R": f[2], "QA": f[5], "DEM": dem}


def _expected_offset(tile: np.ndarray, values: np.ndarray) -> np.ndarray:
    b = _bands(tile)
    water = (b["DEM"] <= 0) & (b["QA"] == 0) & np.isfinite(values)
    if not water.any():
        return np.full_like(values, np.nan)
    return values - np.median(values[water])


def _same(ours: np.ndarray, ref: np.ndarray, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, equal_nan=True)


def test_spatial_entries_are_in_the_registry_with_kernel_sizes_in_their_names() -> None:
    assert set(SPATIAL_ENTRIES) <= set(INDICES)
    for name in ("NDVI_SOBEL3", "NDVI_MEDIAN5", "NDVI_UNSHARP9", "NDVI_LCE15", "LANDCLOSE"):
        assert name in INDICES and INDICES[name].source == "kelpseg"
    assert FeatureConfig(channels=["OFFSET_NIR", "LANDCLOSE"], index_constants={
        "land_closeness_k": 0.5, "lce_eps": 0.01}).channels == ["OFFSET_NIR", "LANDCLOSE"]  # fmt: skip


def test_tile_nanmedian_is_numpys_nanmedian_and_nan_for_empty_tiles() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, 9, 7))
    v[0, rng.random((9, 7)) < 0.4] = np.nan
    v[1, 0, 0] = np.nan  # an even count: the mean of the two middle values
    v[2] = np.nan
    valid = rng.random((4, 9, 7)) < 0.7
    ours = tile_nanmedian(torch.from_numpy(v)).numpy()
    _same(ours[[0, 1, 3]], np.nanmedian(v[[0, 1, 3]].reshape(3, -1), axis=1), atol=0)
    assert np.isnan(ours[2])
    masked = tile_nanmedian(torch.from_numpy(v), torch.from_numpy(valid)).numpy()
    for i in (0, 1, 3):
        assert masked[i] == pytest.approx(np.nanmedian(v[i][valid[i]]))


@pytest.mark.parametrize("name", ["OFFSET_NIR", "OFFSET_RNIR"])
def test_offsets_subtract_the_median_of_clear_water_per_tile(name: str) -> None:
    tiles = [_tile(0), _tile(1, land_cols=12), crafted_tile(seed=2, size=SIZE)]
    out = _channels(_raw(*tiles), [name])
    for i, tile in enumerate(tiles):
        b = _bands(tile)
        values = b["NIR"] if name == "OFFSET_NIR" else b["R"] - b["NIR"]
        _same(out[i, 0], _expected_offset(tile, values), rtol=1e-6, atol=1e-3)


def test_offsets_are_nan_without_clear_water_and_leave_other_tiles_alone() -> None:
    normal = _tile(3)
    all_land = _tile(4, land_cols=SIZE)
    all_land[6, :, -3:] = 50  # no sea without DEM either
    all_cloud = _tile(5)
    all_cloud[5] = 1
    all_missing = _tile(6)
    all_missing[1] = MISSING
    out = _channels(_raw(normal, all_land, all_cloud, all_missing), ["OFFSET_NIR", "OFFSET_RNIR"])
    assert np.isnan(out[1:]).all()
    alone = _channels(_raw(normal), ["OFFSET_NIR", "OFFSET_RNIR"])
    np.testing.assert_array_equal(out[0], alone[0])
    # The kelp patch stands out above the water level; missing pixels stay NaN.
    assert np.nanmin(out[0, 0, 8:12, 10:16]) > 1500 and np.isnan(out[0, :, :, 9]).all()


def test_offsets_are_masked_on_land_and_clouds_when_masking_is_on() -> None:
    tile = _tile(7)
    out = ChannelStack(["OFFSET_NIR"])(_raw(tile))[0, 0].numpy()
    b = _bands(tile)
    assert np.isnan(out[b["DEM"] > 0]).all() and np.isnan(out[b["QA"] > 0]).all()
    assert np.isfinite(out[(b["DEM"] <= 0) & (b["QA"] == 0) & np.isfinite(b["NIR"])]).all()


@pytest.mark.parametrize("k", [0.1, 0.5])
def test_land_closeness_matches_scipy_distance_transform(k: float) -> None:
    tiles = [_tile(8), _tile(9, land_cols=0), _tile(10, land_cols=SIZE), _tile(11, land_cols=2)]
    tiles[1][6, :, -3:] = 0  # no land at all
    tiles[2][6, :, -3:] = 10  # all land
    tiles[3][6, 20:, 15:18] = 30  # an island apart from the coast
    tiles[3][5] = 1  # clouds and missing spectra do not change distances to land
    tiles[3][:5] = MISSING
    out = _channels(_raw(*tiles), ["LANDCLOSE"], {"land_closeness_k": k})
    for i, tile in enumerate(tiles):
        land = _bands(tile)["DEM"] > 0
        if not land.any():
            expected = np.zeros(land.shape)
        else:
            expected = 1.0 / (1.0 + k * ndimage.distance_transform_edt(~land))
        _same(out[i, 0], expected)
    assert (out[2] == 1).all() and (out[1] == 0).all()


def test_land_closeness_treats_missing_dem_as_sea_and_rejects_negative_k() -> None:
    tile = _tile(12)
    kept = ChannelStack(["LANDCLOSE"], dem_clip_zero=False)(_raw(tile))[0, 0].numpy()
    expected = 1.0 / (1.0 + 0.1 * ndimage.distance_transform_edt(~(tile[6] > 0)))
    _same(kept.astype(np.float64), expected)
    assert ChannelStack(["LANDCLOSE"]).maskable == [False]  # clouds do not hide the DEM
    with pytest.raises(KelpsegError, match="land_closeness_k"):
        ChannelStack(["LANDCLOSE"], index_constants={"land_closeness_k": -1.0})(_raw(tile))


def test_torch_distance_transform_is_exact_per_tile() -> None:
    rng = np.random.default_rng(1)
    masks = rng.random((4, 19, 31)) > 0.97
    masks[1] = False
    masks[2] = True
    masks[3] = False
    masks[3, 18, 0] = True  # one corner pixel: the longest distances
    squared = squared_distance_to(torch.from_numpy(masks)).numpy()
    ours = distance_to(torch.from_numpy(masks), method="torch").numpy()
    assert np.isinf(ours[1]).all() and (ours[2] == 0).all()
    for i in (0, 3):
        reference = ndimage.distance_transform_edt(~masks[i])
        np.testing.assert_array_equal(squared[i], np.rint(reference**2))  # integers, exact
        np.testing.assert_allclose(ours[i], reference, rtol=1e-6)
    np.testing.assert_allclose(distance_to(torch.from_numpy(masks), method="scipy"), ours, 1e-6)


def _ndvi_filled(tile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b = _bands(tile)
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = (b["NIR"] - b["R"]) / (b["NIR"] + b["R"])
    ok = np.isfinite(ndvi)
    fill = np.median(ndvi[ok]) if ok.any() else 0.0
    return np.where(ok, ndvi, fill), ok


def _filter_reference(name: str, x: np.ndarray) -> np.ndarray:
    if name.startswith("NDVI_SOBEL"):
        # scipy's Sobel is 8x kornia's normalised one; replicated border = scipy's "nearest".
        gx = ndimage.sobel(x, axis=1, mode="nearest") / 8
        gy = ndimage.sobel(x, axis=0, mode="nearest") / 8
        return {"NDVI_SOBELX3": gx, "NDVI_SOBELY3": gy, "NDVI_SOBEL3": np.hypot(gx, gy)}[name]
    size = int("".join(c for c in name if c.isdigit()))
    if name.startswith("NDVI_MEDIAN"):
        return ndimage.median_filter(x, size=size, mode="mirror")
    if name.startswith("NDVI_UNSHARP"):
        r = size // 2
        g = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * unsharp_sigma(size) ** 2))
        kernel = np.outer(g, g) / np.outer(g, g).sum()
        return 2 * x - ndimage.correlate(x, kernel, mode="mirror")
    mean = ndimage.uniform_filter(x, size=size, mode="mirror")
    var = np.maximum(ndimage.uniform_filter(x * x, size=size, mode="mirror") - mean**2, 0)
    return (x - mean) / (np.sqrt(var) + 1e-3)


FILTERS = [n for n in SPATIAL_ENTRIES if n.startswith("NDVI_") and n != "NDVI_FILLED"]


@pytest.mark.parametrize("name", FILTERS)
def test_ndvi_filters_match_scipy_with_missing_pixels_filled_by_the_tile_median(
    name: str,
) -> None:
    tiles = [_tile(13), crafted_tile(seed=14, size=SIZE), _tile(15)]
    tiles[2][:5] = MISSING  # no NDVI at all: every output NaN
    out = _channels(_raw(*tiles), [name, "NDVI_FILLED"])
    for i, tile in enumerate(tiles[:2]):
        filled, ok = _ndvi_filled(tile)
        _same(out[i, 1], filled)
        # LCE divides by a small local std: float32 differences grow accordingly.
        tol = 1e-4 if "LCE" in name else 1e-6
        _same(out[i, 0], np.where(ok, _filter_reference(name, filled), np.nan), atol=tol)
    assert np.isnan(out[2, 0]).all()


def test_filters_refuse_tiles_smaller_than_half_their_kernel() -> None:
    tiny = torch.from_numpy(_tile(16)[None, :, :6, :6].copy())
    assert ChannelStack(["NDVI_MEDIAN7"])(tiny).shape == (1, 1, 6, 6)
    with pytest.raises(KelpsegError, match="too small"):
        ChannelStack(["NDVI_LCE15"])(tiny)
