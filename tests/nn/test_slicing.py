"""Sliced training windows, overlapped sliced prediction (SAHI) and weight averaging (SWA)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kelpseg.config import validate_config
from kelpseg.errors import KelpsegError
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.data.config import DataConfig
from kelpseg.nn.data.datasets import GeoTiffDataset
from kelpseg.nn.slicing import slice_origins, sliced_outputs, snap_to_slice
from kelpseg.nn.train import train
from tests.nn.conftest import split_catalog, split_catalog_path, synth_root  # noqa: F401
from tests.nn.model_fixtures import band_stats_path, tiny_config  # noqa: F401


def test_slice_origins_step_by_size_minus_overlap_and_end_at_the_edge() -> None:
    assert slice_origins(350, 128, 64) == [0, 64, 128, 192, 222]
    assert slice_origins(256, 128, 64) == [0, 64, 128]
    assert slice_origins(128, 128, 0) == [0]
    assert snap_to_slice(250, 350, 128, 64) == 222
    assert snap_to_slice(96, 350, 128, 64) == 64  # a tie goes to the lower origin
    with pytest.raises(KelpsegError, match="larger than the tile"):
        slice_origins(100, 128, 64)
    with pytest.raises(KelpsegError, match="smaller than the slice size"):
        slice_origins(350, 64, 64)


def _calls(values: list[float]) -> Iterator[float]:
    yield from values


def test_sliced_outputs_average_the_slices_probabilities_where_they_overlap() -> None:
    # Width 8, slices of 4 at a step of 2: columns 0-3, 2-5, 4-7 with probabilities 0.2, 0.4, 0.6.
    probs = _calls([0.2, 0.4, 0.6])

    def binary(w: torch.Tensor) -> torch.Tensor:
        p = torch.tensor(next(probs))
        return torch.full((1, 1, *w.shape[-2:]), float(torch.log(p / (1 - p))))

    out = torch.sigmoid(sliced_outputs(binary, torch.zeros(1, 3, 4, 8), 4, 2))[0, 0, 0]
    assert out.tolist() == pytest.approx([0.2, 0.2, 0.3, 0.3, 0.5, 0.5, 0.6, 0.6], abs=1e-5)

    kelp = _calls([0.2, 0.4, 0.6])

    def two_class(w: torch.Tensor) -> torch.Tensor:
        p = float(next(kelp))
        logits = torch.tensor([0.0, float(np.log(p / (1 - p)))]).reshape(1, 2, 1, 1)
        return logits.expand(1, 2, *w.shape[-2:])

    soft = torch.softmax(sliced_outputs(two_class, torch.zeros(1, 3, 4, 8), 4, 2), dim=1)
    assert soft[0, 1, 0].tolist() == pytest.approx(
        [0.2, 0.2, 0.3, 0.3, 0.5, 0.5, 0.6, 0.6], abs=1e-5
    )


def test_slicing_config_makes_the_slices_the_training_crops() -> None:
    data = DataConfig.model_validate({"slicing": {"train": True, "size": 32, "overlap": 16}})
    assert data.crop_size == 32
    with pytest.raises(ValueError, match="contradicts"):
        DataConfig.model_validate(
            {"crop_size": 48, "slicing": {"train": True, "size": 32, "overlap": 16}}
        )
    with pytest.raises(ValueError, match="smaller than size"):
        DataConfig.model_validate({"slicing": {"size": 32, "overlap": 32}})


def test_sliced_training_crops_start_on_the_slice_grid(
    split_catalog: pd.DataFrame,  # noqa: F811
) -> None:
    rows = split_catalog[split_catalog["split"] == "train"].head(2)
    dataset = GeoTiffDataset(
        list(rows["image_path"]), list(rows["mask_path"]), list(rows["tile_id"]),
        crop_size=32, kelp_crop_prob=0.5,
    )  # fmt: skip
    dataset.slice_overlap = 16
    starts = set()
    for seed in range(40):
        window = dataset._window(0, None, seed)
        assert window is not None
        starts.update({window[0].start, window[1].start})
    assert starts == {0, 16, 32}  # 64 px tiles: the whole grid, and only the grid


@pytest.mark.slow
def test_swa_and_sahi_train_and_the_averaged_weights_are_validated(
    tmp_path: Path,
    split_catalog_path: Path,  # noqa: F811
    band_stats_path: Path,  # noqa: F811
) -> None:
    config = tiny_config(
        split_catalog_path, band_stats_path, tmp_path / "run",
        "trainer.max_epochs=2", "trainer.swa.enabled=true", "trainer.swa.annealing_epochs=1",
        "data.crop_size=null", "data.kelp_crop_prob=0.0",
        "data.slicing.train=true", "data.slicing.predict=true",
        "data.slicing.size=32", "data.slicing.overlap=16",
    )  # fmt: skip
    assert isinstance(config, TrainConfig) and config.data.crop_size == 32
    result = train(config)
    # Batch norm: Lightning adds one epoch on the averaged weights, validated like the others.
    dice = {e: m["val/dice"] for e, m in result.history.items() if "val/dice" in m}
    assert sorted(dice) == [0, 1, 2]
    assert result.best_dice == pytest.approx(max(dice.values()))
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["best_epoch"] == max(dice, key=lambda e: dice[e])


def test_an_unknown_swa_key_is_refused() -> None:
    with pytest.raises(KelpsegError, match="swa"):
        validate_config(TrainConfig, {"trainer": {"swa": {"lrs": 0.1}}})
