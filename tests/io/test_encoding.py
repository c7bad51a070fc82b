"""Integer encodings of reflectance, checked on real Landsat 8 spectra (spyndex)."""

from __future__ import annotations

import numpy as np
import pytest
import spyndex

from kelpseg.errors import KelpsegError
from kelpseg.io.encoding import ENCODINGS, EncodingGuard, detect_encoding
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


def _tile(rho: np.ndarray, encoding: str, rng: np.random.Generator) -> np.ndarray:
    """A (7, 60, 60) raw tile of the given spectra (drawn at random), QA clear, DEM 0."""
    picks = rng.integers(0, len(rho), size=60 * 60)
    bands = ENCODINGS[encoding].to_dn(rho[picks]).T.reshape(5, 60, 60)
    return np.concatenate([bands, np.zeros((2, 60, 60), np.int16)])


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_a_coastal_tile_of_real_spectra_tells_its_encoding(
    name: str, spectra: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    rho, water, veg = spectra
    rng = np.random.default_rng(0)
    coast = np.concatenate([rho[water]] * 3 + [rho[veg]])  # mostly water, some land
    assert detect_encoding(_tile(coast, name, rng)) == name
    # A tile without water cannot be measured: no guess (vegetation, and the urban spectra).
    assert detect_encoding(_tile(rho[veg], name, rng)) is None
    urban = spyndex.datasets.open("spectral")["class"].eq("Urban").to_numpy()
    assert detect_encoding(_tile(rho[urban], name, rng)) is None
    # Clouds (QA) and nodata are left out; too few clear pixels: no answer either.
    cloudy = _tile(coast, name, rng)
    cloudy[5, :, 5:] = 1
    assert detect_encoding(cloudy) is None


def test_the_guard_stops_on_another_encoding_and_warns_once_when_forced(
    spectra: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    rho, water, veg = spectra
    rng = np.random.default_rng(1)
    coast = np.concatenate([rho[water]] * 3 + [rho[veg]])
    batch = np.stack([_tile(coast, "c2l2", rng), _tile(coast, "x10000", rng)])
    names = ["A1", "B2"]
    EncodingGuard("c2l2").check(batch[:1], names[:1])  # the model's own encoding passes
    EncodingGuard(None).check(batch, names)  # an older model: nothing to compare with
    with pytest.raises(KelpsegError, match="reflectance x 10,000") as err:
        EncodingGuard("c2l2").check(batch, names)
    assert err.value.path == "B2" and "--ignore-encoding" in err.value.message
    assert "Landsat Collection 2 Level-2 (c2l2)" in err.value.message
    lines: list[str] = []
    forced = EncodingGuard("c2l2", force=True, warn=lines.append)
    forced.check(batch, names)
    forced.check(batch, ["C3", "D4"])
    assert forced.mismatched == ["B2", "D4"] and len(lines) == 1
    assert lines[0].startswith("B2: ") and "going on" in lines[0]
