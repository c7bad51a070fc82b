"""Stop unpromising trials early: report val Dice to Optuna after every validation epoch.

Optuna's own Lightning callback moved to the separate ``optuna-integration`` package, which pins
Lightning versions and is not a kelpseg dependency; the behaviour needed here fits in one small
callback, so kelpseg keeps its own.
"""

from __future__ import annotations

import lightning as L
import optuna

MONITOR = "val/dice"


class PruningCallback(L.Callback):
    """Report ``monitor`` to ``trial`` each validation epoch; raise ``TrialPruned`` when told.

    The epoch is the step Optuna's pruners compare trials at. Raising inside ``fit`` is what
    stops training at once: Lightning tears down (the MLflow run is closed as failed, which the
    tuner then marks as pruned) and the exception reaches the study, which records the trial as
    PRUNED with the values reported so far.

    A trial runs on one device (the tuner refuses multi-device trials), so there is no decision
    to share between ranks.

    Args:
        trial: the running trial.
        monitor: the logged metric to report (higher or lower is the study's direction).
    """

    def __init__(self, trial: optuna.Trial, monitor: str = MONITOR) -> None:
        self.trial, self.monitor = trial, monitor
        self.reported: dict[int, float] = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Report this epoch's value and prune if the study's pruner says so."""
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        epoch, score = trainer.current_epoch, float(value)
        self.trial.report(score, step=epoch)
        self.reported[epoch] = score
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}: {self.monitor} {score:.4f}")
