"""Model loading and batched inference: repeatability, precision, padding, ensembles, TTA."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from kelpseg.config import validate_config
from kelpseg.errors import KelpsegError
from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.features.config import FeatureConfig
from kelpseg.inference.loading import load_model
from kelpseg.inference.predict import Predictor, load_predictor
from kelpseg.inference.tta import TtaConfig
from kelpseg.io.tiles import write_tile
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.module import KelpSegModule
from tests.conftest import make_tile_array
from tests.nn.model_fixtures import MODEL_CHANNELS, TINY_MODEL


def tiny_module(
    channels: list[str] = MODEL_CHANNELS,
    seed: int = 0,
    stats: Any = None,
    features: dict[str, Any] | None = None,
    **sections: Any,
) -> KelpSegModule:
    """A tiny ResNet-18 U-Net with random weights (per-sample normalisation unless stats)."""
    norm = "quantile" if stats else "per-sample-min-max"
    feats = {"channels": channels, "normalization": norm, **(features or {})}
    data: dict[str, Any] = {"features": feats, "model": TINY_MODEL, **sections}
    torch.manual_seed(seed)
    return KelpSegModule(validate_config(TrainConfig, data), stats).eval()


def constant_module(p: float, **sections: Any) -> KelpSegModule:
    """A module whose every output pixel is the logit of ``p`` (zeroed head, bias = logit)."""
    module = tiny_module(**sections)
    conv = module.model.segmentation_head[0]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(math.log(p / (1 - p)))
    return module


def save_checkpoint(module: KelpSegModule, path: Path, **extra: Any) -> Path:
    """Write a checkpoint the way training does (weights + kelpseg config and stats)."""
    ckpt: dict[str, Any] = {"state_dict": module.state_dict(), **extra}
    module.on_save_checkpoint(ckpt)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


def raw_batch(n: int = 2, size: int = 32, seed: int = 0) -> np.ndarray:
    """(n, 7, size, size) int16 tiles with land on the left."""
    return np.stack([make_tile_array(size, seed=seed + i, land_cols=size // 5) for i in range(n)])


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(tiny_module(), tmp_path_factory.mktemp("model") / "tiny.ckpt")


def test_fp32_predictions_repeat_exactly_and_match_the_module(ckpt: Path) -> None:
    predictor = load_predictor([ckpt], device="cpu")
    raw = raw_batch(3)
    first, second = predictor.predict_batch(raw), predictor.predict_batch(raw)
    assert first.shape == (3, 32, 32) and first.dtype == np.float32
    assert np.array_equal(first, second)
    again = load_predictor([ckpt], device="cpu").predict_batch(torch.from_numpy(raw))
    assert np.array_equal(first, again)
    with torch.no_grad():
        reference = tiny_module().predict_probabilities(torch.from_numpy(raw))[:, 0].numpy()
    np.testing.assert_allclose(first, reference, atol=1e-5)


def test_padding_is_removed_from_outputs_of_tiles_the_network_cannot_take(ckpt: Path) -> None:
    predictor = load_predictor([ckpt], device="cpu")
    seen: list[tuple[int, ...]] = []
    net = predictor.members[0].module.model
    handle = net.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape)))
    try:
        prob = predictor.predict_batch(raw_batch(1, size=350))
    finally:
        handle.remove()
    assert seen == [(1, len(MODEL_CHANNELS), 352, 352)]
    assert prob.shape == (1, 350, 350)
    # The crop is centred: the model's own forward (which pads and crops) gives the same pixels.
    with torch.no_grad():
        own = tiny_module().predict_probabilities(torch.from_numpy(raw_batch(1, size=350)))
    np.testing.assert_allclose(prob, own[:, 0].numpy(), atol=1e-5)


def test_bf16_differs_from_fp32_on_under_one_percent_of_pixels(ckpt: Path) -> None:
    raw = raw_batch(2, size=64, seed=10)
    fp32 = load_predictor([ckpt], device="cpu").predict_batch(raw)
    bf16 = load_predictor([ckpt], device="cpu", precision="bf16").predict_batch(raw)
    assert not np.array_equal(fp32, bf16)  # autocast really ran in bfloat16
    threshold = float(np.median(fp32))  # the hardest threshold: half the pixels on each side
    flipped = np.mean((fp32 >= threshold) != (bf16 >= threshold))
    assert flipped < 0.01
    assert np.abs(fp32 - bf16).max() < 0.05


def test_an_ensemble_of_two_identical_models_equals_the_single_model(ckpt: Path) -> None:
    raw = raw_batch(2)
    single = load_predictor([ckpt], device="cpu")
    expected = single.predict_batch(raw)
    pair = load_predictor([ckpt, ckpt], device="cpu")
    assert np.array_equal(pair.predict_batch(raw), expected)
    member = single.members[0]
    for weights in ([1.0, 3.0], [0.0, 1.0]):
        assert np.array_equal(Predictor([member, member], weights).predict_batch(raw), expected)
    logit = Predictor([member, member], ensemble_mode="mean_logit")
    np.testing.assert_allclose(logit.predict_batch(raw), expected, atol=1e-6)


def test_member_weights_are_respected(tmp_path: Path) -> None:
    low = load_model(save_checkpoint(constant_module(0.2), tmp_path / "low.ckpt"))
    high = load_model(save_checkpoint(constant_module(0.8), tmp_path / "high.ckpt"))
    raw = raw_batch(2)
    cases = {(1.0, 1.0): 0.5, (3.0, 1.0): 0.35, (0.0, 1.0): 0.8, (1.0, 0.0): 0.2}
    for weights, expected in cases.items():
        prob = Predictor([low, high], list(weights), device="cpu").predict_batch(raw)
        np.testing.assert_allclose(prob, expected, atol=1e-6)
    vote = Predictor([low, high], [2.0, 1.0], ensemble_mode="majority", device="cpu")
    assert np.array_equal(vote.predict_batch(raw), np.zeros((2, 32, 32), np.float32))


def test_members_may_read_different_channels(tmp_path: Path) -> None:
    no_land_mask = {"mask_using_water_mask": False}
    a = save_checkpoint(tiny_module(seed=1, features=no_land_mask), tmp_path / "a.ckpt")
    b = save_checkpoint(tiny_module(["NIR", "R", "DEM"], seed=2), tmp_path / "b.ckpt")
    raw = raw_batch(2)
    both = load_predictor([a, b], [1.0, 3.0], device="cpu")
    assert both.channels == [*MODEL_CHANNELS, "DEM"]
    alone = load_predictor([a], device="cpu")
    assert both.needs_dem and not alone.needs_dem
    pa = alone.predict_batch(raw).astype(np.float64)
    pb = load_predictor([b], device="cpu").predict_batch(raw).astype(np.float64)
    np.testing.assert_allclose(both.predict_batch(raw), 0.25 * pa + 0.75 * pb, atol=1e-6)


def test_full_tta_makes_predictions_flip_and_rotation_equivariant(ckpt: Path) -> None:
    raw = raw_batch(1)
    turned = np.ascontiguousarray(np.rot90(raw, 1, axes=(-2, -1)))
    flipped = np.ascontiguousarray(raw[..., ::-1])
    plain = load_predictor([ckpt], device="cpu")
    tta = load_predictor([ckpt], device="cpu", tta=TtaConfig(enabled=True))
    assert plain.transforms == ("identity",) and len(tta.transforms) == 8
    base = tta.predict_batch(raw)
    np.testing.assert_allclose(
        tta.predict_batch(turned), np.rot90(base, 1, axes=(-2, -1)), atol=1e-5
    )
    np.testing.assert_allclose(tta.predict_batch(flipped), base[..., ::-1], atol=1e-5)
    # Without TTA a random network is not equivariant: the check above can fail.
    assert np.abs(plain.predict_batch(flipped) - plain.predict_batch(raw)[..., ::-1]).max() > 1e-3
    only_identity = TtaConfig(enabled=True, transforms=["identity"], merge="max")
    same = load_predictor([ckpt], device="cpu", tta=only_identity).predict_batch(raw)
    assert np.array_equal(same, plain.predict_batch(raw))


def test_threshold_comes_from_the_argument_else_the_members(tmp_path: Path) -> None:
    a = save_checkpoint(tiny_module(trainer={"threshold": 0.4}), tmp_path / "a.ckpt")
    b = save_checkpoint(tiny_module(trainer={"threshold": 0.6}), tmp_path / "b.ckpt")
    assert load_predictor([a], device="cpu").threshold == 0.4
    assert load_predictor([a, b], [3.0, 1.0], device="cpu").threshold == 0.45
    given = load_predictor([a, b], threshold=0.3, device="cpu")
    assert given.threshold == 0.3 and given.threshold_source == "given"


def test_weights_from_validation_scores_of_run_folders(tmp_path: Path) -> None:
    runs = []
    for i, dice in enumerate((0.80, 0.85, 0.70)):
        run = tmp_path / f"fold{i}"
        save_checkpoint(tiny_module(seed=i), run / "checkpoints" / "best.ckpt")
        (run / "result.json").write_text(json.dumps({"best_dice": dice}))
        runs.append(run)
    predictor = load_predictor(runs, weights_from_scores=True, device="cpu")
    raw_weights = np.array([0.2 + 0.8 * 10 / 15, 1.0, 0.2])
    np.testing.assert_allclose(predictor.weights, raw_weights / raw_weights.sum())
    # A full Lightning checkpoint records its best score too.
    state = {"ModelCheckpoint{'monitor': 'val/dice', 'mode': 'max'}": {"best_model_score": 0.9}}
    lone = save_checkpoint(tiny_module(), tmp_path / "lone" / "m.ckpt", callbacks=state)
    assert load_predictor([lone, lone], weights_from_scores=True, device="cpu").weights[0] == 0.5
    bare = save_checkpoint(tiny_module(), tmp_path / "bare" / "m.ckpt")
    with pytest.raises(KelpsegError, match="no validation score") as err:
        load_predictor([bare, lone], weights_from_scores=True, device="cpu")
    assert err.value.path == str(bare)


def test_faults_are_one_line_errors_naming_what_is_wrong(tmp_path: Path, ckpt: Path) -> None:
    with pytest.raises(KelpsegError, match="3 weights for 2 models"):
        load_predictor([ckpt, ckpt], [1.0, 2.0, 3.0])
    with pytest.raises(KelpsegError, match="no such checkpoint") as err:
        load_predictor([tmp_path / "nope.ckpt"])
    assert err.value.path == str(tmp_path / "nope.ckpt")
    with pytest.raises(KelpsegError, match="unknown precision"):
        load_predictor([ckpt], precision="8")  # type: ignore[arg-type]
    with pytest.raises(KelpsegError, match="outside"):
        load_predictor([ckpt], threshold=1.5)
    if not torch.cuda.is_available():
        with pytest.raises(KelpsegError, match="CUDA is not available"):
            load_predictor([ckpt], device="cuda")


def test_a_checkpoint_whose_stats_lack_its_channels_is_refused(tmp_path: Path) -> None:
    tile = write_tile(tmp_path / "T0_satellite.tif", make_tile_array(40, land_cols=8))
    stats = compute_band_stats(
        [str(tile)], FeatureConfig(channels=MODEL_CHANNELS), device="cpu", show_progress=False
    )
    path = save_checkpoint(tiny_module(stats=stats), tmp_path / "m.ckpt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["kelpseg"]["config"]["features"]["channels"] = ["NIR", "R", "NDWI"]
    torch.save(ckpt, path)
    with pytest.raises(KelpsegError, match="band statistics do not match its channels") as err:
        load_predictor([path])
    assert err.value.path == str(path) and "NDWI" in err.value.message
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_compiled_networks_give_the_eager_predictions(ckpt: Path) -> None:
    raw = raw_batch(2)
    eager = load_predictor([ckpt], device="cpu").predict_batch(raw)
    # The "eager" backend captures the graph (what inductor would compile) without compiling.
    compiled = load_predictor([ckpt], device="cpu", compile_backend="eager")
    assert compiled.members[0].module.model._compiled_call_impl is not None
    np.testing.assert_allclose(compiled.predict_batch(raw), eager, atol=1e-5)
