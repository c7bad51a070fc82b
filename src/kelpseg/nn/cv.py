"""k-fold cross-validation: one training run per fold, each an MLflow child of one parent run."""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from kelpseg.errors import KelpsegError
from kelpseg.io.catalog import load_catalog
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.tracking import default_tracking_uri, flatten_config
from kelpseg.nn.train import TrainResult, run_tracker, train


@dataclass
class CVResult:
    """Cross-validation: each fold's result, the mean and spread of their best val Dice.

    ``mean_dice_macro`` is the mean of the folds' macro Dice at their best epochs (the
    2nd-place log's metric; NaN when no fold reported it).
    """

    output_dir: Path
    folds: dict[int, TrainResult]
    mean_dice: float
    std_dice: float
    parent_run_id: str | None = None
    mean_dice_macro: float = float("nan")


def available_folds(config: TrainConfig) -> list[int]:
    """The validation folds of the run's catalog (hold-out fold -1 excluded)."""
    if config.data.catalog is None:
        raise KelpsegError("cross-validation needs a split catalog", "data.catalog")
    catalog = load_catalog(config.data.catalog)
    if "fold" not in catalog.columns:
        raise KelpsegError("catalog has no 'fold' column (run kelpseg split)", config.data.catalog)
    train_rows = catalog[catalog["split"] == "train"]
    return sorted(int(f) for f in train_rows["fold"].dropna().unique() if int(f) >= 0)


def train_cv(
    config: TrainConfig, *, folds: list[int] | None = None, resume: bool = False
) -> CVResult:
    """Train one model per fold, each an MLflow child run under one parent run.

    Fold ``k`` trains in ``output_dir/fold-k``; all runs share the parent's tracking store.

    Args:
        config: the run config (``data.fold`` is set per fold).
        folds: folds to train (default: all of the catalog's).
        resume: skip finished folds and resume an interrupted one.
    """
    folds = folds if folds is not None else available_folds(config)
    if not folds:
        raise KelpsegError("the catalog has no validation folds", config.data.catalog)
    run_dir = Path(config.output_dir)
    uri = config.tracking.uri or default_tracking_uri(run_dir)
    parent = run_tracker(config, resume) if _env_rank_zero() else None
    if parent is not None and parent.ensure_run() and parent.created:
        params = flatten_config(config.model_dump(mode="json"))
        parent.log_params({**params, "cv.folds": json.dumps(folds)})
    base_name = config.tracking.run_name or (parent.run_name if parent else None) or "cv"
    results: dict[int, TrainResult] = {}
    for k in folds:
        fold_dir = run_dir / f"fold-{k}"
        if resume and (fold_dir / "result.json").is_file():
            results[k] = TrainResult.load(fold_dir / "result.json")
            continue
        data = config.model_dump()
        data["data"]["fold"], data["output_dir"] = k, fold_dir
        data["tracking"].update(uri=uri, run_name=f"{base_name}-fold-{k}")
        fold_config = TrainConfig.model_validate(data)
        fold_resume = resume and (fold_dir / "checkpoints" / "last.ckpt").is_file()
        results[k] = train(
            fold_config, resume=fold_resume, parent_run_id=parent.version if parent else None
        )
        fold_dice, fold_macro = results[k].best_dice, results[k].best_dice_macro
        if parent is not None and fold_dice is not None:
            parent.log_metrics({"cv/fold_dice": fold_dice}, step=k)
        if parent is not None and fold_macro is not None:
            parent.log_metrics({"cv/fold_dice_macro": fold_macro}, step=k)
    scores = [r.best_dice for r in results.values() if r.best_dice is not None]
    mean = statistics.fmean(scores) if scores else float("nan")
    std = statistics.pstdev(scores) if len(scores) > 1 else 0.0
    macros = [r.best_dice_macro for r in results.values() if r.best_dice_macro is not None]
    mean_macro = statistics.fmean(macros) if macros else float("nan")
    if parent is not None:
        summary = {"cv/dice_mean": mean, "cv/dice_std": std}
        if macros:
            summary["cv/dice_macro_mean"] = mean_macro
        parent.log_metrics(summary, step=0)
        parent.finalize("success")
    return CVResult(run_dir, results, mean, std, parent.version if parent else None, mean_macro)


def _env_rank_zero() -> bool:
    """Global rank 0 by the launcher's environment (before any Trainer exists)."""
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(name, "0") != "0":
            return False
    return os.environ.get("NODE_RANK", "0") == "0"
