"""Studies that really train (tiny U-Nets on generated tiles, CPU): MLflow runs, pruning,
the best config retrained, and two worker processes sharing one study."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from kelpseg.config import load_config, save_config
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.train import train
from kelpseg.tune.best import load_study
from kelpseg.tune.study import run_study
from tests.nn.model_fixtures import tiny_config
from tests.tune.conftest import write_yaml

LR_SPACE = {"params": {"optim.lr": {"type": "float", "low": 1.0e-4, "high": 0.3, "log": True}}}


@pytest.fixture
def tiny_run(tmp_path: Path, split_catalog_path: Path, band_stats_path: Path) -> Path:
    """A 2-epoch deterministic tiny training config with local MLflow tracking, as YAML."""
    config = tiny_config(
        split_catalog_path, band_stats_path, tmp_path / "unused",
        "trainer.max_epochs=2", "trainer.deterministic=true", "tracking.enabled=true",
        "tracking.log_images=false", "tracking.experiment=tiny-tune",
        "data.sampler.samples_per_epoch=16",
    )  # fmt: skip
    return save_config(config, tmp_path / "tiny.yaml")


@pytest.mark.slow
def test_a_study_on_demo_data_beats_its_worst_trial_and_its_best_config_retrains_it(
    tmp_path: Path, tiny_run: Path
) -> None:
    out = tmp_path / "study"
    space = write_yaml(tmp_path / "lr.yaml", LR_SPACE)
    summary = run_study(tiny_run, space, 4, study_name="demo", out_dir=out, sampler="random",
                        seed=0, pruner="none", show_progress=False)  # fmt: skip

    study = load_study(summary.storage, "demo")
    values = [t.value for t in study.trials]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert summary.best_value == max(values) > min(values)

    # MLflow: one parent run, each trial a child run, the summary on the parent.
    client = MlflowClient(f"sqlite:///{(out / 'mlflow.db').resolve()}")
    parent = client.get_run(summary.parent_run_id)
    assert parent.info.run_name == "demo" and parent.info.status == "FINISHED"
    assert parent.data.metrics["study/best_value"] == pytest.approx(summary.best_value)
    for trial in study.trials:
        child = client.get_run(trial.user_attrs["kelpseg.mlflow_run_id"])
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.run_name == f"demo-trial-{trial.number:05d}"
        assert float(child.data.params["optim.lr"]) == pytest.approx(trial.params["optim.lr"])
        assert child.data.tags["optuna.state"] == "COMPLETE"
    history = client.get_metric_history(parent.info.run_id, "trial/value")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "summary")}
    assert {"summary/summary.json", "summary/optimization_history.png"} <= artifacts
    assert not any((out / "trials").glob("*/checkpoints"))  # trial checkpoints cleaned up

    # The best config loads, holds the best trial's parameters, and retrains to its score.
    best = load_config(TrainConfig, summary.best_config)
    assert best.optim.lr == summary.best_params["optim.lr"]
    retrained = train(best)
    assert retrained.best_dice == pytest.approx(summary.best_value, abs=1e-6)


@pytest.mark.slow
def test_the_lightning_callback_prunes_a_real_training_run(tmp_path: Path, tiny_run: Path) -> None:
    space = write_yaml(tmp_path / "lr.yaml", LR_SPACE)
    # No Dice reaches 1.01: every trial is "clearly worse" once past the warm-up epoch.
    pruner = optuna.pruners.ThresholdPruner(lower=1.01, n_warmup_steps=1)
    summary = run_study(tiny_run, space, 1, study_name="pruned", out_dir=tmp_path / "s",
                        pruner=pruner, overrides=["trainer.max_epochs=4"], plots=False,
                        show_progress=False)  # fmt: skip

    trial = load_study(summary.storage, "pruned").trials[0]
    assert trial.state == TrialState.PRUNED and summary.n_pruned == 1
    assert sorted(trial.intermediate_values) == [0, 1]  # epochs 2 and 3 never ran
    client = MlflowClient(f"sqlite:///{(tmp_path / 's' / 'mlflow.db').resolve()}")
    child = client.get_run(trial.user_attrs["kelpseg.mlflow_run_id"])
    assert child.info.status == "KILLED" and child.data.tags["optuna.state"] == "PRUNED"
    dice = [m.value for m in client.get_metric_history(child.info.run_id, "val/dice")]
    assert dice == pytest.approx([trial.intermediate_values[0], trial.intermediate_values[1]])


WORKER = textwrap.dedent(
    """
    import sys
    from kelpseg.tune.study import run_study

    config, space, url, out = sys.argv[1:5]
    run_study(config, space, 3, storage=url, study_name="two", out_dir=out, pruner="none",
              seed=1, plots=False, show_progress=False)
    """
)


@pytest.mark.slow
def test_two_training_workers_share_a_study_and_one_mlflow_parent(
    tmp_path: Path, tiny_run: Path
) -> None:
    space = write_yaml(tmp_path / "lr.yaml", LR_SPACE)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    url, out = f"journal:{tmp_path / 'two.log'}", tmp_path / "two"
    args = [sys.executable, str(script), str(tiny_run), str(space), url, str(out)]
    workers = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for _ in range(2)]  # fmt: skip
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(o[-3000:] for o in outputs)

    study = load_study(url, "two")
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    client = MlflowClient(f"sqlite:///{(out / 'mlflow.db').resolve()}")
    parent = study.user_attrs["kelpseg.parent_run_id"]
    runs = {t.user_attrs["kelpseg.mlflow_run_id"] for t in study.trials}
    assert len(runs) == 3
    assert {client.get_run(r).data.tags["mlflow.parentRunId"] for r in runs} == {parent}
    ran = [line for o in outputs for line in o.splitlines() if line.startswith("trial ")]
    assert len(ran) == 3  # each trial reported by exactly one worker
    assert json.loads((out / "summary" / "summary.json").read_text())["n_complete"] == 3
