from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from kelpseg.eda.config import EdaConfig
from kelpseg.eda.tile_plots import (
    composite,
    ndvi,
    pick_tiles,
    plot_tiles,
    save_tile_plots,
    stretch,
    tile_panels,
    tile_strip,
)
from kelpseg.errors import KelpsegError
from kelpseg.io.catalog import build_catalog
from kelpseg.io.tiles import MISSING, Tile
from tests.eda.conftest import crafted_tile, label_with, write_dataset


def test_stretch_ignores_missing_pixels() -> None:
    band = np.arange(100, dtype=np.int16).reshape(10, 10) * 10
    gappy = band.copy()
    gappy[0, :5] = MISSING
    out = stretch(gappy, 0.0, 100.0)
    assert np.isnan(out[0, :5]).all()
    valid = band[gappy != MISSING].astype(float)
    expected = (valid - valid.min()) / (valid.max() - valid.min())
    np.testing.assert_allclose(out[gappy != MISSING], expected, rtol=1e-6)


def test_stretch_clips_at_the_percentiles() -> None:
    band = np.arange(100, dtype=np.int16).reshape(10, 10)
    out = stretch(band, 10.0, 90.0)
    assert out.min() == 0.0 and out.max() == 1.0
    assert (out == 0.0).sum() > 1 and (out == 1.0).sum() > 1


def test_all_missing_band_stretches_to_nan() -> None:
    assert np.isnan(stretch(np.full((4, 4), MISSING, dtype=np.int16))).all()


def test_composite_maps_bands_to_channels_and_blacks_out_gaps() -> None:
    data = crafted_tile()
    data[2, 3, 3] = 20000  # R very bright -> red channel of true colour saturates there
    data[3, 0, 0] = MISSING  # G missing
    rgb = composite(Tile("T", data), ("R", "G", "B"))
    assert rgb.shape == (10, 10, 3)
    assert rgb[3, 3, 0] == 1.0
    assert rgb[0, 0, 1] == 0.0
    assert np.isfinite(rgb).all()


def test_ndvi_by_hand() -> None:
    data = crafted_tile()
    data[1, 0, 0], data[2, 0, 0] = 3000, 1000
    data[1, 0, 1], data[2, 0, 1] = 1000, 3000
    data[1, 0, 2], data[2, 0, 2] = 0, 0
    values = ndvi(Tile("T", data))
    assert values[0, 0] == pytest.approx(0.5)
    assert values[0, 1] == pytest.approx(-0.5)
    assert np.isnan(values[0, 2])  # 0 / 0
    assert np.isnan(values[5, 0])  # NIR missing there


def test_panels_and_pngs_of_a_labelled_tile(tmp_path: Path) -> None:
    tile = Tile("T1", crafted_tile())
    paths = save_tile_plots(tile, label_with(5), tmp_path, EdaConfig(plots={"dpi": 30}))
    names = [p.name for p in paths]
    assert names == [
        "T1.png",
        "T1_true_color.png",
        "T1_color_infrared.png",
        "T1_shortwave_infrared.png",
        "T1_dem.png",
        "T1_qa.png",
        "T1_ndvi.png",
        "T1_kelp.png",
    ]
    for path in paths[1:]:
        assert imread(path).shape[:2] == (10, 10)  # one image pixel per tile pixel
    assert imread(paths[0]).shape[0] > 100


def test_unlabelled_tile_has_no_kelp_panel() -> None:
    panels = tile_panels(Tile("T1", crafted_tile()), None, EdaConfig())
    assert [p.name for p in panels][-1] == "ndvi"


def test_strips_with_and_without_label_line_up() -> None:
    tile = Tile("T1", crafted_tile())
    labelled = tile_strip(tile_panels(tile, label_with(3), EdaConfig()), slots=7, gap=2)
    unlabelled = tile_strip(tile_panels(tile, None, EdaConfig()), slots=7, gap=2)
    assert labelled.shape == unlabelled.shape == (10, 7 * 10 + 6 * 2, 3)
    assert (unlabelled[:, -10:] == 255).all()  # the missing kelp panel is blank
    assert labelled.dtype == np.uint8


def test_unknown_channel_is_rejected() -> None:
    with pytest.raises(KelpsegError, match=r"unknown channel\(s\) 'FOO'"):
        tile_panels(Tile("T1", crafted_tile()), None, EdaConfig(plots={"channels": ["FOO"]}))


def test_registry_channels_are_rendered_by_features() -> None:
    features = pytest.importorskip("kelpseg.features")
    tile = Tile("T1", crafted_tile())
    config = EdaConfig(plots={"channels": ["NDVI", "ATSAVI", "CDOM"]})
    panels = {p.name: p for p in tile_panels(tile, None, config)}
    assert [n for n in panels if n in ("ndvi", "atsavi", "cdom")] == ["ndvi", "atsavi", "cdom"]
    expected = features.render_channel(tile, "ATSAVI")
    np.testing.assert_array_equal(panels["atsavi"].image.filled(np.nan), expected)
    assert panels["cdom"].vmin < panels["cdom"].vmax


def test_pick_tiles_by_id_or_sample(tmp_path: Path) -> None:
    catalog = build_catalog(write_dataset(tmp_path, {"AA001": 1, "AA002": 2}, ["TT001"])).tiles
    assert pick_tiles(catalog, ["TT001", "AA001"], None)["tile_id"].tolist() == ["TT001", "AA001"]
    assert len(pick_tiles(catalog, None, 2, seed=3)) == 2
    with pytest.raises(KelpsegError, match="not in the dataset: ZZ"):
        pick_tiles(catalog, ["ZZ"], None)
    with pytest.raises(KelpsegError, match="--sample"):
        pick_tiles(catalog, None, None)


def test_plot_tiles_reports_a_corrupt_tile_and_plots_the_rest(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", {"AA001": 3}, ["TT001"], corrupt=["BAD01"])
    catalog = build_catalog(data).tiles
    written, errors = plot_tiles(
        catalog,
        tmp_path / "out",
        EdaConfig(plots={"dpi": 30}),
        tile_ids=["AA001", "BAD01", "TT001"],
        show_progress=False,
    )
    assert len(errors) == 1 and "BAD01_satellite.tif" in errors[0]
    assert {p.parent.name for p in written} == {"AA001", "TT001"}
    assert all(p.is_file() for p in written)
