"""Losses by name: the seed's semantics on a 1-logit head, soft targets, weighted sums."""

from __future__ import annotations

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from kelpseg.config import validate_config
from kelpseg.errors import KelpsegError
from kelpseg.nn.config import LossConfig, TrainConfig
from kelpseg.nn.losses import LOSSES, CombinedLoss, build_loss, build_term


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 1, 16, 16, generator=g)
    target = (torch.rand(3, 1, 16, 16, generator=g) > 0.8).float()
    return logits, target


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_is_finite_with_gradients_and_prefers_the_truth(name: str) -> None:
    _, target = _batch()
    loss = build_term(name)
    good = (target * 2 - 1) * 6.0  # confident and right
    bad = -good  # confident and wrong
    logits = good.clone().requires_grad_(True)
    value = loss(logits, target)
    value.backward()
    assert torch.isfinite(value) and logits.grad is not None
    assert torch.isfinite(logits.grad).all()
    assert float(loss(good, target)) < float(loss(bad, target))


@pytest.mark.parametrize("name", sorted(n for n, spec in LOSSES.items() if not spec.hard_targets))
def test_soft_targets_are_used_as_they_are_not_rounded(name: str) -> None:
    logits, hard = _batch(1)
    loss = build_term(name)
    soft = hard * 0.7 + 0.15  # labels blurred toward 0.5
    value = float(loss(logits, soft))
    assert torch.isfinite(torch.tensor(value))
    assert value != pytest.approx(float(loss(logits, hard)), rel=1e-6)


def test_weighted_ce_equals_two_class_cross_entropy_with_class_weights() -> None:
    logits, target = _batch(2)
    ours = build_term("ce", {"class_weights": [0.4, 0.6]})(logits, target)
    two_class = torch.cat([torch.zeros_like(logits), logits], dim=1)
    weight = torch.tensor([0.4, 0.6])
    reference = F.cross_entropy(two_class, target[:, 0].long(), weight=weight)
    torch.testing.assert_close(ours, reference)


def test_soft_ce_equals_smp_soft_cross_entropy_on_two_classes() -> None:
    logits, target = _batch(3)
    ours = build_term("soft_ce", {"smooth_factor": 0.2})(logits, target)
    two_class = torch.cat([torch.zeros_like(logits), logits], dim=1)
    reference = smp.losses.SoftCrossEntropyLoss(smooth_factor=0.2)(two_class, target[:, 0].long())
    torch.testing.assert_close(ours, reference)


def test_bce_pos_weight_weighs_kelp_pixels_up() -> None:
    logits, target = _batch(4)
    plain = build_term("bce")(logits, target)
    heavy = build_term("bce", {"pos_weight": 5.0})(logits, target)
    reference = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(5.0))
    torch.testing.assert_close(heavy, reference)
    assert float(heavy) > float(plain)


def test_lovasz_thresholds_soft_targets() -> None:
    logits, hard = _batch(5)
    combined = CombinedLoss([("lovasz", 1.0, {})])
    soft = hard * 0.8 + 0.1  # still on the same side of 0.5
    torch.testing.assert_close(combined(logits, soft), combined(logits, hard))


def test_a_combination_is_the_weighted_sum_of_its_terms() -> None:
    logits, target = _batch(6)
    config = LossConfig.model_validate([{"name": "ce", "weight": 2.0}, {"name": "dice"}])
    loss = build_loss(config)
    parts = loss.breakdown(logits, target)
    assert set(parts) == {"ce", "dice"}
    torch.testing.assert_close(loss(logits, target), 2.0 * parts["ce"] + parts["dice"])
    repeated = CombinedLoss([("dice", 1.0, {}), ("dice", 1.0, {"log_loss": True})])
    assert set(repeated.breakdown(logits, target)) == {"dice_0", "dice_1"}


def test_config_shorthands_and_errors_name_the_key() -> None:
    assert validate_config(TrainConfig, {"loss": "jaccard"}).loss.terms[0].name == "jaccard"
    with pytest.raises(KelpsegError, match=r"loss\.terms\.1.*unknown loss 'nope'"):
        validate_config(TrainConfig, {"loss": [{"name": "dice"}, {"name": "nope"}]})
    with pytest.raises(KelpsegError, match=r"loss\.terms\.0.*no option gamma"):
        validate_config(TrainConfig, {"loss": [{"name": "dice", "params": {"gamma": 2}}]})
    with pytest.raises(KelpsegError, match="class_weights"):
        validate_config(TrainConfig, {"loss": [{"name": "ce", "params": {"class_weights": [1]}}]})
    with pytest.raises(KelpsegError, match="differ"):
        build_term("dice")  # builds fine
        CombinedLoss([("dice", 1.0, {})])(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 5, 5))
