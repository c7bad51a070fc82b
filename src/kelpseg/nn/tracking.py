"""MLflow tracking of training runs, and reloading a run for inference from its id alone.

:class:`MlflowLogger` is a Lightning logger: parameters are the resolved config flattened to
dotted keys; metrics named ``step/...`` are logged against the optimiser step, every other metric
(``train/...``, ``val/...``) against the epoch, so learning curves have epochs on their x-axis.
:class:`RunArtifacts` adds figures (confusion matrix, a fixed grid of validation tiles with
targets and predictions, the input channels once) and, at the end, the best checkpoint with
``config.yaml`` and ``stats.json``. Only global rank 0 talks to MLflow.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException

from kelpseg.errors import KelpsegError
from kelpseg.features.stats import BandStats
from kelpseg.io.atomic import atomic_path
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.figures import channel_figure, confusion_figure, prediction_grid
from kelpseg.nn.module import CHECKPOINT_KEY, KelpSegModule

RUN_FILE = "mlflow_run.json"
MODEL_ARTIFACT = "model/best.ckpt"
_MAX_PARAM = 6000  # MLflow's limit on a parameter value


def default_tracking_uri(output_dir: str | os.PathLike[str]) -> str:
    """``sqlite:///<output_dir>/mlflow.db`` (absolute), the store used when none is given."""
    return f"sqlite:///{(Path(output_dir) / 'mlflow.db').resolve()}"


def flatten_config(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config dict -> ``{"optim.lr": "0.0003", ...}``; lists become JSON strings."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten_config(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            flat[name] = text[:_MAX_PARAM]
    return flat


class MlflowLogger(Logger):
    """Lightning logger writing to one MLflow run (created on first use, or an existing one).

    Args:
        tracking_uri: MLflow tracking URI.
        experiment: experiment name (created if missing).
        run_name: run name (None = MLflow's generated name).
        tags: run tags.
        run_id: continue this run (resume) instead of creating one.
        parent_run_id: nest the new run under this one (cross-validation folds).
        artifact_location: artifact root for a newly created experiment.
        run_file: where the new run's id is recorded (JSON), for ``--resume``.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        *,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        artifact_location: str | None = None,
        run_file: Path | None = None,
    ) -> None:
        super().__init__()
        self.tracking_uri, self.experiment_name = tracking_uri, experiment
        self.run_name, self.tags = run_name, dict(tags or {})
        self.parent_run_id, self.artifact_location = parent_run_id, artifact_location
        self.run_file = run_file
        self.created = False
        self._run_id = run_id
        self._client: MlflowClient | None = None

    @property
    def name(self) -> str:
        """The experiment name."""
        return self.experiment_name

    @property
    def version(self) -> str | None:
        """The run id (None until the run exists)."""
        return self._run_id

    @property
    @rank_zero_experiment
    def experiment(self) -> MlflowClient:
        """The MLflow client (the run is created on first access)."""
        self.ensure_run()
        return self.client

    @property
    def client(self) -> MlflowClient:
        """The MLflow client, without creating a run."""
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    def ensure_run(self) -> str:
        """The run id, creating the experiment and run if needed."""
        if self._run_id is not None:
            return self._run_id
        client = self.client
        try:
            found = client.get_experiment_by_name(self.experiment_name)
            exp_id = (
                found.experiment_id
                if found
                else client.create_experiment(
                    self.experiment_name, artifact_location=self.artifact_location
                )
            )
            tags = dict(self.tags)
            if self.parent_run_id:
                tags["mlflow.parentRunId"] = self.parent_run_id
            run = client.create_run(exp_id, tags=tags, run_name=self.run_name)
        except MlflowException as exc:
            message = f"cannot create an MLflow run ({exc.message})"
            raise KelpsegError(message, self.tracking_uri) from exc
        self._run_id, self.created = run.info.run_id, True
        if self.run_file is not None:
            doc = {"run_id": self._run_id, "uri": self.tracking_uri, "experiment_id": exp_id}
            with atomic_path(self.run_file) as tmp:
                tmp.write_text(json.dumps(doc, indent=2) + "\n")
        return self._run_id

    @rank_zero_only
    def log_params(self, params: dict[str, str]) -> None:
        """Log parameters (already flat strings), in MLflow-sized batches."""
        run_id, items = self.ensure_run(), [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100], synchronous=True)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Lightning's hook; kelpseg logs the whole config through :meth:`log_params`."""
        if params:
            self.log_params(flatten_config(dict(params)))

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """``step/...`` metrics at the optimiser step; the rest at the epoch."""
        epoch = metrics.get("epoch")
        now = int(time.time() * 1000)
        rows = [
            Metric(key, float(value), now, _x_axis(key, step, epoch))
            for key, value in metrics.items()
            if key != "epoch"
        ]
        if rows:
            self.client.log_batch(self.ensure_run(), metrics=rows, synchronous=True)

    @rank_zero_only
    def log_figure(self, figure: Figure, artifact_file: str) -> None:
        """Log a matplotlib figure as a PNG artifact."""
        self.client.log_figure(self.ensure_run(), figure, artifact_file)

    @rank_zero_only
    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Upload a local file into the run's artifacts."""
        self.client.log_artifact(self.ensure_run(), str(path), artifact_path)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Close the run: FINISHED on success, FAILED otherwise."""
        if self._run_id is not None:
            state = "FINISHED" if status == "success" else "FAILED"
            self.client.set_terminated(self._run_id, state)


def _x_axis(key: str, step: int | None, epoch: float | None) -> int:
    """The MLflow step of a metric: the optimiser step for ``step/...``, else the epoch."""
    if key.startswith("step/") or epoch is None:
        return int(step or 0)
    return int(epoch)


class RunArtifacts(L.Callback):
    """Figures each validation epoch and the run's model files at the end (rank 0 only).

    Args:
        logger: the run's :class:`MlflowLogger`.
        config: the run config (its ``tracking`` section says what to log).
        run_dir: the run folder holding ``config.yaml`` and ``stats.json``.
    """

    def __init__(self, logger: MlflowLogger, config: TrainConfig, run_dir: Path) -> None:
        self.logger, self.tracking, self.run_dir = logger, config.tracking, run_dir
        self.threshold = config.trainer.threshold
        self.channel_names = list(config.features.channels)
        self.grid_ids: list[str] | None = None  # fixed after the first validation epoch
        self.samples: list[dict[str, Any]] = []
        self.channels_logged = False

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int, dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        """Keep the grid's tiles: in the first epoch, candidates (kelp tiles and others)."""
        if trainer.sanity_checking or not trainer.is_global_zero or not self.tracking.log_images:
            return
        if not isinstance(outputs, dict) or "prob" not in outputs:
            return
        if not self.channels_logged and self.tracking.log_channels:
            with torch.no_grad():
                channels = pl_module.inputs(batch["image"][:1]).float().cpu().numpy()[0]  # type: ignore[operator]
            figure = channel_figure(channels, self.channel_names)
            self.logger.log_figure(figure, "images/channels.png")
            self.channels_logged = True
        n = self.tracking.grid_tiles
        for i, tile_id in enumerate(batch["tile_id"]):
            has_kelp = bool((batch["mask"][i] > 0.5).any())
            if self.grid_ids is not None and str(tile_id) not in self.grid_ids:
                continue
            if self.grid_ids is None and sum(s["has_kelp"] == has_kelp for s in self.samples) >= n:
                continue
            self.samples.append({
                "tile_id": str(tile_id),
                "has_kelp": has_kelp,
                "image": batch["image"][i].cpu().numpy(),
                "mask": batch["mask"][i, 0].float().cpu().numpy(),
                "prob": outputs["prob"][i, 0].float().cpu().numpy(),
            })  # fmt: skip

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log the confusion matrix and the prediction grid of this epoch."""
        samples, self.samples = self.samples, []
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch
        confusion = getattr(pl_module, "confusion", None)
        if self.tracking.log_confusion_matrix and confusion is not None:
            fig = confusion_figure(confusion.numpy(), f"epoch {epoch}")
            self.logger.log_figure(fig, f"images/confusion/epoch_{epoch:03d}.png")
        if self.grid_ids is None and samples:
            # Kelp tiles first (stable order), so the grid shows what the model must find.
            ordered = sorted(samples, key=lambda s: not s["has_kelp"])
            samples = ordered[: self.tracking.grid_tiles]
            self.grid_ids = [s["tile_id"] for s in samples]
        if samples:
            fig = prediction_grid(samples, self.threshold)
            self.logger.log_figure(fig, f"images/predictions/epoch_{epoch:03d}.png")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Upload the best checkpoint (slimmed to weights + config), config.yaml, stats.json."""
        if not trainer.is_global_zero or not self.tracking.log_checkpoint:
            return
        for name in ("config.yaml", "stats.json"):
            if (self.run_dir / name).is_file():
                self.logger.log_artifact(self.run_dir / name)
        ckpt = trainer.checkpoint_callback
        best = getattr(ckpt, "best_model_path", "") or getattr(ckpt, "last_model_path", "")
        if best and Path(best).is_file():
            slim = self.run_dir / "model" / "best.ckpt"
            slim_checkpoint(best, slim)
            self.logger.log_artifact(slim, "model")


def slim_checkpoint(source: str | os.PathLike[str], target: Path) -> Path:
    """Copy a training checkpoint without optimiser and loop state (weights + config only)."""
    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    keep = {k: ckpt[k] for k in ("state_dict", CHECKPOINT_KEY, "epoch", "global_step") if k in ckpt}
    with atomic_path(target) as tmp:
        torch.save(keep, tmp)
    return target


def load_run(
    run_id_or_ckpt: str | os.PathLike[str], tracking_uri: str | None = None
) -> tuple[KelpSegModule, TrainConfig, BandStats | None]:
    """Rebuild a trained module (eval mode) from a run id, a checkpoint file or a run folder.

    Args:
        run_id_or_ckpt: an MLflow run id, a ``.ckpt`` file, or a training output folder.
        tracking_uri: MLflow tracking URI for run ids (default: MLflow's, e.g.
            ``MLFLOW_TRACKING_URI``).

    Returns:
        ``(module, config, stats)``: the module, its :class:`~kelpseg.nn.config.TrainConfig`
        and its band statistics (None for per-sample normalisations).

    Raises:
        KelpsegError: no such file, run or model artifact.
    """
    path = Path(run_id_or_ckpt)
    if path.is_dir():
        candidates = [path / "model" / "best.ckpt", path / "checkpoints" / "best.ckpt"]
        path = next((p for p in candidates if p.is_file()), candidates[0])
    if path.is_file():
        module = KelpSegModule.from_checkpoint(path)
        return module, module.config, module.stats
    if path.suffix == ".ckpt" or len(path.parts) > 1:
        raise KelpsegError("checkpoint does not exist", path)
    client = MlflowClient(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(str(run_id_or_ckpt), MODEL_ARTIFACT, tmp)
        except (MlflowException, OSError) as exc:
            where = tracking_uri or "the default tracking URI"
            raise KelpsegError(
                f"run {run_id_or_ckpt} has no {MODEL_ARTIFACT} in {where} ({type(exc).__name__})"
            ) from exc
        module = KelpSegModule.from_checkpoint(local)
    return module, module.config, module.stats
