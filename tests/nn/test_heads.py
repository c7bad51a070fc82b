"""The 2-class softmax head, its multiclass losses, MCC, the auxiliary tile head and scse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from kelpseg.config import validate_config
from kelpseg.errors import KelpsegError
from kelpseg.nn.config import AuxHeadConfig, LossConfig, ModelConfig, TrainConfig
from kelpseg.nn.heads import MulticlassLoss, aux_losses, build_head_loss, tile_targets
from kelpseg.nn.losses import LOSSES, build_term
from kelpseg.nn.models import create_model, kelp_logit
from kelpseg.nn.module import KelpSegModule
from tests.nn.model_fixtures import MODEL_CHANNELS, TINY_MODEL


def _target(n: int = 2, size: int = 16, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, size, size, generator=gen) > 0.7).float()


def _module(**model: Any) -> KelpSegModule:
    data = {
        "features": {"channels": MODEL_CHANNELS, "normalization": "per-sample-min-max"},
        "model": {**TINY_MODEL, **model},
    }
    torch.manual_seed(0)
    return KelpSegModule(validate_config(TrainConfig, data), None)


def test_kelp_logit_of_two_logits_is_the_softmax_kelp_probability() -> None:
    logits = torch.randn(3, 2, 5, 7)
    expected = torch.softmax(logits, dim=1)[:, 1:2]
    torch.testing.assert_close(torch.sigmoid(kelp_logit(logits)), expected)
    one = torch.randn(3, 1, 5, 7)
    assert kelp_logit(one) is one


def test_weighted_multiclass_ce_is_torch_cross_entropy_and_the_binary_weighted_ce() -> None:
    logits, target = torch.randn(2, 2, 16, 16), _target()
    loss = MulticlassLoss([("ce", 1.0, {"class_weights": [0.4, 0.6]})])
    expected = F.cross_entropy(logits, target[:, 0].long(), weight=torch.tensor([0.4, 0.6]))
    torch.testing.assert_close(loss(logits, target), expected)
    binary = build_term("ce", {"class_weights": [0.4, 0.6]})
    torch.testing.assert_close(binary(kelp_logit(logits), target), expected)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_works_on_the_multiclass_head_and_prefers_the_truth(name: str) -> None:
    target = _target(seed=1)
    good = torch.cat([-(target * 2 - 1) * 4, (target * 2 - 1) * 4], dim=1)
    bad = -good
    good.requires_grad_(True)
    loss = MulticlassLoss([(name, 1.0, {})])
    value = loss(good, target)
    value.backward()
    assert torch.isfinite(value) and good.grad is not None
    assert value < loss(bad, target)


def test_multiclass_losses_check_shapes_and_names() -> None:
    with pytest.raises(KelpsegError, match=r"\(N, 2, H, W\) logits"):
        MulticlassLoss([("dice", 1.0, {})])(torch.randn(2, 1, 8, 8), _target(size=8))
    with pytest.raises(KelpsegError, match="unknown loss"):
        MulticlassLoss([("nope", 1.0, {})])
    binary = build_head_loss(LossConfig.model_validate("dice"), "binary")
    assert not isinstance(binary, MulticlassLoss)


def test_mcc_loss_is_low_for_the_truth_and_finite_without_kelp() -> None:
    mcc = build_term("mcc")
    target = _target(seed=2)
    truth, wrong = (target * 2 - 1) * 6, -(target * 2 - 1) * 6
    assert mcc(truth, target) < 0.05 < 1.5 < mcc(wrong, target)
    assert torch.isfinite(mcc(torch.randn(2, 1, 16, 16), torch.zeros(2, 1, 16, 16)))


def test_aux_targets_and_weighted_losses() -> None:
    target = torch.zeros(2, 1, 4, 4)
    target[0, 0, :2, :2] = 1.0
    torch.testing.assert_close(tile_targets(target), torch.tensor([[1.0, 0.25], [0.0, 0.0]]))
    logits = torch.tensor([[3.0, -1.0], [-3.0, -4.0]])
    parts = aux_losses(logits, target, AuxHeadConfig(has_kelp_weight=2.0, fraction_weight=0.0))
    expected = 2.0 * F.binary_cross_entropy_with_logits(logits[:, 0], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(parts["aux_has_kelp"], expected)
    assert parts["aux_fraction"] == 0.0


def test_multiclass_head_with_aux_head_trains_and_predicts_one_kelp_probability() -> None:
    module = _module(head="multiclass", aux_head={"enabled": True})
    raw = torch.randint(0, 20000, (2, 7, 40, 40), dtype=torch.int16)
    out = module.head_outputs(raw)
    assert out.shape == (2, 2, 40, 40)
    prob = module.predict_probabilities(raw)
    torch.testing.assert_close(prob, torch.softmax(out, dim=1)[:, 1:2])
    module.on_train_epoch_start()
    batch = {"image": raw, "mask": _target(2, 40), "tile_id": ["a", "b"]}
    loss = module.training_step(batch, 0)
    loss.backward()
    head: Any = module.model.classification_head
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_a_multiclass_checkpoint_rebuilds_the_same_module(tmp_path: Path) -> None:
    module = _module(head="multiclass", aux_head={"enabled": True}).eval()
    checkpoint: dict[str, Any] = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "m.ckpt")
    again = KelpSegModule.from_checkpoint(tmp_path / "m.ckpt")
    raw = torch.randint(0, 20000, (1, 7, 32, 32), dtype=torch.int16)
    with torch.no_grad():
        torch.testing.assert_close(again(raw), module(raw))


def test_decoder_attention_scse_is_reachable_from_config() -> None:
    # scse squeezes channels 16x: the decoder needs at least 16 channels per block.
    kwargs = {"encoder_depth": 3, "decoder_channels": [64, 32, 16]}
    config = ModelConfig.model_validate(
        {**TINY_MODEL, "arch_kwargs": {**kwargs, "decoder_attention_type": "scse"}}
    )
    plain = create_model(ModelConfig.model_validate({**TINY_MODEL, "arch_kwargs": kwargs}), 4)
    model = create_model(config, 4)
    names = {type(m).__name__ for m in model.modules()}
    assert "SCSEModule" in names and "SCSEModule" not in {type(m).__name__ for m in plain.modules()}
    assert model(torch.zeros(1, 4, 32, 32)).shape == (1, 1, 32, 32)


def test_aux_params_are_set_through_the_aux_head_key_only() -> None:
    with pytest.raises(ValueError, match="aux_params"):
        ModelConfig.model_validate({**TINY_MODEL, "arch_kwargs": {"aux_params": {}}})
