"""The best trial's config: written from any storage, loads as a TrainConfig, same parameters."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from kelpseg.config import load_config
from kelpseg.errors import KelpsegError
from kelpseg.nn.config import TrainConfig
from kelpseg.tune.best import load_study, write_best_config
from kelpseg.tune.study import run_study
from tests.tune.conftest import scored_objective


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_the_best_config_reproduces_the_best_trials_parameters(
    study_dir: Path, base_config: Path, space_file: Path, kind: str
) -> None:
    url = f"sqlite:///{study_dir / 's.db'}" if kind == "sqlite" else f"journal:{study_dir / 'j'}"
    run_study(base_config, space_file, 6, storage=url, study_name="s", out_dir=study_dir,
              seed=0, objective_fn=scored_objective, plots=False, show_progress=False,
              overrides=["data.batch_size=7"])  # fmt: skip
    path = write_best_config(url, "s", study_dir / "retrain.yaml")

    config = load_config(TrainConfig, path)
    best = load_study(url, "s").best_trial
    trial = TrainConfig.model_validate(best.user_attrs["kelpseg.config"])
    assert config.optim.lr == best.params["optim.lr"]
    assert config.optim.scheduler == best.params["optim.scheduler"]
    assert config.features.channels == best.user_attrs["kelpseg.values"]["features.channels"]
    assert config.data.batch_size == 7  # the study's own --set overrides are kept
    assert config.trainer.devices == 1  # "auto" became one device per trial
    # Everything but where the retrained run goes is the trial's config.
    assert config.output_dir == study_dir / f"best-trial-{best.number:05d}"
    assert config.tracking.run_name == f"s-best-trial-{best.number:05d}"
    same = {"output_dir", "tracking"}
    assert config.model_dump(exclude=same) == trial.model_dump(exclude=same)


def test_an_unknown_study_or_an_unfinished_one_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    optuna.create_study(storage=url, study_name="empty")
    with pytest.raises(KelpsegError, match="no study named 'nope' \\(studies here: empty\\)"):
        write_best_config(url, "nope", tmp_path / "best.yaml")
    with pytest.raises(KelpsegError, match="no complete trial yet"):
        write_best_config(url, "empty", tmp_path / "best.yaml")
    assert not (tmp_path / "best.yaml").exists()


def test_a_trial_not_run_by_kelpseg_tune_has_no_config_to_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    study = optuna.create_study(storage=url, study_name="foreign")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(KelpsegError, match="holds no kelpseg config"):
        write_best_config(url, "foreign", tmp_path / "best.yaml")
