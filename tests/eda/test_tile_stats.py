from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kelpseg.eda.config import EdaConfig, Thresholds
from kelpseg.eda.tile_stats import (
    TILE_STATS,
    TileInput,
    TileStat,
    select_stats,
    stat_columns,
    stats_frame,
    tile_stats_row,
)
from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import MISSING, Tile
from tests.eda.conftest import crafted_tile, label_with

HAND_COUNTED = {
    "dem_nan_pixels": 20,
    "dem_has_nans": True,
    "dem_nan_pixels_pct": 0.20,
    "dem_zero_pixels": 10,
    "dem_zero_pixels_pct": 0.10,
    "water_pixels": 40,
    "water_pixels_pct": 0.40,
    "almost_all_water": False,
    "qa_corrupted_pixels": 5,
    "qa_ok": False,
    "qa_corrupted_pixels_pct": 0.05,
    "high_corrupted_pixels_pct": False,
    "cloud_fraction": 0.03,
    "pixels": 100,
    "swir1_missing_pixels": 1,
    "nir_missing_pixels": 2,
    "r_missing_pixels": 0,
    "g_missing_pixels": 0,
    "b_missing_pixels": 1,
    "qa_missing_pixels": 0,
    "dem_missing_pixels": 20,
    "spectral_missing_pixels": 3,
}


def _row(data: np.ndarray, label: np.ndarray | None = None, **config: object) -> dict:
    cfg = EdaConfig(tile_size=0, **config)  # type: ignore[arg-type]
    return tile_stats_row(TileInput(Tile("T1", data), label), cfg, select_stats(cfg))


def test_crafted_tile_matches_hand_counts() -> None:
    row = _row(crafted_tile(), label_with(7))
    for column, expected in HAND_COUNTED.items():
        assert row[column] == pytest.approx(expected), column
    assert row["has_kelp"] is True
    assert (row["kelp_pixels"], row["non_kelp_pixels"]) == (7, 93)
    assert row["kelp_pixels_pct"] == pytest.approx(0.07)
    assert row["high_kelp_pixels_pct"] is False


def test_row_has_exactly_the_declared_columns() -> None:
    row = _row(crafted_tile(), label_with(0))
    assert list(row) == list(stat_columns(list(TILE_STATS.values())))


@pytest.mark.parametrize(("kelp", "high"), [(40, False), (41, True)])
def test_high_kelp_flag_is_strictly_above_the_threshold(kelp: int, high: bool) -> None:
    assert _row(crafted_tile(), label_with(kelp))["high_kelp_pixels_pct"] is high


@pytest.mark.parametrize(("land", "almost"), [(2, False), (1, True)])
def test_almost_all_water_above_98_percent(land: int, almost: bool) -> None:
    data = crafted_tile()
    data[6] = 0
    data[6].flat[:land] = 12
    row = _row(data)
    assert row["water_pixels_pct"] == pytest.approx(1 - land / 100)
    assert row["almost_all_water"] is almost


def test_thresholds_come_from_the_config() -> None:
    data = crafted_tile()
    data[5] = 0
    data[5, :5] = 1  # half the tile flagged
    assert _row(data)["high_corrupted_pixels_pct"] is True
    relaxed = _row(data, thresholds=Thresholds(high_corrupted_pixels_pct=0.6))
    assert relaxed["high_corrupted_pixels_pct"] is False
    assert relaxed["qa_corrupted_pixels_pct"] == pytest.approx(0.5)


def test_clean_tile_is_qa_ok_with_no_cloud() -> None:
    data = crafted_tile()
    data[5] = 0
    row = _row(data)
    assert row["qa_ok"] is True
    assert row["qa_corrupted_pixels"] == 0
    assert row["cloud_fraction"] == 0.0


def test_missing_dem_counts_as_water() -> None:
    data = crafted_tile()
    data[6] = MISSING
    row = _row(data)
    assert row["dem_nan_pixels"] == row["water_pixels"] == 100
    assert row["dem_zero_pixels"] == 0
    assert row["almost_all_water"] is True


def test_label_statistics_are_none_without_label() -> None:
    row = _row(crafted_tile(), None)
    label_cols = TILE_STATS["label"].columns
    assert all(row[c] is None for c in label_cols)
    assert row["water_pixels"] == 40


def test_stats_frame_uses_nullable_types_for_label_columns() -> None:
    cfg = EdaConfig(tile_size=0)
    stats = select_stats(cfg)
    rows = [
        tile_stats_row(TileInput(Tile("A", crafted_tile()), label_with(3)), cfg, stats),
        tile_stats_row(TileInput(Tile("B", crafted_tile()), None), cfg, stats),
    ]
    frame = stats_frame(rows, stat_columns(stats))
    assert str(frame["has_kelp"].dtype) == "boolean"
    assert frame["kelp_pixels"].tolist() == [3, pd.NA]
    assert frame["qa_ok"].dtype == bool
    assert frame["water_pixels"].tolist() == [40, 40]


def test_config_selects_groups_and_rejects_unknown_names() -> None:
    row = _row(crafted_tile(), stats=["qa"])
    assert set(row) == set(TILE_STATS["qa"].columns)
    with pytest.raises(KelpsegError, match="unknown group"):
        select_stats(EdaConfig(stats=["qa", "nope"]))


def test_an_extra_statistic_is_merged_into_the_row() -> None:
    def brightest(inp: TileInput, config: EdaConfig) -> dict[str, int]:
        return {"max_nir": int(inp.tile.band("NIR").max())}

    extra = TileStat("brightness", brightest, {"max_nir": "int64"})
    cfg = EdaConfig(tile_size=0)
    data = crafted_tile()
    data[1, 0, 0] = 12345
    row = tile_stats_row(TileInput(Tile("A", data)), cfg, [*select_stats(cfg), extra])
    assert row["max_nir"] == 12345
    assert row["qa_corrupted_pixels"] == 5


def test_statistic_returning_undeclared_columns_is_an_error() -> None:
    bad = TileStat("bad", lambda inp, cfg: {"other": 1}, {"declared": "int64"})
    with pytest.raises(KelpsegError, match="declared"):
        tile_stats_row(TileInput(Tile("A", crafted_tile())), EdaConfig(), [bad])


def test_duplicate_columns_across_groups_are_an_error() -> None:
    twin = TileStat("twin", TILE_STATS["qa"].compute, TILE_STATS["qa"].columns)
    with pytest.raises(KelpsegError, match="defined twice"):
        stat_columns([TILE_STATS["qa"], twin])
