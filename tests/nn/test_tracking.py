"""MLflow tracking: metric x-axes, params, and a real ``mlflow server`` on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from mlflow import MlflowClient

from kelpseg.errors import KelpsegError
from kelpseg.nn.figures import confusion_figure
from kelpseg.nn.tracking import MlflowLogger, flatten_config, load_run
from kelpseg.nn.train import train
from tests.nn import model_fixtures
from tests.nn.model_fixtures import tiny_config

band_stats_path = model_fixtures.band_stats_path  # the fixture, visible to pytest here


def test_flatten_config_gives_dotted_string_params() -> None:
    flat = flatten_config({"optim": {"lr": 3e-4, "betas": [0.9, 0.99]}, "name": "x", "tags": {}})
    assert flat == {"optim.lr": "0.0003", "optim.betas": "[0.9, 0.99]", "name": "x", "tags": "{}"}
    assert len(flatten_config({"long": "y" * 10_000})["long"]) == 6000  # MLflow's limit


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One local store for the unit tests (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'm.db'}"


def test_step_metrics_use_the_step_and_the_rest_the_epoch(tmp_path: Path, sqlite_uri: str) -> None:
    logger = MlflowLogger(sqlite_uri, "unit", run_name="r", run_file=tmp_path / "run.json")
    logger.log_metrics({"step/loss": 0.5, "train/loss": 0.4, "val/dice": 0.7, "epoch": 3}, step=41)
    logger.log_params({f"p{i}": str(i) for i in range(250)})  # more than one MLflow batch
    logger.log_figure(confusion_figure(torch.tensor([[90, 3], [2, 5]]).numpy()), "cm.png")
    logger.finalize("success")
    client = MlflowClient(logger.tracking_uri)
    run_id = json.loads((tmp_path / "run.json").read_text())["run_id"]
    assert run_id == logger.version and logger.created
    assert [m.step for m in client.get_metric_history(run_id, "step/loss")] == [41]
    assert [m.step for m in client.get_metric_history(run_id, "val/dice")] == [3]
    run = client.get_run(run_id)
    assert "epoch" not in run.data.metrics and len(run.data.params) == 250
    assert run.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(run_id)] == ["cm.png"]
    resumed = MlflowLogger(logger.tracking_uri, "unit", run_id=run_id)
    assert resumed.ensure_run() == run_id and not resumed.created


def test_load_run_names_what_is_missing(tmp_path: Path, sqlite_uri: str) -> None:
    with pytest.raises(KelpsegError, match="checkpoint does not exist"):
        load_run(tmp_path / "nope.ckpt")
    logger = MlflowLogger(sqlite_uri, "unit-empty")
    with pytest.raises(KelpsegError, match=r"has no model/best\.ckpt"):
        load_run(logger.ensure_run(), sqlite_uri)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real ``mlflow server`` (SQLite store, proxied artifacts) on a free loopback port."""
    port, artifacts = _free_port(), tmp_path / "server-artifacts"
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(artifacts),
    ]  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server did not start:\n{(tmp_path / 'server.log').read_text()}"
                )
            time.sleep(0.5)
        yield uri, artifacts
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers, our session only
        proc.wait(timeout=60)
        log.close()


@pytest.mark.slow
def test_training_against_a_real_mlflow_server(
    tmp_path: Path,
    split_catalog_path: Path,
    band_stats_path: Path,
    mlflow_server: tuple[str, Path],
) -> None:
    uri, artifact_root = mlflow_server
    config = tiny_config(
        split_catalog_path, band_stats_path, tmp_path / "run",
        "tracking.enabled=true", f"tracking.uri={uri}", "tracking.experiment=served",
        "tracking.run_name=tiny", "trainer.max_epochs=2",
    )  # fmt: skip
    result = train(config)
    assert result.tracking_uri == uri and not (tmp_path / "run" / "mlflow.db").exists()

    client = MlflowClient(uri)
    run = client.get_run(result.run_id)
    assert run.info.run_name == "tiny" and run.info.status == "FINISHED"
    assert run.data.params["model.encoder"] == "tu-resnet10t"
    dice = client.get_metric_history(result.run_id, "val/dice")
    assert [m.step for m in dice] == [0, 1]
    assert [m.value for m in dice] == pytest.approx([result.history[e]["val/dice"] for e in (0, 1)])
    paths = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "stats.json", "model", "images"} <= paths
    downloaded = client.download_artifacts(result.run_id, "config.yaml", str(tmp_path))
    assert yaml.safe_load(Path(downloaded).read_text())["tracking"]["uri"] == uri
    assert list(artifact_root.rglob("best.ckpt"))  # the server stored the checkpoint

    module, loaded, stats = load_run(result.run_id, uri)
    assert loaded == config and stats is not None
    assert module(torch.full((1, 7, 64, 64), 8000, dtype=torch.int16)).shape == (1, 1, 64, 64)
