"""``kelpseg ensemble select``: saved member probabilities + labelled folds -> ensemble spec.

Members are folders of ``<tile_id>_prob.tif`` (``kelpseg predict --soft`` or a CV's
out-of-fold predictions; a member may span several folders, e.g. one per fold). Labels and
folds come from the split catalog. Selection reads only the tiles of ``select_folds``; the
reporting tiles are read afterwards, to score choices already made, so the gain reported is
what the ensemble is worth on tiles it never saw.

Writes ``ensemble.yaml`` (``models``, ``weights``, ``ensemble_mode``, ``threshold``: a
:class:`~kelpseg.inference.predict.PredictConfig` that ``kelpseg predict --config`` takes, and
``kelpseg export --ensemble`` reads), ``selection.json`` (every number) and the resolved
``selection_config.yaml``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, model_validator

from kelpseg.config import StrictModel, read_yaml, save_config
from kelpseg.errors import KelpsegError
from kelpseg.inference.rasters import PredictionDir
from kelpseg.inference.selection import (
    PixelTable,
    Selection,
    ThresholdGrid,
    combine,
    dice_at,
    select_members,
)
from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import load_catalog
from kelpseg.io.tiles import read_label

PathLike = str | os.PathLike[str]
SPEC_FILE = "ensemble.yaml"
REPORT_FILE = "selection.json"
CONFIG_FILE = "selection_config.yaml"
PREDICT_INFO = "predict_config.yaml"


class MemberSpec(StrictModel):
    """One candidate: its saved probabilities and the models that made them.

    Attributes:
        name: shown in the report.
        predictions: folders of ``_prob.tif`` files (together: one per tile).
        models: what ``predict`` loads for this member (None: the ``models`` listed in each
            folder's ``predict_config.yaml``); a member of several models averages them.
    """

    name: str = Field(min_length=1)
    predictions: list[Path] = Field(min_length=1)
    models: list[str] | None = None


class SelectionConfig(StrictModel):
    """Settings of ``kelpseg ensemble select`` (see docs/inference.md, "Ensemble selection")."""

    members: list[MemberSpec] = Field(min_length=1)
    catalog: Path
    select_folds: list[int] = Field(min_length=1)
    report_folds: list[int] = Field(min_length=1)
    mode: Literal["mean_prob", "mean_logit"] = "mean_prob"
    max_steps: int = Field(20, ge=1, le=1000)
    patience: int = Field(5, ge=1)
    optimise: bool = True
    max_iter: int = Field(400, ge=1)
    min_weight: float = Field(0.01, ge=0.0, lt=1.0)
    threshold_min: float = Field(0.05, gt=0.0, lt=1.0)
    threshold_max: float = Field(0.95, gt=0.0, lt=1.0)
    n_bins: int = Field(1000, ge=10, le=100_000)

    @model_validator(mode="after")
    def _disjoint(self) -> SelectionConfig:
        shared = sorted(set(self.select_folds) & set(self.report_folds))
        if shared:
            raise ValueError(f"fold(s) {shared} both select and report: the gain would be biased")
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError("member names must be unique")
        if self.threshold_min > self.threshold_max:
            raise ValueError("threshold_min is above threshold_max")
        return self

    @property
    def grid(self) -> ThresholdGrid:
        """The thresholds tried."""
        return ThresholdGrid(self.threshold_min, self.threshold_max, self.n_bins)


class MemberProbabilities(Mapping[str, np.ndarray]):
    """A member's folders as one mapping ``tile_id -> probability`` (tiles unique)."""

    def __init__(self, member: MemberSpec) -> None:
        self.dirs = [PredictionDir(p, "prob") for p in member.predictions]
        self._where: dict[str, PredictionDir] = {}
        for folder in self.dirs:
            for tile_id in folder:
                if tile_id in self._where:
                    raise KelpsegError(f"tile {tile_id} is predicted twice", member.name)
                self._where[tile_id] = folder

    def __getitem__(self, tile_id: str) -> np.ndarray:
        return self._where[tile_id][tile_id]

    def __iter__(self) -> Any:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


def pixel_table(
    members: Sequence[Mapping[str, np.ndarray]],
    labels: Mapping[str, np.ndarray],
    tile_ids: Sequence[str],
    keep_above: float,
) -> PixelTable:
    """The kept pixels of ``tile_ids``: kelp, or scored >= ``keep_above`` by some member.

    Only ``tile_ids`` are read from the members and labels.

    Raises:
        KelpsegError: a member lacks a tile, or a prediction's shape differs from its label's.
    """
    probs: list[np.ndarray] = []
    kelp: list[np.ndarray] = []
    pixels = 0
    for tile_id in tile_ids:
        label = np.asarray(labels[tile_id]) > 0
        stack = []
        for i, member in enumerate(members):
            if tile_id not in member:
                raise KelpsegError(f"member {i + 1} has no prediction for tile {tile_id}")
            prob = np.asarray(member[tile_id], dtype=np.float32)
            if prob.shape != label.shape:
                raise KelpsegError(
                    f"member {i + 1}: tile {tile_id} is {prob.shape}, label {label.shape}"
                )
            stack.append(prob.ravel())
        columns = np.stack(stack, axis=1)
        keep = label.ravel() | (columns.max(axis=1) >= keep_above)
        probs.append(columns[keep])
        kelp.append(label.ravel()[keep])
        pixels += label.size
    m = len(members)
    return PixelTable(
        probs=np.concatenate(probs) if probs else np.zeros((0, m), np.float32),
        labels=np.concatenate(kelp) if kelp else np.zeros(0, bool),
        tiles=len(tile_ids),
        pixels=pixels,
    )


class CatalogLabels(Mapping[str, np.ndarray]):
    """Labels of a catalog's tiles, read from ``mask_path`` when asked for."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._paths = {
            str(t): str(p) for t, p in zip(frame["tile_id"], frame["mask_path"], strict=True)
        }

    def __getitem__(self, tile_id: str) -> np.ndarray:
        return read_label(self._paths[tile_id])

    def __iter__(self) -> Any:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


def fold_tiles(catalog: pd.DataFrame, folds: Sequence[int], source: PathLike) -> list[str]:
    """Labelled tile ids of ``folds``, sorted."""
    if "fold" not in catalog.columns:
        raise KelpsegError("catalog has no 'fold' column (run kelpseg split)", source)
    rows = catalog[(catalog["split"] == "train") & catalog["fold"].isin(list(folds))]
    if rows.empty:
        raise KelpsegError(f"no labelled tiles in fold(s) {list(folds)}", source)
    return sorted(str(t) for t in rows["tile_id"])


@dataclass
class SelectionResult:
    """What :func:`run_selection` found (also written to ``selection.json``)."""

    out_dir: Path
    selection: Selection
    report: dict[str, Any]
    spec: dict[str, Any]


def run_selection(
    config: SelectionConfig,
    out_dir: PathLike,
    *,
    members: Sequence[Mapping[str, np.ndarray]] | None = None,
    labels: Mapping[str, np.ndarray] | None = None,
) -> SelectionResult:
    """Select on ``select_folds``, then score the choice on ``report_folds``; write the spec.

    Args:
        config: members, catalog, folds and search settings.
        out_dir: where ``ensemble.yaml``, ``selection.json`` and the config go.
        members: probability sources in ``config.members`` order (default: their folders).
        labels: label source (default: the catalog's ``mask_path``).
    """
    catalog = load_catalog(config.catalog)
    sources = members if members is not None else [MemberProbabilities(m) for m in config.members]
    if len(sources) != len(config.members):
        raise KelpsegError(f"{len(sources)} probability sources for {len(config.members)} members")
    labels = labels if labels is not None else CatalogLabels(catalog)
    spec = ensemble_spec(config, np.ones(len(config.members)), 0.5)  # fails early on bad models
    select_ids = fold_tiles(catalog, config.select_folds, config.catalog)
    report_ids = fold_tiles(catalog, config.report_folds, config.catalog)
    grid = config.grid
    chosen = select_members(
        pixel_table(sources, labels, select_ids, grid.low),
        grid=grid, mode=config.mode, max_steps=config.max_steps, patience=config.patience,
        optimise=config.optimise, max_iter=config.max_iter, min_weight=config.min_weight,
    )  # fmt: skip
    # Only now is the reporting fold read, to score choices that are already fixed.
    report = honest_report(config, chosen, pixel_table(sources, labels, report_ids, grid.low))
    spec = ensemble_spec(config, chosen.weights, chosen.threshold)
    out = Path(out_dir)
    _write(out, config, spec, report)
    return SelectionResult(out, chosen, report, spec)


def honest_report(config: SelectionConfig, chosen: Selection, table: PixelTable) -> dict[str, Any]:
    """Scores on the reporting table of the ensemble and of the best single member, both as
    chosen on the selection fold (weights, member and thresholds fixed beforehand)."""
    best = int(np.argmax(chosen.single_dice))
    ens = dice_at(combine(table.probs, chosen.weights, config.mode), table.labels, chosen.threshold)
    single = dice_at(table.probs[:, best], table.labels, float(chosen.single_thresholds[best]))
    names = [m.name for m in config.members]
    return {
        "select_folds": config.select_folds,
        "report_folds": config.report_folds,
        "mode": config.mode,
        "threshold": chosen.threshold,
        "weights": dict(zip(names, chosen.weights.round(6).tolist(), strict=True)),
        "greedy_counts": dict(zip(names, chosen.greedy_counts.astype(int).tolist(), strict=True)),
        "greedy_dice": chosen.greedy_dice,
        "select": {
            "ensemble_dice": chosen.dice,
            "greedy_dice": chosen.greedy_best_dice,
            "single_dice": dict(zip(names, chosen.single_dice.tolist(), strict=True)),
            "best_single": names[best],
        },
        "report": {
            "ensemble_dice": ens,
            "best_single_dice": single,
            "gain": ens - single,
            "tiles": table.tiles,
            "pixels": table.pixels,
        },
    }


def member_models(member: MemberSpec) -> list[str]:
    """The models of a member: given, or read from its folders' ``predict_config.yaml``."""
    if member.models:
        return list(member.models)
    models: list[str] = []
    for folder in member.predictions:
        info = folder / PREDICT_INFO
        if not info.is_file():
            raise KelpsegError(
                f"member {member.name!r}: no {PREDICT_INFO} to name its models; give models:",
                folder,
            )
        models += [str(m) for m in read_yaml(info).get("models", [])]
    if not models:
        raise KelpsegError(f"member {member.name!r} names no models", member.predictions[0])
    return list(dict.fromkeys(models))


def ensemble_spec(config: SelectionConfig, weights: np.ndarray, threshold: float) -> dict[str, Any]:
    """``models``/``weights``/``ensemble_mode``/``threshold``: each member's weight is shared
    equally by its models; a model in several members sums its shares."""
    total: dict[str, float] = {}
    for member, weight in zip(config.members, weights, strict=True):
        if weight <= 0:
            continue
        models = member_models(member)
        for model in models:
            total[model] = total.get(model, 0.0) + float(weight) / len(models)
    return {
        "models": list(total),
        "weights": [round(w, 6) for w in total.values()],
        "ensemble_mode": config.mode,
        "threshold": float(threshold),
    }


def load_ensemble_spec(path: PathLike) -> dict[str, Any]:
    """Read an ``ensemble.yaml``: models, weights, ensemble_mode and threshold.

    Raises:
        KelpsegError: missing keys or a weight count that differs from the model count.
    """
    doc = read_yaml(path)
    missing = {"models", "weights", "ensemble_mode", "threshold"} - set(doc)
    if missing:
        raise KelpsegError(f"ensemble spec lacks {sorted(missing)}", path)
    if len(doc["weights"]) != len(doc["models"]) or not doc["models"]:
        raise KelpsegError("ensemble spec needs one weight per model", path)
    return doc


def _write(
    out: Path, config: SelectionConfig, spec: dict[str, Any], report: dict[str, Any]
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / CONFIG_FILE)
    with atomic_path(out / REPORT_FILE) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    with atomic_path(out / SPEC_FILE) as tmp:
        tmp.write_text(yaml.safe_dump(spec, sort_keys=False))
