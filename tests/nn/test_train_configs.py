"""The shipped training configs load, say what the docs say, and fit their models."""

from __future__ import annotations

from pathlib import Path

import pytest

from kelpseg.config import load_config
from kelpseg.features.config import SEED_CHANNELS
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.data.transforms import InputSizer
from kelpseg.nn.models import check_input_size, create_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["demo", "seed-best", "baseline-resnet50"])
def test_shipped_configs_validate(name: str) -> None:
    config = load_config(TrainConfig, CONFIGS / f"{name}.yaml")
    assert config.has_validation and config.tracking.enabled


def test_seed_best_is_the_seeds_recipe() -> None:
    config = load_config(TrainConfig, CONFIGS / "seed-best.yaml")
    assert tuple(config.features.channels) == SEED_CHANNELS and len(SEED_CHANNELS) == 24
    assert (config.model.arch, config.model.encoder) == ("Unet", "efficientnet-b5")
    assert config.model.encoder_weights == "imagenet"
    assert [t.name for t in config.loss.terms] == ["dice"]
    assert (config.trainer.max_epochs, config.data.sampler.samples_per_epoch) == (10, 10240)
    assert (config.data.batch_size, config.trainer.precision) == (32, "bf16-mixed")
    optim = config.optim
    assert (optim.optimizer, optim.lr, optim.weight_decay, optim.scheduler) == (
        "adamw", 3e-4, 1e-4, "onecycle",
    )  # fmt: skip
    assert (optim.pct_start, optim.div_factor, optim.final_div_factor) == (0.1, 2.0, 100.0)


@pytest.mark.slow
def test_demo_model_takes_its_crops_and_whole_tiles_without_downloads() -> None:
    config = load_config(TrainConfig, CONFIGS / "demo.yaml")
    assert config.model.encoder_weights is None and config.data.crop_size == 128
    channels = len(config.features.channels)
    model = create_model(config.model, channels)
    sizer = InputSizer.from_config(config.data.sizing)
    for side in (config.data.crop_size, 350):
        check_input_size(model, channels, sizer.target_hw(side, side))
