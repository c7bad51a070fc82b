"""The DEM band: a user raster resampled onto the scene grid, or none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import MISSING
from kelpseg.scenes.dem import DemReader, dem_to_tile, require_dem
from kelpseg.scenes.reader import open_scene
from kelpseg.scenes.synth import SyntheticScene, write_synthetic_scene


def test_dem_values_follow_the_tile_convention() -> None:
    got = dem_to_tile(np.array([np.nan, -12.0, 0.0, 0.4, 0.6, 151.5, 1e6], np.float32))
    assert got.tolist() == [MISSING, 0, 0, 0, 1, 152, 32767]


def test_dem_on_the_scene_grid_is_read_back_exactly(scene89: SyntheticScene) -> None:
    truth = scene89.raw[6]
    assert (truth > 0).any() and (truth == 0).any()
    with DemReader(scene89.dem_path) as dem:
        for window in (Window(0, 0, *truth.shape[::-1]), Window(17, 9, 70, 50)):
            shape = (window.height, window.width)
            got = dem.read(shape, window_transform(window, scene89.transform), scene89.crs)
            assert np.array_equal(got, truth[window.toslices()])


def test_dem_in_another_crs_is_resampled_onto_the_scene(tmp_path: Path) -> None:
    scene = write_synthetic_scene(tmp_path, grid=(2, 2), tile_size=64, seed=5, dem_crs="EPSG:4326")
    with rasterio.open(scene.dem_path) as src:
        assert src.crs.is_geographic
    with open_scene(scene.band_prefix, dem=scene.dem_path) as opened:
        got = opened.read(Window(0, 0, opened.width, opened.height))[6]
    truth = scene.raw[6]
    both = (got != MISSING) & (truth != MISSING)
    assert both.mean() > 0.5
    # Land / sea agree except along the coast, where two resamplings move it by a pixel.
    assert ((got[both] > 0) == (truth[both] > 0)).mean() > 0.93
    assert np.median(np.abs(got[both].astype(int) - truth[both])) <= 3


def test_dem_outside_its_extent_is_missing(scene89: SyntheticScene) -> None:
    with DemReader(scene89.dem_path) as dem:
        far = Affine(30, 0, 100_000, 0, -30, 4_000_000)  # far from the scene
        assert (dem.read((8, 8), far, scene89.crs) == MISSING).all()


def test_dem_without_crs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nocrs.tif"
    with rasterio.open(path, "w", driver="GTiff", height=4, width=4, count=1, dtype="int16") as d:
        d.write(np.zeros((1, 4, 4), np.int16))
    with pytest.raises(KelpsegError, match="no CRS"):
        DemReader(path)


def test_missing_dem_for_a_dem_model_is_a_one_line_error() -> None:
    require_dem(False, False, "scene")
    require_dem(True, True, "scene")
    with pytest.raises(KelpsegError, match="--dem") as err:
        require_dem(True, False, "LC08_x")
    assert "\n" not in str(err.value) and str(err.value).startswith("LC08_x: ")
