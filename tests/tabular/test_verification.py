"""Issue 10's verification on generated data: every model beats a one-index threshold.

A generated dataset (kelpseg.synth, 20 AOIs of 64 px tiles, folds grouped by AOI so no area
is in two folds) is sampled, each registered model trained on folds 1-3 and scored on fold 0's
whole tiles, and compared with the best single NDVI threshold on those same tiles.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kelpseg.features import INDICES
from kelpseg.io.catalog import build_catalog
from kelpseg.synth import SynthConfig, generate_dataset
from kelpseg.tabular import (
    MODELS,
    BaselineResult,
    TabularConfig,
    build_pixel_dataset,
    index_baseline,
    train_tabular,
)

pytestmark = pytest.mark.slow

# NIR-reading channels are a minority here (3 of 12), so ranking them first means something.
CHANNELS = ["R", "G", "B", "SWIR1", "QA", "DEM", "DEMWM", "KIVU", "CI", "NIR", "NDVI", "SABI"]
PARAMS = {
    "xgboost": {"n_estimators": 80, "max_depth": 5},
    "lightgbm": {"n_estimators": 80, "num_leaves": 15},
    "catboost": {"iterations": 80, "depth": 5},
    "random_forest": {"n_estimators": 40, "max_depth": 10, "min_samples_leaf": 5},
    "extra_trees": {"n_estimators": 40, "max_depth": 10, "min_samples_leaf": 5},
}


def reads_nir(channel: str) -> bool:
    """Whether a channel is NIR or an index computed from it."""
    return channel == "NIR" or (channel in INDICES and "NIR" in INDICES[channel].bands)


@pytest.fixture(scope="module")
def demo_pixels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    synth = generate_dataset(
        root / "data", SynthConfig(n_aoi=20, seed=7, tile_size=64), show_progress=False, workers=1
    )
    catalog = build_catalog(root / "data").tiles
    aoi = dict(zip(synth.truth["tile_id"], synth.truth["aoi"], strict=True))
    catalog["fold"] = [aoi[t] % 4 for t in catalog["tile_id"]]
    build_pixel_dataset(catalog, config(), root / "px", scheduler="sync", show_progress=False)
    return root / "px"


def config(model: str = "xgboost") -> TabularConfig:
    return TabularConfig.model_validate(
        {
            "features": {"channels": CHANNELS, "fill_value": "nan"},
            "non_kelp_per_tile": 300,
            "threads": 1,  # a shared 2-core machine: OpenMP spinning makes 2 threads slower
            "model": model,
            "params": PARAMS,
        }
    )


@pytest.fixture(scope="module")
def baseline(demo_pixels: Path) -> BaselineResult:
    return index_baseline(demo_pixels, 0, channel="NDVI")


@pytest.mark.parametrize("name", list(MODELS))
def test_model_beats_the_ndvi_threshold_and_ranks_nir_channels_high(
    name: str, demo_pixels: Path, baseline: BaselineResult, tmp_path: Path
) -> None:
    result = train_tabular(demo_pixels, config(name), 0, tmp_path, track=False, show_progress=False)
    # Like for like: the model's threshold and the NDVI cut both chosen on the validation fold;
    # the oracle cut is the best any single NDVI threshold can do there, and it already beats
    # the cut fitted on the training folds. (Dice at 0.5 is not compared: with tile-weighted
    # rows the Dice-optimal threshold of these small tiles sits near 0.2-0.35.)
    assert baseline.oracle_dice >= baseline.evaluation.metrics["dice"]
    assert result.metrics["val_tiles_dice_best"] > baseline.oracle_dice
    assert any(reads_nir(c) for c in result.importances.index[:3]), list(result.importances.index)
    nir_share = sum(v for c, v in result.importances.items() if reads_nir(c))
    assert nir_share > 3 / len(CHANNELS), "NIR channels carry more than their share by count"
