"""The final solution's two submissions: each config trains (one step, CPU) and its ensemble
file predicts with the one-step checkpoints, through ``kelpseg train-cv`` and ``kelpseg predict``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from kelpseg.cli.app import main
from kelpseg.config import load_config, read_yaml
from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.inference.config import PredictConfig
from kelpseg.nn.config import TrainConfig
from tests.nn.conftest import split_catalog, split_catalog_path, synth_root  # noqa: F401

FINAL = Path(__file__).resolve().parents[2] / "configs" / "final"
# CPU, random init, one step of two 64 px tiles: everything else stays as shipped.
ONE_STEP = [
    "model.encoder_weights=null",
    "trainer.precision=32",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "data.store=null",
    "data.batch_size=2",
    "data.num_workers=0",
    "data.sampler.samples_per_epoch=2",
    "tracking.enabled=false",
]


def test_the_submission_configs_are_the_reports_settings() -> None:
    one = load_config(TrainConfig, FINAL / "submission-1.yaml")
    two = load_config(TrainConfig, FINAL / "submission-2.yaml")
    for config in (one, two):
        assert (config.model.arch, config.model.encoder) == ("Unet", "tu-efficientnet_b5")
        assert config.model.head == "multiclass" and config.trainer.max_epochs == 50
        assert config.data.augment.rotate == 0.5 and config.data.augment.rot90 == 0.0
        assert len(config.features.channels) == 24
    assert [t.name for t in one.loss.terms] == ["dice"] and one.trainer.precision == "16-mixed"
    assert [t.name for t in two.loss.terms] == ["jaccard"] and two.trainer.precision == "bf16-mixed"
    assert two.model.arch_kwargs["decoder_channels"] == [512, 256, 128, 64, 32]
    assert "decoder_channels" not in one.model.arch_kwargs
    ens1 = load_config(PredictConfig, FINAL / "submission-1-ensemble.yaml")
    ens2 = load_config(PredictConfig, FINAL / "submission-2-ensemble.yaml")
    assert (ens1.ensemble_mode, ens1.threshold, ens1.weights) == ("seed_vote", 0.48, [1.0] * 10)
    assert (ens2.ensemble_mode, ens2.threshold) == ("seed_mean", 0.45)
    assert ens2.weights == [0.666, 0.5, 0.666, 0.88, 0.637, 0.59, 0.733, 0.63, 1.0, 0.2]
    for ens, name in ((ens1, "submission-1"), (ens2, "submission-2")):
        assert ens.probability == "sigmoid_kelp" and not ens.tta.enabled
        assert ens.models == [f"runs/final/{name}/fold-{k}" for k in range(10)]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ten EfficientNet-B5 members built and run on a shared CPU
@pytest.mark.parametrize("name", ["submission-1", "submission-2"])
def test_a_submission_trains_one_step_and_its_ensemble_file_predicts(
    name: str,
    tmp_path: Path,
    split_catalog: pd.DataFrame,  # noqa: F811
    split_catalog_path: Path,  # noqa: F811
) -> None:
    features = load_config(TrainConfig, FINAL / f"{name}.yaml").features
    train_rows = split_catalog[split_catalog["split"] == "train"]
    stats = compute_band_stats(train_rows, features, device="cpu", show_progress=False)
    stats_path = stats.to_json(tmp_path / "stats.json")
    run = tmp_path / "run"
    sets = [*ONE_STEP, f"data.catalog={split_catalog_path}", f"stats_path={stats_path}"]
    sets.append(f"output_dir={run}")
    args = ["train-cv", "--config", str(FINAL / f"{name}.yaml"), "--folds", "0"]
    assert main([*args, *[a for s in sets for a in ("--set", s)]]) == 0
    assert (run / "fold-0" / "checkpoints" / "best.ckpt").is_file()

    # The shipped ensemble file, its ten members all pointing at the one-step model.
    ensemble = read_yaml(FINAL / f"{name}-ensemble.yaml")
    shipped = dict(ensemble)
    ensemble["models"] = [str(run / "fold-0")] * 10
    ensemble_file = tmp_path / "ensemble.yaml"
    ensemble_file.write_text(yaml.safe_dump(ensemble))
    # Two test tiles keep ten B5 members affordable on a 2-core CI machine.
    test_rows = split_catalog[split_catalog["split"] == "test"].head(2)
    tiles = tmp_path / "two-test-tiles.parquet"
    test_rows.to_parquet(tiles)
    out = tmp_path / "predictions"
    code = main(["predict", "--config", str(ensemble_file), "--tiles", str(tiles),
                 "--out", str(out), "--set", "precision=32", "--set", "device=cpu",
                 "--quiet"])  # fmt: skip
    assert code == 0
    test_ids = test_rows["tile_id"].tolist()
    assert sorted(p.name for p in out.glob("*_kelp.tif")) == sorted(
        f"{t}_kelp.tif" for t in test_ids
    )
    saved = read_yaml(out / "predict_config.yaml")
    for key in ("ensemble_mode", "threshold", "probability"):
        assert saved[key] == shipped[key]
    assert sum(saved["weights"]) == pytest.approx(1.0)
