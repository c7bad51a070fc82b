"""The probability rule of a 2-class head at inference, the score-given weights and sliced
prediction, through ``load_predictor`` and ``run_predict``'s config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.inference.config import PredictConfig
from kelpseg.inference.predict import load_predictor
from kelpseg.nn.slicing import sliced_outputs
from tests.inference.test_predict import raw_batch, save_checkpoint, tiny_module

MULTICLASS = {"encoder": "tu-resnet10t", "encoder_weights": None, "head": "multiclass",
              "arch_kwargs": {"encoder_depth": 3, "decoder_channels": [32, 16, 8]}}  # fmt: skip


def test_sigmoid_kelp_reads_the_kelp_logit_alone(tmp_path: Path) -> None:
    module = tiny_module(model=MULTICLASS)
    ckpt = save_checkpoint(module, tmp_path / "two-class.ckpt")
    raw = raw_batch(2)
    with torch.no_grad():
        out = module.head_outputs(torch.from_numpy(raw))
    seed = load_predictor([ckpt], device="cpu", probability="sigmoid_kelp").predict_batch(raw)
    softmax = load_predictor([ckpt], device="cpu").predict_batch(raw)
    np.testing.assert_allclose(seed, torch.sigmoid(out[:, 1]).numpy(), atol=1e-6)
    np.testing.assert_allclose(softmax, torch.softmax(out, dim=1)[:, 1].numpy(), atol=1e-6)
    assert np.abs(seed - softmax).max() > 1e-3
    with pytest.raises(KelpsegError, match="probability rule"):
        load_predictor([ckpt], device="cpu", probability="argmax")


def test_sliced_prediction_averages_the_slices(tmp_path: Path) -> None:
    sliced = {"slicing": {"predict": True, "size": 32, "overlap": 16}}
    module = tiny_module(data=sliced)
    ckpt = save_checkpoint(module, tmp_path / "sliced.ckpt")
    raw = raw_batch(1, size=64)
    with torch.no_grad():
        x = module.inputs(torch.from_numpy(raw))
        whole = module.sizer.restore(module.network_outputs(module.sizer(x))[0], (64, 64))
        expected = torch.sigmoid(sliced_outputs(module._whole_outputs, x, 32, 16))[:, 0]
    prob = load_predictor([ckpt], device="cpu").predict_batch(raw)
    np.testing.assert_allclose(prob, expected.numpy(), atol=1e-5)
    assert np.abs(prob - torch.sigmoid(whole)[:, 0].numpy()).max() > 1e-4  # not the whole tile


def test_given_scores_become_min_max_weights_and_exclude_other_weights() -> None:
    config = PredictConfig(models=["a", "b", "c"], scores=[0.70, 0.72, 0.71])
    assert config.scores == [0.70, 0.72, 0.71]
    with pytest.raises(ValueError, match="3 scores for 2 models"):
        PredictConfig(models=["a", "b"], scores=[0.70, 0.72, 0.71])
    with pytest.raises(ValueError, match="one of weights, scores"):
        PredictConfig(models=["a", "b"], scores=[0.7, 0.8], weights=[1.0, 1.0])
    assert PredictConfig(models=["a"], precision=32).precision == "32"  # as --set parses it


def test_run_predict_weights_members_by_given_scores(tmp_path: Path) -> None:
    from kelpseg.inference.predict import run_predict
    from kelpseg.io.tiles import write_tile

    tiles = tmp_path / "tiles"
    for i, tile in enumerate(raw_batch(2, size=32)):
        write_tile(tiles / f"T{i}_satellite.tif", tile)
    a = save_checkpoint(tiny_module(seed=1), tmp_path / "a.ckpt")
    b = save_checkpoint(tiny_module(seed=2), tmp_path / "b.ckpt")
    config = PredictConfig(models=[str(a), str(b)], scores=[0.70, 0.72], device="cpu",
                           ensemble_mode="seed_mean", num_workers=0)  # fmt: skip
    predictor, _ = run_predict(config, tiles, tmp_path / "out", show_progress=False)
    # min-max to [0.2, 1.0]: 0.2 and 1.0, normalised to 1/6 and 5/6
    assert predictor.weights.tolist() == pytest.approx([1 / 6, 5 / 6])
    from kelpseg.config import read_yaml

    saved = read_yaml(tmp_path / "out" / "predict_config.yaml")
    assert saved["scores"] is None and saved["weights"] == pytest.approx([1 / 6, 5 / 6])
