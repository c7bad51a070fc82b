"""Bad-input cases of the model stages: train, predict, evaluate, submit, tabular."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from kelpseg.io.tiles import write_label, write_probability, write_tile
from tests.conftest import make_tile_array
from tests.reliability.cases import Case, Env, case, damage, write_tile_raw

# -- train ------------------------------------------------------------------------------------


@case("config: unknown key", "train")
def _train_unknown_key(env: Env) -> Case:
    out = env.out("train")
    config = env.train_config(out)
    args = ["train", "--config", str(config), "--set", "optim.learning_rate=0.1"]
    return Case(args, "optim.learning_rate", "unknown key", out)


@case("config: wrong type", "train")
def _train_wrong_type(env: Env) -> Case:
    out = env.out("train")
    config = env.train_config(out, trainer={"max_epochs": "ten"})
    return Case(["train", "--config", str(config)], "trainer.max_epochs", "valid integer", out)


@case("input size the encoder cannot take", "train")
def _train_input_size(env: Env) -> Case:
    out = env.out("train")
    # An FPN over a ResNet-18 needs sides divisible by 32 (a U-Net pads by itself).
    model = {"arch": "FPN", "encoder": "resnet18"}
    config = env.train_config(out, model=model, data={"crop_size": 48, "sizing": {"multiple": 16}})
    return Case(["train", "--config", str(config)], "data.sizing", "divisible by 32", out)


@case("band statistics for other channels", "train")
def _train_other_stats(env: Env) -> Case:
    out = env.out("train")
    config = env.train_config(
        out, stats_path=str(env.other_stats), features={"normalization": "quantile"}
    )
    return Case(["train", "--config", str(config)], str(env.other_stats), "NIR", out)


@case("resume from a checkpoint of another channel set", "train --resume")
def _train_resume_other_channels(env: Env) -> Case:
    out = env.out("train")
    config = env.train_config(out)
    last = out / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    shutil.copy(env.other_ckpt, last)
    return Case(["train", "--config", str(config), "--resume"], str(last), "channels", out)


# -- predict ----------------------------------------------------------------------------------


def _predict_args(env: Env, out: Path, model: str, tiles: Path | None = None) -> list[str]:
    tiles = tiles or env.data / "test_satellite"
    args = ["predict", "-m", model, "--tiles", str(tiles), "--out", str(out)]
    return [*args, "--device", "cpu", "--set", "num_workers=0", "--quiet"]


@case("MLflow run id that does not exist", "predict")
def _predict_unknown_run(env: Env) -> Case:
    out = env.out("preds")
    run_id = "0123456789abcdef0123456789abcdef"
    args = _predict_args(env, out, run_id)
    args += ["--tracking-uri", f"sqlite:///{env.tmp / 'mlflow.db'}"]
    return Case(args, run_id, "does not exist", out)


@case("corrupt checkpoint", "predict")
def _predict_corrupt_ckpt(env: Env) -> Case:
    bad = env.tmp / "model.ckpt"
    bad.write_bytes(env.ckpt.read_bytes()[:4000])
    out = env.out("preds")
    return Case(_predict_args(env, out, str(bad)), str(bad), "checkpoint", out)


@case("truncated GeoTIFF", "predict")
def _predict_truncated(env: Env) -> Case:
    tiles = env.tmp / "tiles"
    tiles.mkdir()
    for i in range(3):
        write_tile(tiles / f"P{i:03d}_satellite.tif", make_tile_array(64, seed=i))
    bad = tiles / "P001_satellite.tif"
    damage(bad, "truncated")
    out = env.out("preds")
    return Case(_predict_args(env, out, str(env.ckpt), tiles), str(bad), "GeoTIFF", out)


# -- evaluate and submit ----------------------------------------------------------------------


def _labels_and_preds(env: Env) -> tuple[Path, Path]:
    labels = env.tmp / "labels"
    preds = env.tmp / "preds"
    rng = np.random.default_rng(0)
    for i in range(3):
        write_label(labels / f"E{i:03d}_kelp.tif", rng.integers(0, 2, (32, 32)))
        write_probability(preds / f"E{i:03d}_prob.tif", rng.random((32, 32)))
    return labels, preds


@case("NaN and inf in a probability raster", "evaluate")
def _evaluate_nan(env: Env) -> Case:
    labels, preds = _labels_and_preds(env)
    prob = np.full((32, 32), 0.5, dtype=np.float32)
    prob[0, 0], prob[1, 1] = np.nan, np.inf
    bad = write_probability(preds / "E001_prob.tif", prob)
    out = env.out("evaluation", "report.html")
    args = ["evaluate", str(preds), "--labels", str(labels), "--out", str(out), "--quiet"]
    return Case(args, str(bad), "finite", out)


@case("label values outside {0, 1}", "evaluate")
def _evaluate_label_values(env: Env) -> Case:
    labels, preds = _labels_and_preds(env)
    bad = labels / "E002_kelp.tif"
    write_tile_raw(bad, np.full((1, 32, 32), 3, dtype=np.uint8))
    out = env.out("evaluation", "report.html")
    args = ["evaluate", str(preds), "--labels", str(labels), "--out", str(out), "--quiet"]
    return Case(args, str(bad), "outside {0, 1}", out)


@case("empty predictions folder", "evaluate")
def _evaluate_empty(env: Env) -> Case:
    labels, _ = _labels_and_preds(env)
    empty = env.tmp / "empty"
    empty.mkdir()
    out = env.out("evaluation", "report.html")
    args = ["evaluate", str(empty), "--labels", str(labels), "--out", str(out), "--quiet"]
    return Case(args, str(empty), "no", out)


@case("catalog that does not exist", "submit")
def _submit_no_catalog(env: Env) -> Case:
    _, preds = _labels_and_preds(env)
    out = env.out("sub", "submission.tar")
    missing = env.tmp / "nope.parquet"
    args = ["submit", str(preds), "--catalog", str(missing), "--out", str(out / "submission.tar")]
    return Case(args, str(missing), "does not exist", out)


@case("tar with an extra member", "submit --check")
def _submit_check_extra(env: Env) -> Case:
    masks = env.tmp / "masks"
    write_label(masks / "E000_kelp.tif", np.zeros((350, 350), np.uint8))
    (masks / "notes.txt").write_text("not a mask\n")
    tar_path = env.tmp / "submission.tar"
    with tarfile.open(tar_path, "w") as tar:
        for path in sorted(masks.iterdir()):
            tar.add(path, arcname=path.name)
    out = env.out("sub")
    shutil.copy(tar_path, out / "submission.tar")
    return Case(["submit", "--check", str(tar_path)], "notes.txt", "", out, rc=1)


# -- tabular ----------------------------------------------------------------------------------


@case("catalog without a fold column", "tabular build")
def _tabular_no_fold(env: Env) -> Case:
    catalog = env.tmp / "catalog.parquet"
    pd.read_parquet(env.split).drop(columns=["fold"]).to_parquet(catalog)
    out = env.out("pixels")
    args = ["tabular", "build", str(catalog), "--out", str(out), "--scheduler", "sync", "--quiet"]
    return Case(args, str(catalog), "fold", out)


@case("config: impossible combination", "tabular build")
def _tabular_bad_config(env: Env) -> Case:
    out = env.out("pixels")
    args = ["tabular", "build", str(env.split), "--out", str(out), "--scheduler", "sync"]
    # The default threshold sweep steps by 0.01: not on the probability grid of 10 bins.
    return Case([*args, "--set", "n_bins=10", "--quiet"], "n_bins", "not on the 1/10 grid", out)


@case("unknown model name", "tabular train")
def _tabular_unknown_model(env: Env) -> Case:
    out = env.out("model")
    args = ["tabular", "train", str(env.tmp), "--out", str(out), "--fold", "0", "--model", "nope"]
    return Case(args, "model", "nope", out)
