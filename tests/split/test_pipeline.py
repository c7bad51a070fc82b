"""The split stage end to end on crafted data (and on generated data, slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.split import SplitConfig, grouping_scores, split_tiles
from kelpseg.split import embeddings as emb_mod
from kelpseg.split.pipeline import (
    CONFIG_FILE,
    FOLD_COUNTS_FILE,
    GROUP_SIZES_FILE,
    SAMPLE_GROUPS_FILE,
    SPLIT_FILE,
    SUMMARY_FILE,
    load_tile_table,
)
from tests.split.conftest import CraftedDataset, simple_stats


def test_split_recovers_aois_and_writes_outputs(crafted: CraftedDataset, tmp_path: Path) -> None:
    stats_path = tmp_path / "tile_stats.parquet"
    crafted.stats.to_parquet(stats_path)
    result = split_tiles(stats_path, tmp_path / "out", SplitConfig(k=4), show_progress=False)
    out = tmp_path / "out"
    for name in (SPLIT_FILE, FOLD_COUNTS_FILE, SUMMARY_FILE, CONFIG_FILE, GROUP_SIZES_FILE):
        assert (out / name).is_file(), name
    assert (out / SAMPLE_GROUPS_FILE).is_file()
    table = pd.read_parquet(out / SPLIT_FILE)
    assert {"aoi_id", "dem_informative", "fold", "subset"} <= set(table.columns)
    assert table.loc[table["tile_id"] == "ZZ999", "dem_informative"].tolist() == [False]
    assert len(table) == len(crafted.stats)
    merged = table.merge(crafted.truth, on="tile_id")
    scores = grouping_scores(merged["aoi"].to_numpy(), merged["aoi_id"].to_numpy())
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0
    # The tile without DEM is alone, every test tile shares its AOI with training tiles.
    lone = merged.loc[merged["tile_id"] == "ZZ999", "aoi_id"].item()
    assert (merged["aoi_id"] == lone).sum() == 1
    g = result.groups
    assert (g.groups, g.informative_tiles, g.singletons) == (9, 32, 1)
    assert g.test_tiles == g.test_tiles_sharing_aoi_with_train == 8
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["leakage_check"] == "passed"
    assert summary["groups"]["test_tiles_sharing_aoi_with_train"] == 8
    counts = pd.read_parquet(out / FOLD_COUNTS_FILE)
    assert counts["tiles"].sum() == 25 and counts["fold"].tolist() == [0, 1, 2, 3]


def test_rerun_with_another_threshold_uses_the_cache(
    crafted: CraftedDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = split_tiles(crafted.stats, tmp_path, SplitConfig(k=3), show_progress=False)
    cache = tmp_path / "embeddings_dem.npy"
    stamp = cache.stat().st_mtime_ns

    def no_reading(path: str) -> np.ndarray:
        raise AssertionError(f"tile read again: {path}")

    monkeypatch.setattr(emb_mod, "read_dem", no_reading)
    again = split_tiles(
        crafted.stats, tmp_path, SplitConfig(k=3, threshold=0.999), show_progress=False
    )
    assert cache.stat().st_mtime_ns == stamp
    assert first.groups.groups == 9
    assert again.groups.groups > 9  # shifted tiles no longer match at 0.999


def test_exclusion_and_holdout(crafted: CraftedDataset, tmp_path: Path) -> None:
    cfg = SplitConfig(mode="holdout", holdout=(0.5, 0.25, 0.25))
    result = split_tiles(crafted.stats, tmp_path, cfg, exclude=["T0000"], show_progress=False)
    table = result.tiles.set_index("tile_id")
    assert table.loc["T0000", "subset"] == "excluded" and table.loc["T0000", "fold"] == -1
    assert set(table["subset"]) == {"train", "val", "holdout", "test", "excluded"}
    assert result.aois_spanning_folds == 0


def test_random_mode_reports_leaky_aois(crafted: CraftedDataset, tmp_path: Path) -> None:
    result = split_tiles(
        crafted.stats, tmp_path, SplitConfig(k=3, mode="random"), show_progress=False
    )
    assert result.aois_spanning_folds > 0
    summary = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert summary["leakage_check"].startswith("leaky")


def test_bad_tile_tables_are_errors(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="does not exist"):
        load_tile_table(tmp_path / "nope.parquet")
    frame = pd.DataFrame(
        {"tile_id": ["a", "a"], "split": "train", "image_path": "x", "mask_path": ""}
    )
    frame.to_parquet(tmp_path / "dup.parquet")
    with pytest.raises(KelpsegError, match="'a' appears more than once"):
        load_tile_table(tmp_path / "dup.parquet")


@pytest.mark.slow
def test_generated_data_grouping_quality(tmp_path: Path) -> None:
    """On generated data (true AOIs known, some DEMs shifted), recall and precision hold."""
    synth = pytest.importorskip("kelpseg.synth")
    from kelpseg.io import build_catalog

    cfg = synth.SynthConfig(n_aoi=12, seed=3, tile_size=192, misaligned_share=0.15)
    synth.generate_dataset(tmp_path / "data", cfg, workers=1, show_progress=False)
    stats = simple_stats(build_catalog(tmp_path / "data").tiles)
    result = split_tiles(stats, tmp_path / "split", SplitConfig(k=4), show_progress=False)
    truth = pd.read_parquet(tmp_path / "data" / "synth_truth.parquet")
    merged = result.tiles.merge(truth[["tile_id", "aoi"]], on="tile_id")
    informative = merged["dem_informative"].to_numpy()
    assert informative.mean() > 0.8
    scores = grouping_scores(merged["aoi"].to_numpy(), merged["aoi_id"].to_numpy(), informative)
    assert scores["recall"] >= 0.99
    assert scores["precision"] >= 0.95


@pytest.mark.slow
def test_split_on_real_eda_statistics(crafted: CraftedDataset, tmp_path: Path) -> None:
    """The EDA stage's own tile statistics (on a 2-worker local Dask cluster) feed the split."""
    eda = pytest.importorskip("kelpseg.eda")
    from kelpseg.io import build_catalog

    catalog = build_catalog(crafted.root).tiles
    stats, failures = eda.compute_tile_stats(
        catalog, eda.EdaConfig(tile_size=0), workers=2, show_progress=False
    )
    assert failures.empty
    result = split_tiles(stats, tmp_path, SplitConfig(k=3), show_progress=False)
    train = result.tiles[result.tiles["split"] == "train"]
    assert set(train["fold"]) == {0, 1, 2}
    assert result.aois_spanning_folds == 0
    counts = result.fold_counts
    assert counts["kelp_tiles"].sum() == int(stats["has_kelp"].fillna(False).sum())
    assert counts["kelp_pixels"].sum() == int(stats["kelp_pixels"].fillna(0).sum())
