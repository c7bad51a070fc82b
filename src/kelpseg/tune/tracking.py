"""MLflow for a study: one parent run per study, each trial a child run under it.

Every worker of a study uses the same parent run: the first one creates it and records its id
in the study (``kelpseg.parent_run_id``), the others read it there. A trial's own training run
(:func:`kelpseg.nn.train.train` with ``parent_run_id``) is the child; after the trial its state
is written back (pruned runs end as KILLED, failed ones as FAILED) and its value is logged on the
parent as ``trial/value`` at step = trial number. At the end the study summary (plots, best
parameters) is uploaded to the parent under ``summary/``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from optuna.trial import FrozenTrial, TrialState

from kelpseg.console import err_console
from kelpseg.errors import KelpsegError
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.tracking import MlflowLogger, default_tracking_uri
from kelpseg.tune.space import format_override

PARENT_ATTR = "kelpseg.parent_run_id"
RUN_ATTR = "kelpseg.mlflow_run_id"
_END_STATUS = {TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}


class StudyTracker:
    """The MLflow side of a study (see the module docstring).

    Args:
        tracking_uri: MLflow tracking URI shared by the parent and every trial.
        experiment: experiment name.
        artifact_location: artifact root if the experiment has to be created (the local default
            store keeps artifacts beside it, in the study folder).
    """

    def __init__(
        self, tracking_uri: str, experiment: str, artifact_location: str | None = None
    ) -> None:
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.artifact_location = artifact_location
        self.parent_run_id: str | None = None
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        """The MLflow client, created on first use.

        Creating one creates (and migrates) a new SQLite store, which two workers must not do at
        once: the first use is :meth:`ensure_parent`, under the study's slot lock.
        """
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    @classmethod
    def from_config(
        cls, config: TrainConfig, out_dir: str | os.PathLike[str]
    ) -> StudyTracker | None:
        """The tracker a study of ``config`` uses (None when tracking is off).

        Without ``tracking.uri`` the store is ``<out_dir>/mlflow.db`` with artifacts in
        ``<out_dir>/mlartifacts``, like a single training run's.
        """
        if not config.tracking.enabled:
            return None
        if config.tracking.uri:
            return cls(config.tracking.uri, config.tracking.experiment)
        artifacts = (Path(out_dir) / "mlartifacts").resolve().as_uri()
        return cls(default_tracking_uri(out_dir), config.tracking.experiment, artifacts)

    def ensure_parent(self, study: optuna.Study, params: dict[str, str]) -> str:
        """Use the study's parent run, creating it (with ``params``) if it has none.

        Call this while holding the study's slot lock so that two workers starting together
        create one parent between them.
        """
        existing = study.user_attrs.get(PARENT_ATTR)
        if existing:
            self.parent_run_id = str(existing)
            return self.parent_run_id
        try:
            found = self.client.get_experiment_by_name(self.experiment)
            exp_id = found.experiment_id if found else self.client.create_experiment(
                self.experiment, artifact_location=self.artifact_location
            )  # fmt: skip
            run = self.client.create_run(
                exp_id, run_name=study.study_name, tags={"kelpseg.study": study.study_name}
            )
            items = [Param(k, v) for k, v in params.items()]
            for start in range(0, len(items), 100):
                self.client.log_batch(run.info.run_id, params=items[start : start + 100])
        except MlflowException as exc:
            raise KelpsegError(f"cannot create the study's MLflow run ({exc.message})",
                               self.tracking_uri) from exc  # fmt: skip
        self.parent_run_id = run.info.run_id
        study.set_user_attr(PARENT_ATTR, self.parent_run_id)
        return self.parent_run_id

    def trial_overrides(self, study_name: str, number: int) -> list[str]:
        """Config overrides that put a trial's training run under the parent."""
        return [
            format_override("tracking.uri", self.tracking_uri),
            format_override("tracking.experiment", self.experiment),
            format_override("tracking.run_name", f"{study_name}-trial-{number:05d}"),
            format_override("tracking.tags.optuna_study", study_name),
            format_override("tracking.tags.optuna_trial", str(number)),
        ]

    def link(self, trial: optuna.Trial) -> L.Callback:
        """A Lightning callback that records the trial's MLflow run id in the trial."""
        return _TrialRunLink(trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna callback: close the child run with the trial's state, log the value."""
        self._guard(self._after_trial, study, trial)

    def _after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        run_id = trial.user_attrs.get(RUN_ATTR)
        if run_id:
            self.client.set_tag(run_id, "optuna.state", trial.state.name)
            if trial.state in _END_STATUS:
                self.client.set_terminated(run_id, _END_STATUS[trial.state])
        if self.parent_run_id and trial.value is not None:
            self.client.log_batch(self.parent_run_id, metrics=[
                Metric("trial/value", float(trial.value), _now_ms(), trial.number)
            ])  # fmt: skip

    def on_stale(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """A dead worker's trial was marked failed: close its child run as FAILED."""
        run_id = trial.user_attrs.get(RUN_ATTR)
        if run_id:
            self._guard(self.client.set_tag, run_id, "optuna.state", "FAIL (worker lost)")
            self._guard(self.client.set_terminated, run_id, "FAILED")

    def log_summary(self, summary_dir: Path, metrics: dict[str, float], done: bool) -> None:
        """Upload the summary folder to the parent run; close the parent once ``done``."""
        if self.parent_run_id is None:
            return
        run_id = self.parent_run_id
        self._guard(self.client.log_artifacts, run_id, str(summary_dir), "summary")
        rows = [Metric(k, float(v), _now_ms(), 0) for k, v in metrics.items()]
        if rows:
            self._guard(self.client.log_batch, run_id, metrics=rows)
        if done:
            self._guard(self.client.set_terminated, run_id, "FINISHED")

    @staticmethod
    def _guard(func: Any, *args: Any, **kwargs: Any) -> None:
        # Tracking is a record of the study, not part of it: a tracking server that hiccups
        # must not fail a finished trial or stop the worker.
        try:
            func(*args, **kwargs)
        except (MlflowException, OSError) as exc:
            err_console.print(f"[yellow]warning:[/] MLflow: {exc}", highlight=False)


class _TrialRunLink(L.Callback):
    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, MlflowLogger) and logger.version:
                self.trial.set_user_attr(RUN_ATTR, logger.version)


def _now_ms() -> int:
    return int(time.time() * 1000)
