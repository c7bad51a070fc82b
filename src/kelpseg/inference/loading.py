"""What torch inference loads: trained models (checkpoints, run folders, MLflow run ids), tiles.

This module needs the training stack; model packages (ONNX) load without it, through
:func:`kelpseg.inference.predict.load_predictor`.

A model comes with everything it needs: the training config and band statistics are inside the
checkpoint (see :meth:`~kelpseg.nn.module.KelpSegModule.from_checkpoint`). From an MLflow run
come two more things: the decision threshold that ``kelpseg evaluate`` saved with it (tag
``kelpseg.best_threshold``) and its validation Dice, for weights derived from scores.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import DataLoader

from kelpseg.errors import KelpsegError
from kelpseg.inference import ensemble
from kelpseg.inference.config import Precision, TtaConfig
from kelpseg.inference.reader import TileSource, resolve_tiles
from kelpseg.inference.runner import Predictor
from kelpseg.nn.data.datasets import GeoTiffDataset, TileBatch, collate_tiles
from kelpseg.nn.data.stacked import StackedChannels
from kelpseg.nn.module import KelpSegModule
from kelpseg.nn.threshold import THRESHOLD_TAG
from kelpseg.nn.tracking import load_run

__all__ = [
    "LoadedModel",
    "TileReader",
    "TileSource",
    "load_model",
    "load_torch_predictor",
    "resolve_tiles",  # moved to kelpseg.inference.reader (no torch); kept for old imports
    "tile_loader",
    "validation_score",
]

PathLike = str | os.PathLike[str]
#: Run metrics tried, in order, as a model's validation score (the best value of its history).
SCORE_METRICS = ("val/dice", "eval/dice")
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class LoadedModel:
    """One trained model, ready for inference, and what is known about it.

    Attributes:
        module: the network with its input builder and sizer, in eval mode on the CPU.
        source: what the user named (checkpoint path, run folder or run id).
        run_id: the MLflow run it came from (None for files).
        tracking_uri: the tracking store of ``run_id``.
        checkpoint: the local checkpoint file (None for run ids: downloaded and deleted).
        threshold: the decision threshold saved with the model (picked on its validation fold
            after training), else the training config's.
        threshold_source: where it came from (``"validation sweep on fold 0, 8 tiles"``,
            ``"mlflow tag"``, ``"training config (...)"``).
    """

    module: KelpSegModule
    source: str
    run_id: str | None = None
    tracking_uri: str | None = None
    checkpoint: Path | None = None
    threshold: float = 0.5
    threshold_source: str = "training config"


def is_run_id(source: PathLike) -> bool:
    """Whether ``source`` is read as an MLflow run id: no such file, and no path or suffix."""
    text = str(source)
    return not Path(text).exists() and bool(_RUN_ID.match(text))


def load_model(source: PathLike, tracking_uri: str | None = None) -> LoadedModel:
    """Load a trained model from a checkpoint, a training run folder or an MLflow run id.

    Args:
        source: a ``.ckpt`` file, a run folder (``model/best.ckpt`` or
            ``checkpoints/best.ckpt`` inside), or an MLflow run id.
        tracking_uri: tracking store of run ids (default: MLflow's, ``MLFLOW_TRACKING_URI``).

    Raises:
        KelpsegError: no such file or run, not a kelpseg checkpoint, band statistics that do
            not match the checkpoint's channels, or weights that do not fit its config.
    """
    if is_run_id(source):
        return _load_run_id(str(source), tracking_uri)
    path = Path(source)
    if not path.exists():
        raise KelpsegError("no such checkpoint or run folder (and not an MLflow run id)", path)
    module = _checked_load(path, path)
    checkpoint = path if path.is_file() else _run_folder_checkpoint(path)
    loaded = LoadedModel(module, str(source), checkpoint=checkpoint)
    _saved_threshold(loaded)
    return loaded


def _saved_threshold(loaded: LoadedModel) -> None:
    """The threshold the checkpoint carries, else the training config's."""
    choice = loaded.module.threshold_choice
    if choice is not None:
        loaded.threshold, loaded.threshold_source = float(choice.threshold), choice.source
    else:
        loaded.threshold = float(loaded.module.config.trainer.threshold)
        loaded.threshold_source = "training config"


def _checked_load(target: PathLike, name: PathLike, tracking_uri: str | None = None) -> Any:
    """``load_run`` with its faults named after the model the user gave."""
    try:
        module, _, _ = load_run(target, tracking_uri)
    except KelpsegError as exc:
        if "band statistics" in exc.message:
            message = f"its band statistics do not match its channels ({exc.message})"
            raise KelpsegError(message, name) from exc
        raise KelpsegError(exc.message, exc.path or name) from exc
    except RuntimeError as exc:  # load_state_dict: weights of another shape than the config's
        first = str(exc).strip().splitlines()[0][:200]
        message = f"weights do not fit the model its config describes ({first})"
        raise KelpsegError(message, name) from exc
    return module


def _run_folder_checkpoint(folder: Path) -> Path | None:
    candidates = (folder / "model" / "best.ckpt", folder / "checkpoints" / "best.ckpt")
    return next((p for p in candidates if p.is_file()), None)


def _client(tracking_uri: str | None, run_id: str) -> Any:
    import mlflow

    uri = tracking_uri or mlflow.get_tracking_uri()
    if uri.startswith("sqlite:"):
        # MlflowClient would silently create an empty store (for a mistyped path, or for a
        # mistyped checkpoint name taken as a run id with the default ``mlflow.db``).
        db = Path(uri.removeprefix("sqlite:///").split("?")[0])  # 4 slashes: absolute
        if not db.is_file():
            raise KelpsegError(
                f"no such checkpoint or run folder; as an MLflow run id: the tracking store "
                f"{db} does not exist (give --tracking-uri)",
                run_id,
            )
    return mlflow.MlflowClient(uri)


def _load_run_id(run_id: str, tracking_uri: str | None) -> LoadedModel:
    from mlflow.exceptions import MlflowException

    where = tracking_uri or "the default tracking store"
    client = _client(tracking_uri, run_id)
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise KelpsegError(f"MLflow run {run_id} does not exist in {where}") from exc
    module = _checked_load(run_id, run_id, tracking_uri)
    tag = run.data.tags.get(THRESHOLD_TAG)
    loaded = LoadedModel(module, run_id, run_id=run_id, tracking_uri=tracking_uri)
    _saved_threshold(loaded)
    if tag is not None:
        try:
            value = float(tag)
        except ValueError as exc:
            raise KelpsegError(f"MLflow run {run_id}: tag {THRESHOLD_TAG}={tag!r}") from exc
        # Training writes the tag beside the checkpoint's choice; a tag set later wins.
        if abs(value - loaded.threshold) > 1e-6:
            loaded.threshold, loaded.threshold_source = value, "mlflow tag"
    return loaded


def load_torch_predictor(
    models: Sequence[PathLike],
    weights: Sequence[float] | None = None,
    *,
    device: str | torch.device = "auto",
    precision: Precision = "32",
    tta: TtaConfig | None = None,
    ensemble_mode: str = "mean_prob",
    threshold: float | None = None,
    tracking_uri: str | None = None,
    weights_from_scores: bool = False,
    channels_last: bool | None = None,
    compile_backend: str | None = None,
    stacked: Mapping[str, PathLike] | None = None,
    probability: str = "softmax",
) -> Predictor:
    """Load one trained model or an ensemble for inference with torch.

    :func:`kelpseg.inference.predict.load_predictor` calls this for everything but a model
    package (ONNX), which it runs without torch.

    Args:
        models: checkpoints, training run folders or MLflow run ids (may be mixed; members
            may use different channels).
        weights: one weight per model; None for equal weights.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` ...
        precision: ``"32"``, ``"16"`` or ``"bf16"``.
        tta: test-time augmentation; None: off.
        ensemble_mode: ``mean_prob`` (the seed's), ``mean_logit``, ``union``, ...
        threshold: decision threshold; None: the members' saved thresholds, weighted.
        tracking_uri: MLflow tracking store of run ids.
        weights_from_scores: weight members by their validation Dice, min-max scaled to
            [0.2, 1.0] as the seed did.
        channels_last: channels-last networks (None: on CUDA with fp16/bf16).
        compile_backend: ``torch.compile`` backend of the networks (``inductor``); None: eager.
        stacked: folder of a stored channel the models read (``data.stacked``), e.g. the
            test-time one; unnamed channels: the folder in each model's training config.
        probability: ``softmax`` or ``sigmoid_kelp`` (a 2-class head's kelp probability).

    Raises:
        KelpsegError: no models, a weight count that differs from the model count, or a model
            that cannot be loaded (see :func:`~kelpseg.inference.loading.load_model`).
    """
    if not models:
        raise KelpsegError("give at least one model to predict with")
    if weights is not None and len(weights) != len(models):
        raise KelpsegError(f"{len(weights)} weights for {len(models)} models", "--weights")
    if weights is not None and weights_from_scores:
        raise KelpsegError("give weights or derive them from scores, not both", "--weights")
    loaded = [load_model(m, tracking_uri) for m in models]
    if weights_from_scores:
        weights = ensemble.weights_from_scores([validation_score(m) for m in loaded]).tolist()
    return Predictor(
        loaded,
        weights,
        device=device,
        precision=precision,
        tta=tta,
        ensemble_mode=ensemble_mode,
        threshold=threshold,
        channels_last=channels_last,
        compile_backend=compile_backend,
        stacked=stacked,
        probability=probability,
    )


def validation_score(model: LoadedModel) -> float:
    """The model's best validation Dice, for :func:`~kelpseg.inference.weights_from_scores`.

    Run ids: the best value of the run's ``val/dice`` (else ``eval/dice``) history. Files: the
    ``best_dice`` of the training run's ``result.json`` beside the checkpoint, else the best
    score its Lightning checkpoint recorded.

    Raises:
        KelpsegError: no score is known for this model.
    """
    score = _run_score(model) if model.run_id else _file_score(model.checkpoint)
    if score is None:
        raise KelpsegError(
            "no validation score found for this model (no val/dice in its run, result.json "
            "or checkpoint); give --weights instead",
            model.source,
        )
    return score


def _run_score(model: LoadedModel) -> float | None:
    client = _client(model.tracking_uri, model.source)
    for name in SCORE_METRICS:
        history = client.get_metric_history(model.run_id, name)
        if history:
            return max(float(m.value) for m in history)
    return None


def _file_score(checkpoint: Path | None) -> float | None:
    if checkpoint is None:
        return None
    for folder in (checkpoint.parent, checkpoint.parent.parent):
        result = folder / "result.json"
        if result.is_file():
            try:
                best = json.loads(result.read_text()).get("best_dice")
            except (OSError, ValueError):
                best = None
            if best is not None:
                return float(best)
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    for key, state in (ckpt.get("callbacks") or {}).items():
        if str(key).startswith("ModelCheckpoint") and isinstance(state, dict):
            best = state.get("best_model_score")
            if best is not None and "val/dice" in str(key):
                return float(best)
    return None


class TileReader(GeoTiffDataset):
    """Reads batches in loader workers; a bad tile comes back as a message, not a traceback."""

    def __getitems__(self, keys: Sequence[Any]) -> TileBatch:
        try:
            return super().__getitems__(keys)
        except KelpsegError as exc:
            return TileBatch([], {"error": (exc.message, exc.path)})


def tile_loader(
    table: pd.DataFrame,
    batch_size: int,
    workers: int,
    pin: bool,
    stacked: Mapping[str, PathLike] | None = None,
) -> DataLoader[Any]:
    """Batches of raw tiles of ``table``, in order, read by ``workers`` processes.

    With ``stacked`` (name -> folder) each tile's stored channels follow its seven bands as
    int16 planes, as in training; a tile without one fails its batch with a one-line error.
    """
    dataset = TileReader(list(table["image_path"]), None, list(table["tile_id"]))
    if stacked:
        dataset.stacked = StackedChannels(stacked)
    extra: dict[str, Any] = {"prefetch_factor": 4} if workers else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
        collate_fn=collate_tiles,
        **extra,
    )
