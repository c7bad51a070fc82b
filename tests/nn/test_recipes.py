"""The 3rd and 1st places' options: holes, mask resizing, layer-wise LR decay, clip-imagenet,
SwinUNETR as an optional architecture, and full fit from the command line."""

from __future__ import annotations

import itertools
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import segmentation_models_pytorch as smp
import torch
from torch import nn
from typer.testing import CliRunner

from kelpseg.cli import app as cli_app
from kelpseg.config import save_config
from kelpseg.errors import KelpsegError, MissingExtraError
from kelpseg.features.channels import InputBuilder
from kelpseg.features.config import FeatureConfig
from kelpseg.features.normalize import IMAGENET_MEAN, IMAGENET_STD
from kelpseg.nn.config import ModelConfig, OptimConfig
from kelpseg.nn.data.config import AugmentConfig
from kelpseg.nn.data.holes import RandomHoles
from kelpseg.nn.data.transforms import Augmenter, InputSizer
from kelpseg.nn.layer_decay import encoder_blocks
from kelpseg.nn.models import check_input_size, create_model, input_multiple
from kelpseg.nn.optim import configure_optimization, param_groups
from kelpseg.nn.train import TrainResult
from tests.nn.model_fixtures import tiny_config


def test_holes_blank_the_image_and_zero_the_mask_in_the_same_rectangles() -> None:
    x, y = torch.randn(8, 3, 40, 40), torch.ones(8, 1, 40, 40)
    holes = RandomHoles(1.0, max_holes=3, size=(0.1, 0.25), fill=-7.0)
    gen = torch.Generator().manual_seed(0)
    out_x, out_y = holes(x, y, gen)
    blank = out_y[:, 0] == 0
    assert blank.flatten(1).any(1).all()  # p = 1: every sample has a hole
    assert (out_x.permute(1, 0, 2, 3)[:, blank] == -7.0).all()
    assert torch.equal(out_x.permute(1, 0, 2, 3)[:, ~blank], x.permute(1, 0, 2, 3)[:, ~blank])
    # Each rectangle is at most 25% of the side: 3 of them cover at most 3 * 10 x 10 px.
    assert int(blank.flatten(1).sum(1).max()) <= 3 * 10 * 10
    assert torch.equal(RandomHoles(0.0)(x, y)[0], x)


def test_holes_are_built_from_the_augment_config_and_seeded() -> None:
    augment = Augmenter(AugmentConfig(hflip=0, vflip=0, rot90=0, holes=1.0, holes_max=2))
    assert [type(op).__name__ for op in augment.ops] == ["RandomHoles"]
    x, y = torch.randn(4, 2, 32, 32), torch.ones(4, 1, 32, 32)
    first = augment(x, y, torch.Generator().manual_seed(5))
    again = augment(x, y, torch.Generator().manual_seed(5))
    assert torch.equal(first[1], again[1]) and first[1].min() == 0
    with pytest.raises(ValueError, match="holes_size"):
        AugmentConfig(holes_size=(0.3, 0.1))


@pytest.mark.parametrize("mode", ["soft", "nearest", "bilinear"])
def test_resized_masks_are_hard_unless_soft_and_come_back_to_the_tile_size(mode: Any) -> None:
    sizer = InputSizer(64, "resize", interpolation="bicubic", mask_interpolation=mode)
    y = torch.zeros(1, 1, 50, 50)
    y[..., 10:30, 5:27] = 1.0
    big = sizer.size_mask(y)
    back = sizer.restore_mask(big, (50, 50))
    assert big.shape[-1] == 64 and back.shape[-1] == 50
    values = set(torch.unique(big).tolist())
    assert (values <= {0.0, 1.0}) == (mode != "soft")
    assert float(big.min()) >= 0.0 and float(big.max()) <= 1.0
    assert float((back.round() != y).float().mean()) < 0.02


def test_layer_decay_groups_cover_every_parameter_once_with_rates_rising_to_the_deepest() -> None:
    model = smp.Unet(
        "resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=[32, 16, 8]
    )
    config = OptimConfig(lr=1e-3, encoder_lr_scale=0.1, layer_decay=0.5)
    groups = param_groups(model, config)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert groups[0]["lr"] == 1e-3  # decoder and head: the base rate, logged first
    rates = [g["lr"] for g in groups[1:]]
    assert rates[-1] == pytest.approx(1e-4) and rates[0] == pytest.approx(
        1e-4 * 0.5 ** (len(rates) - 1)
    )
    assert all(a < b for a, b in itertools.pairwise(rates))
    assert len(encoder_blocks(model.encoder)) == len(rates) > 5  # residual units, not stages
    optimizer = configure_optimization(model, config, 20, ("val/dice", "max"))["optimizer"]
    assert len(optimizer.param_groups) == len(groups)
    single = param_groups(model, OptimConfig(lr=1e-3))
    assert len(single) == 1


def test_clip_imagenet_clips_to_the_quantile_range_then_applies_imagenet_statistics() -> None:
    from tests.features.conftest import fake_stats

    channels = ["NIR", "R", "G", "B"]
    config = FeatureConfig(channels=channels, normalization="clip-imagenet")
    stats = fake_stats(channels)
    builder = InputBuilder(config, stats)
    # Values around the fake statistics' quantile range [-50, 50]: some clip, some do not.
    raw = torch.randint(-80, 80, (2, 7, 16, 16), dtype=torch.int16)
    out = builder(raw)
    low, high = stats.quantile(0.01, channels), stats.quantile(0.99, channels)
    x = builder.raw_channels(raw)
    for i in range(len(channels)):
        unit = ((x[:, i] - float(low[i])) / float(high[i] - low[i])).clamp(0, 1)
        expected = (unit - IMAGENET_MEAN[i % 3]) / IMAGENET_STD[i % 3]
        torch.testing.assert_close(out[:, i], expected, atol=1e-5, rtol=1e-5)
    assert float(out[:, 3].min()) >= -IMAGENET_MEAN[0] / IMAGENET_STD[0] - 1e-5


def test_swin_unetr_needs_monai_and_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "monai", None)  # import fails as if not installed
    config = ModelConfig(arch="swinunetr", encoder_weights=None)
    assert config.arch == "SwinUNETR"
    with pytest.raises(MissingExtraError, match=r"pip install 'kelpseg\[monai\]'"):
        create_model(config, 5)


class _FakeSwinUNETR(nn.Module):
    """Stands in for monai.networks.nets.SwinUNETR: records its arguments, one conv."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.kwargs = kwargs
        self.swinViT = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.out = nn.Conv2d(4, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.swinViT(x))


def test_swin_unetr_is_wrapped_like_an_smp_model(monkeypatch: pytest.MonkeyPatch) -> None:
    nets = types.ModuleType("monai.networks.nets")
    nets.SwinUNETR = _FakeSwinUNETR  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "monai.networks.nets", nets)
    config = ModelConfig(arch="SwinUNETR", head="multiclass", arch_kwargs={"feature_size": 48})
    model: Any = create_model(config, 5)
    assert model.net.kwargs == {"spatial_dims": 2, "feature_size": 48}
    assert model(torch.zeros(1, 5, 32, 32)).shape == (1, 2, 32, 32)
    assert input_multiple(model) == 32
    groups = param_groups(model, OptimConfig(encoder_lr_scale=0.5))
    assert len(groups[1]["params"]) == 2  # the encoder's weight and bias
    model.freeze_encoder()
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.net.out.parameters())
    with pytest.raises(KelpsegError, match="aux_head"):
        create_model(ModelConfig(arch="SwinUNETR", aux_head={"enabled": True}), 5)


def test_the_real_swin_unetr_gives_a_kelp_logit_per_pixel() -> None:
    pytest.importorskip("monai")
    config = ModelConfig(arch="SwinUNETR", encoder_weights=None, arch_kwargs={"feature_size": 12})
    model: Any = create_model(config, 5)
    logits = model(torch.randn(2, 5, 64, 64))
    assert logits.shape == (2, 1, 64, 64) and torch.isfinite(logits).all()
    logits.mean().backward()
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)
    with pytest.raises(KelpsegError):
        check_input_size(model, 5, (50, 50))  # Swin windows need sides divisible by 32


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    config = tiny_config(tmp_path / "catalog.parquet", None, tmp_path / "out")
    return save_config(config, tmp_path / "run.yaml")


def test_full_fit_and_epochs_options_set_the_config(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_train(config: Any, *, resume: bool = False) -> TrainResult:
        seen["config"] = config
        return TrainResult(Path("out"), best_epoch=2)

    monkeypatch.setattr("kelpseg.nn.train.train", fake_train)
    args = ["train", "--config", str(config_file), "--full-fit", "--epochs", "3"]
    result = CliRunner().invoke(cli_app.app, args)
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert config.data.fold is None and not config.has_validation
    assert config.trainer.max_epochs == 3
    assert cli_app.main([*args, "--fold", "1"]) == 2


@pytest.mark.slow
def test_a_run_with_every_new_option_trains_validates_and_reloads(
    tmp_path: Path, split_catalog_path: Path
) -> None:
    from kelpseg.nn.module import KelpSegModule
    from kelpseg.nn.train import train

    config = tiny_config(
        split_catalog_path, None, tmp_path / "run",
        "features.normalization=per-sample-min-max",
        "model.head=multiclass", "model.aux_head.enabled=true",
        "loss=[{name: ce, params: {class_weights: [0.4, 0.6]}}, {name: mcc}]",
        "data.augment.holes=0.5",
        "data.sizing.strategy=resize", "data.sizing.size=64", "data.sizing.interpolation=bicubic",
        "data.sizing.mask_interpolation=nearest",
        "optim.encoder_lr_scale=0.1", "optim.layer_decay=0.8",
    )  # fmt: skip
    result = train(config)
    assert result.best_dice is not None and 0.0 <= result.best_dice <= 1.0
    metrics = result.history[0]
    logged = " ".join(metrics)
    assert "train/loss_aux_has_kelp" in logged and "train/loss_aux_fraction" in logged
    assert "val/loss" in metrics
    assert result.best_ckpt is not None
    module = KelpSegModule.from_checkpoint(result.best_ckpt)
    raw = torch.randint(0, 20000, (1, 7, 50, 50), dtype=torch.int16)
    assert module.predict_probabilities(raw).shape == (1, 1, 50, 50)
