"""Reflectance scaling into the tiles' integers, checked on real Landsat 8 spectra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import spyndex
from affine import Affine
from rasterio.windows import Window

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import MISSING
from kelpseg.scenes.reader import open_scene
from kelpseg.scenes.scaling import (
    SCALINGS,
    Scaling,
    mtl_scaling,
    reflectance_to_tile_dn,
    resolve_scaling,
    to_tile_dn,
)
from kelpseg.synth.scene import reflectance_to_dn

C2 = Scaling("c2l2", *SCALINGS["c2l2"])
L8_SR = [f"SR_B{n}" for n in range(1, 8)]


def test_collection2_integers_pass_through_exactly() -> None:
    dn = np.array([[0, 1, 7273, 16000, 32767, 40000, 65455]], dtype=np.uint16)
    out = to_tile_dn(dn, C2, nodata=0)
    assert out.dtype == np.int16
    assert out.tolist() == [[MISSING, 1, 7273, 16000, 32767, 32767, 32767]]


def test_reflectance_uses_the_synth_generators_formula() -> None:
    rho = np.linspace(-0.25, 0.8, 2001)
    assert np.array_equal(reflectance_to_tile_dn(rho), reflectance_to_dn(rho))
    assert reflectance_to_tile_dn(np.array([0.0, np.nan])).tolist() == [7273, MISSING]


@pytest.mark.parametrize(
    ("name", "stored"),
    [("reflectance", 0.05), ("x10000", 500), ("c2l2", 9091)],
)
def test_known_scalings_agree_on_one_reflectance(name: str, stored: float) -> None:
    scaling = resolve_scaling(name, "float32")
    dtype = np.float32 if name == "reflectance" else np.uint16
    dn = to_tile_dn(np.array([stored], dtype=dtype), scaling)
    assert abs(int(dn[0]) - 9091) <= 1  # 0.05 reflectance


def test_custom_and_auto_scaling() -> None:
    custom = resolve_scaling("custom", "int16", scale=1e-3, offset=-0.1)
    assert (
        to_tile_dn(np.array([150], np.int16), custom)[0]
        == reflectance_to_tile_dn(np.array([0.05]))[0]
    )
    assert resolve_scaling("auto", "uint16").is_tile_scale
    assert resolve_scaling("auto", "float32").name == "reflectance"
    from_mtl = Scaling("mtl", 2e-5, -0.1)
    assert resolve_scaling("auto", "uint16", mtl=from_mtl) is from_mtl
    with pytest.raises(KelpsegError, match="custom"):
        resolve_scaling("custom", "int16", scale=0.0, offset=0.0)
    with pytest.raises(KelpsegError, match="unknown scaling"):
        resolve_scaling("dn", "int16")


def test_mtl_scaling_reads_only_the_level2_group() -> None:
    mtl = {
        "LEVEL1_RADIOMETRIC_RESCALING.REFLECTANCE_MULT_BAND_5": "2.0E-05",
        "LEVEL1_RADIOMETRIC_RESCALING.REFLECTANCE_ADD_BAND_5": "-0.1",
    }
    assert mtl_scaling(mtl, 5) is None
    mtl["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS.REFLECTANCE_MULT_BAND_5"] = "2.75e-05"
    mtl["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS.REFLECTANCE_ADD_BAND_5"] = "-0.2"
    got = mtl_scaling(mtl, 5)
    assert got is not None and got.is_tile_scale


def test_float_nodata_and_nan_become_missing() -> None:
    values = np.array([0.1, np.nan, -9999.0, np.inf], dtype=np.float32)
    out = to_tile_dn(values, Scaling("reflectance", 1.0, 0.0), nodata=-9999.0)
    assert out[0] != MISSING and (out[1:] == MISSING).all()


@pytest.fixture(scope="module")
def spectra() -> pd.DataFrame:
    return spyndex.datasets.open("spectral")


def _write_spectra(path: Path, values: np.ndarray, dtype: str, nodata: float | None) -> Path:
    profile = {
        "driver": "GTiff",
        "height": 1,
        "width": values.shape[1],
        "count": 7,
        "dtype": dtype,
        "crs": "EPSG:32721",
        "transform": Affine(30, 0, 400000, 0, -30, 4300000),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.reshape(7, 1, -1).astype(dtype))
        for i, name in enumerate(L8_SR, start=1):
            dst.set_band_description(i, name)
    return path


@pytest.mark.parametrize("stored", ["reflectance", "c2l2"])
def test_real_spectra_land_in_the_tile_range_through_the_scene_path(
    spectra: pd.DataFrame, tmp_path: Path, stored: str
) -> None:
    rho = spectra[L8_SR].to_numpy().T  # (7 bands, 120 pixels) Landsat 8 surface reflectance
    if stored == "reflectance":
        path = _write_spectra(tmp_path / "spectra.tif", rho, "float32", None)
    else:
        path = _write_spectra(tmp_path / "spectra.tif", (rho + 0.2) / 2.75e-5, "uint16", 0)
    with open_scene(path, preset="landsat89") as scene:
        assert scene.scalings["NIR"].name == stored
        raw = scene.read(Window(0, 0, scene.width, 1))[:, 0].astype(np.float64)
    swir1, nir, red = raw[0], raw[1], raw[2]
    water = (spectra["class"] == "Water").to_numpy()
    veg = (spectra["class"] == "Vegetation").to_numpy()
    # Where the tiles hold clear sea (~7,450-9,450) and vegetated land NIR (~16,000+).
    assert 7300 < np.median(nir[water]) < 9500
    assert np.median(nir[veg]) > 14000 and swir1.max() < 32767
    ndvi = (nir - red) / (nir + red)  # on the tile integers, as the models see them
    assert np.median(ndvi[water]) < 0 < 0.2 < ndvi[veg].min()
    assert ndvi[water].max() < ndvi[veg].min()
    assert (raw[5] == 0).all()  # nothing flagged: no QA raster, no missing data
    assert (raw[6] == MISSING).all()  # no DEM given
