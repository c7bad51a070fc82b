"""Tile datasets: item format, kelp-centred crops, determinism and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import write_label
from kelpseg.nn.data.datasets import GeoTiffDataset, crop_origin
from tests.conftest import make_tile_array

SIZE, CROP = 96, 16
KELP = (70, 30)


def _kelp_mask() -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[KELP] = 1
    return mask


def _contains(top: int, left: int, pixel: tuple[int, int] = KELP) -> bool:
    return top <= pixel[0] < top + CROP and left <= pixel[1] < left + CROP


@pytest.mark.parametrize("prob", [0.0, 0.3, 0.7])
def test_crops_centre_on_kelp_with_the_configured_probability(prob: float):
    rng = np.random.default_rng(123)
    mask = _kelp_mask()
    origins = [crop_origin(mask, (SIZE, SIZE), CROP, prob, rng) for _ in range(4000)]
    centred = [o for o in origins if o == (KELP[0] - CROP // 2, KELP[1] - CROP // 2)]
    hits = np.mean([_contains(*o) for o in origins])
    uniform_hit = (CROP / (SIZE - CROP + 1)) ** 2  # a uniform crop covers the pixel
    assert hits == pytest.approx(prob + (1 - prob) * uniform_hit, abs=0.03)
    assert len(centred) / len(origins) == pytest.approx(prob + (1 - prob) / 81**2, abs=0.03)


def test_kelp_crops_near_the_border_move_inward_and_keep_the_kelp():
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[2, SIZE - 1] = 1
    rng = np.random.default_rng(0)
    for _ in range(20):
        top, left = crop_origin(mask, (SIZE, SIZE), CROP, 1.0, rng)
        assert (top, left) == (0, SIZE - CROP)


def test_tiles_without_kelp_get_uniform_crops():
    rng = np.random.default_rng(1)
    empty = np.zeros((SIZE, SIZE), np.uint8)
    tops = {crop_origin(empty, (SIZE, SIZE), CROP, 1.0, rng)[0] for _ in range(300)}
    assert len(tops) > 40 and min(tops) >= 0 and max(tops) <= SIZE - CROP


def test_geotiff_items_are_raw_int16_with_a_float_mask(tile_factory):
    data = make_tile_array(SIZE, seed=3)
    image = tile_factory("AB001", data=data, label=_kelp_mask(), size=SIZE)
    mask = image.parent.parent / "train_kelp" / "AB001_kelp.tif"
    item = GeoTiffDataset([image], [mask])[0]
    assert item["tile_id"] == "AB001"
    assert item["image"].dtype == torch.int16 and item["image"].shape == (7, SIZE, SIZE)
    assert torch.equal(item["image"], torch.from_numpy(data))
    assert item["mask"].dtype == torch.float32 and item["mask"].shape == (1, SIZE, SIZE)
    assert float(item["mask"].sum()) == 1.0
    assert "mask" not in GeoTiffDataset([image])[0]


def test_crops_are_a_pure_function_of_the_key(tile_factory):
    data = make_tile_array(SIZE, seed=4)
    image = tile_factory("AB002", data=data, label=_kelp_mask(), size=SIZE)
    mask = image.parent.parent / "train_kelp" / "AB002_kelp.tif"
    dataset = GeoTiffDataset([image], [mask], crop_size=CROP, kelp_crop_prob=1.0)
    a, b = dataset[(0, 42)], dataset[(0, 42)]
    assert torch.equal(a["image"], b["image"]) and a["image"].shape == (7, CROP, CROP)
    top, left = KELP[0] - CROP // 2, KELP[1] - CROP // 2
    assert torch.equal(a["image"], torch.from_numpy(data[:, top : top + CROP, left : left + CROP]))
    assert float(a["mask"][0, CROP // 2, CROP // 2]) == 1.0  # kelp at the centre
    uniform = GeoTiffDataset([image], [mask], crop_size=CROP)
    crops = {tuple(uniform[(0, s)]["image"][0, 0, :3].tolist()) for s in range(20)}
    assert len(crops) > 10


def test_bad_inputs_are_user_errors(tile_factory, tmp_path: Path):
    image = tile_factory("AB003", data=make_tile_array(32), size=32)
    with pytest.raises(KelpsegError, match="larger than the tile"):
        GeoTiffDataset([image], crop_size=64)[0]
    label = write_label(tmp_path / "AB003_kelp.tif", np.zeros((16, 16), np.uint8))
    with pytest.raises(KelpsegError, match="expected 32x32") as err:
        GeoTiffDataset([image], [label])[0]
    assert err.value.path == str(label)
    with pytest.raises(KelpsegError, match="1 images but 2 masks"):
        GeoTiffDataset([image], [label, label])


def _three_tiles(tile_factory, prefix: str) -> tuple[list[Path], list[Path]]:
    """Three labelled tiles ``<prefix>000..002`` and their label paths."""
    paths = [
        tile_factory(
            f"{prefix}00{i}", data=make_tile_array(SIZE, seed=i), label=_kelp_mask(), size=SIZE
        )
        for i in range(3)
    ]
    return paths, [
        p.parent.parent / "train_kelp" / p.name.replace("satellite", "kelp") for p in paths
    ]


def test_batched_fetch_matches_item_by_item_collation(tile_factory):
    from torch.utils.data import default_collate

    from kelpseg.nn.data.datasets import collate_tiles

    paths, masks = _three_tiles(tile_factory, "AC")
    dataset = GeoTiffDataset(paths, masks, crop_size=CROP, kelp_crop_prob=0.5)
    keys = [(2, 7), (0, 8), (1, 9), (2, 10)]
    fast = collate_tiles(dataset.__getitems__(keys))
    slow = default_collate([dataset[k] for k in keys])
    assert fast["tile_id"] == slow["tile_id"] == ["AC002", "AC000", "AC001", "AC002"]
    assert torch.equal(fast["image"], slow["image"]) and torch.equal(fast["mask"], slow["mask"])
    # torch's own collate accepts the batched fetch too
    assert torch.equal(default_collate(dataset.__getitems__(keys))["image"], fast["image"])


def test_tiles_of_different_sizes_in_one_batch_are_named(tile_factory):
    a = tile_factory("AD001", data=make_tile_array(32), size=32)
    b = tile_factory("AD002", data=make_tile_array(48), size=48)
    with pytest.raises(KelpsegError, match="AD002: 48x48"):
        GeoTiffDataset([a, b]).__getitems__([0, 1])


def test_crop_context_reads_whole_tiles_and_records_the_same_windows(tile_factory):
    from kelpseg.nn.data.datasets import collate_tiles, crop_batch

    paths, masks = _three_tiles(tile_factory, "AD")
    plain = GeoTiffDataset(paths, masks, crop_size=CROP, kelp_crop_prob=0.5)
    whole = GeoTiffDataset(paths, masks, crop_size=CROP, kelp_crop_prob=0.5)
    whole.context = True
    keys = [(2, 7), (0, 8), (1, 9)]
    cropped, context = (
        collate_tiles(plain.__getitems__(keys)),
        collate_tiles(whole.__getitems__(keys)),
    )
    assert "crop" not in cropped
    assert context["image"].shape == (3, 7, SIZE, SIZE) and context["mask"].shape == (
        3,
        1,
        SIZE,
        SIZE,
    )
    assert context["crop"].shape == (3, 3) and (context["crop"][:, 2] == CROP).all()
    assert len({tuple(r) for r in context["crop"][:, :2].tolist()}) > 1  # windows differ
    assert torch.equal(crop_batch(context["image"], context["crop"]), cropped["image"])
    assert torch.equal(crop_batch(context["mask"], context["crop"]), cropped["mask"])
    assert torch.equal(whole[(1, 9)]["crop"], context["crop"][2])  # item by item, too
