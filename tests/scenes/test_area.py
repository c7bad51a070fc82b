"""Kelp area in hectares: pixel areas from the CRS, whole scene and user regions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_geom

from kelpseg.errors import KelpsegError
from kelpseg.scenes.area import (
    WHOLE_SCENE,
    Region,
    geodesic_cell_areas,
    kelp_area,
    read_regions,
    row_pixel_areas,
)
from kelpseg.scenes.cog import MASK_NODATA

UTM = CRS.from_epsg(32721)


def test_projected_pixel_area_is_the_cell_area() -> None:
    areas = row_pixel_areas(Affine(30, 0, 0, 0, -30, 0), UTM, 4)
    assert areas.tolist() == [900.0] * 4
    feet = CRS.from_epsg(2227)  # US survey feet
    got = row_pixel_areas(Affine(100, 0, 0, 0, -100, 0), feet, 1)[0]
    assert got == pytest.approx((100 * 1200 / 3937) ** 2)


def test_geodesic_areas_match_the_wgs84_ellipsoid() -> None:
    whole_earth = geodesic_cell_areas(np.array([-90.0, 90.0]), 360)[0]
    assert whole_earth == pytest.approx(510_065_621.7e6, rel=1e-9)  # WGS 84 surface
    bands = geodesic_cell_areas(np.linspace(-90, 90, 181), 360)
    assert bands.sum() == pytest.approx(whole_earth, rel=1e-12)
    one_degree = geodesic_cell_areas(np.array([0.0, 1.0]), 1.0)[0]
    assert one_degree == pytest.approx(12_308.46e6, rel=1e-5)  # 1 x 1 degree at the equator
    sphere = geodesic_cell_areas(np.array([0.0, 90.0]), 360, a=1.0, rf=0.0)[0]
    assert sphere == pytest.approx(2 * np.pi)


def test_geographic_rows_shrink_towards_the_pole() -> None:
    transform = Affine(1 / 3600, 0, -58, 0, -1 / 3600, -51)  # 1 arc-second cells
    areas = row_pixel_areas(transform, CRS.from_epsg(4326), 3)
    assert (np.diff(areas) < 0).all()  # rows run south, towards the pole
    assert 500 < areas[0] < 700  # ~30.9 m x ~19.5 m at 51 S
    with pytest.raises(KelpsegError, match="rotated"):
        row_pixel_areas(Affine(1e-4, 1e-5, 0, 0, -1e-4, 0), CRS.from_epsg(4326), 1)


def _write_mask(path: Path, mask: np.ndarray, crs: CRS, transform: Affine) -> Path:
    profile = {
        "driver": "GTiff",
        "height": mask.shape[0],
        "width": mask.shape[1],
        "count": 1,
        "dtype": "uint8",
        "crs": crs,
        "transform": transform,
        "nodata": MASK_NODATA,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mask, 1)
    return path


def test_area_is_pixel_count_times_pixel_area(mask89: Path) -> None:
    with rasterio.open(mask89) as src:
        mask = src.read(1)
    table = kelp_area(mask89)
    row = table.set_index("region").loc[WHOLE_SCENE]
    assert row.kelp_pixels == (mask == 1).sum() > 0
    assert row.kelp_ha == pytest.approx((mask == 1).sum() * 0.09)
    assert row.observed_ha == pytest.approx((mask != MASK_NODATA).sum() * 0.09)
    assert row.region_ha == pytest.approx(mask.size * 0.09)


def test_geographic_mask_area_sums_row_areas(tmp_path: Path) -> None:
    transform = Affine(1e-3, 0, -58, 0, -1e-3, -51)
    mask = np.zeros((2000, 3), np.uint8)  # tall, so strips and latitudes both matter
    mask[:, 1] = 1
    path = _write_mask(tmp_path / "geo.tif", mask, CRS.from_epsg(4326), transform)
    got = kelp_area(path).iloc[0]
    edges = -51 - 1e-3 * np.arange(2001)
    expected = geodesic_cell_areas(edges, 1e-3).sum() / 1e4
    assert got.kelp_ha == pytest.approx(expected, rel=1e-12)
    assert got.region_ha == pytest.approx(3 * expected, rel=1e-12)


def _box(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def test_regions_in_lon_lat_are_measured_on_the_scene_grid(tmp_path: Path) -> None:
    transform = Affine(30, 0, 400_000, 0, -30, 4_300_000)
    mask = np.zeros((100, 120), np.uint8)
    mask[10:30, 20:50] = 1  # 600 kelp pixels
    mask[60:70, 60:70] = 1  # 100 more
    mask[0:5, :] = MASK_NODATA
    path = _write_mask(tmp_path / "m.tif", mask, UTM, transform)
    # Region A: exactly rows 0-39, cols 0-59 in UTM, given as lon/lat (as GeoJSON files are).
    utm_box = _box(400_000, 4_300_000 - 40 * 30, 400_000 + 60 * 30, 4_300_000)
    regions = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "A"},
                "geometry": transform_geom(UTM, "EPSG:4326", utm_box, precision=-1),
            },
            {
                "type": "Feature",
                "properties": {"name": "far"},
                "geometry": _box(10.0, 10.0, 10.1, 10.1),
            },
        ],
    }
    file = tmp_path / "regions.geojson"
    file.write_text(json.dumps(regions))
    table = kelp_area(path, read_regions(file)).set_index("region")
    assert table.loc[WHOLE_SCENE, "kelp_pixels"] == 700
    assert table.loc["A", "kelp_pixels"] == 600
    assert table.loc["A", "kelp_ha"] == pytest.approx(600 * 0.09)
    assert table.loc["A", "region_ha"] == pytest.approx(40 * 60 * 0.09, rel=0.01)
    assert table.loc["A", "observed_ha"] == pytest.approx(35 * 60 * 0.09, rel=0.01)
    assert table.loc["far", ["kelp_pixels", "region_ha"]].tolist() == [0, 0.0]


def test_regions_keep_a_legacy_crs_member_and_names(tmp_path: Path) -> None:
    data = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32721"}},
        "features": [
            {"type": "Feature", "properties": {}, "geometry": _box(0, 0, 1, 1)},
            {"type": "Feature", "id": "bay", "properties": None, "geometry": _box(0, 0, 2, 2)},
        ],
    }
    file = tmp_path / "r.geojson"
    file.write_text(json.dumps(data))
    regions = read_regions(file)
    assert [r.name for r in regions] == ["region_0", "bay"]
    assert regions[0].crs == "urn:ogc:def:crs:EPSG::32721"
    assert isinstance(regions[0], Region)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable GeoJSON"),
        ('{"type": "FeatureCollection", "features": []}', "no polygons"),
        ('{"type": "Point", "coordinates": [0, 0]}', "not a Polygon"),
    ],
)
def test_bad_region_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    file = tmp_path / "r.geojson"
    file.write_text(content)
    with pytest.raises(KelpsegError, match=message) as err:
        read_regions(file)
    assert str(err.value).startswith(str(file))


def test_a_probability_raster_is_not_taken_for_a_mask(tmp_path: Path) -> None:
    path = tmp_path / "kelp_prob.tif"
    profile = {
        "driver": "GTiff",
        "height": 2,
        "width": 2,
        "count": 1,
        "dtype": "float32",
        "crs": UTM,
        "transform": Affine(30, 0, 0, 0, -30, 0),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((1, 2, 2), np.float32))
    with pytest.raises(KelpsegError, match="not a scene mask"):
        kelp_area(path)
