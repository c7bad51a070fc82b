"""The LightningDataModule: tiles of a fold for training and validation, or files to predict.

Batches are dicts ``{"image": int16 (N, 7, H, W), "mask": float32 (N, 1, H, W), "tile_id":
list[str]}`` of raw pixels; Lightning moves them to the device as they are (int16), where the
model's input builder, sizer and augmenter take over.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler

from kelpseg.config import validate_config
from kelpseg.errors import KelpsegError
from kelpseg.io.catalog import load_catalog
from kelpseg.nn.data.config import DataConfig
from kelpseg.nn.data.datasets import GeoTiffDataset, StoreDataset, TileDataset, collate_tiles
from kelpseg.nn.data.sampler import TileSampler, build_sampler
from kelpseg.nn.data.stacked import StackedChannels
from kelpseg.nn.data.store_format import PreparedStore, open_store

PathLike = str | os.PathLike[str]


@dataclass
class TileSelection:
    """Catalog rows by role: ``train`` (other folds), ``val`` (the fold), ``holdout`` (fold -1)."""

    train: pd.DataFrame
    val: pd.DataFrame
    holdout: pd.DataFrame
    test: pd.DataFrame


def select_tiles(
    catalog: pd.DataFrame,
    fold: int | None,
    exclude: Sequence[str] = (),
    source: str | None = None,
) -> TileSelection:
    """Split catalog rows into training, validation, hold-out and test tiles.

    Args:
        catalog: rows with ``tile_id``, ``split`` and (unless ``fold`` is None) ``fold``.
        fold: validation fold; ``None`` trains on every fold (full fit, no validation).
        exclude: tile ids left out of training and validation (e.g. audited bad labels).
        source: the catalog file, for error messages.
    """
    labelled = catalog[catalog["split"] == "train"]
    labelled = labelled[~labelled["tile_id"].isin(list(exclude))]
    test = catalog[catalog["split"] == "test"]
    empty = labelled.iloc[:0]
    if "fold" not in labelled.columns:
        if fold is None:
            return TileSelection(labelled, empty, empty, test)
        raise KelpsegError(
            f"catalog has no 'fold' column (run kelpseg split) for fold {fold}", source
        )
    if labelled["fold"].isna().any():
        raise KelpsegError("catalog column 'fold' has missing values", source)
    folds = labelled["fold"].astype("int64")
    holdout = folds == -1
    if fold is not None and not ((folds == fold) & ~holdout).any():
        have = sorted(int(f) for f in folds[~holdout].unique())
        raise KelpsegError(f"fold {fold} has no tiles; the catalog's folds are {have}", source)
    val = folds == fold if fold is not None else pd.Series(False, index=folds.index)
    return TileSelection(labelled[~val & ~holdout], labelled[val], labelled[holdout], test)


def read_tile_ids(path: PathLike) -> list[str]:
    """Tile ids from a file: ``.parquet``/``.csv`` (column ``tile_id``) or text, one per line."""
    path = Path(path)
    if not path.is_file():
        raise KelpsegError("tile id list does not exist", path)
    try:
        if path.suffix in (".parquet", ".csv"):
            read = pd.read_parquet if path.suffix == ".parquet" else pd.read_csv
            frame = read(path)
            if "tile_id" not in frame.columns:
                raise KelpsegError("tile id list has no 'tile_id' column", path)
            return [str(t) for t in frame["tile_id"].dropna()]
        lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
        return [line for line in lines if line]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise KelpsegError(f"unreadable tile id list ({exc})", path) from exc


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a DataLoader worker from the seed torch gave it."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002 - third-party augmenters draw from the legacy global RNG
    random.seed(seed)


class KelpDataModule(L.LightningDataModule):
    """Training, validation and prediction loaders of raw int16 tiles.

    Build it with :meth:`from_catalog` (a fold of the split catalog) or :meth:`from_files`
    (images to predict), or directly from a config whose ``catalog`` is set.

    Args:
        config: data settings.
        seed: seeds the sampler, crops and workers; ``None`` takes torch's initial seed (set by
            ``lightning.seed_everything``).
        catalog: an in-memory catalog instead of ``config.catalog``.
    """

    def __init__(
        self,
        config: DataConfig,
        *,
        seed: int | None = None,
        catalog: pd.DataFrame | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self._seed = seed
        self._catalog = catalog
        self._files: tuple[list[str], list[str] | None] | None = None
        self._store: PreparedStore | None = None
        self.selection: TileSelection | None = None
        self.train_dataset: TileDataset | None = None
        self.val_dataset: TileDataset | None = None
        self.predict_dataset: TileDataset | None = None
        self.train_sampler: TileSampler | None = None

    @classmethod
    def from_catalog(
        cls,
        catalog_path: PathLike | pd.DataFrame,
        fold: int | None,
        config: DataConfig | None = None,
        *,
        seed: int | None = None,
    ) -> KelpDataModule:
        """Train on every fold but ``fold`` of a catalog, validate on ``fold``."""
        data = (config or DataConfig()).model_dump()
        data["fold"] = fold
        if isinstance(catalog_path, pd.DataFrame):
            return cls(validate_config(DataConfig, data), seed=seed, catalog=catalog_path)
        data["catalog"] = Path(catalog_path)
        return cls(validate_config(DataConfig, data), seed=seed)

    @classmethod
    def from_files(
        cls,
        image_paths: Sequence[PathLike],
        config: DataConfig | None = None,
        *,
        mask_paths: Sequence[PathLike] | None = None,
    ) -> KelpDataModule:
        """Predict over explicit satellite GeoTIFFs (with labels, batches also carry masks)."""
        if not image_paths:
            raise KelpsegError("no image files to predict")
        module = cls(config or DataConfig(), seed=0)
        masks = None if mask_paths is None else [str(p) for p in mask_paths]
        module._files = ([str(p) for p in image_paths], masks)
        return module

    @property
    def seed(self) -> int:
        """The seed of samplers, crops and loader workers."""
        return self._seed if self._seed is not None else torch.initial_seed() % 2**63

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets a stage needs (``fit``, ``validate``, ``predict``; None = all)."""
        if self._files is not None:
            images, masks = self._files
            self.predict_dataset = GeoTiffDataset(images, masks)
            return
        cfg = self.config
        self.selection = select_tiles(self.catalog, cfg.fold, self._excluded(), self._source)
        if stage in (None, "fit"):
            self.train_dataset = self._dataset(self.selection.train, "train", train=True)
            self.train_sampler = build_sampler(
                self.selection.train,
                cfg.sampler,
                seed=self.seed,
                source=self._source,
                catalog=self.catalog,
            )
        if stage in (None, "fit", "validate"):
            self.val_dataset = self._dataset(self.selection.val, "train", train=False)
        if stage in (None, "predict"):
            rows = self.predict_tiles
            self.predict_dataset = self._dataset(
                rows, "test" if cfg.predict_split == "test" else "train", train=False
            )

    @property
    def catalog(self) -> pd.DataFrame:
        """The catalog in use (read once from ``config.catalog``)."""
        if self._catalog is None:
            if self.config.catalog is None:
                raise KelpsegError("no catalog given (config key data.catalog)")
            self._catalog = load_catalog(self.config.catalog)
        return self._catalog

    @property
    def predict_tiles(self) -> pd.DataFrame:
        """Catalog rows of ``config.predict_split``."""
        if self.selection is None:
            self.selection = select_tiles(
                self.catalog, self.config.fold, self._excluded(), self._source
            )
        return getattr(self.selection, self.config.predict_split)

    @property
    def _source(self) -> str | None:
        return None if self.config.catalog is None else str(self.config.catalog)

    def _excluded(self) -> list[str]:
        ids = list(self.config.exclude)
        if self.config.exclude_file is not None:
            ids += read_tile_ids(self.config.exclude_file)
        return ids

    def _dataset(self, rows: pd.DataFrame, store_split: str, *, train: bool) -> TileDataset:
        cfg = self.config
        labelled = bool(len(rows)) and bool((rows["mask_path"].fillna("") != "").all())
        crop = cfg.crop_size if train else None
        kelp_prob = cfg.kelp_crop_prob if train else 0.0
        ids = [str(t) for t in rows["tile_id"]]
        dataset: TileDataset
        if cfg.store is not None:
            if self._store is None:
                self._store = open_store(cfg.store)
            split = self._store.split(store_split)
            dataset = StoreDataset(
                split, ids, with_masks=labelled, crop_size=crop, kelp_crop_prob=kelp_prob
            )
        else:
            masks = list(rows["mask_path"]) if labelled else None
            dataset = GeoTiffDataset(
                list(rows["image_path"]), masks, ids, crop_size=crop, kelp_crop_prob=kelp_prob
            )
        if crop is not None and len(dataset):
            height, width = dataset.tile_shape(0)
            if crop > min(height, width):
                raise KelpsegError(
                    f"config key 'data.crop_size': {crop} is larger than the tiles "
                    f"({height}x{width})"
                )
        if cfg.stacked:
            dataset.stacked = StackedChannels(cfg.stacked)
        dataset.context = bool(train and cfg.crop_context)
        if train and cfg.slicing.train:
            dataset.slice_overlap = cfg.slicing.overlap
        return dataset

    def train_dataloader(self) -> DataLoader[Any]:
        """Weighted (or shuffled) training batches, ``samples_per_epoch`` tiles per epoch."""
        if self.train_dataset is None or self.train_sampler is None:
            self.setup("fit")
        assert self.train_dataset is not None and self.train_sampler is not None
        if not len(self.train_dataset):
            raise KelpsegError("no training tiles in this fold", self._source)
        drop_last = len(self.train_sampler) > self.config.batch_size
        return self._loader(
            self.train_dataset, self.config.batch_size, self.train_sampler, drop_last
        )

    def val_dataloader(self) -> DataLoader[Any] | list[Any]:
        """Whole validation tiles in catalog order (an empty list in full-fit mode)."""
        if self.val_dataset is None:
            self.setup("validate")
        if self.val_dataset is None or not len(self.val_dataset):
            return []
        return self._loader(self.val_dataset, self._eval_batch_size)

    def predict_dataloader(self) -> DataLoader[Any]:
        """Whole tiles of the predict split (or of the given files), in order."""
        if self.predict_dataset is None:
            self.setup("predict")
        assert self.predict_dataset is not None
        return self._loader(self.predict_dataset, self._eval_batch_size)

    @property
    def _eval_batch_size(self) -> int:
        return self.config.val_batch_size or self.config.batch_size

    def _loader(
        self,
        dataset: TileDataset,
        batch_size: int,
        sampler: Sampler[Any] | None = None,
        drop_last: bool = False,
    ) -> DataLoader[Any]:
        cfg = self.config
        workers = cfg.num_workers
        pin = torch.cuda.is_available() if cfg.pin_memory is None else cfg.pin_memory
        extra: dict[str, Any] = {}
        if workers > 0:
            extra = {
                "persistent_workers": cfg.persistent_workers,
                "prefetch_factor": cfg.prefetch_factor,
            }
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=workers,
            pin_memory=pin,
            drop_last=drop_last,
            collate_fn=collate_tiles,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(self.seed),
            **extra,
        )
