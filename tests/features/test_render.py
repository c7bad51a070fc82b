from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.features import FeatureConfig, render_channel
from kelpseg.io.tiles import read_tile
from tests.features.conftest import crafted_tile, fake_stats


def test_render_shows_masked_pixels_as_nan_without_stats(stats_tiles: list[Path]) -> None:
    image = render_channel(stats_tiles[0], "NDVI")
    assert image.shape == (32, 32) and image.dtype == np.float32
    assert np.isnan(image[:, :8]).all() and np.isfinite(image[10:, 14:20]).all()
    same = render_channel(read_tile(stats_tiles[0], expected_size=None), "NDVI")
    np.testing.assert_array_equal(image, same)
    unmasked = render_channel(stats_tiles[0], "NDVI", FeatureConfig(mask_using_water_mask=False))
    assert np.isfinite(unmasked[10:, :8]).all()


def test_render_with_stats_is_the_model_input() -> None:
    tile = crafted_tile(seed=4)
    image = render_channel(
        tile, "SABI", FeatureConfig(normalization="quantile"), fake_stats(["SABI"])
    )
    assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
    with pytest.raises(KelpsegError, match="unknown channel"):
        render_channel(tile, "NOPE")
