"""Training one model: :func:`train` and what a run folder holds (cross-validation: ``cv.py``).

A run folder (``output_dir``) holds ``config.yaml``, ``stats.json``, ``checkpoints/best.ckpt``
(best val Dice) and ``checkpoints/last.ckpt`` (for ``resume``), ``model/best.ckpt`` (weights +
config, also uploaded to MLflow), ``result.json`` and, with the default tracking store,
``mlflow.db`` with artifacts under ``mlartifacts/``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, StochasticWeightAveraging
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from kelpseg.config import save_config
from kelpseg.console import err_console
from kelpseg.errors import KelpsegError
from kelpseg.features.stats import BandStats
from kelpseg.io.atomic import atomic_path
from kelpseg.nn.config import TrainConfig, tile_context_channels
from kelpseg.nn.data.datamodule import KelpDataModule
from kelpseg.nn.models import FreezeEncoder, check_input_size
from kelpseg.nn.module import CHECKPOINT_KEY, KelpSegModule
from kelpseg.nn.threshold import PAYLOAD_KEY, THRESHOLD_TAG, ThresholdChoice, pick_threshold
from kelpseg.nn.tracking import (
    RUN_FILE,
    MlflowLogger,
    RunArtifacts,
    default_tracking_uri,
    flatten_config,
    slim_checkpoint,
)


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        output_dir: the run folder.
        best_dice: best validation Dice of kelp (None in full-fit mode).
        best_dice_macro: the 2nd-place log's macro Dice (mean of background and kelp Dice,
            ``val/dice_macro``) at that epoch: the number to compare with the log's ``val/dice``.
        best_epoch: epoch of that score (the last epoch in full-fit mode).
        best_ckpt: the checkpoint kept (best by val Dice, or the last one in full-fit mode).
        last_ckpt: the checkpoint to resume from.
        run_id: the MLflow run (None when tracking is off or on ranks other than 0).
        tracking_uri: where the run is tracked.
        history: per-epoch metrics (``val/dice``, ``train/loss`` ...), keyed by epoch.
        threshold: the model's decision threshold and its source
            (:class:`~kelpseg.nn.threshold.ThresholdChoice` as a dict).
    """

    output_dir: Path
    best_dice: float | None = None
    best_dice_macro: float | None = None
    best_epoch: int | None = None
    best_ckpt: Path | None = None
    last_ckpt: Path | None = None
    run_id: str | None = None
    tracking_uri: str | None = None
    history: dict[int, dict[str, float]] = field(default_factory=dict)
    threshold: dict[str, Any] | None = None

    @property
    def threshold_choice(self) -> ThresholdChoice | None:
        """The decision threshold kept with the model (None for results of older runs)."""
        return None if self.threshold is None else ThresholdChoice.from_dict(self.threshold)

    def save(self, path: Path) -> Path:
        """Write as JSON, atomically."""
        doc = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(doc, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> TrainResult:
        """Read a result written by :meth:`save`."""
        doc = json.loads(Path(path).read_text())
        for key in ("output_dir", "best_ckpt", "last_ckpt"):
            doc[key] = None if doc.get(key) is None else Path(doc[key])
        doc["history"] = {int(k): v for k, v in doc.get("history", {}).items()}
        return cls(**doc)


class HistoryLogger(Logger):
    """Keeps epoch-level metrics in memory (for :class:`TrainResult` and the CLI's curve)."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: dict[int, dict[str, float]] = {}

    @property
    def name(self) -> str:
        """Logger name."""
        return "history"

    @property
    def version(self) -> str:
        """Logger version."""
        return "0"

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Record every metric that is not a per-step one under its epoch."""
        epoch = metrics.get("epoch")
        if epoch is None:
            return
        row = self.epochs.setdefault(int(epoch), {})
        row.update(
            {k: float(v) for k, v in metrics.items() if k != "epoch" and not k.startswith("step/")}
        )

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Nothing to do: the config is saved as config.yaml."""


class RunFolder(Callback):
    """Writes ``config.yaml`` and ``stats.json`` and logs the config as MLflow params (rank 0)."""

    def __init__(
        self, config: TrainConfig, stats: BandStats | None, tracker: MlflowLogger | None
    ) -> None:
        self.config, self.stats, self.tracker = config, stats, tracker

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Runs once the process group exists, so only global rank 0 writes."""
        if stage != "fit" or not trainer.is_global_zero:
            return
        run_dir = Path(self.config.output_dir)
        save_config(self.config, run_dir / "config.yaml")
        if self.stats is not None:
            self.stats.to_json(run_dir / "stats.json")
        if self.tracker is not None:
            self.tracker.ensure_run()
            if self.tracker.created:  # a resumed run already has its params
                self.tracker.log_params(flatten_config(self.config.model_dump(mode="json")))


def load_stats(config: TrainConfig) -> BandStats | None:
    """The run's band statistics, checked against its feature config (None if not needed)."""
    if config.stats_path is None:
        return None
    stats = BandStats.from_json(config.stats_path)
    stats.check_compatible(config.features)
    return stats


def check_resume(last: Path, config: TrainConfig) -> None:
    """Refuse a ``last.ckpt`` that is unreadable or was trained on other inputs or network.

    Lightning would otherwise fail deep inside ``fit`` (a KeyError or a shape mismatch).
    """
    try:
        ckpt = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises several unrelated types for bad files
        raise KelpsegError(f"not a readable checkpoint ({type(exc).__name__})", last) from exc
    payload = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
    if not payload or "pytorch-lightning_version" not in ckpt:
        raise KelpsegError("not a kelpseg training checkpoint; cannot resume from it", last)
    saved = payload.get("config", {})
    was = saved.get("features", {}).get("channels")
    if was != list(config.features.channels):
        message = f"trained on channels {was}, the config has {list(config.features.channels)}"
        raise KelpsegError(f"{message}; cannot resume", last)
    for key in ("arch", "encoder"):
        old, new = saved.get("model", {}).get(key), getattr(config.model, key)
        if old != new:
            raise KelpsegError(f"trained with model.{key}={old}, the config has {new}", last)


def crop_context_warning(config: TrainConfig) -> str | None:
    """A warning when training crops change channels that depend on the whole tile, else None.

    OFFSET_* (a tile median over water) and LANDCLOSE (distance to the nearest land) are built
    on the crop in training unless ``data.crop_context`` (on by default for them) builds them on
    the whole tile first, as prediction does.
    """
    if config.data.crop_size is None or config.data.crop_context:
        return None
    names = tile_context_channels(config)
    if not names:
        return None
    return (
        f"{', '.join(names)} use the whole tile at prediction but only the "
        f"{config.data.crop_size} px crop in training (data.crop_context: false); leave "
        "data.crop_context unset or true to build them on the whole tile (docs/features.md)"
    )


def check_sizes(module: KelpSegModule, datamodule: KelpDataModule) -> None:
    """Dry-run the network on the training crop and validation tile sizes, once each."""
    datamodule.setup("fit")
    sizes = set()
    crop = datamodule.config.crop_size
    for dataset, crop_size in ((datamodule.train_dataset, crop), (datamodule.val_dataset, None)):
        if dataset is not None and len(dataset):
            h, w = (crop_size, crop_size) if crop_size else dataset.tile_shape(0)
            sizes.add(module.sizer.target_hw(h, w))
    for hw in sorted(sizes):
        check_input_size(module.model, module.in_channels, hw, "data.sizing")


def run_tracker(
    config: TrainConfig, resume: bool, parent_run_id: str | None = None
) -> MlflowLogger | None:
    """The MLflow logger of a run folder (None when tracking is off); resumes its run id."""
    if not config.tracking.enabled:
        return None
    run_dir, tracking = Path(config.output_dir), config.tracking
    run_id = None
    if resume and (run_dir / RUN_FILE).is_file():
        run_id = json.loads((run_dir / RUN_FILE).read_text()).get("run_id")
    local = tracking.uri is None
    return MlflowLogger(
        tracking.uri or default_tracking_uri(run_dir),
        tracking.experiment,
        run_name=tracking.run_name,
        tags=tracking.tags,
        run_id=run_id,
        parent_run_id=parent_run_id,
        # The default store keeps artifacts in the run folder; a server decides for itself.
        artifact_location=(run_dir / "mlartifacts").resolve().as_uri() if local else None,
        run_file=run_dir / RUN_FILE,
    )


def trainer_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Keyword arguments of ``lightning.Trainer`` for a run config (loggers and callbacks aside)."""
    cfg = config.trainer
    strategy = cfg.strategy
    if config.model.freeze != "none" and strategy == "ddp":
        strategy = "ddp_find_unused_parameters_true"  # frozen parameters get no gradient
    kwargs: dict[str, Any] = {
        "max_epochs": cfg.max_epochs,
        "precision": cfg.precision,
        "accelerator": cfg.accelerator,
        "devices": cfg.devices,
        "num_nodes": cfg.num_nodes,
        "strategy": strategy,
        "accumulate_grad_batches": cfg.accumulate_grad_batches,
        "gradient_clip_val": cfg.gradient_clip_val,
        # Deterministic mode also turns cuDNN benchmarking off: the seed's log found
        # benchmarking changed results from run to run with everything else fixed.
        "deterministic": cfg.deterministic,
        "benchmark": False if cfg.deterministic else cfg.benchmark,
        "num_sanity_val_steps": cfg.num_sanity_val_steps,
        "log_every_n_steps": cfg.log_every_n_steps,
        "check_val_every_n_epoch": cfg.check_val_every_n_epoch,
        "enable_progress_bar": cfg.enable_progress_bar,
        "enable_model_summary": False,
        "default_root_dir": str(config.output_dir),
    }
    for key in ("limit_train_batches", "limit_val_batches"):
        if getattr(cfg, key) is not None:
            kwargs[key] = getattr(cfg, key)
    return kwargs


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    callbacks: list[Callback] | None = None,
    parent_run_id: str | None = None,
) -> TrainResult:
    """Train one model; returns where its checkpoints are and how well it did.

    Args:
        config: the run config.
        resume: continue from ``output_dir/checkpoints/last.ckpt`` (and the same MLflow run).
        callbacks: extra Lightning callbacks.
        parent_run_id: nest the MLflow run under this one (used by :func:`train_cv`).

    Raises:
        KelpsegError: bad inputs, a run folder that already holds a run (without ``resume``),
            or nothing to resume.
    """
    run_dir = Path(config.output_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise KelpsegError("nothing to resume: no checkpoints/last.ckpt", run_dir)
    if not resume and last.is_file():
        message = "already holds a run; pass --resume or choose another output_dir"
        raise KelpsegError(message, run_dir)
    if resume:
        check_resume(last, config)
    stats = load_stats(config)
    L.seed_everything(config.seed, workers=True, verbose=False)
    if config.trainer.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by cuBLAS
    module = KelpSegModule(config, stats)
    datamodule = KelpDataModule(config.data, seed=config.seed)
    check_sizes(module, datamodule)
    if (warning := crop_context_warning(config)) is not None:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)

    tracker = run_tracker(config, resume, parent_run_id)
    history = HistoryLogger()
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor="val/dice" if config.has_validation else None,
        mode="max",
        save_last=True,
        save_top_k=1,
        enable_version_counter=False,
    )
    extra: list[Callback] = [
        checkpoint,
        FreezeEncoder(config.model.freeze, config.model.unfreeze_epoch),
        RunFolder(config, stats, tracker),
    ]
    if tracker is not None:
        extra.append(RunArtifacts(tracker, config, run_dir))
    swa = swa_callback(config)
    if swa is not None:
        extra.append(swa)
    trainer = L.Trainer(
        logger=[history, *([tracker] if tracker else [])],
        callbacks=[*extra, *(callbacks or [])],
        **trainer_kwargs(config),
    )
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        trainer.fit(
            module,
            datamodule=datamodule,
            ckpt_path=str(last) if resume else None,
            weights_only=True,  # no unpickling of arbitrary objects from a checkpoint file
        )
    finally:
        # Lightning switches this on process-wide; give the caller its setting back.
        torch.use_deterministic_algorithms(was_deterministic)
    # With batch norm the callback adds an epoch that recomputes its statistics on the averaged
    # weights, validated like the others; without, the average is only loaded at the end.
    averaged_unseen = trainer.current_epoch <= config.trainer.max_epochs
    if swa is not None and config.has_validation and averaged_unseen:
        validate_average(trainer, module, datamodule, checkpoint)
    return _result(config, trainer, checkpoint, tracker, history, module)


def swa_callback(config: TrainConfig) -> StochasticWeightAveraging | None:
    """Lightning's weight averaging as ``trainer.swa`` asks (None when off)."""
    cfg = config.trainer.swa
    if not cfg.enabled:
        return None
    start: int | float = int(cfg.epoch_start) if cfg.epoch_start >= 1 else cfg.epoch_start
    return StochasticWeightAveraging(
        swa_lrs=cfg.lr, swa_epoch_start=start, annealing_epochs=cfg.annealing_epochs
    )


def validate_average(
    trainer: L.Trainer,
    module: KelpSegModule,
    datamodule: KelpDataModule,
    checkpoint: ModelCheckpoint,
) -> float:
    """Validate the averaged weights SWA left in ``module``; keep them if they beat the best.

    The score lands in the history under the epoch after the last one trained (Lightning logs
    it there), so ``result.json`` shows it beside the epochs; when it is the best,
    ``best.ckpt`` is rewritten with the averaged weights.
    """
    scores = trainer.validate(module, datamodule=datamodule, verbose=False)
    dice = float(scores[0]["val/dice"])
    best = checkpoint.best_model_score
    if checkpoint.best_model_path and (best is None or dice > float(best)):
        trainer.save_checkpoint(checkpoint.best_model_path)
        checkpoint.best_model_score = torch.tensor(dice)
    return dice


def _result(
    config: TrainConfig,
    trainer: L.Trainer,
    checkpoint: ModelCheckpoint,
    tracker: MlflowLogger | None,
    history: HistoryLogger,
    module: KelpSegModule,
) -> TrainResult:
    run_dir = Path(config.output_dir)
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    result = TrainResult(
        output_dir=run_dir,
        best_ckpt=best,
        last_ckpt=Path(checkpoint.last_model_path) if checkpoint.last_model_path else None,
        run_id=tracker.version if tracker is not None else None,
        tracking_uri=tracker.tracking_uri if tracker is not None else None,
        history=history.epochs,
    )
    if config.has_validation and checkpoint.best_model_score is not None:
        result.best_dice = float(checkpoint.best_model_score)
        scores = {e: m["val/dice"] for e, m in history.epochs.items() if "val/dice" in m}
        result.best_epoch = max(scores, key=lambda e: scores[e]) if scores else None
        macro = history.epochs.get(result.best_epoch, {}) if result.best_epoch is not None else {}
        if "val/dice_macro" in macro:
            result.best_dice_macro = float(macro["val/dice_macro"])
    elif not config.has_validation:
        result.best_epoch = trainer.current_epoch - 1
    choice = choose_threshold(config, module, result.best_epoch)
    result.threshold = choice.as_dict()
    if trainer.is_global_zero:
        keep_threshold(choice, module, best, run_dir, tracker)
        result.save(run_dir / "result.json")
    return result


def choose_threshold(
    config: TrainConfig, module: KelpSegModule, epoch: int | None
) -> ThresholdChoice:
    """The run's decision threshold: swept on validation at ``epoch``, or the config's."""
    default = float(config.trainer.threshold)
    if not config.trainer.pick_threshold:
        return ThresholdChoice(default, "training config (trainer.pick_threshold is off)", default)
    swept = module.val_histograms.get(epoch) if epoch is not None else None
    histogram, tiles = swept if swept is not None else (None, None)
    fold = config.data.fold if config.has_validation else None
    return pick_threshold(histogram, default, fold=fold, tiles=tiles)


def keep_threshold(
    choice: ThresholdChoice,
    module: KelpSegModule,
    best: Path | None,
    run_dir: Path,
    tracker: MlflowLogger | None,
) -> None:
    """Store the threshold with the model: checkpoints, ``model/best.ckpt`` and MLflow.

    ``model/best.ckpt`` (the tracked copy) is slimmed again from the best checkpoint, which also
    carries SWA weights validated after the fit into it.
    """
    module.threshold_choice = choice
    if best is not None and best.is_file():
        stamp_checkpoint(best, choice)
    slim = run_dir / "model" / "best.ckpt"
    if slim.is_file() and best is not None and best.is_file():
        slim_checkpoint(best, slim)
    if tracker is None or tracker.version is None:
        return
    client, run_id = tracker.client, tracker.version
    client.set_tag(run_id, THRESHOLD_TAG, f"{choice.threshold:g}")
    client.set_tag(run_id, "kelpseg.threshold_source", choice.source)
    if choice.val_dice is not None and choice.val_dice_default is not None:
        client.log_metric(run_id, "val/threshold", choice.threshold)
        client.log_metric(run_id, "val/dice_at_threshold", choice.val_dice)
    if slim.is_file():
        client.log_artifact(run_id, str(slim), "model")


def stamp_checkpoint(path: Path, choice: ThresholdChoice) -> Path:
    """Write ``choice`` into a kelpseg checkpoint's payload, atomically."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt[CHECKPOINT_KEY][PAYLOAD_KEY] = choice.as_dict()
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path
