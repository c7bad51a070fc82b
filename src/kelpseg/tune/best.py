"""The best trial's full training config, ready for ``kelpseg train --config``.

Every trial stores its resolved :class:`~kelpseg.nn.config.TrainConfig` in the study (user
attribute ``kelpseg.config``), so the best config is read back exactly as the trial ran it: same
data, features, model, optimiser, trainer settings and seed. Only where the retrained run goes
changes: a new ``output_dir`` beside the trials, and its own MLflow run name and tags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from kelpseg.config import save_config, validate_config
from kelpseg.errors import KelpsegError
from kelpseg.nn.config import TrainConfig
from kelpseg.tune.storage import StudyStorage, open_storage

CONFIG_ATTR = "kelpseg.config"


def load_study(storage: str | StudyStorage, study_name: str) -> optuna.Study:
    """Open an existing study by name.

    Raises:
        KelpsegError: the storage holds no study of that name (the message lists those it has).
    """
    opened = open_storage(storage) if isinstance(storage, str) else storage
    names = optuna.get_all_study_names(opened.storage)
    if study_name not in names:
        have = ", ".join(sorted(names)) or "none"
        raise KelpsegError(f"no study named {study_name!r} (studies here: {have})", opened.url)
    return optuna.load_study(study_name=study_name, storage=opened.storage)


def best_trial_config(
    study: optuna.Study, output_dir: str | os.PathLike[str] | None = None
) -> TrainConfig:
    """The best complete trial's config, pointed at a fresh ``output_dir``.

    Args:
        study: the study.
        output_dir: where the retrained run goes (default: ``best-trial-NNNNN`` in the study
            folder, beside ``trials/``).

    Raises:
        KelpsegError: no complete trial yet, or the best trial was not run by ``kelpseg tune``.
    """
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise KelpsegError(f"study {study.study_name!r} has no complete trial yet")
    best = study.best_trial
    data: dict[str, Any] | None = best.user_attrs.get(CONFIG_ATTR)
    if not isinstance(data, dict):
        raise KelpsegError(
            f"trial {best.number} of study {study.study_name!r} holds no kelpseg config "
            "(was it run by kelpseg tune?)"
        )
    name = f"best-trial-{best.number:05d}"
    trial_dir = Path(data.get("output_dir") or ".")
    data["output_dir"] = str(output_dir or trial_dir.parent.parent / name)
    tracking = data.setdefault("tracking", {})
    tracking["run_name"] = f"{study.study_name}-{name}"
    tracking["tags"] = {"tuned_from": f"{study.study_name}/trial-{best.number}"}
    return validate_config(TrainConfig, data, f"trial {best.number} of {study.study_name}")


def write_best_config(
    storage: str | StudyStorage,
    study_name: str,
    out_path: str | os.PathLike[str],
    *,
    output_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the best trial's full config as YAML (atomically); returns the path.

    Args:
        storage: the study's storage URL (as ``kelpseg tune --storage`` takes) or an opened one.
        study_name: the study.
        out_path: the YAML file to write.
        output_dir: the retrained run's folder (see :func:`best_trial_config`).
    """
    study = load_study(storage, study_name)
    return save_config(best_trial_config(study, output_dir), out_path)
