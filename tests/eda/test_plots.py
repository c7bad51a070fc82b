from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from kelpseg.eda.plots import (
    describe_stats,
    describe_table,
    flag_summary,
    plot_correlation,
    plot_distributions,
    statistic_columns,
)


def _stats() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tile_id": pd.Series(["a", "b", "c", "d", "e"], dtype="string"),
            "split": pd.Series(["train", "train", "train", "test", "test"], dtype="string"),
            "image_path": pd.Series(["x"] * 5, dtype="string"),
            "mask_path": pd.Series(["m", "m", "m", "", ""], dtype="string"),
            "kelp_pixels": pd.array([0, 10, 50, None, None], dtype="Int64"),
            "has_kelp": pd.array([False, True, True, None, None], dtype="boolean"),
            "water_pixels_pct": [0.1, 0.5, 0.9, 1.0, 0.2],
            "qa_ok": [True, False, True, True, True],
            "pixels": [100] * 5,
        }
    )


def test_statistic_columns_skip_catalog_columns() -> None:
    assert statistic_columns(_stats()) == [
        "kelp_pixels",
        "has_kelp",
        "water_pixels_pct",
        "qa_ok",
        "pixels",
    ]


def test_describe_matches_numpy_per_split() -> None:
    describe = describe_stats(_stats()).set_index(["split", "statistic"])
    water = np.array([0.1, 0.5, 0.9, 1.0, 0.2])
    row = describe.loc[("all", "water_pixels_pct")]
    assert row["count"] == 5
    assert row["mean"] == pytest.approx(water.mean())
    assert row["std"] == pytest.approx(water.std(ddof=1))
    assert row["p50"] == pytest.approx(np.median(water))
    assert (row["min"], row["max"]) == (pytest.approx(0.1), pytest.approx(1.0))
    kelp = describe.loc[("all", "kelp_pixels")]
    assert kelp["count"] == 3  # NA for test tiles is not counted
    assert kelp["mean"] == pytest.approx(20.0)
    assert describe.loc[("test", "kelp_pixels")]["count"] == 0
    assert np.isnan(describe.loc[("test", "kelp_pixels")]["mean"])
    assert describe.loc[("train", "qa_ok")]["mean"] == pytest.approx(2 / 3)
    assert describe.loc[("test", "water_pixels_pct")]["mean"] == pytest.approx(0.6)


def test_describe_table_shows_each_value_under_its_header() -> None:
    table = describe_table(describe_stats(_stats()), "train")
    assert table.row_count == len(statistic_columns(_stats()))
    cells = {col.header: list(col.cells) for col in table.columns}
    row = cells["statistic"].index("kelp_pixels")
    # train kelp_pixels: 0, 10, 50
    expected = {"count": "3", "mean": "20", "min": "0", "p50": "10", "max": "50"}
    assert {k: cells[k][row] for k in expected} == expected
    assert "std" not in cells  # in describe.parquet; the console table fits 80 columns


def test_flag_summary_counts_true_out_of_known() -> None:
    flags = flag_summary(_stats()).set_index(["split", "flag"])
    assert tuple(flags.loc[("all", "has_kelp")]) == (2, 3)
    assert tuple(flags.loc[("test", "has_kelp")]) == (0, 0)
    assert tuple(flags.loc[("all", "qa_ok")]) == (4, 5)


def test_distribution_plots_are_written_and_decode(tmp_path: Path) -> None:
    paths = plot_distributions(_stats(), tmp_path, dpi=40)
    names = sorted(p.name for p in paths)
    expected = sorted([f"dist_{c}.png" for c in statistic_columns(_stats())] + ["correlation.png"])
    assert names == expected
    for path in paths:
        image = imread(path)
        assert image.shape[0] > 50 and image.shape[1] > 50
        assert float(image[..., :3].std()) > 0  # not a blank canvas


def test_correlation_blanks_constant_columns() -> None:
    fig = plot_correlation(_stats())
    matrix = fig.axes[0].images[0].get_array()
    columns = statistic_columns(_stats())
    const = columns.index("pixels")
    assert matrix.mask[const].all()
    water = columns.index("water_pixels_pct")
    assert matrix[water, water] == pytest.approx(1.0)
