"""Integer encodings of reflectance, checked on real Landsat 8 spectra (spyndex)."""

from __future__ import annotations

import numpy as np
import pytest
import spyndex

from kelpseg.io.encoding import ENCODINGS
from kelpseg.io.tiles import MISSING

COLUMNS = ["SR_B6", "SR_B5", "SR_B4", "SR_B3", "SR_B2"]  # SWIR1, NIR, R, G, B
# DN of water's SWIR1 (reflectance about 0-0.05) and of vegetation's NIR (about 0.15-0.45).
EXPECTED = {
    "c2l2": {"water_swir1": (7200, 9200), "veg_nir": (12700, 23700)},
    "x10000": {"water_swir1": (-100, 500), "veg_nir": (1500, 4500)},
    "s2l2a": {"water_swir1": (900, 1500), "veg_nir": (2500, 5500)},
}


@pytest.fixture(scope="module")
def spectra() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    df = spyndex.datasets.open("spectral")
    rho = df[COLUMNS].to_numpy().astype(np.float32)
    return rho, (df["class"] == "Water").to_numpy(), (df["class"] == "Vegetation").to_numpy()


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_real_spectra_land_in_the_encodings_range_and_come_back(
    name: str, spectra: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    rho, water, veg = spectra
    enc = ENCODINGS[name]
    dn = enc.to_dn(rho)
    assert dn.dtype == np.int16
    lo, hi = EXPECTED[name]["water_swir1"]
    assert lo <= dn[water, 0].min() and dn[water, 0].max() <= hi
    lo, hi = EXPECTED[name]["veg_nir"]
    assert lo <= dn[veg, 1].min() and dn[veg, 1].max() <= hi
    back = enc.to_reflectance(dn)
    assert np.abs(back - rho).max() <= enc.scale / 2 + 1e-6


def test_encodings_differ_where_the_products_say() -> None:
    zero, tenth = np.array([0.0], np.float32), np.array([0.1], np.float32)
    assert [ENCODINGS[n].to_dn(zero)[0] for n in ("c2l2", "x10000", "s2l2a")] == [7273, 0, 1000]
    assert [ENCODINGS[n].to_dn(tenth)[0] for n in ("c2l2", "x10000", "s2l2a")] == [
        10909,
        1000,
        2000,
    ]


def test_nodata_and_saturation() -> None:
    enc = ENCODINGS["s2l2a"]
    dn = enc.to_dn(np.array([np.nan, 5.0, -0.5], np.float32))
    assert dn.tolist() == [MISSING, 32767, 1]
    assert np.isnan(enc.to_reflectance(dn)[0])
