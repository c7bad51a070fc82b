"""Kelp polygons overlay the mask exactly and carry their areas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.features import rasterize
from rasterio.warp import transform_geom

from kelpseg.errors import KelpsegError
from kelpseg.scenes import vector
from kelpseg.scenes.vector import kelp_polygons, write_polygons


def _mask(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), src.profile


def test_polygons_rasterised_back_equal_the_mask(mask89: Path, tmp_path: Path) -> None:
    out = write_polygons(mask89, tmp_path / "kelp.geojson")
    data = json.loads(out.read_text())
    mask, profile = _mask(mask89)
    assert data["type"] == "FeatureCollection"
    assert data["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32721"
    shapes = [(f["geometry"], 1) for f in data["features"]]
    back = rasterize(shapes, out_shape=mask.shape, transform=profile["transform"], fill=0)
    assert len(shapes) > 3
    assert np.array_equal(back == 1, mask == 1)


def test_polygon_areas_sum_to_the_kelp_area(mask89: Path) -> None:
    features, crs = kelp_polygons(mask89)
    mask, _ = _mask(mask89)
    assert crs.to_epsg() == 32721
    assert sum(f["properties"]["pixels"] for f in features) == int((mask == 1).sum())
    total = sum(f["properties"]["area_ha"] for f in features)
    assert total == pytest.approx((mask == 1).sum() * 900 / 1e4)  # 30 m pixels
    assert len({f["id"] for f in features}) == len(features)


def test_small_beds_can_be_dropped(mask89: Path) -> None:
    every, _ = kelp_polygons(mask89)
    big, _ = kelp_polygons(mask89, min_pixels=10)
    assert 0 < len(big) < len(every)
    assert all(f["properties"]["pixels"] >= 10 for f in big)


def test_wgs84_polygons_are_lon_lat_near_the_falklands(mask89: Path, tmp_path: Path) -> None:
    out = write_polygons(mask89, tmp_path / "kelp.json", crs="wgs84")
    data = json.loads(out.read_text())
    assert "crs" not in data  # RFC 7946: lon/lat WGS 84
    ring = np.array(data["features"][0]["geometry"]["coordinates"][0])
    assert (ring[:, 0] > -62).all() and (ring[:, 0] < -56).all()
    assert (ring[:, 1] > -54).all() and (ring[:, 1] < -50).all()
    scene, _ = kelp_polygons(mask89)
    back = transform_geom("EPSG:4326", "EPSG:32721", data["features"][0]["geometry"])
    np.testing.assert_allclose(
        np.array(back["coordinates"][0]),
        np.array(scene[0]["geometry"]["coordinates"][0]),
        atol=1e-3,
    )


def test_geopackage_without_fiona_falls_back_to_geojson(
    mask89: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vector, "has_fiona", lambda: False)
    out = write_polygons(mask89, tmp_path / "kelp.gpkg")
    assert out == tmp_path / "kelp.geojson" and out.exists()
    assert not (tmp_path / "kelp.gpkg").exists()
    assert "GeoPackage skipped" in capsys.readouterr().err


def test_unknown_polygon_format_is_refused(mask89: Path, tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match=".geojson"):
        write_polygons(mask89, tmp_path / "kelp.shp")
    with pytest.raises(KelpsegError, match="polygon CRS"):
        kelp_polygons(mask89, crs="utm")
