"""From a trial to a training config, and the default objective: train it, return best val Dice.

A trial's config is the base config file plus, in order: the tuner's defaults (no Lightning
progress bar, one device), the user's ``--set`` overrides, the search space's values, and the
trial's own run folder and MLflow run. Everything goes through
:func:`kelpseg.config.load_config`, so a trial is exactly ``kelpseg train --config FILE --set ...``.
"""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import lightning as L
import optuna

from kelpseg.config import load_config
from kelpseg.errors import KelpsegError
from kelpseg.nn.config import TrainConfig
from kelpseg.tune.pruning import PruningCallback
from kelpseg.tune.space import SearchSpace, format_override
from kelpseg.tune.tracking import StudyTracker

ObjectiveFn = Callable[[optuna.Trial, TrainConfig], float]
# Before the user's overrides, so ``--set trainer.enable_progress_bar=true`` still wins.
TUNER_DEFAULTS = ["trainer.enable_progress_bar=false"]


def load_base_config(
    config_path: str | os.PathLike[str], overrides: list[str]
) -> tuple[TrainConfig, list[str]]:
    """The study's base config and the overrides every trial starts from.

    Raises:
        KelpsegError: a config without validation (``data.fold: null``), or one that asks for
            several devices: a trial runs on one device; scale out with one worker per device.
    """
    base_overrides = [*TUNER_DEFAULTS, *overrides]
    config = load_config(TrainConfig, config_path, base_overrides)
    if not config.has_validation:
        raise KelpsegError("tuning needs a validation fold (data.fold is null)", config_path)
    devices, nodes = config.trainer.devices, config.trainer.num_nodes
    many = (isinstance(devices, int) and devices > 1) or (
        isinstance(devices, list) and len(devices) > 1
    )
    if many or nodes > 1 or devices in ("-1", -1):
        raise KelpsegError(
            "a trial trains on one device; start one tuning worker per GPU instead "
            "(CUDA_VISIBLE_DEVICES=i kelpseg tune ...)",
            "trainer.devices",
        )
    if devices == "auto":
        # "auto" on a multi-GPU machine would start DDP, relaunching this process per GPU.
        base_overrides.append("trainer.devices=1")
    return config, base_overrides


def check_space(
    space: SearchSpace, config_path: str | os.PathLike[str], base_overrides: list[str]
) -> None:
    """Load the config with every choice and both ends of every range of ``space``.

    Raises:
        KelpsegError: a key that is not in the config, or a value it refuses.
    """
    for extra in space.corner_overrides():
        try:
            load_config(TrainConfig, config_path, [*base_overrides, *extra])
        except KelpsegError as exc:
            raise KelpsegError(f"with the search space's values: {exc.message}", exc.path) from exc


def trial_config(
    trial: optuna.Trial,
    config_path: str | os.PathLike[str],
    base_overrides: list[str],
    space_overrides: list[str],
    out_dir: Path,
    tracker: StudyTracker | None,
) -> TrainConfig:
    """The config of ``trial``: base + space values + its run folder (and MLflow run)."""
    run_dir = (out_dir / "trials" / f"trial-{trial.number:05d}").resolve()
    own = [format_override("output_dir", str(run_dir))]
    if tracker is not None:
        own += tracker.trial_overrides(trial.study.study_name, trial.number)
    else:
        own.append("tracking.enabled=false")
    return load_config(TrainConfig, config_path, [*base_overrides, *space_overrides, *own])


class TrainObjective:
    """Train a trial's config with pruning; the trial's value is the run's best val Dice.

    Args:
        tracker: the study's MLflow tracker (the run becomes a child of its parent run).
        keep_checkpoints: keep each trial's ``checkpoints/`` (full training state, several
            times the model's size); by default they are deleted after the trial, while the
            slimmed best weights stay in ``model/`` and in MLflow.
    """

    def __init__(self, tracker: StudyTracker | None = None, keep_checkpoints: bool = False):
        self.tracker, self.keep_checkpoints = tracker, keep_checkpoints

    def __call__(self, trial: optuna.Trial, config: TrainConfig) -> float:
        """Train; raise ``optuna.TrialPruned`` if the pruner stops the run."""
        from kelpseg.nn.train import train  # the training stack loads only when training

        callbacks: list[L.Callback] = [PruningCallback(trial)]
        parent = None
        if self.tracker is not None:
            callbacks.append(self.tracker.link(trial))
            parent = self.tracker.parent_run_id
        try:
            result = train(config, callbacks=callbacks, parent_run_id=parent)
        finally:
            if not self.keep_checkpoints:
                shutil.rmtree(Path(config.output_dir) / "checkpoints", ignore_errors=True)
            _free_device_memory()
        if result.best_dice is None:
            raise KelpsegError("the run reported no val/dice", config.output_dir)
        if result.best_dice_macro is not None:
            # The 2nd-place log's metric, kept beside the objective (kelp Dice) for comparison.
            trial.set_user_attr("dice_macro", result.best_dice_macro)
        return result.best_dice


def _free_device_memory() -> None:
    # The next trial may build a bigger model: give back the cached GPU memory first.
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
