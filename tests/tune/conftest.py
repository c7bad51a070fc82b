"""Fixtures of the tuning tests: configs and spaces for crafted objectives, and worker helpers.

Crafted objectives go through the same ``run_study`` machinery as training (space -> overrides ->
``TrainConfig`` -> objective) but return a value computed from the config, so studies of many
trials take seconds. The tiny real-training fixtures come from the training tests' conftest.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from kelpseg.nn.config import TrainConfig
from tests.nn.conftest import split_catalog, split_catalog_path, synth_root  # noqa: F401
from tests.nn.model_fixtures import band_stats_path  # noqa: F401

BASE: dict[str, Any] = {
    "data": {"catalog": "catalog.parquet", "fold": 0},
    "features": {"channels": ["R", "G", "B", "NIR", "SWIR1", "NDVI"]},
    "model": {"arch": "Unet", "encoder": "resnet18", "encoder_weights": None},
    "trainer": {"max_epochs": 4},
    "tracking": {"enabled": False},
}
SPACE: dict[str, Any] = {
    "params": {
        "optim.lr": {"type": "float", "low": 1.0e-5, "high": 1.0e-1, "log": True},
        "optim.scheduler": ["onecycle", "cosine", "none"],
        "features.channels": {
            "type": "subset", "k": 2, "fixed": ["R", "G", "B"],
            "choices": ["NDVI", "CDOM", "KIVU", "SABI", "WAVI"],
        },
    }
}  # fmt: skip


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as YAML; returns the path."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def study_dir(tmp_path: Path) -> Iterator[Path]:
    """A study folder on tmpfs where there is one (else under ``tmp_path``).

    Optuna commits once per suggested parameter: ~15 ms each on a busy disk, microseconds in
    memory. Real studies spend minutes per trial training; crafted ones only commit.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path / "study"
        return
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="kelpseg-tune-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def base_config(tmp_path: Path) -> Path:
    """A training config that is never trained: crafted objectives only read it."""
    return write_yaml(tmp_path / "base.yaml", BASE)


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    """A space of a log-scale float, a categorical and a subset."""
    return write_yaml(tmp_path / "space.yaml", SPACE)


def lr_score(config: TrainConfig) -> float:
    """A smooth score of the trial's config: best at lr 1e-3, a bonus for SABI."""
    score = 1.0 - abs(math.log10(config.optim.lr) + 3.0) / 4.0
    return score + (0.1 if "SABI" in config.features.channels else 0.0)


def scored_objective(trial: optuna.Trial, config: TrainConfig) -> float:
    """Report a rising curve towards :func:`lr_score`, epoch by epoch, like training does."""
    final = lr_score(config)
    for epoch in range(config.trainer.max_epochs):
        trial.report(final * (epoch + 1) / config.trainer.max_epochs, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return final


def fork_context() -> Any:
    """Worker processes forked from the test process: real processes without re-importing
    torch and Lightning (seconds each on a busy machine). Their objectives run no torch code."""
    return multiprocessing.get_context("fork")
