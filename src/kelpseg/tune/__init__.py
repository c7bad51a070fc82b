"""Hyperparameter search with Optuna: YAML search spaces, pruning, shared storages, MLflow.

``run_study`` runs one worker of a study (``kelpseg tune``); any number of workers pointed at one
storage share it. See docs/tuning.md and, for many workers and machines, docs/scaling.md.
"""

from kelpseg.tune.best import best_trial_config, load_study, write_best_config
from kelpseg.tune.objective import ObjectiveFn, TrainObjective, trial_config
from kelpseg.tune.pruning import PruningCallback
from kelpseg.tune.samplers import PRUNERS, SAMPLERS
from kelpseg.tune.space import SearchSpace, format_override, load_space, parse_space, pick_top_k
from kelpseg.tune.storage import StudyStorage, default_storage_url, open_storage, safe_url
from kelpseg.tune.study import StudyOptions, run_study
from kelpseg.tune.summary import StudySummary, summarize_study
from kelpseg.tune.tracking import StudyTracker

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "ObjectiveFn",
    "PruningCallback",
    "SearchSpace",
    "StudyOptions",
    "StudyStorage",
    "StudySummary",
    "StudyTracker",
    "TrainObjective",
    "best_trial_config",
    "default_storage_url",
    "format_override",
    "load_space",
    "load_study",
    "open_storage",
    "parse_space",
    "pick_top_k",
    "run_study",
    "safe_url",
    "summarize_study",
    "trial_config",
    "write_best_config",
]
