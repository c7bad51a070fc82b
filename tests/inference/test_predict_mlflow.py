"""Predicting from MLflow run ids against a local sqlite tracking store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from kelpseg.errors import KelpsegError
from kelpseg.inference.loading import THRESHOLD_TAG, is_run_id
from kelpseg.inference.predict import load_predictor
from tests.inference.test_predict import raw_batch, save_checkpoint, tiny_module


def _log_run(client: MlflowClient, exp_id: str, ckpt: Path, dice: list[float]) -> str:
    """A training run as training logs it: val/dice per epoch and model/best.ckpt."""
    run_id = client.create_run(exp_id).info.run_id
    for epoch, value in enumerate(dice):
        client.log_metric(run_id, "val/dice", value, step=epoch)
    client.log_artifact(run_id, str(ckpt), artifact_path="model")
    client.set_terminated(run_id)
    return run_id


@pytest.mark.slow
def test_models_load_from_run_ids_with_their_threshold_and_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("kelpseg", artifact_location=(tmp_path / "art").as_uri())
    first = save_checkpoint(tiny_module(seed=1), tmp_path / "a" / "best.ckpt")
    second = save_checkpoint(tiny_module(seed=2), tmp_path / "b" / "best.ckpt")
    run_a = _log_run(client, exp_id, first, [0.6, 0.8, 0.7])
    run_b = _log_run(client, exp_id, second, [0.5, 0.6])
    client.set_tag(run_a, THRESHOLD_TAG, "0.42")
    assert is_run_id(run_a) and not is_run_id(first)

    from_run = load_predictor([run_a], tracking_uri=uri, device="cpu")
    from_file = load_predictor([first], device="cpu")
    raw = raw_batch(2)
    assert np.array_equal(from_run.predict_batch(raw), from_file.predict_batch(raw))
    assert from_run.threshold == 0.42 and from_run.threshold_source == "mlflow tag"
    assert from_file.threshold == 0.5  # a bare checkpoint: the training config's threshold

    # Best val/dice of each run: 0.8 and 0.6 -> weights 1.0 and 0.2 (normalised 5/6, 1/6).
    both = load_predictor([run_a, run_b], weights_from_scores=True, tracking_uri=uri)
    np.testing.assert_allclose(both.weights, [5 / 6, 1 / 6])
    assert both.threshold == pytest.approx(5 / 6 * 0.42 + 1 / 6 * 0.5)

    with pytest.raises(KelpsegError, match="run 0123456789abcdef does not exist"):
        load_predictor(["0123456789abcdef"], tracking_uri=uri)
    with pytest.raises(KelpsegError, match="typo.db does not exist"):
        load_predictor([run_a], tracking_uri=f"sqlite:///{tmp_path / 'typo.db'}")
    assert not (tmp_path / "typo.db").exists()
    # A mistyped folder name reads as a run id; the default store is not created for it.
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # Without a tracking URI a bare name is a package name (issue 20: the message names the fix).
    with pytest.raises(KelpsegError, match="no model named runz; see `kelpseg models list`"):
        load_predictor(["runz"])
    assert not (tmp_path / "elsewhere" / "mlflow.db").exists()
