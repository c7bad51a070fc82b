"""Kelp area per date and region: dates, the table and the plot."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

from kelpseg.errors import KelpsegError
from kelpseg.scenes.area import WHOLE_SCENE, read_regions
from kelpseg.scenes.cog import MASK_NODATA
from kelpseg.scenes.timeseries import area_timeseries, mask_date, read_dates, write_timeseries

TRANSFORM = Affine(30, 0, 400_000, 0, -30, 4_300_000)


def _mask(path: Path, kelp_pixels: int, *, tag: str | None = None, cloud_rows: int = 0) -> Path:
    mask = np.zeros((40, 50), np.uint8)
    mask.flat[:kelp_pixels] = 1
    mask[40 - cloud_rows :] = MASK_NODATA
    profile = {
        "driver": "GTiff",
        "height": 40,
        "width": 50,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:32721",
        "transform": TRANSFORM,
        "nodata": MASK_NODATA,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mask, 1)
        if tag:
            dst.update_tags(ACQUISITION_DATE=tag)
    return path


def test_dates_come_from_mapping_then_tag_then_name(tmp_path: Path) -> None:
    named = _mask(tmp_path / "LC08_L2SP_217096_20231012_20231020_02_T1_kelp.tif", 1)
    tagged = _mask(tmp_path / "LC08_L2SP_217096_20231012_20231020_02_T1_b.tif", 1, tag="2020-02-03")
    anonymous = _mask(tmp_path / "kelp.tif", 1)
    assert mask_date(named) == dt.date(2023, 10, 12)
    assert mask_date(tagged) == dt.date(2020, 2, 3)
    assert mask_date(tagged, {tagged.name: dt.date(2001, 1, 1)}) == dt.date(2001, 1, 1)
    with pytest.raises(KelpsegError, match="--dates") as err:
        mask_date(anonymous)
    assert str(err.value).startswith(str(anonymous))


def test_dates_files_in_yaml_and_csv(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("a/kelp_1.tif: 2019-03-04\nkelp_2.tif: '2019-05-06'\n")
    (tmp_path / "d.csv").write_text("file,date\nkelp_1.tif,2019-03-04\n")
    assert read_dates(tmp_path / "d.yaml") == {
        "kelp_1.tif": dt.date(2019, 3, 4),
        "kelp_2.tif": dt.date(2019, 5, 6),
    }
    assert read_dates(tmp_path / "d.csv") == {"kelp_1.tif": dt.date(2019, 3, 4)}
    (tmp_path / "bad.yaml").write_text("kelp_1.tif: March\n")
    with pytest.raises(KelpsegError, match="YYYY-MM-DD"):
        read_dates(tmp_path / "bad.yaml")
    (tmp_path / "bad.csv").write_text("name,when\n")
    with pytest.raises(KelpsegError, match="'file' and 'date'"):
        read_dates(tmp_path / "bad.csv")


def test_timeseries_table_and_plot(tmp_path: Path) -> None:
    masks = [
        _mask(tmp_path / "m3.tif", 30, tag="2021-06-01"),
        _mask(tmp_path / "m1.tif", 10, tag="2019-06-01", cloud_rows=30),
        _mask(tmp_path / "m2.tif", 20, tag="2020-06-01"),
    ]
    box = [
        [400_000, 4_300_000],
        [400_000 + 25 * 30, 4_300_000],
        [400_000 + 25 * 30, 4_299_000],
        [400_000, 4_299_000],
        [400_000, 4_300_000],
    ]
    (tmp_path / "r.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "EPSG:32721"}},
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "west"},
                        "geometry": {"type": "Polygon", "coordinates": [box]},
                    }
                ],
            }
        )
    )
    table = area_timeseries(
        masks, regions=read_regions(tmp_path / "r.geojson"), show_progress=False
    )
    assert list(table["date"].dt.year) == [2019, 2019, 2020, 2020, 2021, 2021]
    whole = table[table["region"] == WHOLE_SCENE]
    assert whole["kelp_pixels"].tolist() == [10, 20, 30]
    assert whole["kelp_ha"].tolist() == pytest.approx([0.9, 1.8, 2.7])
    assert whole["observed_share"].tolist() == pytest.approx([0.25, 1.0, 1.0])
    west = table[table["region"] == "west"]
    assert (west["kelp_pixels"] <= whole["kelp_pixels"].to_numpy()).all()
    csv, png = write_timeseries(table, tmp_path / "out" / "areas.csv")
    back = pd.read_csv(csv)
    assert len(back) == 6 and back["date"].iloc[0] == "2019-06-01"
    assert png == tmp_path / "out" / "areas.png" and png.read_bytes()[:4] == b"\x89PNG"
    parquet, _ = write_timeseries(table, tmp_path / "out" / "areas.parquet")
    assert pd.read_parquet(parquet)["kelp_pixels"].sum() == table["kelp_pixels"].sum()
    with pytest.raises(KelpsegError, match=".csv or .parquet"):
        write_timeseries(table, tmp_path / "areas.xlsx")
