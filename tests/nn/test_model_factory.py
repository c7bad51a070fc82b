"""Networks from smp: architectures and encoders by name, weights, input-size rules, freezing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.nn.config import ModelConfig
from kelpseg.nn.models import (
    FreezeEncoder,
    check_input_size,
    create_model,
    input_multiple,
    load_encoder_weights,
)

SMALL = {"encoder_depth": 3, "decoder_channels": [16, 8, 8]}


def _config(**kwargs: Any) -> ModelConfig:
    kwargs.setdefault("encoder_weights", None)
    return ModelConfig(**kwargs)


def _out(model: torch.nn.Module, channels: int, size: int = 64) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(
            torch.rand(2, channels, size, size, generator=torch.Generator().manual_seed(0))
        )


def test_unet_resnet18_takes_any_channel_count_and_returns_one_logit() -> None:
    model = create_model(_config(encoder="resnet18", arch_kwargs=SMALL), in_channels=11)
    assert _out(model, 11).shape == (2, 1, 64, 64)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "encoder", "kwargs"),
    [
        ("UnetPlusPlus", "resnet18", {"encoder_depth": 3, "decoder_channels": [16, 8, 8]}),
        ("Linknet", "resnet18", {}),
        ("FPN", "resnet18", {}),
        ("PSPNet", "resnet18", {}),
        ("PAN", "resnet18", {}),
        ("DeepLabV3Plus", "resnet18", {}),
        ("MAnet", "resnet18", {}),
        ("UPerNet", "tu-convnext_atto", {}),
        ("Segformer", "mit_b0", {}),
        ("Unet", "efficientnet-b0", {}),
        ("Unet", "tu-tf_efficientnetv2_b0", {}),
        ("Unet", "resnext50_32x4d", {}),
        ("Unet", "tu-swinv2_cr_tiny_ns_224", {"img_size": 224}),
    ],
)
def test_every_architecture_and_encoder_family_builds_and_runs(
    arch: str, encoder: str, kwargs: dict[str, Any]
) -> None:
    model = create_model(_config(arch=arch, encoder=encoder, arch_kwargs=kwargs), in_channels=5)
    size = 224 if "swin" in encoder else 128  # PAN's pyramid pooling needs more than 64 px
    check_input_size(model, 5, (size, size))
    assert _out(model, 5, size).shape == (2, 1, size, size)


def test_names_are_checked_and_errors_name_the_config_key() -> None:
    with pytest.raises(KelpsegError, match=r"^model\.encoder: .*nope"):
        create_model(_config(encoder="nope"), 3)
    with pytest.raises(KelpsegError, match=r"^model\.encoder: unknown timm encoder"):
        create_model(_config(encoder="tu-nope"), 3)
    with pytest.raises(KelpsegError, match=r"^model\.encoder_weights: .*foo"):
        create_model(_config(encoder="resnet18", encoder_weights="foo"), 3)
    with pytest.raises(KelpsegError, match=r"^model\.arch_kwargs: cannot build Unet"):
        create_model(_config(encoder="resnet18", arch_kwargs={"decoder_channels": [8, 8]}), 3)
    with pytest.raises(ValueError, match="unknown architecture"):
        ModelConfig(arch="NoNet")
    assert ModelConfig(arch="unetplusplus").arch == "UnetPlusPlus"


def test_input_size_rules_are_enforced_with_a_clear_error() -> None:
    fpn = create_model(_config(arch="FPN", encoder="resnet18"), 3)
    assert input_multiple(fpn) == 32
    check_input_size(fpn, 3, (64, 96))
    with pytest.raises(KelpsegError, match=r"^data\.sizing: 48x48 px .*divisible by 32"):
        check_input_size(fpn, 3, (48, 48))
    assert fpn.training  # the dry run leaves the mode as it found it


@pytest.mark.slow
def test_a_fixed_size_encoder_is_refused_at_other_sizes() -> None:
    swin = create_model(
        _config(encoder="tu-swinv2_cr_tiny_ns_224", arch_kwargs={"img_size": 224}), 3
    )
    with pytest.raises(KelpsegError, match=r"^data\.sizing: the model cannot take 256x256"):
        check_input_size(swin, 3, (256, 256))


def test_offline_imagenet_weights_fall_back_to_random_init(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    model = create_model(
        _config(encoder="resnet18", encoder_weights="imagenet", arch_kwargs=SMALL), 4
    )
    message = capsys.readouterr().err.strip().splitlines()
    assert len(message) == 1
    assert "cannot fetch 'imagenet' weights for resnet18" in message[0]
    assert "random initialisation" in message[0]
    assert _out(model, 4).shape == (2, 1, 64, 64)


def test_local_encoder_weights_load_and_spread_over_more_channels(tmp_path: Path) -> None:
    rgb = create_model(_config(encoder="resnet18", arch_kwargs=SMALL), 3)
    path = tmp_path / "encoder.pt"
    torch.save(rgb.encoder.state_dict(), path)
    config = _config(encoder="resnet18", arch_kwargs=SMALL, encoder_weights_path=path)

    same = create_model(config, 3)
    for key, value in rgb.encoder.state_dict().items():
        torch.testing.assert_close(same.encoder.state_dict()[key], value)

    wide = create_model(config, 7)  # channel i takes RGB channel i % 3, scaled by 3/7
    first = wide.encoder.conv1.weight
    torch.testing.assert_close(first[:, 4], rgb.encoder.conv1.weight[:, 1] * 3 / 7)
    torch.testing.assert_close(
        wide.encoder.layer1[0].conv1.weight, rgb.encoder.layer1[0].conv1.weight
    )

    torch.save(
        {"state_dict": {f"encoder.{k}": v for k, v in rgb.encoder.state_dict().items()}}, path
    )
    from_checkpoint = create_model(config, 3)
    torch.testing.assert_close(from_checkpoint.encoder.conv1.weight, rgb.encoder.conv1.weight)


def test_weights_of_another_encoder_or_a_missing_file_are_refused(tmp_path: Path) -> None:
    other = create_model(_config(encoder="mobilenet_v2"), 3)
    path = tmp_path / "other.pt"
    torch.save(other.encoder.state_dict(), path)
    with pytest.raises(KelpsegError, match=r"^model\.encoder_weights_path: .*do not fit"):
        create_model(_config(encoder="resnet18", encoder_weights_path=path), 3)
    with pytest.raises(KelpsegError, match="does not exist"):
        load_encoder_weights(other, tmp_path / "missing.pt")


class _Trainer:
    def __init__(self, epoch: int) -> None:
        self.current_epoch = epoch


class _Module(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model


def test_freeze_then_unfreeze_follows_the_epoch_and_keeps_batchnorm_statistics() -> None:
    model = create_model(_config(encoder="resnet18", arch_kwargs=SMALL), 3)
    callback = FreezeEncoder("freeze_then_unfreeze", unfreeze_epoch=2)
    module = _Module(model).train()
    callback.on_train_epoch_start(_Trainer(1), module)  # type: ignore[arg-type]
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.decoder.parameters())
    before = model.encoder.bn1.running_mean.clone()
    module.train()
    model(torch.rand(2, 3, 32, 32) * 10)
    torch.testing.assert_close(model.encoder.bn1.running_mean, before)  # frozen stats
    callback.on_train_epoch_start(_Trainer(2), module)  # type: ignore[arg-type]
    assert all(p.requires_grad for p in model.encoder.parameters())
    assert FreezeEncoder("frozen_encoder").frozen_at(100)
    assert not FreezeEncoder("none").frozen_at(0)
