"""Stored per-tile channels (``data.stacked``) travel beside the bands into the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import read_label
from kelpseg.nn.data.datamodule import KelpDataModule
from kelpseg.nn.data.stacked import SCALE, TILES_DIR
from kelpseg.nn.module import KelpSegModule
from kelpseg.nn.train import load_stats, train
from tests.nn.model_fixtures import MODEL_CHANNELS, band_stats_path, tiny_config  # noqa: F401


@pytest.fixture(scope="module")
def treeprob(split_catalog: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stored channel for every tile: the label (train) or a ramp (test), as float16."""
    root = tmp_path_factory.mktemp("stacked")
    for row in split_catalog.itertuples(index=False):
        if row.mask_path:
            plane = read_label(row.mask_path).astype(np.float32) * 0.9
        else:
            plane = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
        (root / TILES_DIR).mkdir(exist_ok=True)
        np.save(root / TILES_DIR / f"{row.tile_id}.npy", plane.astype(np.float16))
    return root


def test_batches_carry_the_stored_channel_after_the_bands(
    split_catalog_path: Path,
    band_stats_path: Path,  # noqa: F811
    treeprob: Path,
    tmp_path: Path,
) -> None:
    config = tiny_config(split_catalog_path, band_stats_path, tmp_path,
                         f"data.stacked={{TREEPROB: {treeprob}}}")  # fmt: skip
    data = KelpDataModule(config.data, seed=0)
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    assert batch["image"].shape[1] == 8
    for i, tile_id in enumerate(batch["tile_id"]):
        stored = np.load(treeprob / TILES_DIR / f"{tile_id}.npy").astype(np.float32)
        np.testing.assert_allclose(batch["image"][i, 7].numpy() / SCALE, stored, atol=1e-4)
        # The label-derived channel lines up with the mask: same pixels, same crop.
        np.testing.assert_array_equal(stored > 0.5, batch["mask"][i, 0].numpy() > 0.5)

    module = KelpSegModule(config, load_stats(config))
    assert module.in_channels == len(MODEL_CHANNELS) + 1
    x = module.inputs(batch["image"])
    assert x.shape[1] == len(MODEL_CHANNELS) + 1
    torch.testing.assert_close(x[:, -1], batch["image"][:, 7].float() / SCALE)
    with pytest.raises(KelpsegError, match="TREEPROB"):
        module.inputs(batch["image"][:, :7])  # e.g. predict without the stored channel


def test_a_network_trains_with_the_stored_channel(
    split_catalog_path: Path,
    band_stats_path: Path,  # noqa: F811
    treeprob: Path,
    tmp_path: Path,
) -> None:
    config = tiny_config(split_catalog_path, band_stats_path, tmp_path / "run",
                         f"data.stacked={{TREEPROB: {treeprob}}}")  # fmt: skip
    result = train(config)
    assert result.best_dice is not None and result.best_ckpt is not None
    module = KelpSegModule.from_checkpoint(result.best_ckpt)
    assert module.config.data.stacked == {"TREEPROB": treeprob}
    first_conv = next(p for p in module.model.parameters() if p.ndim == 4)
    assert first_conv.shape[1] == len(MODEL_CHANNELS) + 1
