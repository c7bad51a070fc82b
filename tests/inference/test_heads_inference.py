"""Inference over the new heads and sizings: a 2-class softmax member, resized members, and
ensembles of members trained at different resolutions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kelpseg.inference.predict import load_predictor
from kelpseg.inference.tta import TtaConfig
from tests.inference.test_predict import raw_batch, save_checkpoint, tiny_module

RESIZE_64 = {"sizing": {"strategy": "resize", "size": 64, "interpolation": "bicubic"}}


def test_a_softmax_member_predicts_its_kelp_probability_with_and_without_tta(
    tmp_path: Path,
) -> None:
    module = tiny_module(model={"encoder": "tu-resnet10t", "encoder_weights": None,
                                "arch_kwargs": {"encoder_depth": 3,
                                                "decoder_channels": [32, 16, 8]},
                                "head": "multiclass", "aux_head": {"enabled": True}})  # fmt: skip
    ckpt = save_checkpoint(module, tmp_path / "softmax.ckpt")
    raw = raw_batch(2)
    with torch.no_grad():
        softmax = torch.softmax(module.head_outputs(torch.from_numpy(raw)), dim=1)[:, 1]
    plain = load_predictor([ckpt], device="cpu").predict_batch(raw)
    np.testing.assert_allclose(plain, softmax.numpy(), atol=1e-6)
    tta = load_predictor([ckpt], device="cpu", tta=TtaConfig(enabled=True))
    base = tta.predict_batch(raw)
    flipped = np.ascontiguousarray(raw[..., ::-1])
    np.testing.assert_allclose(tta.predict_batch(flipped), base[..., ::-1], atol=1e-5)
    assert base.min() >= 0.0 and base.max() <= 1.0


@pytest.mark.slow
def test_resized_members_predict_at_the_tiles_own_size(tmp_path: Path) -> None:
    module = tiny_module(
        data={"sizing": {"strategy": "resize", "size": 512, "interpolation": "bicubic"}}
    )
    ckpt = save_checkpoint(module, tmp_path / "r512.ckpt")
    raw = raw_batch(1, size=350)
    prob = load_predictor([ckpt], device="cpu").predict_batch(raw)
    assert prob.shape == (1, 350, 350)
    with torch.no_grad():
        expected = module.predict_probabilities(torch.from_numpy(raw))[:, 0].numpy()
    # The predictor batches members its own way: float32 sums differ in the last bits.
    np.testing.assert_allclose(prob, expected, atol=1e-3)


@pytest.mark.slow
def test_members_trained_at_different_resolutions_ensemble_at_the_tile_size(
    tmp_path: Path,
) -> None:
    padded = save_checkpoint(tiny_module(seed=1), tmp_path / "pad.ckpt")
    resized = save_checkpoint(tiny_module(seed=2, data=RESIZE_64), tmp_path / "r64.ckpt")
    raw = raw_batch(2, size=40)
    a = load_predictor([padded], device="cpu").predict_batch(raw).astype(np.float64)
    b = load_predictor([resized], device="cpu").predict_batch(raw).astype(np.float64)
    assert np.abs(a - b).max() > 1e-3  # different members, so the mix below can fail
    both = load_predictor([padded, resized], [1.0, 3.0], device="cpu")
    np.testing.assert_allclose(both.predict_batch(raw), 0.25 * a + 0.75 * b, atol=1e-6)
    union = load_predictor([padded, resized], device="cpu", ensemble_mode="union")
    expected = ((a >= 0.5) | (b >= 0.5)).astype(np.float32)
    assert np.array_equal(union.predict_batch(raw), expected)
