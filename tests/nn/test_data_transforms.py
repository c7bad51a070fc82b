"""Batch augmentations keep image and mask aligned; the sizer pads/resizes and restores."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from pydantic import ValidationError

from kelpseg.errors import KelpsegError
from kelpseg.nn.data.config import AugmentConfig, SizingConfig
from kelpseg.nn.data.transforms import (
    Augmenter,
    InputSizer,
    RandomFlip,
    RandomRot90,
    rot90_per_sample,
)

ALL_GEOMETRIC = AugmentConfig(hflip=0.5, vflip=0.5, rot90=0.75, rotate=0.0)


def _batch(n: int = 16, size: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images whose mask is a function of the image: mask = (channel 0 > 0.7)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    return x, (x[:, :1] > 0.7).float()


def test_flips_and_quarter_turns_keep_the_mask_a_function_of_the_image():
    x, y = _batch()
    aug = Augmenter(ALL_GEOMETRIC)
    x2, y2 = aug(x, y, torch.Generator().manual_seed(1))
    assert torch.equal(y2, (x2[:, :1] > 0.7).float())
    changed = (x2 != x).flatten(1).any(1)
    assert 0 < int(changed.sum()) < len(x)  # some samples moved, some did not
    # Each output is a rigid motion of its own input: same multiset of pixel values.
    assert torch.equal(x2.flatten(1).sort(1).values, x.flatten(1).sort(1).values)


def test_free_rotation_moves_image_and_mask_through_the_same_grid():
    x, y = _batch(n=6, size=32)
    x = torch.cat([x, y], dim=1)  # channel 3 is the mask itself
    aug = Augmenter(AugmentConfig(hflip=0, vflip=0, rot90=0, rotate=1.0, rotate_degrees=20))
    x2, y2 = aug(x, y, torch.Generator().manual_seed(2))
    torch.testing.assert_close(x2[:, 3:], y2)
    assert not torch.allclose(x2, x)
    assert float(y2.min()) >= 0.0 and float(y2.max()) <= 1.0
    # Nearest resampling keeps a hard mask hard and still aligned.
    nearest = Augmenter(
        AugmentConfig(rot90=0, hflip=0, vflip=0, rotate=1.0, rotate_interpolation="nearest")
    )
    x3, y3 = nearest(x, y, torch.Generator().manual_seed(3))
    assert torch.equal(x3[:, 3:], y3) and set(y3.unique().tolist()) <= {0.0, 1.0}


def test_rot90_four_times_is_the_identity():
    x, _ = _batch(n=8)
    turns = torch.randint(0, 4, (8,), generator=torch.Generator().manual_seed(0))
    out = x
    for _ in range(4):
        out = rot90_per_sample(out, turns)
    assert torch.equal(out, x)
    once = rot90_per_sample(x, turns)
    assert torch.equal(rot90_per_sample(once, 4 - turns), x)
    for i in range(8):
        assert torch.equal(once[i], torch.rot90(x[i], int(turns[i]), dims=(-2, -1)))


def test_non_square_batches_only_turn_half_way():
    x = torch.rand(10, 2, 8, 12)
    y = (x[:, :1] > 0.5).float()
    x2, y2 = RandomRot90(1.0)(x, y, torch.Generator().manual_seed(0))
    assert x2.shape == x.shape
    assert torch.equal(x2, torch.rot90(x, 2, dims=(-2, -1)))
    assert torch.equal(y2, (x2[:, :1] > 0.5).float())


def test_flip_twice_is_identity_and_probability_is_per_sample():
    x, y = _batch(n=4000, size=4)
    flip = RandomFlip(1.0, dim=-1)
    assert torch.equal(flip(*flip(x, y))[0], x)
    half = RandomFlip(0.3, dim=-2)
    x2, _ = half(x, y, torch.Generator().manual_seed(5))
    share = (x2 != x).flatten(1).any(1).float().mean().item()
    assert share == pytest.approx(0.3, abs=0.03)


def test_identity_when_disabled_in_eval_mode_or_at_zero_probability():
    x, y = _batch()
    for aug in (
        Augmenter(AugmentConfig(enabled=False, hflip=1.0)),
        Augmenter(AugmentConfig(hflip=0, vflip=0, rot90=0, rotate=0)),
        Augmenter(AugmentConfig(hflip=1.0)).eval(),
    ):
        x2, y2 = aug(x, y)
        assert torch.equal(x2, x) and torch.equal(y2, y)


def test_same_generator_seed_same_augmentation():
    x, y = _batch()
    aug = Augmenter(AugmentConfig(rotate=0.5))
    a = aug(x, y, torch.Generator().manual_seed(9))
    b = aug(x, y, torch.Generator().manual_seed(9))
    c = aug(x, y, torch.Generator().manual_seed(10))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_mismatched_image_and_mask_are_refused():
    with pytest.raises(KelpsegError, match="do not match"):
        Augmenter()(torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 9))


@pytest.mark.parametrize("mode", ["reflect", "zeros", "replicate"])
@pytest.mark.parametrize(("hw", "size"), [((350, 350), None), ((350, 350), 384), ((5, 7), None)])
def test_pad_restore_returns_the_input(mode: str, hw: tuple[int, int], size: int | None):
    x = torch.randn(2, 3, *hw)
    sizer = InputSizer(size, "pad", 32, pad_mode=mode)
    big = sizer(x)
    up = (32 * -(-hw[0] // 32), 32 * -(-hw[1] // 32))  # next multiples of 32
    expect_hw = up if size is None else (size, size)
    assert tuple(big.shape[-2:]) == expect_hw
    assert torch.equal(sizer.restore(big, hw), x)


def test_reflect_padding_mirrors_the_border():
    x = torch.arange(350.0).view(1, 1, 1, 350).expand(1, 1, 350, 350).contiguous()
    big = InputSizer()(x)
    assert big.shape[-1] == 352
    # one column each side, mirrored about the edge pixel (not repeating it)
    inner = big[..., 1:-1, :]
    assert torch.equal(inner[..., 1:-1], x)
    assert torch.equal(inner[..., 0], x[..., 1]) and torch.equal(inner[..., -1], x[..., -2])
    zero = InputSizer(pad_mode="zeros")(x)
    assert float(zero[..., 0].abs().sum()) == 0.0 and float(zero[..., -1].abs().sum()) == 0.0


def test_resize_and_back_is_close_for_smooth_images():
    ramp = torch.linspace(0, 1, 64)
    x = (ramp.view(1, 1, 64, 1) + ramp.view(1, 1, 1, 64)).expand(2, 2, 64, 64).contiguous()
    for interpolation in ("bilinear", "bicubic"):
        sizer = InputSizer.from_config(
            SizingConfig(size=128, strategy="resize", interpolation=interpolation)
        )
        big = sizer(x)
        assert big.shape == (2, 2, 128, 128)
        back = sizer.restore(big, (64, 64))
        assert back.shape == x.shape
        assert float((back - x)[..., 4:-4, 4:-4].abs().max()) < 0.02


def test_masks_are_sized_like_their_images():
    x, y = _batch(n=2, size=50)
    x = torch.cat([x, y], dim=1)
    for sizer in (InputSizer(), InputSizer(96, "resize", interpolation="bicubic")):
        big, mask = sizer(x), sizer.size_mask(y)
        assert mask.shape[-2:] == big.shape[-2:]
        assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0
    pad = InputSizer()
    assert torch.equal(pad(x)[:, 3:], pad.size_mask(y))


def test_impossible_sizes_are_user_errors():
    with pytest.raises(KelpsegError, match="multiple of 32"):
        InputSizer(350)
    with pytest.raises(KelpsegError, match="do not fit"):
        InputSizer(320, "pad")(torch.zeros(1, 1, 350, 350))
    assert InputSizer(320, "resize")(torch.zeros(1, 1, 350, 350)).shape[-1] == 320


@pytest.mark.parametrize(
    ("scale", "multiple", "hw", "expect"),
    [
        (2.0, 32, (128, 128), (256, 256)),  # a training crop
        (2.0, 32, (350, 350), (704, 704)),  # a whole tile: 700 rounded up
        (1.5, 32, (350, 350), (544, 544)),  # 525 rounded up
        (1.5, 32, (128, 350), (192, 544)),
        (0.5, 32, (350, 64), (192, 32)),  # 175 up to 192; 32 stays
        (1.12, 32, (200, 200), (224, 224)),  # 224.00000000000003 in floats is still 224
        (1.0, 16, (350, 7), (352, 16)),
    ],
)
def test_scale_resizes_by_the_factor_rounded_up_to_the_multiple(
    scale: float, multiple: int, hw: tuple[int, int], expect: tuple[int, int]
):
    sizer = InputSizer(None, "resize", multiple, scale=scale)
    # The same with exact rationals: no float rounding in the reference.
    exact = tuple(math.ceil(Fraction(s) * Fraction(str(scale)) / multiple) * multiple for s in hw)
    assert sizer.target_hw(*hw) == expect == exact
    x = torch.rand(1, 2, *hw)
    assert tuple(sizer(x).shape[-2:]) == expect
    assert tuple(sizer.size_mask(x[:, :1]).shape[-2:]) == expect


def test_scaled_batches_restore_to_their_own_size_and_smooth_images_come_back():
    config = SizingConfig(strategy="resize", scale=1.5, interpolation="bicubic")
    sizer = InputSizer.from_config(config)
    assert sizer.scale == 1.5 and sizer.size is None
    rows, cols = torch.linspace(0, 1, 100), torch.linspace(0, 1, 70)
    x = (rows.view(1, 1, 100, 1) ** 2 + torch.sin(3 * cols).view(1, 1, 1, 70)).expand(2, 3, 100, 70)
    for crop in (x[..., :48, :48], x):  # a crop and a whole (non-square) tile
        hw = (int(crop.shape[-2]), int(crop.shape[-1]))
        big = sizer(crop.contiguous())
        assert tuple(big.shape[-2:]) == sizer.target_hw(*hw) != hw
        back = sizer.restore(big, hw)
        assert back.shape == crop.shape
        assert float((back - crop)[..., 4:-4, 4:-4].abs().max()) < 0.02
    y = torch.zeros(1, 1, 100, 70)
    y[..., 20:60, 10:40] = 1.0
    back = sizer.restore_mask(sizer.size_mask(y), (100, 70))
    assert back.shape == y.shape and float(back.min()) >= 0.0 and float(back.max()) <= 1.0
    assert float((back - y)[..., 25:55, 15:35].abs().max()) < 0.05  # the inside stays kelp


def test_scale_settings_are_checked():
    assert SizingConfig(strategy="resize", scale=2.0).scale == 2.0
    with pytest.raises(ValidationError, match="scale .* and size .* are mutually exclusive"):
        SizingConfig(strategy="resize", scale=2.0, size=512)
    with pytest.raises(ValidationError, match="scale .* needs strategy: resize"):
        SizingConfig(scale=2.0)
    for bad in (0.2, 8.5):
        with pytest.raises(ValidationError, match="scale"):
            SizingConfig(strategy="resize", scale=bad)
    with pytest.raises(KelpsegError, match="strategy resize and no size"):
        InputSizer(None, "pad", scale=2.0)
    with pytest.raises(KelpsegError, match="strategy resize and no size"):
        InputSizer(64, "resize", scale=2.0)
    with pytest.raises(KelpsegError, match="positive"):
        InputSizer(None, "resize", scale=0.0)


def test_transforms_move_with_their_module():
    # The LightningModule moves them with .to(device); nn.Module machinery must keep working.
    holder = torch.nn.ModuleDict({"sizer": InputSizer(), "augment": Augmenter()})
    holder.to("cpu").to(torch.float64)
    assert holder["sizer"](torch.zeros(1, 1, 30, 30, dtype=torch.float64)).shape[-1] == 32
