"""Kelp polygons overlay the mask exactly, carry their areas, and open right (RFC 7946, GPKG)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.warp import transform_geom

from kelpseg.errors import KelpsegError, MissingExtraError
from kelpseg.scenes import vector
from kelpseg.scenes.vector import kelp_polygons, write_polygons


def _mask(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), src.profile


def _rasterise(geometries: list[dict], profile: dict) -> np.ndarray:
    shapes = [(g, 1) for g in geometries]
    return rasterize(shapes, out_shape=(profile["height"], profile["width"]),
                     transform=profile["transform"], fill=0)  # fmt: skip


def test_geojson_is_rfc7946_lon_lat_by_default(mask89: Path, tmp_path: Path) -> None:
    out = write_polygons(mask89, tmp_path / "kelp.geojson")
    data = json.loads(out.read_text())
    assert data["type"] == "FeatureCollection"
    assert "crs" not in data  # RFC 7946: WGS 84 lon/lat, no crs member
    points = np.concatenate(
        [np.array(ring) for f in data["features"] for ring in f["geometry"]["coordinates"]]
    )
    lon, lat = points[:, 0], points[:, 1]
    assert ((lon > -62) & (lon < -56)).all()  # lon first: the Falklands, not lat/lon swapped
    assert ((lat > -54) & (lat < -50)).all()


def test_lon_lat_polygons_come_back_onto_the_scene_grid(mask89: Path, tmp_path: Path) -> None:
    data = json.loads(write_polygons(mask89, tmp_path / "kelp.geojson").read_text())
    mask, profile = _mask(mask89)
    scene, _ = kelp_polygons(mask89)
    back = [transform_geom("EPSG:4326", profile["crs"], f["geometry"]) for f in data["features"]]
    assert len(back) == len(scene) > 3
    pixel = profile["transform"].a
    for lonlat, original in zip(back, scene, strict=True):
        for ring, ring0 in zip(lonlat["coordinates"], original["geometry"]["coordinates"],
                               strict=True):  # fmt: skip
            assert np.abs(np.array(ring) - np.array(ring0)).max() < 0.01 * pixel
    assert np.array_equal(_rasterise(back, profile) == 1, mask == 1)


def test_scene_crs_geojson_keeps_the_grid_and_names_its_crs(mask89: Path, tmp_path: Path) -> None:
    out = write_polygons(mask89, tmp_path / "kelp.geojson", geojson_crs="scene")
    data = json.loads(out.read_text())
    mask, profile = _mask(mask89)
    assert data["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32721"
    back = _rasterise([f["geometry"] for f in data["features"]], profile)
    assert len(data["features"]) > 3
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


def test_geopackage_is_written_and_reads_back(mask89: Path, tmp_path: Path) -> None:
    fiona = pytest.importorskip("fiona", reason="GeoPackage needs the scenes extra")
    out = write_polygons(mask89, tmp_path / "beds.gpkg", min_pixels=2)
    features, _ = kelp_polygons(mask89, min_pixels=2)
    assert out == tmp_path / "beds.gpkg"
    assert fiona.listlayers(out) == ["kelp"]
    with fiona.open(out, layer="kelp") as src:
        assert CRS.from_user_input(src.crs).to_epsg() == 32721
        assert src.schema["geometry"] == "Polygon"
        rows = list(src)
    assert len(rows) == len(features) > 3
    by_id = {f["properties"]["id"]: f for f in features}
    for row in rows:
        expected = by_id[row.properties["id"]]["properties"]
        assert row.properties["pixels"] == expected["pixels"]
        assert row.properties["area_ha"] == pytest.approx(expected["area_ha"])
    _, profile = _mask(mask89)
    back = _rasterise([dict(row.geometry) for row in rows], profile)
    assert np.array_equal(back, _rasterise([f["geometry"] for f in features], profile))
    assert list(tmp_path.iterdir()) == [out]  # no temporary folder left behind


def test_geopackage_without_fiona_fails_naming_the_extra(
    mask89: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector, "has_fiona", lambda: False)
    with pytest.raises(MissingExtraError, match=r"pip install 'kelpseg\[scenes\]'"):
        write_polygons(mask89, tmp_path / "kelp.gpkg")
    assert list(tmp_path.iterdir()) == []  # nothing written, no GeoJSON in its place


def test_unknown_polygon_format_is_refused(mask89: Path, tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match=".geojson"):
        write_polygons(mask89, tmp_path / "kelp.shp")
    with pytest.raises(KelpsegError, match="polygon CRS"):
        kelp_polygons(mask89, crs="utm")
