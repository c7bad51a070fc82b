"""Training data: prepared store, tile datasets, weighted sampler, datamodule, batch transforms."""

from kelpseg.nn.data.config import (
    AugmentConfig,
    DataConfig,
    ImportanceFactors,
    SamplerConfig,
    SizingConfig,
)
from kelpseg.nn.data.datamodule import KelpDataModule, TileSelection, read_tile_ids, select_tiles
from kelpseg.nn.data.datasets import (
    GeoTiffDataset,
    StoreDataset,
    TileBatch,
    TileDataset,
    collate_tiles,
    crop_origin,
)
from kelpseg.nn.data.sampler import IMPORTANCE_COLUMNS, TileSampler, build_sampler, sample_weights
from kelpseg.nn.data.store import prepare_store
from kelpseg.nn.data.store_format import PreparedStore, StoreSplit, open_store, verify_store
from kelpseg.nn.data.transforms import Augmenter, BatchAugmentation, InputSizer

__all__ = [
    "IMPORTANCE_COLUMNS",
    "AugmentConfig",
    "Augmenter",
    "BatchAugmentation",
    "DataConfig",
    "GeoTiffDataset",
    "ImportanceFactors",
    "InputSizer",
    "KelpDataModule",
    "PreparedStore",
    "SamplerConfig",
    "SizingConfig",
    "StoreDataset",
    "StoreSplit",
    "TileBatch",
    "TileDataset",
    "TileSampler",
    "TileSelection",
    "build_sampler",
    "collate_tiles",
    "crop_origin",
    "open_store",
    "prepare_store",
    "read_tile_ids",
    "sample_weights",
    "select_tiles",
    "verify_store",
]
