"""Run (a worker of) a hyperparameter study: ``kelpseg tune`` as a library call.

Any number of processes, on any number of machines, pointed at one storage and study name share
the work: each one loops "start the next trial if fewer than ``n_trials`` have started, run it",
so together they stop at ``n_trials`` in total (counting complete, pruned and failed trials). A
worker that dies mid-trial stops beating; the next worker to look marks its trial FAIL.

With a fixed ``seed`` the n-th worker to join samples with ``seed + n``: one worker alone is
reproducible, and parallel workers never replay each other's suggestions.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import optuna
import yaml
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState
from pydantic import Field

from kelpseg.config import StrictModel, save_config, validate_config
from kelpseg.console import console, err_console, progress
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.tracking import flatten_config
from kelpseg.tune.best import CONFIG_ATTR, best_trial_config
from kelpseg.tune.objective import (
    ObjectiveFn,
    TrainObjective,
    check_space,
    load_base_config,
    trial_config,
)
from kelpseg.tune.samplers import PRUNERS, SAMPLERS
from kelpseg.tune.space import SearchSpace, load_space
from kelpseg.tune.storage import StudyStorage, default_storage_url, open_storage
from kelpseg.tune.summary import VALUES_ATTR, StudySummary, summarize_study
from kelpseg.tune.tracking import StudyTracker

OVERRIDES_ATTR = "kelpseg.overrides"
ERROR_ATTR = "kelpseg.error"
WORKERS_ATTR = "kelpseg.workers"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
STARTED = (*FINISHED, TrialState.RUNNING)
# A worker whose trials keep failing has a problem no new trial will fix (a missing file...).
MAX_CONSECUTIVE_FAILURES = 3


class StudyOptions(StrictModel):
    """How a worker ran its study; saved as ``tune.yaml`` in the study folder."""

    config: Path
    space: Path | None = None
    n_trials: int = Field(ge=1)
    storage: str
    study_name: str = Field(min_length=1)
    sampler: Literal["tpe", "random", "cmaes"] = "tpe"
    seed: int | None = Field(default=None, ge=0)
    pruner: str = "median"
    direction: Literal["maximize", "minimize"] = "maximize"
    out_dir: Path
    overrides: list[str] = Field(default_factory=list)
    heartbeat_interval: int = Field(default=60, ge=1)
    grace_period: int | None = Field(default=None, ge=1)
    keep_checkpoints: bool = False


def run_study(
    config_path: str | os.PathLike[str],
    space: str | os.PathLike[str] | SearchSpace,
    n_trials: int,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    sampler: str = "tpe",
    seed: int | None = None,
    pruner: str | BasePruner = "median",
    direction: Literal["maximize", "minimize"] = "maximize",
    out_dir: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
    objective_fn: ObjectiveFn | None = None,
    heartbeat_interval: int = 60,
    grace_period: int | None = None,
    keep_checkpoints: bool = False,
    plots: bool = True,
    show_progress: bool = True,
) -> StudySummary:
    """Run trials of a study until it holds ``n_trials`` in total; summarise it.

    Args:
        config_path: the base training config (YAML).
        space: a search-space YAML file or a :class:`SearchSpace`.
        n_trials: the study's total, shared by every worker (complete + pruned + failed).
        storage: study storage URL (see :func:`~kelpseg.tune.storage.open_storage`); default
            ``sqlite:///<out_dir>/optuna.db``.
        study_name: default ``<config stem>-<space stem>``.
        sampler: ``tpe``, ``random`` or ``cmaes``.
        seed: sampler seed (a study run by one worker is then reproducible).
        pruner: ``median``, ``hyperband``, ``none``, or an Optuna pruner.
        direction: ``maximize`` val Dice (the default objective) or ``minimize``.
        out_dir: study folder (trials, summary, default storage); default
            ``runs/tune/<study_name>``.
        overrides: ``key=value`` overrides applied to every trial.
        objective_fn: ``(trial, config) -> value``; default: train the config
            (:class:`~kelpseg.tune.objective.TrainObjective`).
        heartbeat_interval, grace_period: seconds between heartbeats of a running trial, and
            without one before its worker counts as dead (default twice the interval).
        keep_checkpoints: keep each trial's full training checkpoints.
        plots: draw the summary plots when this worker finishes.
        show_progress: show a progress bar of the study's trials.

    Raises:
        KelpsegError: bad config, space or storage, a study of the other direction, or
            repeated failing trials in this worker.
    """
    space_obj = space if isinstance(space, SearchSpace) else load_space(space)
    space_stem = "space" if isinstance(space, SearchSpace) else Path(space).stem
    name = study_name or f"{Path(config_path).stem}-{space_stem}"
    folder = Path(out_dir) if out_dir is not None else Path("runs/tune") / name
    pruner_name = pruner if isinstance(pruner, str) else type(pruner).__name__
    options = validate_config(StudyOptions, {
        "config": Path(config_path), "space": None if isinstance(space, SearchSpace) else space,
        "n_trials": n_trials, "storage": storage or default_storage_url(folder),
        "study_name": name, "sampler": sampler, "seed": seed, "pruner": pruner_name,
        "direction": direction, "out_dir": folder, "overrides": list(overrides or []),
        "heartbeat_interval": heartbeat_interval, "grace_period": grace_period,
        "keep_checkpoints": keep_checkpoints,
    }, "tune")  # fmt: skip
    if isinstance(pruner, str) and pruner not in PRUNERS:
        raise KelpsegError(f"unknown pruner {pruner!r}; one of {', '.join(PRUNERS)}", "pruner")
    base, base_overrides = load_base_config(config_path, options.overrides)
    check_space(space_obj, config_path, base_overrides)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KelpsegError(f"cannot create the study folder ({exc.strerror})", folder) from exc
    tracker = StudyTracker.from_config(base, folder) if objective_fn is None else None
    opened = open_storage(
        options.storage, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
        on_stale=_stale_reporter(tracker),
    )  # fmt: skip
    options.storage = opened.url
    study = _join_study(opened, options, base.trainer.max_epochs, pruner, tracker, base)
    save_config(options, folder / "tune.yaml")
    with atomic_path(folder / "space.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(space_obj.model_dump(mode="json"), sort_keys=False))
    objective = objective_fn or TrainObjective(tracker, keep_checkpoints)
    with _quiet_optuna():
        _work(study, opened, options, space_obj, base_overrides, objective, tracker, show_progress)
        return _finish(study, opened, folder, tracker, plots)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial lines (and failure tracebacks) repeat kelpseg's own one-liners."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def _join_study(
    opened: StudyStorage,
    options: StudyOptions,
    max_epochs: int,
    pruner: str | BasePruner,
    tracker: StudyTracker | None,
    base: TrainConfig,
) -> optuna.Study:
    """Create or load the study, take a worker number, and share the MLflow parent run."""
    with opened.slot_lock():
        study = optuna.create_study(
            storage=opened.storage, study_name=options.study_name,
            direction=options.direction, load_if_exists=True,
        )  # fmt: skip
        if study.direction.name.lower() != options.direction:
            raise KelpsegError(
                f"study {options.study_name!r} exists and is to "
                f"{study.direction.name.lower()}, not {options.direction}", opened.url,
            )  # fmt: skip
        worker = int(study.user_attrs.get(WORKERS_ATTR, 0))
        study.set_user_attr(WORKERS_ATTR, worker + 1)
        if tracker is not None:
            params = flatten_config(base.model_dump(mode="json"))
            params.update({f"tune.{k}": str(v) for k, v in options.model_dump().items()})
            tracker.ensure_parent(study, params)
    seed = None if options.seed is None else options.seed + worker
    chosen = PRUNERS[pruner](max_epochs) if isinstance(pruner, str) else pruner
    return optuna.load_study(
        study_name=options.study_name, storage=opened.storage,
        sampler=SAMPLERS[options.sampler](seed), pruner=chosen,
    )  # fmt: skip


def _work(
    study: optuna.Study,
    opened: StudyStorage,
    options: StudyOptions,
    space: SearchSpace,
    base_overrides: list[str],
    objective: ObjectiveFn,
    tracker: StudyTracker | None,
    show_progress: bool,
) -> None:
    """This worker's loop: claim a trial slot under the lock, run it, repeat until N started."""
    lock = opened.slot_lock()

    def run_trial(trial: optuna.Trial) -> float:
        lock.release()  # the trial exists now: other workers may claim the next slot
        with opened.heartbeat(trial):
            values = space.suggest(trial)
            extra = space.overrides(values)
            trial.set_user_attr(VALUES_ATTR, values)
            trial.set_user_attr(OVERRIDES_ATTR, extra)
            config = trial_config(
                trial, options.config, base_overrides, extra, options.out_dir, tracker
            )
            trial.set_user_attr(CONFIG_ATTR, config.model_dump(mode="json"))
            try:
                return objective(trial, config)
            except optuna.TrialPruned:
                raise
            except Exception as exc:
                # Kept in the study: the reason a trial failed, for every worker to see.
                trial.set_user_attr(ERROR_ATTR, f"{type(exc).__name__}: {exc}".splitlines()[0])
                raise

    mine: list[FrozenTrial] = []  # this worker's finished trials
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [
        optuna.study.MaxTrialsCallback(options.n_trials, states=FINISHED),
        _report_trial,
        lambda _study, trial: mine.append(trial),
    ]
    if tracker is not None:
        callbacks.insert(0, tracker.after_trial)
    failures = 0
    with progress(disable=not show_progress) as bar:
        task = bar.add_task(f"study {options.study_name}", total=options.n_trials)
        while True:
            lock.acquire()
            try:
                opened.fail_stale_trials(study)
                if len(study.get_trials(deepcopy=False, states=STARTED)) >= options.n_trials:
                    break
                # Optuna records an exception as a FAIL trial; the worker goes on to the next.
                study.optimize(run_trial, n_trials=1, callbacks=callbacks, catch=(Exception,))
            finally:
                lock.release()
            failed = bool(mine) and mine[-1].state == TrialState.FAIL
            failures = failures + 1 if failed else 0
            if failures >= MAX_CONSECUTIVE_FAILURES:
                reason = mine[-1].user_attrs.get(ERROR_ATTR, "see the log above")
                raise KelpsegError(f"{failures} trials in a row failed; last: {reason}")
            bar.update(task, completed=len(study.get_trials(deepcopy=False, states=FINISHED)))


def _report_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    value = "-" if trial.value is None else f"{trial.value:.4f}"
    line = f"trial {trial.number}: {trial.state.name.lower()} value {value}"
    if any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        line += f" (best {study.best_value:.4f}, trial {study.best_trial.number})"
    if trial.state == TrialState.FAIL:
        line += f" - {trial.user_attrs.get(ERROR_ATTR, 'no error recorded')}"
    console.print(line, highlight=False)


def _stale_reporter(
    tracker: StudyTracker | None,
) -> Callable[[optuna.Study, FrozenTrial], None]:
    def report(study: optuna.Study, trial: FrozenTrial) -> None:
        err_console.print(f"trial {trial.number}: its worker stopped beating; marked failed")
        if tracker is not None:
            tracker.on_stale(study, trial)

    return report


def _finish(
    study: optuna.Study,
    opened: StudyStorage,
    folder: Path,
    tracker: StudyTracker | None,
    plots: bool,
) -> StudySummary:
    """Summarise the study, write the best config, upload both to the parent run.

    Workers sharing a study finish at different times, and each writes the summary. One that
    read the study while another's last trial still ran must not overwrite the newer summary
    written meanwhile, so a worker writes again while the trials' states change under it.
    """
    for _ in range(_SUMMARY_TRIES):
        before = _trial_states(study)
        summary = _write_summary(study, opened, folder, tracker, plots)
        if _trial_states(study) == before:
            break
    return summary


#: Summaries a worker writes at most while other workers' trials finish under it.
_SUMMARY_TRIES = 5


def _trial_states(study: optuna.Study) -> list[tuple[int, TrialState]]:
    return [(t.number, t.state) for t in study.get_trials(deepcopy=False)]


def _write_summary(
    study: optuna.Study,
    opened: StudyStorage,
    folder: Path,
    tracker: StudyTracker | None,
    plots: bool,
) -> StudySummary:
    summary = summarize_study(study, folder / "summary", opened.url, plots)
    if summary.best_trial is not None:
        try:
            best = best_trial_config(study)
            summary.best_config = save_config(best, folder / "best.yaml")
        except KelpsegError as exc:  # a best trial run by a custom objective without a config
            summary.skipped["best_config"] = exc.message
    if tracker is not None:
        summary.parent_run_id = tracker.parent_run_id
        metrics: dict[str, float] = {
            "study/n_trials": summary.n_trials,
            "study/n_pruned": summary.n_pruned,
        }
        if summary.best_value is not None:
            metrics["study/best_value"] = summary.best_value
        tracker.log_summary(folder / "summary", metrics, done=summary.n_running == 0)
    summary.to_json(folder / "summary" / "summary.json")
    return summary
