"""Fold counts, the leakage check, grouping scores and the report pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from kelpseg.errors import KelpsegError
from kelpseg.split.report import (
    aois_spanning_folds,
    check_no_leakage,
    fold_counts,
    grouping_scores,
    pick_sample_groups,
    plot_group_sizes,
    plot_sample_groups,
)
from tests.split.conftest import CraftedDataset


def folded() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tile_id": list("abcdefg"),
            "split": ["train"] * 6 + ["test"],
            "aoi_id": [0, 0, 1, 2, 2, 3, 0],
            "fold": [0, 0, 1, 1, 1, -1, -1],
            "subset": ["train"] * 5 + ["excluded", "test"],
            "has_kelp": pd.array([True, False, True, True, True, True, None], "boolean"),
            "kelp_pixels": pd.array([10, 0, 5, 7, 1, 100, None], "Int64"),
        }
    )


def test_fold_counts_by_hand() -> None:
    table = fold_counts(folded())
    assert table["fold"].tolist() == [0, 1]
    assert table["tiles"].tolist() == [2, 3]
    assert table["aois"].tolist() == [1, 2]
    assert table["kelp_tiles"].tolist() == [1, 3]
    assert table["kelp_pixels"].tolist() == [10, 13]


def test_fold_counts_without_label_columns_are_na() -> None:
    table = fold_counts(folded().drop(columns=["has_kelp", "kelp_pixels"]))
    assert table["kelp_tiles"].isna().all() and table["tiles"].tolist() == [2, 3]


def test_leakage_check_passes_clean_folds_and_names_a_leaky_aoi() -> None:
    frame = folded()
    check_no_leakage(frame)  # AOI 0 also holds an unused test tile: not a leak
    frame.loc[1, "fold"] = 1
    assert aois_spanning_folds(frame)["aoi_id"].tolist() == [0]
    with pytest.raises(KelpsegError, match=r"1 AOIs span several folds \(AOI 0 in folds 0, 1\)"):
        check_no_leakage(frame)


def test_leakage_check_sees_the_holdout_part() -> None:
    frame = folded()
    frame["subset"] = ["val", "val", "train", "train", "train", "holdout", "test"]
    frame["fold"] = [0, 0, 1, 1, 1, -1, -1]
    check_no_leakage(frame)
    assert fold_counts(frame)["subset"].tolist() == ["holdout", "val", "train"]
    frame.loc[5, "aoi_id"] = 2  # the held-out tile now shares AOI 2 with training tiles
    with pytest.raises(KelpsegError, match="AOI 2 in folds 1, holdout"):
        check_no_leakage(frame)


def test_grouping_scores_by_hand() -> None:
    true = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([5, 5, 6, 7, 7, 7])  # splits AOI 0, merges AOIs 1 and 2
    scores = grouping_scores(true, pred)
    # true pairs: 3 + 1 = 4; predicted: 1 + 3 = 4; shared: (0,1) and (3,4) = 2
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(0.5)
    assert grouping_scores(true, true)["ari"] == pytest.approx(1.0)
    masked = grouping_scores(true, pred, mask=np.array([1, 1, 0, 1, 1, 0], bool))
    assert masked["precision"] == masked["recall"] == pytest.approx(1.0)


def test_report_pictures(crafted: CraftedDataset, tmp_path: Path) -> None:
    frame = crafted.stats.merge(crafted.truth, on="tile_id").rename(columns={"aoi": "aoi_id"})
    frame["fold"] = 0
    groups = pick_sample_groups(frame, 3, seed=0)
    assert len(groups) == 3 and len(set(groups)) == 3
    sizes = frame.groupby("aoi_id").size()
    assert sizes[groups[0]] == sizes.max()
    png = plot_sample_groups(frame, tmp_path / "groups.png", n_groups=3, members=4)
    assert png is not None and imread(png).shape[0] > 100
    sizes_png = plot_group_sizes(frame, tmp_path / "sizes.png")
    assert imread(sizes_png).shape[1] > 100
    single = frame.assign(aoi_id=np.arange(len(frame)))
    assert plot_sample_groups(single, tmp_path / "none.png") is None
