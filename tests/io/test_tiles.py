from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import (
    BAND_NAMES,
    MISSING,
    read_label,
    read_tile,
    tile_id_from_path,
    write_label,
    write_mask,
    write_probability,
    write_tile,
)
from tests.conftest import make_tile_array


def test_tile_round_trip_keeps_pixels_and_names_bands(tmp_path: Path) -> None:
    data = make_tile_array(seed=3)
    path = write_tile(tmp_path / "XY123_satellite.tif", data)
    tile = read_tile(path)
    assert tile.tile_id == "XY123"
    np.testing.assert_array_equal(tile.data, data)
    np.testing.assert_array_equal(tile.band("DEM"), data[BAND_NAMES.index("DEM")])
    assert tile.missing[6, :, -5:].all()
    assert not tile.missing[:5].any()
    assert tile.shape == (350, 350)


def test_unknown_band_name_is_a_clear_error(tmp_path: Path) -> None:
    tile = read_tile(write_tile(tmp_path / "a_satellite.tif", make_tile_array()))
    with pytest.raises(KelpsegError, match="unknown band 'TIR'"):
        tile.band("TIR")


def test_mask_is_written_in_submission_format(tmp_path: Path) -> None:
    mask = np.zeros((350, 350), dtype=bool)
    mask[10:20, 30:40] = True
    path = write_mask(tmp_path / "out" / "AB001_kelp.tif", mask)
    with rasterio.open(path) as src:
        assert (src.count, src.height, src.width) == (1, 350, 350)
        assert src.dtypes[0] == "uint8"
        assert src.compression is None
        assert src.crs is None
    np.testing.assert_array_equal(read_label(path), mask.astype(np.uint8))
    assert not list(path.parent.glob(".*tmp"))


def test_probability_round_trip(tmp_path: Path) -> None:
    prob = np.random.default_rng(0).random((50, 60)).astype(np.float32)
    path = write_probability(tmp_path / "p.tif", prob)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(1), prob)


@pytest.mark.parametrize(
    ("writer", "array"),
    [
        (write_mask, np.full((4, 4), 2, dtype=np.uint8)),
        (write_label, np.full((4, 4), 3, dtype=np.uint8)),
        (write_mask, np.zeros((1, 4, 4), dtype=np.uint8)),
    ],
)
def test_writers_refuse_bad_masks_and_write_nothing(tmp_path: Path, writer, array) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "m.tif"
    with pytest.raises(KelpsegError):
        writer(target, array)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = write_mask(tmp_path / "m.tif", np.zeros((8, 8), dtype=np.uint8))
    before = target.read_bytes()
    with pytest.raises(KelpsegError):
        write_mask(target, np.full((8, 8), 7, dtype=np.uint8))
    assert target.read_bytes() == before


def test_tile_id_from_path() -> None:
    assert tile_id_from_path("/a/b/QQ001_satellite.tif") == "QQ001"
    assert tile_id_from_path("QQ001_kelp.tif") == "QQ001"


# --- bad input: each gives one clear error naming the file -------------------------------


def _write_raw(path: Path, array: np.ndarray) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        count=array.shape[0],
        height=array.shape[1],
        width=array.shape[2],
        dtype=array.dtype.name,
    ) as dst:
        dst.write(array)
    return path


def test_truncated_geotiff(tmp_path: Path) -> None:
    path = write_tile(tmp_path / "t_satellite.tif", make_tile_array())
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(KelpsegError, match="t_satellite.tif") as info:
        read_tile(path)
    assert "\n" not in str(info.value)


def test_not_a_geotiff(tmp_path: Path) -> None:
    path = tmp_path / "n_satellite.tif"
    path.write_text("hello, I am not an image")
    with pytest.raises(KelpsegError, match="not a readable GeoTIFF"):
        read_tile(path)


def test_png_is_not_a_geotiff(tmp_path: Path) -> None:
    path = tmp_path / "p_satellite.tif"
    with rasterio.open(path, "w", driver="PNG", count=1, height=4, width=4, dtype="uint8") as dst:
        dst.write(np.zeros((1, 4, 4), dtype=np.uint8))
    with pytest.raises(KelpsegError, match="not a GeoTIFF"):
        read_tile(path)


def test_wrong_band_count(tmp_path: Path) -> None:
    path = _write_raw(tmp_path / "b_satellite.tif", make_tile_array()[:5])
    with pytest.raises(KelpsegError, match="expected 7 bands, found 5"):
        read_tile(path)


def test_wrong_size(tmp_path: Path) -> None:
    path = write_tile(tmp_path / "s_satellite.tif", make_tile_array(size=100))
    with pytest.raises(KelpsegError, match="expected 350x350 pixels, found 100x100"):
        read_tile(path)
    assert read_tile(path, expected_size=None).shape == (100, 100)


def test_float_dtype(tmp_path: Path) -> None:
    path = _write_raw(tmp_path / "f_satellite.tif", make_tile_array().astype(np.float32))
    with pytest.raises(KelpsegError, match="expected int16 pixels, found float32"):
        read_tile(path)


def test_all_missing_tile(tmp_path: Path) -> None:
    data = make_tile_array()
    data[:5] = MISSING
    path = write_tile(tmp_path / "m_satellite.tif", data)
    with pytest.raises(KelpsegError, match="every spectral pixel is missing"):
        read_tile(path)
    assert read_tile(path, allow_all_missing=True).missing[:5].all()


def test_label_values_outside_zero_one(tmp_path: Path) -> None:
    path = _write_raw(tmp_path / "l_kelp.tif", np.full((1, 350, 350), 2, dtype=np.uint8))
    with pytest.raises(KelpsegError, match=r"label values outside \{0, 1\}: \[2\]"):
        read_label(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="does not exist"):
        read_tile(tmp_path / "nope_satellite.tif")


def test_unreadable_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, who can read anything: make access() report what a user would see.
    import kelpseg.io.tiles as tiles

    path = write_tile(tmp_path / "u_satellite.tif", make_tile_array())
    monkeypatch.setattr(tiles.os, "access", lambda *_: False)
    with pytest.raises(KelpsegError, match="permission denied"):
        read_tile(path)
