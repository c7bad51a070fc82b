"""Out-of-fold predictions from a cross-validation run, for the label audit.

``kelpseg train-cv`` trains fold ``k`` in ``RUN/fold-k`` with the tiles of fold ``k`` held out.
:func:`predict_out_of_fold` predicts each fold's labelled tiles with the model that held them
out, all into one folder of ``<tile_id>_prob.tif``: the audit's input, with no tile predicted
by a model that trained on it. Re-running skips tiles already written (a crash loses one
tile at most), and ``oof.yaml`` records which model predicted which fold.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from kelpseg.console import console
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import load_catalog

PathLike = str | os.PathLike[str]
RECORD_NAME = "oof.yaml"
_FOLD_DIR = re.compile(r"^fold-(\d+)$")


@dataclass(frozen=True)
class FoldPrediction:
    """What one fold's model predicted.

    Attributes:
        fold: the held-out fold.
        model: the fold's run folder.
        tiles: labelled tiles of the fold.
        predicted: tiles newly predicted (the rest were already in the folder).
    """

    fold: int
    model: Path
    tiles: int
    predicted: int


def fold_models(run_dir: PathLike) -> dict[int, Path]:
    """``fold -> RUN/fold-k`` for every fold folder of a ``train-cv`` run.

    Raises:
        KelpsegError: no such folder, or no ``fold-k`` folder in it.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise KelpsegError("cross-validation run folder does not exist", root)
    found = {
        int(m.group(1)): p
        for p in root.iterdir()
        if p.is_dir() and (m := _FOLD_DIR.match(p.name)) is not None
    }
    if not found:
        raise KelpsegError("no fold-K folders (the layout kelpseg train-cv writes)", root)
    return dict(sorted(found.items()))


def _labelled_tiles(catalog: PathLike) -> pd.DataFrame:
    """The catalog's training tiles, with ``fold`` as numbers (NaN where unset)."""
    table = load_catalog(catalog)
    missing = {"fold", "tile_id", "image_path"} - set(table.columns)
    if missing:
        raise KelpsegError(f"split catalog lacks columns {sorted(missing)}", catalog)
    if "split" in table.columns:
        table = table[table["split"] == "train"]
    return table.assign(fold=pd.to_numeric(table["fold"], errors="coerce"))


def predict_out_of_fold(
    run_dir: PathLike,
    catalog: PathLike,
    out_dir: PathLike,
    *,
    folds: list[int] | None = None,
    device: str = "auto",
    batch_size: int = 8,
    num_workers: int = 0,
    tta: bool = False,
    show_progress: bool = True,
) -> list[FoldPrediction]:
    """Predict every fold's labelled tiles with the model that held that fold out.

    Args:
        run_dir: a ``kelpseg train-cv`` output folder (``fold-0``, ``fold-1``, ...).
        catalog: the split catalog the run trained on (its ``fold`` column picks the tiles).
        out_dir: folder of ``<tile_id>_prob.tif`` and ``_kelp.tif``, one per tile.
        folds: only these folds (default: every fold folder of the run).
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: tiles per forward pass.
        num_workers: tile reader processes.
        tta: test-time augmentation (the predictor's default transforms).
        show_progress: draw progress bars.

    Raises:
        KelpsegError: a fold asked for has no model, or no labelled tile in the catalog.
    """
    from kelpseg.inference.config import TtaConfig
    from kelpseg.inference.predict import load_predictor, predict_tiles

    models = fold_models(run_dir)
    wanted = list(models) if folds is None else folds
    absent = [k for k in wanted if k not in models]
    if absent:
        raise KelpsegError(f"no model for fold(s) {absent} (folders fold-K)", run_dir)
    out = Path(out_dir)
    labelled = _labelled_tiles(catalog)
    done: list[FoldPrediction] = []
    for fold in wanted:
        tiles = labelled[labelled["fold"] == fold]
        if tiles.empty:
            raise KelpsegError(f"no labelled tile of fold {fold} in the catalog", catalog)
        predictor = load_predictor([str(models[fold])], device=device, tta=TtaConfig(enabled=tta))
        summary = predict_tiles(
            predictor,
            tiles,
            out,
            soft=True,
            batch_size=batch_size,
            num_workers=num_workers,
            show_progress=show_progress,
        )
        done.append(FoldPrediction(fold, models[fold], len(tiles), summary.written))
        if show_progress:
            console.print(f"fold {fold}: {len(tiles)} tiles from {models[fold]}")
    _record(out, done)
    return done


def _record(out: Path, done: list[FoldPrediction]) -> None:
    """Add the folds predicted now to ``oof.yaml`` (earlier folds of the folder are kept)."""
    path = out / RECORD_NAME
    folds: dict[int, str] = {}
    if path.is_file():
        folds = {int(k): str(v) for k, v in (yaml.safe_load(path.read_text()) or {}).items()}
    folds.update({d.fold: str(d.model) for d in done})
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(dict(sorted(folds.items()))), encoding="utf-8")
