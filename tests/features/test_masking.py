"""Masking and fill on crafted tiles (see conftest.crafted_tile for the layout)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kelpseg.features import FeatureConfig, InputBuilder
from kelpseg.features.masking import fill_non_finite
from tests.features.conftest import fake_stats

CHANNELS = ["NIR", "DEM", "QA", "DEMWM", "NDVI", "SABI"]
CLOUD = (slice(0, 4), slice(20, 28))
LAND = (slice(None), slice(0, 8))
STRIPE = (slice(None), 12)


def _masked(raw: torch.Tensor, **kw: object) -> np.ndarray:
    config = FeatureConfig(channels=CHANNELS, normalization="per-sample-min-max", **kw)
    return InputBuilder(config).masked_channels(raw).numpy()


def test_indices_are_masked_on_cloud_and_land_bands_are_not(raw_batch: torch.Tensor) -> None:
    out = _masked(raw_batch)
    nir, dem, qa, demwm, ndvi, sabi = (out[:, i] for i in range(len(CHANNELS)))
    for index in (ndvi, sabi):
        assert np.isnan(index[(slice(None), *CLOUD)]).all()
        assert np.isnan(index[(slice(None), *LAND)]).all()
        assert np.isnan(index[(slice(None), *STRIPE)]).all()
        assert np.isfinite(index[:, 10:, 14:20]).all()  # clear water stays
    assert (
        np.isfinite(nir[(slice(None), *CLOUD)]).all()
        and np.isfinite(nir[(slice(None), *LAND)]).all()
    )
    assert np.isnan(nir[(slice(None), *STRIPE)]).all()  # missing is NaN in bands too
    # DEMWM is the author's clipped DEM: the land's height, 0 at sea, never masked.
    assert np.isfinite(demwm).all() and (demwm[(slice(None), *LAND)] > 0).all()
    np.testing.assert_array_equal(demwm, np.maximum(dem, 0))
    assert (qa[(slice(None), *CLOUD)] == 1).all() and np.isfinite(dem).all()


@pytest.mark.parametrize(("qa", "land"), [(False, True), (True, False), (False, False)])
def test_masking_options_switch_each_mask_off(
    raw_batch: torch.Tensor, qa: bool, land: bool
) -> None:
    ndvi = _masked(raw_batch, mask_using_qa=qa, mask_using_water_mask=land)[:, 4]
    assert np.isnan(ndvi[(slice(None), *CLOUD)]).all() == qa
    assert np.isnan(ndvi[(slice(None), *LAND)]).all() == land
    assert np.isnan(ndvi[(slice(None), *STRIPE)]).all()


def test_fill_min_uses_stats_minimum_and_maximum(raw_batch: torch.Tensor) -> None:
    config = FeatureConfig(channels=CHANNELS, normalization="z-score")
    stats = fake_stats(CHANNELS)
    out = InputBuilder(config, stats).raw_channels(raw_batch).numpy()
    assert (out[:, 4][(slice(None), *CLOUD)] == stats.min["NDVI"]).all()
    assert (out[:, 0][(slice(None), *STRIPE)] == stats.min["NIR"]).all()
    assert np.isfinite(out).all()
    x = torch.tensor([[[[np.nan, -np.inf, np.inf, 2.0]]]])
    filled = fill_non_finite(x, torch.tensor(-1.0), torch.tensor(9.0))
    assert filled.flatten().tolist() == [-1.0, -1.0, 9.0, 2.0]


def test_fill_zero_and_nan(raw_batch: torch.Tensor) -> None:
    zero = InputBuilder(
        FeatureConfig(channels=CHANNELS, fill_value="zero", normalization="per-sample-min-max")
    ).raw_channels(raw_batch)
    assert (zero[:, 4][(slice(None), *CLOUD)] == 0).all() and torch.isfinite(zero).all()
    builder = InputBuilder(
        FeatureConfig(channels=CHANNELS, fill_value="nan", normalization="per-sample-min-max")
    )
    kept = builder.raw_channels(raw_batch)
    assert torch.isnan(kept[:, 4][(slice(None), *CLOUD)]).all()
    assert torch.isfinite(builder(raw_batch)).all()  # the network input is still finite


def test_fill_min_without_stats_uses_each_tiles_own_minimum(raw_batch: torch.Tensor) -> None:
    builder = InputBuilder(FeatureConfig(channels=CHANNELS, normalization="per-sample-min-max"))
    masked = builder.masked_channels(raw_batch).numpy()
    filled = builder.raw_channels(raw_batch).numpy()
    for t in range(raw_batch.shape[0]):
        assert (filled[t, 4][CLOUD] == np.nanmin(masked[t, 4])).all()


def test_dem_clip_zero(raw_batch: torch.Tensor) -> None:
    clipped = _masked(raw_batch)[:, 1]
    assert (clipped[:, :, -5:] == 0).all()
    unclipped = _masked(raw_batch, dem_clip_zero=False)[:, 1]
    assert np.isnan(unclipped[:, :, -5:]).all()
