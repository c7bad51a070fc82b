"""Neural-network training: data pipeline, models, losses, the LightningModule and tracking.

``kelpseg.nn`` builds on ``kelpseg.io`` and ``kelpseg.features``; only ``cli`` and later stages
import it. Batches travel as raw int16 tiles; indices, normalisation, sizing and augmentation run
on the device (see docs/training.md).
"""

# --- data half (kelpseg.nn.data) ------------------------------------------------------------
from kelpseg.nn.data import (
    AugmentConfig,
    Augmenter,
    DataConfig,
    GeoTiffDataset,
    InputSizer,
    KelpDataModule,
    SamplerConfig,
    SizingConfig,
    StoreDataset,
    TileSampler,
    open_store,
    prepare_store,
    sample_weights,
)

# --- model half (config, models, losses, module, tracking, train): imports go here ---------

__all__ = [
    # data half
    "AugmentConfig",
    "Augmenter",
    "DataConfig",
    "GeoTiffDataset",
    "InputSizer",
    "KelpDataModule",
    "SamplerConfig",
    "SizingConfig",
    "StoreDataset",
    "TileSampler",
    "open_store",
    "prepare_store",
    "sample_weights",
    # model half: names go here
]
