"""The boundary loss: zero at the truth, finite gradients, per-tile distances as scipy's."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from kelpseg.config import load_config
from kelpseg.errors import KelpsegError
from kelpseg.nn.boundary import BoundaryLoss, boundary_distance_map
from kelpseg.nn.config import LossConfig, TrainConfig
from kelpseg.nn.losses import LOSS_PRESETS, build_loss, build_term

PRESET_FILE = Path(__file__).resolve().parents[2] / "configs" / "first-place-loss.yaml"


def _targets() -> torch.Tensor:
    """Four 20x30 tiles: two kelp beds, no kelp at all, all kelp, a single kelp pixel."""
    y = torch.zeros(4, 1, 20, 30)
    y[0, 0, 3:9, 4:12] = 1.0
    y[0, 0, 14:18, 20:27] = 1.0
    y[2] = 1.0
    y[3, 0, 19, 0] = 1.0
    return y


def test_distances_are_per_tile_as_scipy_and_a_tile_without_kelp_gets_the_diagonal() -> None:
    y = _targets()
    phi = boundary_distance_map(y)[:, 0].double().numpy()
    diagonal = math.hypot(20, 30)
    for i in (0, 3):
        kelp = y[i, 0].numpy() > 0.5
        outside = ndimage.distance_transform_edt(~kelp)
        inside = ndimage.distance_transform_edt(kelp)
        expected = np.where(kelp, -(inside - 1.0), outside)
        np.testing.assert_allclose(phi[i], expected, rtol=1e-6)
        assert (phi[i][kelp] <= 0).all() and (phi[i][~kelp] >= 1).all()
    # Tile 1 has no kelp: were distances measured across the batch, its pixels would see
    # tile 0's or tile 2's kelp a few rows away; per tile they are all "farther than anything".
    np.testing.assert_allclose(phi[1], diagonal, rtol=1e-6)
    np.testing.assert_allclose(phi[2], -(diagonal - 1.0), rtol=1e-6)
    clipped = boundary_distance_map(y, max_distance=5.0)[:, 0].numpy()
    assert clipped.max() == 5.0 and clipped.min() == -5.0
    np.testing.assert_allclose(clipped[0], np.clip(phi[0], -5, 5), rtol=1e-6)


def test_the_loss_is_zero_for_a_perfect_prediction_and_positive_otherwise() -> None:
    y = _targets()
    loss = BoundaryLoss()
    perfect = (y * 2 - 1) * 100.0  # sigmoid is exactly 1 on kelp, ~1e-44 elsewhere
    assert float(loss(perfect, y)) == pytest.approx(0.0, abs=1e-30)
    random = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    assert float(loss(random, y)) > 0
    # A false positive far from kelp costs more than one next to a bed.
    near, far = perfect.clone(), perfect.clone()
    near[0, 0, 9, 8] = 100.0  # one row below bed 1
    far[0, 0, 0, 29] = 100.0  # the far corner
    assert 0 < float(loss(near, y)) < float(loss(far, y))
    # A missed pixel deep inside a bed costs more than one on its edge.
    edge, deep = perfect.clone(), perfect.clone()
    edge[0, 0, 3, 4] = -100.0
    deep[0, 0, 5, 7] = -100.0
    assert float(loss(edge, y)) == pytest.approx(0.0, abs=1e-30)  # edge pixels: phi = 0
    assert float(loss(deep, y)) > 0


def test_gradients_are_finite_on_empty_full_and_soft_targets() -> None:
    y = _targets()
    soft = y * 0.8 + 0.1
    for target in (y, soft, torch.zeros_like(y)):
        logits = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
        logits.requires_grad_(True)
        value = build_term("boundary", {"max_distance": 10.0})(logits, target)
        value.backward()
        assert torch.isfinite(value) and logits.grad is not None
        assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_soft_targets_are_thresholded_at_one_half() -> None:
    y = _targets()
    logits = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    soft = y * 0.7 + 0.15
    torch.testing.assert_close(BoundaryLoss()(logits, soft), BoundaryLoss()(logits, y))


def test_options_are_checked() -> None:
    with pytest.raises(KelpsegError, match="max_distance"):
        BoundaryLoss(max_distance=0.0)
    with pytest.raises(KelpsegError, match="N, 1, H, W"):
        boundary_distance_map(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="no option"):
        LossConfig.model_validate([{"name": "boundary", "params": {"sigma": 1}}])


def test_the_first_place_loss_is_a_preset_and_a_config_file_with_the_same_terms() -> None:
    from_file = load_config(TrainConfig, PRESET_FILE)
    from_preset = LossConfig.model_validate("first-place")
    assert from_file.loss == from_preset
    demo = load_config(TrainConfig, PRESET_FILE.with_name("demo.yaml"))
    assert from_file.model_copy(update={"loss": demo.loss, "output_dir": demo.output_dir}) == demo
    assert [(t.name, t.weight) for t in from_preset.terms] == [
        (t["name"], t["weight"]) for t in LOSS_PRESETS["first-place"]
    ]
    run = load_config(TrainConfig, None, ["loss=first-place"])
    loss = build_loss(run.loss)
    assert loss.names == ["focal", "dice", "boundary"] and loss.hard == [False, False, True]
    y = _targets()
    parts = loss.breakdown(torch.randn(y.shape), y)
    weighted = sum(w * float(v) for w, v in zip(loss.weights, parts.values(), strict=True))
    assert float(loss.combine(parts)) == pytest.approx(weighted, rel=1e-6)
    run.loss.terms[0].params["gamma"] = 5.0  # a loaded config never edits the preset
    assert LOSS_PRESETS["first-place"][0]["params"] == {"gamma": 2.0}
