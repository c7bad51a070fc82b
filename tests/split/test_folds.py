"""Fold assignment: group k-fold, random, hold-out, stratification, exclusion list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.split.config import SplitConfig
from kelpseg.split.folds import (
    FOLD_UNUSED,
    assign_folds,
    read_exclusion_list,
    stratification_labels,
)
from kelpseg.split.report import aois_spanning_folds


def tile_table(n_aoi: int = 120, seed: int = 0) -> pd.DataFrame:
    """Training tiles in AOIs of 1-6 tiles with EDA flags, plus a few test tiles."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, n_aoi)
    aoi = np.repeat(np.arange(n_aoi), sizes)
    n = len(aoi)
    # Kelp depends on the AOI (as in real data), corruption on the date.
    kelp_aoi = rng.random(n_aoi) < 0.6
    frame = pd.DataFrame(
        {
            "tile_id": [f"T{i:04d}" for i in range(n)],
            "split": np.where(rng.random(n) < 0.15, "test", "train"),
            "aoi_id": aoi,
            "has_kelp": kelp_aoi[aoi] & (rng.random(n) < 0.8),
            "qa_ok": rng.random(n) < 0.5,
            "dem_has_nans": rng.random(n) < 0.7,
            "high_corrupted_pixels_pct": rng.random(n) < 0.1,
            "kelp_pixels": rng.integers(0, 5000, n),
        }
    )
    frame = frame.astype({"has_kelp": "boolean", "kelp_pixels": "Int64"})
    frame.loc[frame["split"] == "test", ["has_kelp", "kelp_pixels"]] = pd.NA
    return frame


def test_kfold_keeps_each_aoi_in_one_fold_and_leaves_test_tiles_out() -> None:
    frame = tile_table()
    out, summary = assign_folds(frame, SplitConfig(k=5))
    train = out["split"] == "train"
    assert set(out.loc[train, "fold"]) == set(range(5))
    assert (out.loc[~train, "fold"] == FOLD_UNUSED).all()
    assert (out.loc[~train, "subset"] == "test").all()
    assert (out.loc[train, "subset"] == "train").all()
    assert aois_spanning_folds(out).empty
    assert summary.assigned == int(train.sum())
    assert sum(summary.strata.values()) == summary.assigned


def test_stratification_balances_kelp_tiles_across_folds() -> None:
    frame = tile_table(n_aoi=400, seed=1)
    out, _ = assign_folds(frame, SplitConfig(k=5))
    train = out[out["split"] == "train"]
    overall = train["has_kelp"].astype(float).mean()
    per_fold = train.groupby("fold")["has_kelp"].apply(lambda s: s.astype(float).mean())
    assert (per_fold - overall).abs().max() < 0.02  # unstratified: 0.03-0.15 here
    sizes = train.groupby("fold").size()
    assert sizes.max() / sizes.min() < 1.25


def test_folds_are_reproducible_and_depend_on_the_seed() -> None:
    frame = tile_table()
    a, _ = assign_folds(frame, SplitConfig(k=4, seed=1))
    b, _ = assign_folds(frame, SplitConfig(k=4, seed=1))
    c, _ = assign_folds(frame, SplitConfig(k=4, seed=2))
    assert a["fold"].tolist() == b["fold"].tolist()
    assert a["fold"].tolist() != c["fold"].tolist()


def test_random_mode_ignores_aois() -> None:
    out, _ = assign_folds(tile_table(), SplitConfig(k=5, mode="random"))
    assert len(aois_spanning_folds(out)) > 10


def test_holdout_splits_groups_by_fractions() -> None:
    frame = tile_table(n_aoi=300, seed=2)
    cfg = SplitConfig(mode="holdout", holdout=(0.7, 0.15, 0.15))
    out, summary = assign_folds(frame, cfg)
    train = out[out["split"] == "train"]
    share = train["subset"].value_counts(normalize=True)
    assert share["train"] == pytest.approx(0.7, abs=0.05)
    assert share["val"] == pytest.approx(0.15, abs=0.04)
    assert share["holdout"] == pytest.approx(0.15, abs=0.04)
    codes = dict(zip(train["subset"], train["fold"], strict=True))
    assert codes == {"train": 1, "val": 0, "holdout": FOLD_UNUSED}
    assert aois_spanning_folds(out).empty
    assert summary.mode == "holdout"


def test_holdout_without_test_part() -> None:
    cfg = SplitConfig(mode="holdout", holdout=(0.9, 0.1, 0.0))
    out, _ = assign_folds(tile_table(), cfg)
    assert set(out.loc[out["split"] == "train", "subset"]) == {"train", "val"}


def test_excluded_tiles_get_no_fold() -> None:
    frame = tile_table()
    train_ids = frame.loc[frame["split"] == "train", "tile_id"].tolist()
    test_id = frame.loc[frame["split"] == "test", "tile_id"].iloc[0]
    out, summary = assign_folds(frame, SplitConfig(k=5), [*train_ids[:7], test_id, "NOPE1"])
    dropped = out[out["tile_id"].isin(train_ids[:7])]
    assert (dropped["fold"] == FOLD_UNUSED).all() and (dropped["subset"] == "excluded").all()
    assert out.loc[out["tile_id"] == test_id, "subset"].item() == "test"
    assert summary.excluded == 7
    assert summary.unknown_excluded == ["NOPE1"]


def test_too_few_groups_or_missing_columns_are_errors() -> None:
    frame = tile_table(n_aoi=6)
    with pytest.raises(KelpsegError, match="fewer than k=10"):
        assign_folds(frame, SplitConfig())
    with pytest.raises(KelpsegError, match="'cloudiness' is not in the tile table"):
        assign_folds(tile_table(), SplitConfig(stratify=["has_kelp", "cloudiness"]))


def test_stratification_labels_bin_numbers_and_merge_rare_mixes() -> None:
    frame = pd.DataFrame(
        {
            "flag": [True, True, False, False, None, True],
            "ratio": [0.01, 0.2, 0.4, 0.6, 0.8, 0.99] * 1,
            "kind": ["a", "a", "a", "a", "a", "b"],
        }
    ).astype({"flag": "boolean"})
    frame = pd.concat([frame] * 3, ignore_index=True)
    frame["ratio"] = np.linspace(0, 1, len(frame))  # 18 distinct values -> 2 quantile bins
    labels = stratification_labels(frame, ["flag", "ratio"], bins=2)
    assert set(labels) <= {f"flag={f}|ratio={r}" for f in ("1", "0", "na") for r in ("0", "1")}
    assert "flag=na|ratio=0" in set(labels)
    assert labels[0] == "flag=1|ratio=0" and labels[-1] == "flag=1|ratio=1"
    rare = stratification_labels(frame, ["kind"], min_count=4)
    assert (rare[frame["kind"] == "b"] == "rare").all()
    assert (rare[frame["kind"] == "a"] == "kind=a").all()


def test_exclusion_list_formats(tmp_path: Path) -> None:
    plain = tmp_path / "bad.txt"
    plain.write_text("# flagged by the audit\nAA001\n\nAB002, wrong label\nAA001\n")
    assert read_exclusion_list(plain) == ["AA001", "AB002"]
    csv = tmp_path / "bad.csv"
    csv.write_text("rank,tile_id,score\n1,AC003,0.9\n2,AD004,0.8\n")
    assert read_exclusion_list(csv) == ["AC003", "AD004"]
    with pytest.raises(KelpsegError, match="exclusion list does not exist"):
        read_exclusion_list(tmp_path / "missing.txt")
