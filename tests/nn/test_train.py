"""train() and train_cv(): run folder, local MLflow tracking, reloading, full fit, CV child runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from kelpseg.config import read_yaml
from kelpseg.errors import KelpsegError
from kelpseg.nn.cv import train_cv
from kelpseg.nn.module import KelpSegModule
from kelpseg.nn.tracking import load_run
from kelpseg.nn.train import TrainResult, train, trainer_kwargs
from tests.nn import model_fixtures
from tests.nn.model_fixtures import tiny_config

band_stats_path = model_fixtures.band_stats_path  # the fixture, visible to pytest here


def _artifacts(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    found: set[str] = set()
    for info in client.list_artifacts(run_id, path or None):
        found |= _artifacts(client, run_id, info.path) if info.is_dir else {info.path}
    return found


@pytest.mark.slow
def test_train_tracks_a_run_locally_that_reloads_from_its_id(
    tmp_path: Path, split_catalog_path: Path, band_stats_path: Path
) -> None:
    out = tmp_path / "run"
    config = tiny_config(
        split_catalog_path, band_stats_path, out,
        "tracking.enabled=true", "tracking.experiment=tiny", "tracking.run_name=first",
        "trainer.max_epochs=2", "trainer.num_sanity_val_steps=1",
    )  # fmt: skip
    result = train(config)

    for name in ("config.yaml", "stats.json", "result.json", "mlflow.db", "model/best.ckpt"):
        assert (out / name).is_file(), name
    assert result.best_ckpt == out / "checkpoints" / "best.ckpt" and result.best_ckpt.is_file()
    assert result.last_ckpt == out / "checkpoints" / "last.ckpt"
    assert read_yaml(out / "config.yaml")["model"]["encoder"] == "tu-resnet10t"
    assert sorted(result.history) == [0, 1]
    assert result.best_dice == max(m["val/dice"] for m in result.history.values())
    assert TrainResult.load(out / "result.json") == result

    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.run_name == "first" and run.info.status == "FINISHED"
    assert run.data.params["optim.lr"] == "0.0003"
    assert json.loads(run.data.params["features.channels"])[:3] == ["R", "G", "B"]
    # Epoch metrics are logged against the epoch, step metrics against the optimiser step.
    assert [m.step for m in client.get_metric_history(result.run_id, "val/dice")] == [0, 1]
    assert [m.step for m in client.get_metric_history(result.run_id, "train/loss")] == [0, 1]
    steps = [m.step for m in client.get_metric_history(result.run_id, "step/loss")]
    assert steps == sorted(steps) and max(steps) >= 2 and "epoch" not in run.data.metrics
    arts = _artifacts(client, result.run_id)
    assert {"config.yaml", "stats.json", "model/best.ckpt", "images/channels.png"} <= arts
    # One grid and one confusion matrix per epoch, none for the sanity check.
    assert {a for a in arts if a.startswith("images/predictions/")} == {
        "images/predictions/epoch_000.png",
        "images/predictions/epoch_001.png",
    }
    assert len([a for a in arts if a.startswith("images/confusion/")]) == 2
    assert str(tmp_path) in run.info.artifact_uri  # artifacts live in the run folder

    module, loaded_config, stats = load_run(result.run_id, result.tracking_uri)
    assert loaded_config == config and stats is not None
    reference = KelpSegModule.from_checkpoint(result.best_ckpt)
    raw = torch.full((1, 7, 64, 64), 8000, dtype=torch.int16)
    with torch.no_grad():
        torch.testing.assert_close(module(raw), reference(raw))
    assert load_run(out)[1] == config  # a run folder works too


def test_a_run_folder_is_never_overwritten_and_resume_needs_a_checkpoint(
    tmp_path: Path, split_catalog_path: Path
) -> None:
    config = tiny_config(split_catalog_path, None, tmp_path / "run")
    with pytest.raises(KelpsegError, match="nothing to resume"):
        train(config, resume=True)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(KelpsegError, match="already holds a run; pass --resume"):
        train(config)


def test_trainer_settings_reach_lightning(tmp_path: Path, split_catalog_path: Path) -> None:
    config = tiny_config(
        split_catalog_path, None, tmp_path,
        "trainer.accumulate_grad_batches=4", "trainer.gradient_clip_val=0.5",
        "trainer.precision=bf16-mixed", "trainer.deterministic=true",
        "trainer.strategy=ddp", "model.freeze=frozen_encoder", "trainer.limit_val_batches=0.5",
    )  # fmt: skip
    kwargs = trainer_kwargs(config)
    assert (kwargs["accumulate_grad_batches"], kwargs["gradient_clip_val"]) == (4, 0.5)
    assert (kwargs["precision"], kwargs["deterministic"], kwargs["benchmark"]) == (
        "bf16-mixed", True, False,
    )  # fmt: skip
    assert kwargs["strategy"] == "ddp_find_unused_parameters_true"  # frozen params get no grad
    assert kwargs["limit_val_batches"] == 0.5 and "limit_train_batches" not in kwargs


@pytest.mark.slow
def test_full_fit_with_freezing_accumulation_and_cosine_keeps_the_last_checkpoint(
    tmp_path: Path, split_catalog_path: Path, band_stats_path: Path
) -> None:
    config = tiny_config(
        split_catalog_path, band_stats_path, tmp_path / "full",
        "data.fold=null", "trainer.max_epochs=2", "model.freeze=freeze_then_unfreeze",
        "trainer.accumulate_grad_batches=2", "trainer.gradient_clip_val=1.0",
        "optim.scheduler=cosine", "optim.encoder_lr_scale=0.1",
    )  # fmt: skip
    result = train(config)
    assert result.best_dice is None and result.best_epoch == 1
    assert result.best_ckpt is not None and result.best_ckpt.is_file()
    assert "train/loss" in result.history[1] and "val/dice" not in result.history[1]
    first = torch.load(result.best_ckpt, weights_only=True)
    assert first["epoch"] == 1 and first["global_step"] == 2  # 2 batches per epoch, accumulated


@pytest.mark.slow
def test_cross_validation_nests_one_child_run_per_fold(
    tmp_path: Path, split_catalog_path: Path, band_stats_path: Path
) -> None:
    out = tmp_path / "cv"
    config = tiny_config(
        split_catalog_path, band_stats_path, out,
        "tracking.enabled=true", "tracking.run_name=cv", "tracking.log_images=false",
        "optim.scheduler=plateau",
    )  # fmt: skip
    result = train_cv(config, folds=[0, 1])
    assert sorted(result.folds) == [0, 1]
    scores = [r.best_dice for r in result.folds.values()]
    assert result.mean_dice == pytest.approx(sum(scores) / 2)
    assert (out / "fold-0" / "checkpoints" / "best.ckpt").is_file()
    assert (out / "fold-1" / "result.json").is_file()

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("kelpseg").experiment_id])
    by_id = {r.info.run_id: r for r in runs}
    parent = by_id[result.parent_run_id]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    assert sorted(r.info.run_name for r in children) == ["cv-fold-0", "cv-fold-1"]
    assert {r.data.params["data.fold"] for r in children} == {"0", "1"}
    assert parent.data.metrics["cv/dice_mean"] == pytest.approx(result.mean_dice)
    history = client.get_metric_history(result.parent_run_id, "cv/fold_dice")
    assert [m.step for m in history] == [0, 1]

    again = train_cv(config, folds=[0, 1], resume=True)  # finished folds are skipped
    assert again.folds[0].best_dice == result.folds[0].best_dice


@pytest.mark.slow
def test_a_model_trained_on_scaled_crops_predicts_whole_tiles_at_their_size(
    tmp_path: Path, split_catalog_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kelpseg.inference.predict import load_predictor

    seen: set[tuple[int, int]] = set()
    network_outputs = KelpSegModule.network_outputs

    def recording(self: KelpSegModule, x: torch.Tensor) -> object:
        seen.add((int(x.shape[-2]), int(x.shape[-1])))
        return network_outputs(self, x)

    monkeypatch.setattr(KelpSegModule, "network_outputs", recording)
    config = tiny_config(
        split_catalog_path, None, tmp_path / "run",
        "features.normalization=per-sample-min-max", "data.sizing.strategy=resize",
        "data.sizing.scale=1.5", "data.sizing.interpolation=bicubic",
    )  # fmt: skip
    result = train(config)
    # 32 px crops x 1.5 = 48 -> 64; whole 64 px validation tiles x 1.5 = 96 (both multiples of 32)
    assert seen == {(64, 64), (96, 96)}
    assert result.best_ckpt is not None and result.best_dice is not None

    module = KelpSegModule.from_checkpoint(result.best_ckpt)
    assert module.sizer.scale == 1.5 and module.sizer.size is None
    raw = torch.randint(0, 20000, (1, 7, 350, 350), dtype=torch.int16)
    seen.clear()
    with torch.no_grad():
        prob = module.predict_probabilities(raw)
    assert seen == {(544, 544)} and prob.shape == (1, 1, 350, 350)  # 350 x 1.5 = 525 -> 544
    predicted = load_predictor([result.best_ckpt], device="cpu").predict_batch(raw.numpy())
    assert predicted.shape == (1, 350, 350)
    # The predictor resamples probabilities back, the module logits: close, not equal.
    np.testing.assert_allclose(predicted, prob[:, 0].numpy(), atol=1e-3)
