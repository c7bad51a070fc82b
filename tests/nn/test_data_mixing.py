"""Mosaic, CutMix and soft labels: masks stay aligned, probabilities 0 and 1 behave."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from kelpseg.nn.data.config import AugmentConfig
from kelpseg.nn.data.mixing import CutMix, Mosaic, SoftLabels, take_pixels
from kelpseg.nn.data.transforms import Augmenter, build_augmentations

NO_GEOMETRY = {"hflip": 0.0, "vflip": 0.0, "rot90": 0.0}


def _batch(n: int = 8, size: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images whose last channel is the mask itself, and the mask."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, 1, size, size, generator=g) > 0.8).float()
    x = torch.cat([torch.rand(n, 2, size, size, generator=g), y], dim=1)
    return x, y


def _labelled(n: int, h: int, w: int) -> torch.Tensor:
    """(n, 1, h, w): sample i holds the value i everywhere (to read where pixels came from)."""
    return torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, h, w).clone()


@pytest.mark.parametrize("op", [Mosaic(1.0), CutMix(1.0, (0.2, 0.6))])
def test_mixing_keeps_the_mask_equal_to_its_image_channel(op: torch.nn.Module) -> None:
    x, y = _batch()
    x2, y2 = op(x, y, torch.Generator().manual_seed(1))
    assert torch.equal(x2[:, 2:], y2)
    assert not torch.equal(x2, x)


@pytest.mark.parametrize("op", [Mosaic(1.0, 0.25), CutMix(1.0, (0.2, 0.6))])
def test_every_pixel_comes_from_the_same_position_of_some_tile(op: torch.nn.Module) -> None:
    n, h, w = 6, 16, 24
    src = _labelled(n, h, w)
    rows = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1).expand(n, 1, h, w)
    cols = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w).expand(n, 1, h, w)
    x = torch.cat([src, rows, cols], dim=1)
    x2, y2 = op(x, src, torch.Generator().manual_seed(2))
    assert torch.equal(x2[:, 1:], x[:, 1:])  # positions never move: no resampling
    assert torch.equal(x2[:, :1], y2) and set(y2.unique().tolist()) <= set(range(n))
    for i in range(n):  # p = 1: every sample mixes in at least one other tile
        assert (y2[i] != i).any()


def test_mosaic_fills_four_quadrants_about_a_centre_inside_the_allowed_band() -> None:
    n, h, w = 16, 20, 40
    y = _labelled(n, h, w)
    _, out = Mosaic(1.0, min_share=0.25)(y.clone(), y, torch.Generator().manual_seed(3))
    for i in range(n):
        tile = out[i, 0]
        # Quadrant borders: the first row / column where the source changes.
        cy = int((tile[:, 0] != tile[0, 0]).nonzero()[0])
        cx = int((tile[0, :] != tile[0, 0]).nonzero()[0])
        assert 0.25 * h <= cy <= 0.75 * h and 0.25 * w <= cx <= 0.75 * w
        quads = [tile[:cy, :cx], tile[:cy, cx:], tile[cy:, :cx], tile[cy:, cx:]]
        values = [float(q[0, 0]) for q in quads]
        assert all(torch.all(q == v) for q, v in zip(quads, values, strict=True))
        assert values.count(float(i)) == 1  # the sample keeps one quadrant, partners the rest
        assert len(set(values)) == 4  # four different tiles


def test_cutmix_pastes_one_box_of_the_configured_area() -> None:
    n, h, w = 20, 30, 30
    y = _labelled(n, h, w)
    _, out = CutMix(1.0, (0.1, 0.3))(y.clone(), y, torch.Generator().manual_seed(4))
    for i in range(n):
        pasted = out[i, 0] != i
        rows, cols = pasted.any(1).nonzero().flatten(), pasted.any(0).nonzero().flatten()
        box = pasted[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all() and int(pasted.sum()) == box.numel()  # one solid rectangle
        assert 0.1 * h * w * 0.8 <= box.numel() <= 0.3 * h * w * 1.2  # rounding of the sides
        assert len(out[i, 0][pasted].unique()) == 1


@pytest.mark.parametrize("cls", [Mosaic, CutMix])
def test_probability_zero_is_the_identity_and_batches_of_one_are_left_alone(cls: type) -> None:
    x, y = _batch()
    x2, y2 = cls(0.0)(x, y, torch.Generator().manual_seed(5))
    assert torch.equal(x2, x) and torch.equal(y2, y)
    x1, y1 = cls(1.0)(x[:1], y[:1], torch.Generator().manual_seed(5))
    assert torch.equal(x1, x[:1]) and torch.equal(y1, y[:1])


def test_probability_is_per_sample() -> None:
    x, y = _batch(n=400, size=8)
    x2, _ = Mosaic(0.3)(x, y, torch.Generator().manual_seed(6))
    share = float((x2 != x).flatten(1).any(1).float().mean())
    assert 0.2 < share < 0.4


def test_take_pixels_reads_each_pixel_from_its_source_sample() -> None:
    x = torch.rand(3, 2, 4, 5)
    source = torch.randint(0, 3, (3, 4, 5), generator=torch.Generator().manual_seed(7))
    out = take_pixels(x, source)
    for i in range(3):
        for r in range(4):
            for c in range(5):
                assert torch.equal(out[i, :, r, c], x[source[i, r, c], :, r, c])


def test_soft_labels_stay_in_unit_range_and_keep_the_amount_of_kelp() -> None:
    y = torch.zeros(2, 1, 40, 40)
    y[0, 0, 12:20, 15:30] = 1.0
    y[1, 0, 25, 25] = 1.0
    x = torch.rand(2, 3, 40, 40)
    x2, soft = SoftLabels(sigma=2.0)(x, y)
    assert torch.equal(x2, x)
    assert float(soft.min()) >= 0.0 and float(soft.max()) <= 1.0
    torch.testing.assert_close(soft.sum(dim=(1, 2, 3)), y.sum(dim=(1, 2, 3)), rtol=1e-4, atol=0)
    assert 0 < float(soft[1, 0, 25, 25]) < 1 and float(soft[1, 0, 25, 27]) > 0  # spread out
    ones = torch.ones(1, 1, 10, 10)
    torch.testing.assert_close(SoftLabels(3.0)(ones, ones)[1], ones)  # a tile of kelp stays kelp


def test_config_switches_the_mixing_augmentations_on_and_validates_them() -> None:
    assert build_augmentations(AugmentConfig(**NO_GEOMETRY)) == []
    config = AugmentConfig(**NO_GEOMETRY, mosaic=0.5, cutmix=1.0, soft_label_sigma=1.5)
    ops = build_augmentations(config)
    assert [type(op) for op in ops] == [SoftLabels, Mosaic, CutMix]
    assert ops[0].sigma == 1.5 and ops[1].p == 0.5 and ops[2].p == 1.0
    with pytest.raises(ValidationError):
        AugmentConfig(cutmix_area=(0.5, 0.2))
    with pytest.raises(ValidationError):
        AugmentConfig(mosaic=1.5)


def test_augmenter_mixes_in_training_only_and_keeps_alignment_with_geometry() -> None:
    x, y = _batch(n=12, size=16)
    aug = Augmenter(AugmentConfig(hflip=0.5, rot90=0.5, mosaic=1.0, cutmix=1.0))
    x2, y2 = aug(x, y, torch.Generator().manual_seed(8))
    assert torch.equal(x2[:, 2:], y2) and not torch.equal(x2, x)
    x3, y3 = aug.eval()(x, y)
    assert torch.equal(x3, x) and torch.equal(y3, y)
