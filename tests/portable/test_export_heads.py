"""Exported graphs of a 2-class softmax member with an auxiliary head, resized to 64 px, and of
a member resized by a scale factor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kelpseg.config import validate_config
from kelpseg.export.package import export_model
from kelpseg.export.verify import crafted_tiles
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.module import KelpSegModule
from kelpseg.portable import load_onnx_predictor

pytestmark = pytest.mark.slow


def _member(
    size: int | None, seed: int, scale: float | None = None, **model: object
) -> KelpSegModule:
    data = {
        "features": {"channels": ["NIR", "R", "NDVI"], "normalization": "per-sample-min-max"},
        "model": {
            "encoder": "tu-resnet10t",
            "encoder_weights": None,
            "arch_kwargs": {"encoder_depth": 3, "decoder_channels": [32, 16, 8]},
            **model,
        },
        "data": {
            "sizing": {
                "strategy": "resize",
                "size": size,
                "scale": scale,
                "interpolation": "bicubic",
            }
        },
    }
    torch.manual_seed(seed)
    return KelpSegModule(validate_config(TrainConfig, data), None, pretrained=False).eval()


def test_softmax_head_and_members_at_two_resolutions_export_as_the_torch_ensemble(
    tmp_path: Path,
) -> None:
    softmax = _member(64, 0, head="multiclass", aux_head={"enabled": True})
    binary = _member(96, 1)
    package = export_model([softmax, binary], [3.0, 1.0], "mixed", "1", tmp_path / "pkg")
    predictor = load_onnx_predictor(package, quiet=True)
    assert predictor.manifest.tile_size == 350
    raw = crafted_tiles(1, 350, 350, seed=3)
    with torch.no_grad():
        out = softmax.head_outputs(torch.from_numpy(raw))
        p_binary = binary.predict_probabilities(torch.from_numpy(raw))[:, 0]
    p_softmax = torch.softmax(out, dim=1)[:, 1]
    expected = (0.75 * p_softmax + 0.25 * p_binary).numpy()
    got = predictor.predict_batch(raw)
    assert got.shape == (1, 350, 350)
    assert np.abs(got - expected).max() < 1e-4


def test_a_member_resized_by_a_scale_exports_as_torch_predicts(tmp_path: Path) -> None:
    member = _member(None, 2, scale=1.5)
    package = export_model([member], None, "scaled", "1", tmp_path / "pkg")
    predictor = load_onnx_predictor(package, quiet=True)
    manifest = predictor.manifest
    assert (manifest.tile_size, manifest.dynamic_hw) == (350, False)
    assert manifest.members[0].sizing["scale"] == 1.5  # the manifest reader keeps the key
    raw = crafted_tiles(2, 350, 350, seed=4)
    seen: list[tuple[int, ...]] = []
    hook = member.model.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape))
    with torch.no_grad():
        expected = member.predict_probabilities(torch.from_numpy(raw))[:, 0].numpy()
    hook.remove()
    assert [tuple(s[-2:]) for s in seen] == [(544, 544)]  # 350 x 1.5 = 525 -> 544
    got = predictor.predict_batch(raw)
    assert got.shape == (2, 350, 350)
    assert np.abs(got - expected).max() < 1e-4
