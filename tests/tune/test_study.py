"""run_study with crafted objectives: shared storages, stale workers, pruning, reproducibility."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from kelpseg.errors import KelpsegError
from kelpseg.nn.config import TrainConfig
from kelpseg.tune.best import load_study
from kelpseg.tune.study import run_study
from tests.tune.conftest import fork_context, lr_score, scored_objective

STORAGES = ["sqlite", "journal"]


def storage_url(kind: str, folder: Path) -> str:
    """One shared storage of each kind in ``folder``."""
    return f"sqlite:///{folder / 'study.db'}" if kind == "sqlite" else f"journal:{folder / 'j.log'}"


def test_a_study_writes_its_summary_best_config_and_options(
    study_dir: Path, base_config: Path, space_file: Path
) -> None:
    out = study_dir
    summary = run_study(base_config, space_file, 8, out_dir=out, seed=3, pruner="none",
                        objective_fn=scored_objective, show_progress=False)  # fmt: skip

    assert (summary.n_trials, summary.n_complete, summary.n_running) == (8, 8, 0)
    assert summary.study_name == "base-space"  # <config stem>-<space stem>
    assert summary.storage == f"sqlite:///{out.resolve() / 'optuna.db'}"
    study = load_study(summary.storage, summary.study_name)
    values = [t.value for t in study.trials]
    assert summary.best_value == max(values) and summary.best_trial == values.index(max(values))
    best = study.trials[summary.best_trial]
    assert summary.best_values["optim.lr"] == best.params["optim.lr"]
    assert len(summary.best_values["features.channels"]) == 5
    # Each trial ran the config its parameters describe.
    for trial in study.trials:
        config = TrainConfig.model_validate(trial.user_attrs["kelpseg.config"])
        assert config.optim.lr == trial.params["optim.lr"]
        assert trial.value == pytest.approx(lr_score(config))
        assert config.output_dir == (out / "trials" / f"trial-{trial.number:05d}").resolve()
    assert set(summary.importances) == set(best.params)
    assert sum(summary.importances.values()) == pytest.approx(1.0)
    files = {p.name for p in (out / "summary").iterdir()}
    for plot in ("optimization_history", "param_importances", "parallel_coordinate",
                 "intermediate_values"):  # fmt: skip
        assert {f"{plot}.png", f"{plot}.html"} <= files, plot
    assert {"summary.json", "trials.csv", "plotly.min.js"} <= files
    assert json.loads((out / "summary" / "summary.json").read_text())["best_trial"] == best.number
    assert (out / "summary" / "optimization_history.png").read_bytes()[:4] == b"\x89PNG"
    assert "plotly.min.js" in (out / "summary" / "param_importances.html").read_text()
    assert summary.best_config == out / "best.yaml" and (out / "tune.yaml").is_file()


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_fixed_seed_makes_the_suggestions_reproducible(
    study_dir: Path, base_config: Path, space_file: Path, sampler: str
) -> None:
    def params(folder: str, seed: int, n: int) -> list[dict[str, Any]]:
        summary = run_study(base_config, space_file, n, out_dir=study_dir / folder, seed=seed,
                            sampler=sampler, pruner="none", objective_fn=scored_objective,
                            plots=False, show_progress=False)  # fmt: skip
        return [t.params for t in load_study(summary.storage, summary.study_name).trials]

    n = 11 if sampler == "tpe" else 4  # TPE: its 10 random start-up trials, one model-based
    first, again = params("a", 7, n), params("b", 7, n)
    assert first == again
    assert len({json.dumps(p, sort_keys=True) for p in first}) == n
    assert params("c", 8, 1)[0] != first[0]


def test_cmaes_runs_with_its_package_or_says_which_one_is_missing(
    study_dir: Path, base_config: Path, space_file: Path
) -> None:
    tmp_path = study_dir
    try:
        import cmaes  # noqa: F401
    except ImportError:
        with pytest.raises(KelpsegError, match="pip install cmaes"):
            run_study(base_config, space_file, 2, out_dir=tmp_path, sampler="cmaes",
                      objective_fn=scored_objective, show_progress=False)  # fmt: skip
        return
    summary = run_study(base_config, space_file, 4, out_dir=tmp_path, sampler="cmaes", seed=1,
                        objective_fn=scored_objective, show_progress=False)  # fmt: skip
    assert summary.n_complete == 4


def test_the_median_pruner_stops_a_clearly_worse_trial(
    study_dir: Path, base_config: Path, space_file: Path
) -> None:
    tmp_path = study_dir
    # Five good trials (lr near 1e-3), then one far off (lr 1e-5): its curve is below the
    # median from the first judged epoch on.
    study = optuna.create_study(study_name="prune", direction="maximize",
                                storage=f"sqlite:///{tmp_path / 'p.db'}")  # fmt: skip
    for lr in (1e-3, 2e-3, 5e-4, 1.5e-3, 8e-4, 1e-5):
        study.enqueue_trial({"optim.lr": lr, "optim.scheduler": "none"})
    summary = run_study(base_config, space_file, 6, storage=f"sqlite:///{tmp_path / 'p.db'}",
                        study_name="prune", out_dir=tmp_path, pruner="median",
                        objective_fn=scored_objective, plots=False, show_progress=False)  # fmt: skip
    trials = load_study(summary.storage, "prune").trials
    assert [t.state for t in trials[:5]] == [TrialState.COMPLETE] * 5
    assert trials[5].state == TrialState.PRUNED
    assert sorted(trials[5].intermediate_values) == [0, 1]  # stopped at epoch 1 of 4
    assert all(len(t.intermediate_values) == 4 for t in trials[:5])
    assert summary.n_pruned == 1


def _sharing_worker(url: str, base: str, space: str, log_dir: str, n_trials: int) -> None:
    def objective(trial: optuna.Trial, config: TrainConfig) -> float:
        # Both workers must have started before either runs its first trial, so both share.
        Path(log_dir, f"ready-{os.getpid()}").touch()
        deadline = time.monotonic() + 60
        while len(list(Path(log_dir).glob("ready-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        Path(log_dir, f"ran-{trial.number}-{os.getpid()}").touch()
        time.sleep(0.1)
        return lr_score(config)

    run_study(base, space, n_trials, storage=url, study_name="shared", out_dir=log_dir,
              seed=5, objective_fn=objective, plots=False, show_progress=False)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORAGES)
def test_two_worker_processes_share_one_study_to_exactly_n_trials(
    study_dir: Path, base_config: Path, space_file: Path, kind: str
) -> None:
    tmp_path = study_dir
    url, n = storage_url(kind, tmp_path), 9
    args = (url, str(base_config), str(space_file), str(tmp_path), n)
    workers = [fork_context().Process(target=_sharing_worker, args=args) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    assert [w.exitcode for w in workers] == [0, 0]

    trials = load_study(url, "shared").trials
    assert [t.number for t in trials] == list(range(n))  # none lost, none extra
    assert all(t.state == TrialState.COMPLETE for t in trials)
    ran = [p.name.split("-")[1:] for p in tmp_path.glob("ran-*")]
    assert sorted(int(number) for number, _ in ran) == list(range(n))  # each run exactly once
    assert {pid for _, pid in ran} == {str(w.pid) for w in workers}  # both did work
    # The two workers sampled with different seeds: no trial repeats another's parameters.
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == n


def _hanging_worker(url: str, base: str, space: str, log_dir: str) -> None:
    def objective(trial: optuna.Trial, config: TrainConfig) -> float:
        Path(log_dir, "running").touch()
        time.sleep(600)  # killed long before
        return 0.0

    run_study(base, space, 3, storage=url, study_name="killed", out_dir=log_dir,
              heartbeat_interval=1, grace_period=2, objective_fn=objective, plots=False,
              show_progress=False)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORAGES)
def test_a_killed_workers_trial_is_marked_failed_and_the_study_goes_on(
    study_dir: Path, base_config: Path, space_file: Path, kind: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    tmp_path = study_dir
    url = storage_url(kind, tmp_path)
    args = (url, str(base_config), str(space_file), str(tmp_path))
    victim = fork_context().Process(target=_hanging_worker, args=args)
    victim.start()
    deadline = time.monotonic() + 120
    while not (tmp_path / "running").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victim.is_alive()
    os.kill(victim.pid, signal.SIGKILL)  # no clean-up at all, like a lost machine
    victim.join()
    assert load_study(url, "killed").trials[0].state == TrialState.RUNNING
    time.sleep(3)  # past the 2 s grace period

    summary = run_study(base_config, space_file, 3, storage=url, study_name="killed",
                        out_dir=tmp_path, heartbeat_interval=1, grace_period=2,
                        objective_fn=scored_objective, plots=False, show_progress=False)  # fmt: skip
    states = [t.state for t in load_study(url, "killed").trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert (summary.n_failed, summary.n_complete, summary.n_running) == (1, 2, 0)
    assert "trial 0: its worker stopped beating; marked failed" in capsys.readouterr().err


def test_a_worker_whose_trials_keep_failing_stops_with_the_reason(
    study_dir: Path, base_config: Path, space_file: Path
) -> None:
    tmp_path = study_dir

    def broken(trial: optuna.Trial, config: TrainConfig) -> float:
        raise KelpsegError("catalog does not exist", "catalog.parquet")

    with pytest.raises(KelpsegError, match="3 trials in a row failed.*catalog does not exist"):
        run_study(base_config, space_file, 10, out_dir=tmp_path, objective_fn=broken,
                  show_progress=False)  # fmt: skip
    assert len(load_study(f"sqlite:///{tmp_path / 'optuna.db'}", "base-space").trials) == 3


def test_study_settings_that_cannot_work_are_refused_before_any_trial(
    study_dir: Path, base_config: Path, space_file: Path
) -> None:
    def run(**kwargs: Any) -> None:
        options = {"out_dir": study_dir, "objective_fn": scored_objective, "plots": False,
                   "show_progress": False}  # fmt: skip
        run_study(base_config, space_file, 2, **{**options, **kwargs})

    with pytest.raises(KelpsegError, match="one device"):
        run(overrides=["trainer.devices=2"])
    with pytest.raises(KelpsegError, match="validation fold"):
        run(overrides=["data.fold=null"])
    with pytest.raises(KelpsegError, match="unknown pruner"):
        run(pruner="patient")
    with pytest.raises(KelpsegError, match="sampler"):
        run(sampler="grid")
    run(study_name="up", direction="maximize")
    with pytest.raises(KelpsegError, match="exists and is to maximize, not minimize"):
        run(study_name="up", direction="minimize")


def test_a_summary_read_before_another_worker_finished_is_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last writer must not keep a stale count: another worker's trial ends mid-write."""
    from kelpseg.tune import study as study_module
    from kelpseg.tune.storage import open_storage

    opened = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=opened.storage, study_name="race", direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    other = study.ask()  # another worker's trial, still running
    write = study_module._write_summary
    written: list[int] = []

    def racing_write(*args: Any) -> Any:
        summary = write(*args)
        written.append(summary.n_complete)
        if len(written) == 1:
            study.tell(other, 0.5)  # it finishes while this worker writes
        return summary

    monkeypatch.setattr(study_module, "_write_summary", racing_write)
    summary = study_module._finish(study, opened, tmp_path / "out", None, False)
    assert written == [1, 2] and summary.n_complete == 2
    on_disk = json.loads((tmp_path / "out" / "summary" / "summary.json").read_text())
    assert on_disk["n_complete"] == 2
