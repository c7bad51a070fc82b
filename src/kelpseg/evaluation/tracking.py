"""Evaluation results to an MLflow run: metrics, the sweep, the best threshold, the report.

The best threshold goes into the run as metric ``<prefix>/best_threshold`` and tag
``kelpseg.best_threshold``, so ``predict`` can take it with the model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kelpseg.errors import KelpsegError, MissingExtraError
from kelpseg.evaluation.result import METRIC_NAMES, EvaluationResult

PathLike = str | os.PathLike[str]
#: Sweep steps are logged with step = round(threshold * SWEEP_STEP_SCALE), so 0.45 -> 450.
SWEEP_STEP_SCALE = 1000


def evaluation_metrics(result: EvaluationResult, prefix: str = "eval") -> dict[str, float]:
    """The scalar metrics logged for a result, keyed ``<prefix>/<name>``."""
    summary = result.per_tile_summary()
    values: dict[str, float] = {name: result.metrics[name] for name in METRIC_NAMES}
    values.update(
        threshold=result.threshold,
        best_threshold=result.best_threshold,
        best_dice=result.best_dice,
        average_precision=result.average_precision,
        per_tile_dice_mean=summary.get("mean", 1.0),
        per_tile_dice_median=summary.get("median", 1.0),
    )
    return {f"{prefix}/{k}": float(v) for k, v in values.items()}


def log_to_mlflow(
    result: EvaluationResult,
    run_id: str,
    tracking_uri: str | None = None,
    artifacts: Sequence[PathLike] = (),
    prefix: str = "eval",
) -> None:
    """Log a result to an existing MLflow run.

    Args:
        result: the evaluation.
        run_id: the run to log into (e.g. the training run of the model evaluated).
        tracking_uri: the tracking store (``sqlite:///mlflow.db``, ``file:./mlruns``, http...);
            ``None`` uses MLflow's default (``MLFLOW_TRACKING_URI``).
        artifacts: files (and folders) to attach under ``evaluation/`` (report, JSON, CSVs).
        prefix: metric-name prefix.

    Raises:
        KelpsegError: the run does not exist or the store cannot be reached.
    """
    try:
        from mlflow.entities import Metric, RunTag
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise MissingExtraError("train", "mlflow") from exc
    client = MlflowClient(tracking_uri=tracking_uri)
    now = int(time.time() * 1000)
    metrics: list[Any] = [
        Metric(k, v, now, 0) for k, v in evaluation_metrics(result, prefix).items()
    ]
    sweep = result.sweep
    for t, dice in zip(sweep["threshold"].to_numpy(), sweep["dice"].to_numpy(), strict=True):
        step = round(float(t) * SWEEP_STEP_SCALE)
        metrics.append(Metric(f"{prefix}/sweep_dice", float(dice), now, step))
    tags = [RunTag("kelpseg.best_threshold", f"{result.best_threshold:g}")]
    try:
        client.get_run(run_id)
        client.log_batch(run_id, metrics=metrics, tags=tags)
        for path in map(Path, artifacts):
            if path.is_dir():  # the report's linked files, kept as a folder beside it
                client.log_artifacts(run_id, str(path), artifact_path=f"evaluation/{path.name}")
            else:
                client.log_artifact(run_id, str(path), artifact_path="evaluation")
    except MlflowException as exc:
        message = str(exc).splitlines()[0][:200]
        raise KelpsegError(f"MLflow run {run_id}: {message}", tracking_uri) from exc
