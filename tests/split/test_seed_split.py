"""The seed's split as one shipped config: its settings, and a run of it on crafted tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.cli.app import main
from kelpseg.config import load_config
from kelpseg.errors import KelpsegError
from kelpseg.split import SplitConfig
from kelpseg.split.folds import assign_folds
from tests.split.conftest import CraftedDataset

SEED_SPLIT = Path(__file__).resolve().parents[2] / "configs" / "split" / "seed.yaml"
timm = pytest.importorskip("timm")


def test_the_shipped_config_is_the_seeds_split() -> None:
    config = load_config(SplitConfig, SEED_SPLIT)
    assert config.embedder == "timm:resnet50.tv2_in1k"
    assert config.timm.pretrained and config.timm.classifier and config.timm.image_size == 224
    assert config.threshold == 0.97
    assert (config.max_group_size, config.large_groups) == (100, "singletons")
    assert (config.mode, config.k, config.group_stratification) == ("kfold", 10, "majority")
    assert config.stratify == ["qa_ok", "has_kelp", "dem_has_nans", "high_corrupted_pixels_pct"]
    assert config.exclude_kelp_above == 0.4


def test_the_seed_split_runs_with_random_weights_and_applies_its_rules(
    crafted: CraftedDataset, tmp_path: Path
) -> None:
    stats = crafted.stats.copy()
    train = stats["split"] == "train"
    share = np.where(train, 0.01, np.nan)
    share[np.flatnonzero(train)[:2]] = 0.6  # two tiles with 60% kelp: the seed drops them
    stats["kelp_pixels_pct"] = share
    path = tmp_path / "tile_stats.parquet"
    stats.to_parquet(path)
    out = tmp_path / "split"
    # A small stand-in network and images (the ResNet-50 at 224 px is the same code, slower);
    # k=4 for 8 AOIs; a group limit of 2 so the singleton rule has groups to break.
    sets = ["timm.pretrained=false", "embedder=timm:test_resnet", "timm.image_size=64",
            "timm.device=cpu", "k=4", "max_group_size=2"]  # fmt: skip
    args = ["split", str(path), "--out", str(out), "--config", str(SEED_SPLIT), "--quiet"]
    assert main([*args, *[a for s in sets for a in ("--set", s)]]) == 0
    table = pd.read_parquet(out / "split.parquet").set_index("tile_id")
    dropped = stats.loc[stats["kelp_pixels_pct"] > 0.4, "tile_id"].tolist()
    assert len(dropped) == 2
    assert (table.loc[dropped, "subset"] == "excluded").all()
    assert (table.loc[dropped, "fold"] == -1).all()
    sizes = table["aoi_id"].value_counts()
    assert sizes.max() <= 2  # larger groups became single tiles
    used = table[table["fold"] >= 0]
    assert (used.groupby("aoi_id")["fold"].nunique() == 1).all()


def test_classifier_outputs_are_the_embedding_and_load_from_a_local_file(tmp_path: Path) -> None:
    import torch

    from kelpseg.split.timm_embedder import TimmEmbedder, create_encoder

    def cfg(**opts: object) -> SplitConfig:
        base = {"image_size": 64, "device": "cpu", "classifier": True, **opts}
        return SplitConfig.model_validate({"embedder": "timm:test_resnet", "timm": base})

    model = create_encoder("test_resnet", cfg(init_seed=3).timm)
    weights = tmp_path / "weights.pth"
    torch.save(model.state_dict(), weights)
    loaded = TimmEmbedder("test_resnet", cfg(pretrained=True, checkpoint=str(weights)).timm)
    dems = np.random.default_rng(0).integers(-5, 50, (2, 64, 64)).astype(np.int16)
    vectors = loaded(dems)
    assert vectors.shape == (2, model.num_classes) and model.num_classes > 0
    pooled = TimmEmbedder("test_resnet", cfg(classifier=False).timm)(dems)
    assert pooled.shape == (2, model.num_features)


def test_exclusion_by_kelp_share_needs_the_column(crafted: CraftedDataset) -> None:
    frame = crafted.stats.assign(aoi_id=np.arange(len(crafted.stats)) % 8)
    with pytest.raises(KelpsegError, match="exclude_kelp_above"):
        assign_folds(frame, SplitConfig(k=4, exclude_kelp_above=0.4))


def test_unknown_large_group_rule_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="large_groups"):
        SplitConfig.model_validate({"large_groups": "merge"})
