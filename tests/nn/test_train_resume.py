"""A run killed mid-epoch (SIGKILL) and resumed ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from kelpseg.config import save_config
from kelpseg.nn.train import train
from tests.nn import model_fixtures
from tests.nn.model_fixtures import tiny_config

band_stats_path = model_fixtures.band_stats_path  # the fixture, visible to pytest here

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import lightning as L
    from kelpseg.config import load_config
    from kelpseg.nn.config import TrainConfig
    from kelpseg.nn.train import train

    class KillMidEpoch(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, like a crash

    train(load_config(TrainConfig, sys.argv[1]), callbacks=[KillMidEpoch()])
    """
)


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_deterministic_run(
    tmp_path: Path,
    split_catalog_path: Path,
    band_stats_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    # Same thread count in this process and in the killed one: CPU float reductions are only
    # bit-reproducible for a fixed number of intra-op threads.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    settings = ("trainer.max_epochs=3", "trainer.deterministic=true", "data.augment.rotate=0.5")
    reference = train(
        tiny_config(split_catalog_path, band_stats_path, tmp_path / "reference", *settings)
    )

    config = tiny_config(
        split_catalog_path, band_stats_path, tmp_path / "crashed", *settings,
        "tracking.enabled=true", "tracking.log_images=false",
    )  # fmt: skip
    config_file = save_config(config, tmp_path / "crashed.yaml")
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.run(
        [sys.executable, str(script), str(config_file)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    last = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 0  # killed during epoch 1
    run_id = json.loads((tmp_path / "crashed" / "mlflow_run.json").read_text())["run_id"]

    resumed = train(config, resume=True)
    assert resumed.run_id == run_id  # the same MLflow run continues
    assert resumed.history[2]["val/dice"] == reference.history[2]["val/dice"]
    assert resumed.history[2]["val/loss"] == reference.history[2]["val/loss"]
    assert resumed.best_dice == reference.best_dice
    ours = torch.load(resumed.last_ckpt, weights_only=True)["state_dict"]
    theirs = torch.load(reference.last_ckpt, weights_only=True)["state_dict"]
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
