"""Lightning DDP on CPU: 2 processes over gloo complete a run that MLflow records once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow import MlflowClient

from kelpseg.config import save_config
from tests.nn import model_fixtures
from tests.nn.model_fixtures import tiny_config

band_stats_path = model_fixtures.band_stats_path  # the fixture, visible to pytest here

# Lightning's "ddp" launcher starts rank 1 by running this same script again.
SCRIPT = textwrap.dedent(
    """
    import sys
    from kelpseg.config import load_config
    from kelpseg.nn.config import TrainConfig
    from kelpseg.nn.train import train

    result = train(load_config(TrainConfig, sys.argv[1]))
    print("RANK-RESULT", result.run_id, result.best_dice, flush=True)
    """
)


@pytest.mark.slow
def test_two_process_ddp_on_cpu_logs_one_mlflow_run(
    tmp_path: Path, split_catalog_path: Path, band_stats_path: Path
) -> None:
    out = tmp_path / "ddp"
    config = tiny_config(
        split_catalog_path, band_stats_path, out,
        "trainer.devices=2", "trainer.strategy=ddp", "trainer.max_epochs=2",
        "tracking.enabled=true", "tracking.run_name=ddp",
    )  # fmt: skip
    config_file = save_config(config, tmp_path / "ddp.yaml")
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(config_file)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("RANK-")]
    assert len(results) == 2  # both ranks finished
    run_ids = {run_id for run_id, _ in results}
    assert "None" in run_ids  # rank 1 never touched MLflow

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("kelpseg")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.run_id in run_ids
    assert runs[0].info.status == "FINISHED"
    history = client.get_metric_history(runs[0].info.run_id, "val/dice")
    assert [m.step for m in history] == [0, 1]  # one value per epoch, not one per rank
