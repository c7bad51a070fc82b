"""Does ``configs/demo.yaml`` learn? Its validation Dice against a trivial predictor and NDVI.

Run: ``.venv/bin/python benchmarks/train_demo.py [--workdir DIR] [--n-aoi 40] [--set key=value]``

Generates a demo dataset (or reuses ``--workdir``), builds a split catalog with the weighted
sampler's EDA columns and AOI-grouped folds (from the generator's ``synth_truth.parquet``, so no
area is in training and validation at once), computes band statistics, packs a prepared store,
trains the demo config and prints its learning curve beside two baselines on the same
validation tiles, scored with the competition's global Dice:

- trivial: every pixel kelp (predicting no kelp scores 0);
- NDVI: ``NDVI > t`` per pixel, with ``t`` tuned on the training folds (also restricted to water,
  DEM <= 0, the better of the two is reported).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kelpseg.config import load_config
from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.io.catalog import build_catalog
from kelpseg.io.tiles import BAND_NAMES, MISSING, read_label, read_tile
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.data.store import prepare_store
from kelpseg.nn.train import train
from kelpseg.synth import SynthConfig, generate_dataset

N_FOLDS = 5
THRESHOLDS = np.linspace(-0.2, 0.8, 51)


def eda_columns(image: np.ndarray, mask: np.ndarray) -> dict[str, object]:
    """The weighted sampler's statistics of one tile, computed plainly."""
    dem = image[BAND_NAMES.index("DEM")]
    qa_bad = float((image[BAND_NAMES.index("QA")] != 0).mean())
    return {
        "has_kelp": bool(mask.any()),
        "kelp_pixels_pct": float(mask.mean()),
        "qa_ok": qa_bad == 0.0,
        "qa_corrupted_pixels_pct": qa_bad,
        "almost_all_water": float((dem <= 0).mean()) > 0.98,
        "water_pixels_pct": float((dem <= 0).mean()),  # the author's sampler formula reads it
        "dem_nan_pixels_pct": float((dem == MISSING).mean()),
        "dem_zero_pixels_pct": float((dem == 0).mean()),
    }


def split_catalog(data: Path) -> pd.DataFrame:
    """Catalog + EDA columns + ``fold`` (AOIs dealt round-robin into folds; test rows -1)."""
    frame = build_catalog(data).tiles
    train = frame[frame["split"] == "train"].reset_index(drop=True)
    truth = pd.read_parquet(data / "synth_truth.parquet").set_index("tile_id")
    rows = [
        eda_columns(read_tile(r.image_path).data, read_label(r.mask_path))
        for r in train.itertuples(index=False)
    ]
    train = pd.concat([train, pd.DataFrame(rows)], axis=1)
    aois = sorted(truth.loc[train["tile_id"].tolist(), "aoi"].astype(str).unique())
    fold_of = {aoi: i % N_FOLDS for i, aoi in enumerate(aois)}
    train["fold"] = [fold_of[str(truth.loc[t, "aoi"])] for t in train["tile_id"]]
    return train


def ndvi_and_truth(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flattened NDVI (NaN where missing), water flag and kelp label over the tiles of ``rows``."""
    ndvis, waters, labels = [], [], []
    for r in rows.itertuples(index=False):
        data = read_tile(r.image_path).data.astype(np.float64)
        nir, red = data[BAND_NAMES.index("NIR")], data[BAND_NAMES.index("R")]
        bad = (nir == MISSING) | (red == MISSING) | (nir + red == 0)
        ndvis.append(np.where(bad, np.nan, (nir - red) / np.where(bad, 1, nir + red)).ravel())
        waters.append((data[BAND_NAMES.index("DEM")] <= 0).ravel())
        labels.append(read_label(r.mask_path).ravel() == 1)
    return np.concatenate(ndvis), np.concatenate(waters), np.concatenate(labels)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Global Dice of boolean arrays (1.0 when both are empty)."""
    total = int(pred.sum() + truth.sum())
    return 1.0 if total == 0 else 2.0 * float(np.sum(pred & truth)) / total


def ndvi_baseline(train_rows: pd.DataFrame, val_rows: pd.DataFrame) -> tuple[float, str]:
    """Best of NDVI > t and NDVI > t on water, t tuned on training tiles, scored on validation."""
    ndvi, water, truth = ndvi_and_truth(train_rows)
    v_ndvi, v_water, v_truth = ndvi_and_truth(val_rows)
    best = (-1.0, "")
    for on_water in (False, True):
        keep = water if on_water else np.ones_like(water)
        scores = [dice((ndvi > t) & keep, truth) for t in THRESHOLDS]
        t = float(THRESHOLDS[int(np.argmax(scores))])
        v_keep = v_water if on_water else np.ones_like(v_water)
        val = dice((v_ndvi > t) & v_keep, v_truth)
        label = f"NDVI > {t:.2f}" + (" on water" if on_water else "")
        best = max(best, (val, label))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kelpseg-train-demo"))
    parser.add_argument("--n-aoi", type=int, default=40)
    parser.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    work: Path = args.workdir
    data = work / "data"
    if not (data / "synth_truth.parquet").is_file():
        generate_dataset(data, SynthConfig(n_aoi=args.n_aoi, seed=0), overwrite=True)
    catalog = split_catalog(data)
    catalog.to_parquet(work / "split.parquet", index=False)
    config = load_config(
        TrainConfig,
        args.config,
        [f"data.catalog={work / 'split.parquet'}", f"stats_path={work / 'stats.json'}",
         f"data.store={work / 'store'}", f"output_dir={work / f'run-{int(time.time())}'}",
         *args.overrides],
    )  # fmt: skip
    compute_band_stats(catalog, config.features, device="cpu").to_json(work / "stats.json")
    prepare_store(catalog, work / "store", splits=("train",))

    start = time.perf_counter()
    result = train(config)
    minutes = (time.perf_counter() - start) / 60
    fold = config.data.fold
    val_rows, train_rows = catalog[catalog["fold"] == fold], catalog[catalog["fold"] != fold]
    _, _, v_truth = ndvi_and_truth(val_rows)
    trivial = dice(np.ones_like(v_truth), v_truth)
    ndvi_score, ndvi_rule = ndvi_baseline(train_rows, val_rows)

    print(
        f"\ndemo data: {len(train_rows)} training / {len(val_rows)} validation tiles (fold {fold})"
    )
    print("epoch  train/loss  val/loss  val/dice")
    for epoch, m in sorted(result.history.items()):
        row = [m.get(k, float("nan")) for k in ("train/loss", "val/loss", "val/dice")]
        print(f"{epoch:5d}  {row[0]:10.4f}  {row[1]:8.4f}  {row[2]:8.4f}")
    print(f"\ntraining took {minutes:.1f} min; run folder {result.output_dir}")
    print(f"model (best epoch {result.best_epoch}): val Dice {result.best_dice:.4f}")
    print(f"trivial (all kelp):          val Dice {trivial:.4f}")
    print(f"{ndvi_rule + ':':28s} val Dice {ndvi_score:.4f}")


if __name__ == "__main__":
    main()
