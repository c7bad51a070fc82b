"""The tree model's probability as a stored network channel, computed out of fold.

``write_stacking_channel`` routes every tile through :class:`OutOfFoldPredictor` (a training
tile of fold K: the model that held out K; a test tile: the model trained on every fold) and
stores the probability per tile as ``tiles/<tile_id>.npy`` (float16, H x W). Beside them:

- ``provenance.parquet``: per tile its split and fold and the model that answered for it
  (folder, held-out fold, the folds it trained on);
- ``stacking.yaml``: the channel name and the model folders.

:func:`check_out_of_fold` proves the point of all this from the models themselves: it re-reads
every model's sidecar (and, given the pixel dataset, the tiles that trained it) and fails if any
labelled tile's value came from a model whose training data held that tile.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import load_catalog
from kelpseg.tabular.artifact import TabularModel, read_sidecar
from kelpseg.tabular.dataset import PixelDataset
from kelpseg.tabular.oof import OutOfFoldPredictor
from kelpseg.tabular.predict import read_batches

PathLike = str | os.PathLike[str]
TILES_DIR = "tiles"
PROVENANCE_FILE = "provenance.parquet"
INFO_FILE = "stacking.yaml"
DEFAULT_CHANNEL = "TREEPROB"


@dataclass
class StackingResult:
    """What :func:`write_stacking_channel` did: the folder, tiles written and skipped."""

    out_dir: Path
    written: int
    skipped: int
    provenance: pd.DataFrame


def tile_path(out_dir: PathLike, tile_id: str) -> Path:
    """Where a tile's stored channel lives."""
    return Path(out_dir) / TILES_DIR / f"{tile_id}.npy"


def read_stacked_tile(out_dir: PathLike, tile_id: str) -> np.ndarray:
    """A tile's stored channel as a read-only (H, W) float16 memory map.

    Raises:
        KelpsegError: the tile has no stored channel.
    """
    path = tile_path(out_dir, tile_id)
    if not path.is_file():
        raise KelpsegError(f"no stacked channel for tile {tile_id}", path)
    return np.load(path, mmap_mode="r")


def _model_key(model: TabularModel) -> str:
    return str(model.path.resolve()) if model.path is not None else model.name


def _route(predictor: OutOfFoldPredictor, frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for tile_id, split, fold in zip(frame["tile_id"], frame["split"], frame["fold"], strict=True):
        key = int(fold) if split == "train" and pd.notna(fold) else None
        model = predictor.model_for(key)
        rows.append(
            {
                "tile_id": str(tile_id),
                "split": str(split),
                "fold": -1 if pd.isna(fold) else int(fold),
                "model_dir": _model_key(model),
                "model_holdout_fold": -1 if model.holdout_fold is None else model.holdout_fold,
                "model_train_folds": ",".join(str(f) for f in model.train_folds),
            }
        )
    return pd.DataFrame(rows)


def write_stacking_channel(
    models: Iterable[TabularModel | PathLike],
    catalog: pd.DataFrame | PathLike,
    out_dir: PathLike,
    *,
    splits: tuple[str, ...] = ("train", "test"),
    channel: str = DEFAULT_CHANNEL,
    batch_tiles: int = 8,
    overwrite: bool = False,
    show_progress: bool = True,
) -> StackingResult:
    """Store the out-of-fold tree probability of every tile of ``splits``.

    Args:
        models: one model per held-out fold, plus one trained on every fold for test tiles.
        catalog: split catalog (``tile_id``, ``split``, ``image_path``, ``fold``).
        out_dir: the channel folder (``tiles/``, ``provenance.parquet``, ``stacking.yaml``).
        splits: catalog splits to cover.
        channel: the name networks use for it (``data.stacked``).
        batch_tiles: tiles predicted together.
        overwrite: recompute tiles already stored (otherwise a re-run resumes).
        show_progress: draw a progress bar.

    Raises:
        KelpsegError: a tile's fold has no model, the folder holds another model set, or
            :func:`check_out_of_fold` finds a leak.
    """
    predictor = OutOfFoldPredictor(models)
    frame = catalog if isinstance(catalog, pd.DataFrame) else load_catalog(catalog)
    if "fold" not in frame.columns:
        raise KelpsegError("catalog has no 'fold' column (run kelpseg split)")
    frame = frame[frame["split"].isin(list(splits))].sort_values("tile_id").reset_index(drop=True)
    if frame.empty:
        raise KelpsegError(f"no tiles in split(s) {', '.join(splits)}")
    provenance = _route(predictor, frame)
    out = Path(out_dir)
    info: dict[str, object] = {"channel": channel, "models": sorted(set(provenance["model_dir"]))}
    _check_same_models(out, info, overwrite)
    todo = frame[[overwrite or not tile_path(out, t).is_file() for t in frame["tile_id"]]]
    routes = provenance.set_index("tile_id")
    with progress(disable=not show_progress) as bar:
        task = bar.add_task(f"{channel} out of fold", total=len(todo))
        for ids, raw in read_batches(todo, batch_tiles):
            rows = routes.loc[ids]
            folds = [
                int(f) if s == "train" else None
                for f, s in zip(rows["fold"], rows["split"], strict=True)
            ]
            for tile_id, tile_prob in zip(ids, predictor(raw, folds), strict=True):
                _save(tile_path(out, tile_id), tile_prob)
            bar.advance(task, len(ids))
    provenance["channel"] = channel
    with atomic_path(out / PROVENANCE_FILE) as tmp:
        provenance.to_parquet(tmp, index=False)
    with atomic_path(out / INFO_FILE) as tmp:
        tmp.write_text(yaml.safe_dump(info, sort_keys=False))
    check_out_of_fold(out)
    return StackingResult(out, len(todo), len(frame) - len(todo), provenance)


def _save(path: Path, prob: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.save(handle, prob.astype(np.float16))  # a handle: np.save would append .npy


def _check_same_models(out: Path, info: dict[str, object], overwrite: bool) -> None:
    saved = out / INFO_FILE
    if overwrite or not saved.is_file():
        return
    if yaml.safe_load(saved.read_text()) != info:
        raise KelpsegError(
            "holds a channel made by other models or under another name; pass overwrite", out
        )


def check_out_of_fold(out_dir: PathLike, pixel_dataset: PathLike | None = None) -> pd.DataFrame:
    """Prove no labelled tile's stored value comes from a model trained on that tile.

    Each model's training folds are re-read from its own sidecar (not from the provenance
    record); with ``pixel_dataset`` the check is per tile: the tiles whose pixels trained the
    model (its dataset's tiles of its training folds) must not include the tile.

    Returns:
        The provenance table, with ``trained_on_tile`` (all False when this returns).

    Raises:
        KelpsegError: a leak (with the count and an example), or a missing model or tile.
    """
    out = Path(out_dir)
    if not (out / PROVENANCE_FILE).is_file():
        raise KelpsegError(f"no {PROVENANCE_FILE}: not a stacked channel folder", out)
    prov = pd.read_parquet(out / PROVENANCE_FILE)
    dataset = PixelDataset.open(pixel_dataset) if pixel_dataset is not None else None
    trained: dict[str, set[str] | set[int]] = {}
    for model_dir in prov["model_dir"].unique():
        folds = {int(f) for f in read_sidecar(model_dir).get("train_folds", [])}
        if dataset is not None:
            trained[model_dir] = set(dataset.tiles_of(folds)["tile_id"].astype(str))
        else:
            trained[model_dir] = folds
    key = prov["tile_id"] if dataset is not None else prov["fold"]
    leak = [
        split == "train" and k in trained[m]
        for split, k, m in zip(prov["split"], key, prov["model_dir"], strict=True)
    ]
    prov["trained_on_tile"] = leak
    if any(leak):
        bad = prov[prov["trained_on_tile"]].iloc[0]
        raise KelpsegError(
            f"{sum(leak)} training tile(s) got the tree channel from a model trained on them "
            f"(e.g. {bad['tile_id']}, fold {bad['fold']}, model {bad['model_dir']})",
            out,
        )
    missing = [t for t in prov["tile_id"] if not tile_path(out, t).is_file()]
    if missing:
        raise KelpsegError(f"{len(missing)} tile(s) lack a stored channel (e.g. {missing[0]})", out)
    return prov
