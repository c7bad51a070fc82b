"""The LightningModule: global Dice, sizes, steps in a Trainer, optimisation, checkpoints."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from kelpseg.config import validate_config
from kelpseg.errors import KelpsegError
from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.features.config import FeatureConfig
from kelpseg.io.tiles import write_tile
from kelpseg.nn.config import OptimConfig, TrainConfig
from kelpseg.nn.models import create_model
from kelpseg.nn.module import KelpSegModule, segmentation_metrics
from kelpseg.nn.optim import configure_optimization, param_groups
from tests.conftest import make_tile_array
from tests.nn.model_fixtures import MODEL_CHANNELS, TINY_MODEL


def _config(**sections: Any) -> TrainConfig:
    data: dict[str, Any] = {
        "features": {"channels": MODEL_CHANNELS, "normalization": "per-sample-min-max"},
        "model": TINY_MODEL,
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return validate_config(TrainConfig, data)


def _raw(n: int = 2, size: int = 40, seed: int = 0) -> torch.Tensor:
    tiles = [make_tile_array(size, seed=seed + i, land_cols=5) for i in range(n)]
    return torch.from_numpy(np.stack(tiles))


def _batches(n_batches: int = 2, size: int = 40) -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for b in range(n_batches):
        raw = _raw(2, size, seed=10 * b)
        mask = (torch.rand(2, 1, size, size, generator=g) > 0.9).float()
        out.append({"image": raw, "mask": mask, "tile_id": [f"T{b}a", f"T{b}b"]})
    return out


def test_dice_is_global_over_every_pixel_of_every_batch_like_the_competition() -> None:
    metrics = segmentation_metrics("val/", threshold=0.5)
    rng = np.random.default_rng(0)
    preds, targets = [], []
    for n in (3, 1, 5):  # batches of different sizes: a mean of batch scores would differ
        prob = rng.random((n, 1, 16, 16)).astype(np.float32) ** 3
        target = (rng.random((n, 1, 16, 16)) > 0.85).astype(np.int32)
        metrics.update(torch.from_numpy(prob), torch.from_numpy(target))
        preds.append(prob > 0.5)
        targets.append(target == 1)
    p, t = np.concatenate([x.ravel() for x in preds]), np.concatenate([x.ravel() for x in targets])
    values = {k: float(v) for k, v in metrics.compute().items()}
    inter = np.sum(p & t)
    assert values["val/dice"] == pytest.approx(2 * inter / (p.sum() + t.sum()), rel=1e-6)
    assert values["val/iou"] == pytest.approx(inter / np.sum(p | t), rel=1e-6)
    assert values["val/precision"] == pytest.approx(inter / p.sum(), rel=1e-6)
    assert values["val/recall"] == pytest.approx(inter / t.sum(), rel=1e-6)
    assert values["val/accuracy"] == pytest.approx(np.mean(p == t), rel=1e-6)


@pytest.mark.parametrize(("strategy", "size"), [("pad", 40), ("pad", 64), ("resize", 50)])
def test_forward_gives_logits_at_the_tiles_own_size(strategy: str, size: int) -> None:
    module = KelpSegModule(_config(data={"sizing": {"strategy": strategy}})).eval()
    with torch.no_grad():
        logits = module(_raw(2, size))
    assert logits.shape == (2, 1, size, size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_steps_run_in_a_trainer_and_log_the_metrics_and_confusion_matrix(precision: str) -> None:
    module = KelpSegModule(_config())
    batches = _batches()
    trainer = L.Trainer(
        fast_dev_run=2,
        precision=precision, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    loader = DataLoader(batches, batch_size=None)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    metrics = trainer.callback_metrics
    for key in ("val/dice", "val/iou", "val/precision", "val/recall", "val/accuracy", "val/loss"):
        assert torch.isfinite(metrics[key])
    assert float(metrics["val/f1"]) == float(metrics["val/dice"])
    assert torch.isfinite(metrics["train/loss"]) and "train/dice" in metrics
    assert module.confusion is not None and module.confusion.shape == (2, 2)
    kelp_pixels = int(sum((b["mask"] > 0.5).sum() for b in batches))
    assert int(module.confusion.sum()) == 2 * 2 * 40 * 40  # every pixel of both batches
    assert int(module.confusion[1].sum()) == kelp_pixels


def _stepped_lrs(config: OptimConfig, total: int, metric: float | None = None) -> list[float]:
    model = create_model(_config().model, 3)
    out = configure_optimization(model, config, total, ("val/dice", "max"))
    if not isinstance(out, dict):
        return [out.param_groups[0]["lr"]] * total
    optimizer, scheduler = out["optimizer"], out["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step(metric) if metric is not None else scheduler.step()
    return lrs


def test_onecycle_follows_the_seeds_shape() -> None:
    lrs = _stepped_lrs(OptimConfig(lr=3e-4), total=100)
    assert lrs[0] == pytest.approx(3e-4 / 2)  # div_factor 2
    assert max(lrs) == pytest.approx(3e-4, rel=1e-3)
    assert int(np.argmax(lrs)) in (9, 10)  # pct_start 0.1
    assert lrs[-1] == pytest.approx(3e-4 / 2 / 100, rel=0.05)  # final_div_factor 100


def test_cosine_warms_up_then_decays_to_its_floor() -> None:
    config = OptimConfig(lr=1e-3, scheduler="cosine", warmup_fraction=0.1, min_lr_ratio=0.01)
    lrs = _stepped_lrs(config, total=100)
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))
    assert lrs[-1] == pytest.approx(1e-5, rel=0.05)


def test_plateau_halves_the_lr_when_val_dice_stalls_and_none_keeps_it() -> None:
    config = OptimConfig(lr=1e-3, scheduler="plateau", plateau_patience=1, plateau_factor=0.5)
    lrs = _stepped_lrs(config, total=4, metric=0.5)
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] < 1e-3
    assert _stepped_lrs(OptimConfig(lr=1e-3, scheduler="none"), 3) == [1e-3] * 3


def test_optimizer_choice_and_encoder_learning_rate_scale() -> None:
    model = create_model(_config().model, 3)
    sgd = configure_optimization(
        model, OptimConfig(optimizer="sgd", scheduler="none"), 10, ("a", "max")
    )
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9
    groups = param_groups(model, OptimConfig(lr=1e-3, encoder_lr_scale=0.1))
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-4)]
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(model.parameters()))
    adam = configure_optimization(model, OptimConfig(optimizer="adam"), 10, ("a", "max"))
    assert isinstance(adam["optimizer"], torch.optim.Adam)


@pytest.fixture
def tiny_stats(tmp_path: Path) -> Any:
    paths = [
        write_tile(tmp_path / f"T{i}_satellite.tif", make_tile_array(40, seed=i, land_cols=8))
        for i in range(3)
    ]
    features = FeatureConfig(channels=MODEL_CHANNELS)
    return compute_band_stats([str(p) for p in paths], features, device="cpu", show_progress=False)


def test_a_checkpoint_alone_rebuilds_the_module(tmp_path: Path, tiny_stats: Any) -> None:
    module = KelpSegModule(_config(features={"normalization": "quantile"}), tiny_stats).eval()
    ckpt: dict[str, Any] = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "m.ckpt")
    loaded = KelpSegModule.from_checkpoint(tmp_path / "m.ckpt")
    assert loaded.config == module.config and not loaded.training
    assert loaded.stats is not None and loaded.stats.channels == tiny_stats.channels
    raw = _raw()
    with torch.no_grad():
        torch.testing.assert_close(loaded(raw), module(raw))
    with pytest.raises(KelpsegError, match="does not exist"):
        KelpSegModule.from_checkpoint(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(KelpsegError, match="not a kelpseg training checkpoint"):
        KelpSegModule.from_checkpoint(tmp_path / "plain.ckpt")


def test_compile_and_channels_last_keep_weights_and_outputs() -> None:
    plain = KelpSegModule(_config()).eval()
    fast = KelpSegModule(
        _config(model={"channels_last": True, "compile": True, "compile_backend": "eager"})
    ).eval()
    fast.load_state_dict(plain.state_dict())
    fast.setup("fit")  # compiles in place
    assert set(fast.state_dict()) == set(plain.state_dict())
    raw = _raw()
    with torch.no_grad():
        torch.testing.assert_close(fast(raw), plain(raw), rtol=1e-4, atol=1e-4)


def test_each_epoch_reseeds_augmentation_from_seed_and_epoch() -> None:
    module = KelpSegModule(_config(seed=5))
    draws = []
    for epoch in (1, 1, 2):
        _start_epoch(module, epoch)
        assert module._augment_rng is not None
        draws.append((torch.rand(4, generator=module._augment_rng), torch.rand(2)))
    torch.testing.assert_close(draws[0], draws[1])  # same epoch: same augmentation, same RNG
    assert not torch.equal(draws[0][0], draws[2][0])


def _start_epoch(module: KelpSegModule, epoch: int) -> None:
    """Call the epoch-start hook as if ``epoch`` were the trainer's current epoch."""

    class _Fake:
        current_epoch = epoch
        global_rank = 0

    module._trainer = _Fake()  # type: ignore[assignment]
    try:
        module.on_train_epoch_start()
    finally:
        module._trainer = None
