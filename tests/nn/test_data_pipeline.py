"""The data half's contract with the model half: a batch goes raw -> inputs -> sizer -> augment.

Uses ``kelpseg.features.InputBuilder`` when importable, else a minimal stand-in (float of the
bands), since only shapes, dtypes and alignment matter here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from kelpseg.nn.data import Augmenter, DataConfig, InputSizer, KelpDataModule, SamplerConfig

try:
    from kelpseg.features import FeatureConfig, InputBuilder

    def _inputs() -> torch.nn.Module:
        channels = ["R", "G", "B", "NIR", "NDVI"]
        return InputBuilder(FeatureConfig(channels=channels, normalization="per-sample-quantile"))

except ImportError:  # features not there yet: a stand-in with the same signature

    def _inputs() -> torch.nn.Module:
        class _Bands(torch.nn.Module):
            def forward(self, raw: torch.Tensor) -> torch.Tensor:
                return raw[:, :5].float() / 10_000

        return _Bands()


def test_a_training_batch_flows_through_the_device_transforms(
    split_catalog: pd.DataFrame, store_dir: Path
):
    config = DataConfig(
        batch_size=4,
        num_workers=0,
        store=store_dir,
        sampler=SamplerConfig(samples_per_epoch=8),
        crop_size=48,  # not a multiple of 32: the sizer pads 48 -> 64
        kelp_crop_prob=1.0,
    )
    dm = KelpDataModule.from_catalog(split_catalog, 0, config, seed=1)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    inputs, sizer, augment = _inputs(), InputSizer.from_config(config.sizing), Augmenter()
    x = inputs(batch["image"])
    assert x.dtype == torch.float32 and x.shape == (4, 5, 48, 48)
    x, y = sizer(x), sizer.size_mask(batch["mask"])
    assert x.shape[-2:] == y.shape[-2:] == (64, 64)
    x, y = augment(x, y, torch.Generator().manual_seed(0))
    logits = x[:, :1]  # stands in for the model: any (N, 1, 64, 64) output
    assert sizer.restore(logits, (48, 48)).shape == (4, 1, 48, 48)
    assert sizer.restore(y, (48, 48)).shape == batch["mask"].shape
    assert float(batch["mask"].sum()) > 0  # kelp-centred crops do hold kelp
