"""Logging a finished tree-model run to MLflow (params, metrics, plots, model files).

Uses an explicit :class:`mlflow.tracking.MlflowClient`, never the global fluent API, so a
notebook's own MLflow state is left alone. The default store is a local SQLite file beside the
run's outputs; artifacts of experiments created here go to ``<out>/mlartifacts``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kelpseg.errors import KelpsegError, MissingExtraError

PathLike = str | os.PathLike[str]
# MLflow caps a param value's length; longer values are cut (the full config is an artifact).
MAX_PARAM_CHARS = 6000


def default_tracking_uri(out_dir: PathLike) -> str:
    """``sqlite:///<out>/mlflow.db`` for an output folder."""
    return f"sqlite:///{(Path(out_dir).resolve() / 'mlflow.db').as_posix()}"


def log_run(
    tracking_uri: str,
    experiment: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts: Iterable[PathLike],
    *,
    artifact_root: PathLike,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Create one finished run and return its id.

    Args:
        tracking_uri: where MLflow stores runs (``sqlite:///...``, ``http://...``).
        experiment: experiment name (created with ``artifact_root`` when new).
        params: logged as strings.
        metrics: finite numbers only; others are skipped.
        artifacts: files to attach.
        artifact_root: artifact folder of a newly created experiment.
        tags: run tags.

    Raises:
        KelpsegError: the tracking store cannot be reached or written.
    """
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError as exc:  # pragma: no cover - the 'train' extra is missing
        raise MissingExtraError("train", "mlflow") from exc
    # MLflow announces its schema migrations at INFO level on every new SQLite store.
    for name in ("alembic", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            location = Path(artifact_root).resolve().as_uri()
            experiment_id = client.create_experiment(experiment, artifact_location=location)
        else:
            experiment_id = found.experiment_id
        run = client.create_run(experiment_id, tags=dict(tags or {}))
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        items = [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in params.items()]
        # log_batch takes at most 100 params per call.
        for start in range(0, len(items), 100):
            client.log_batch(run_id, params=items[start : start + 100])
        values = [Metric(k, float(v), now, 0) for k, v in metrics.items() if _finite(v)]
        client.log_batch(run_id, metrics=values)
        for path in artifacts:
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id)
    except KelpsegError:
        raise
    except Exception as exc:  # MLflow raises many types for bad URIs and stores
        raise KelpsegError(
            f"MLflow logging failed ({type(exc).__name__}: {exc})", tracking_uri
        ) from exc
    return run_id


def _finite(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return number == number and abs(number) != float("inf")
