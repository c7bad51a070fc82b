"""SIGKILL mid-run, then re-run: the result equals an uninterrupted run; and runs repeat exactly.

Kill-and-resume of the other stages lives beside them (``prepare``: tests/nn/test_data_store.py,
``eda stats``: tests/eda/test_runner.py, ``train``: tests/nn/test_train_resume.py,
``tabular build``: tests/tabular/test_build.py); this module adds ``predict`` and determinism.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from kelpseg.cli.app import main
from kelpseg.io.tiles import read_label, write_tile
from kelpseg.nn.train import train
from tests.conftest import make_tile_array
from tests.inference.test_predict import save_checkpoint, tiny_module
from tests.nn.model_fixtures import tiny_config

N_TILES = 12
# The killed run: the real CLI, each batch slowed down so the kill lands between two tiles.
SLOW_PREDICT = textwrap.dedent(
    """
    import sys, time
    from kelpseg.inference.runner import Predictor
    launch = Predictor.launch
    Predictor.launch = lambda self, raw: (time.sleep(0.25), launch(self, raw))[1]
    from kelpseg.cli.app import main
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.fixture
def one_thread(request: pytest.FixtureRequest) -> None:
    """One intra-op thread here as in the child: CPU float sums are bitwise stable only so."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    request.addfinalizer(lambda: torch.set_num_threads(threads))


def _files(folder: Path) -> dict[str, bytes]:
    """Every file by name, hidden ones too: a re-run removes the ``.<name>.<random>.tmp`` that a
    kill during a write leaves behind."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_predict_killed_then_rerun_equals_an_uninterrupted_run(
    tmp_path: Path, one_thread: None
) -> None:
    tiles = tmp_path / "tiles"
    for i in range(N_TILES):
        write_tile(tiles / f"K{i:03d}_satellite.tif", make_tile_array(64, seed=i, land_cols=9))
    ckpt = save_checkpoint(tiny_module(), tmp_path / "tiny.ckpt")
    # Batches of one tile: the same tile gives the same bits whichever run predicts it.
    args = ["predict", "-m", str(ckpt), "--tiles", str(tiles), "--soft", "--device", "cpu"]
    args += ["--batch-size", "1", "--num-workers", "0", "--quiet"]
    reference, out = tmp_path / "reference", tmp_path / "killed"
    assert main([*args, "--out", str(reference)]) == 0

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_PREDICT, *args, "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        if len(list(out.glob("*_kelp.tif"))) >= 2:  # the first masks are complete
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(out.glob("*_kelp.tif"))
    assert 2 <= len(done) < N_TILES, "the kill must land mid-run"
    for mask in done:  # whatever the kill left is complete and right
        assert np.array_equal(read_label(mask), read_label(reference / mask.name))

    assert main([*args, "--out", str(out)]) == 0
    assert _files(out) == _files(reference)


def test_same_seed_and_deterministic_flag_give_identical_runs_on_cpu(
    tmp_path: Path, rel_split: Path, one_thread: None
) -> None:
    settings = (
        "features.normalization=per-sample-min-max",
        "trainer.deterministic=true",
        "trainer.max_epochs=2",
        "data.augment.rotate=0.5",
    )
    first = train(tiny_config(rel_split, None, tmp_path / "first", *settings))
    second = train(tiny_config(rel_split, None, tmp_path / "second", *settings))
    assert first.history == second.history
    assert first.history[1]["val/loss"] > 0  # metrics were logged
    a = torch.load(first.best_ckpt, weights_only=True)["state_dict"]
    b = torch.load(second.best_ckpt, weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # A different seed is a different run: the comparison above can fail.
    other = train(tiny_config(rel_split, None, tmp_path / "other", *settings, "seed=4"))
    c = torch.load(other.best_ckpt, weights_only=True)["state_dict"]
    assert not all(torch.equal(a[k], c[k]) for k in a)
