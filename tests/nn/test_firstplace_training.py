"""The 1st place's channels, augmentations and loss together in one training step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kelpseg.config import validate_config
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.module import KelpSegModule
from tests.conftest import make_tile_array
from tests.nn.model_fixtures import TINY_MODEL

CHANNELS = ["R", "G", "B", "NIR", "NDVI", "OFFSET_NIR", "OFFSET_RNIR", "LANDCLOSE",
            "NDVI_SOBEL3", "NDVI_MEDIAN5", "NDVI_UNSHARP5", "NDVI_LCE7"]  # fmt: skip


@pytest.mark.slow
def test_a_training_step_with_every_first_place_option_has_finite_loss_and_gradients() -> None:
    config = validate_config(
        TrainConfig,
        {
            "features": {"channels": CHANNELS, "normalization": "per-sample-min-max"},
            "model": TINY_MODEL,
            "loss": "first-place",
            "data": {"augment": {"mosaic": 1.0, "cutmix": 1.0, "soft_label_sigma": 1.0}},
            "trainer": {"accelerator": "cpu", "devices": 1},
        },
    )
    module = KelpSegModule(config, pretrained=False).train()
    tiles = np.stack([make_tile_array(40, seed=i, land_cols=4 * i) for i in range(4)])
    mask = torch.zeros(4, 1, 40, 40)
    mask[:3, :, 10:16, 20:30] = 1.0  # the last tile holds no kelp
    module.on_train_epoch_start()
    loss = module.training_step({"image": torch.from_numpy(tiles), "mask": mask}, 0)
    loss.backward()
    grads = [p.grad for p in module.model.parameters() if p.grad is not None]
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    assert grads and all(torch.isfinite(g).all() for g in grads)
    with torch.no_grad():
        x = module.inputs(torch.from_numpy(tiles))
    assert x.shape == (4, len(CHANNELS), 40, 40) and torch.isfinite(x).all()


@pytest.mark.parametrize(
    ("channels", "crop", "named"),
    [
        (["R", "NIR", "OFFSET_NIR", "LANDCLOSE", "NDVI_SOBEL3"], 64, "OFFSET_NIR, LANDCLOSE"),
        (["R", "NIR", "OFFSET_RNIR"], 64, "OFFSET_RNIR"),
        (["R", "NIR", "OFFSET_NIR"], None, None),  # whole tiles: as at prediction
        (["R", "NIR", "NDVI_SOBEL3", "NDVI_MEDIAN5"], 64, None),  # local filters: no context
    ],
)
def test_crops_of_tile_context_channels_are_warned_about(
    channels: list[str], crop: int | None, named: str | None
) -> None:
    from kelpseg.nn.train import crop_context_warning

    data = {"catalog": "split.parquet", "crop_size": crop}
    config = validate_config(TrainConfig, {"data": data, "features": {"channels": channels}})
    warning = crop_context_warning(config)
    if named is None:
        assert warning is None
    else:
        assert warning is not None and warning.startswith(f"{named} use the whole tile")
        assert f"only the {crop} px crop in training" in warning
