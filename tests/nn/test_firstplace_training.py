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
    ("channels", "crop", "given", "resolved"),
    [
        (["R", "NIR", "OFFSET_NIR", "LANDCLOSE", "NDVI_SOBEL3"], 64, None, True),
        (["R", "NIR", "OFFSET_RNIR"], 64, None, True),
        (["R", "NIR", "OFFSET_NIR"], None, None, False),  # whole tiles: nothing to do
        (["R", "NIR", "NDVI_SOBEL3", "NDVI_MEDIAN5"], 64, None, False),  # local filters
        (["R", "NIR", "OFFSET_NIR"], 64, False, False),  # the user's choice stays
        (["R", "NIR"], 64, True, True),
    ],
)
def test_crop_context_is_on_exactly_for_tile_context_channels_with_crops(
    channels: list[str], crop: int | None, given: bool | None, resolved: bool
) -> None:
    data = {"catalog": "split.parquet", "crop_size": crop, "crop_context": given}
    config = validate_config(TrainConfig, {"data": data, "features": {"channels": channels}})
    assert config.data.crop_context is resolved
    again = validate_config(TrainConfig, config.model_dump(mode="json"))  # saved, re-read
    assert again.data.crop_context is resolved


def test_a_context_batch_builds_channels_on_whole_tiles_then_crops() -> None:
    """The training step builds LANDCLOSE on the whole tile (as prediction does), then crops."""
    from kelpseg.nn.data.datasets import crop_batch

    config = validate_config(
        TrainConfig,
        {
            "features": {"channels": ["NIR", "LANDCLOSE"], "normalization": "per-sample-min-max"},
            "model": TINY_MODEL,
            "data": {"crop_size": 16},
        },
    )
    assert config.data.crop_context
    module = KelpSegModule(config, pretrained=False)
    tiles = torch.from_numpy(np.stack([make_tile_array(40, seed=i, land_cols=8) for i in range(2)]))
    crop = torch.tensor([[0, 20, 16], [24, 24, 16]])
    with torch.no_grad():
        whole_then_crop = crop_batch(module.inputs(tiles), crop)
        crop_then_build = module.inputs(crop_batch(tiles, crop))
    # The first crop lies 12+ px from the land (columns 0-7): alone it holds no land at all.
    assert not torch.allclose(whole_then_crop[:, 1], crop_then_build[:, 1])
    torch.testing.assert_close(whole_then_crop[:, 0], crop_then_build[:, 0])  # NIR: no context
    built, seen = [], []
    outputs = module.network_outputs
    module.inputs.register_forward_pre_hook(lambda _, args: built.append(args[0].shape))
    module.network_outputs = lambda x: (seen.append(x.clone()), outputs(x))[1]
    mask = torch.zeros(2, 1, 40, 40)
    mask[:, :, 5:10, 25:30] = 1.0
    module.on_train_epoch_start()
    module.eval()  # augmentation off, so the network's input can be compared
    loss = module.training_step({"image": tiles, "mask": mask, "crop": crop}, 0)
    assert torch.isfinite(loss)
    assert built == [torch.Size([2, 7, 40, 40])]  # channels built on whole tiles
    assert seen[0].shape[-2:] == (32, 32)  # the network sees the 16 px crops (padded to 32)
    torch.testing.assert_close(seen[0][..., 8:24, 8:24], whole_then_crop)


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

    data = {"catalog": "split.parquet", "crop_size": crop, "crop_context": False}
    config = validate_config(TrainConfig, {"data": data, "features": {"channels": channels}})
    warning = crop_context_warning(config)
    auto = validate_config(TrainConfig, {"data": {**data, "crop_context": None}, "features": {
        "channels": channels}})  # fmt: skip
    assert crop_context_warning(auto) is None  # on by default: nothing to warn about
    if named is None:
        assert warning is None
    else:
        assert warning is not None and warning.startswith(f"{named} use the whole tile")
        assert f"only the {crop} px crop in training (data.crop_context: false)" in warning
