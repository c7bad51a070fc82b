"""Honesty of validation: a random split vs the AOI split, with per-pixel baselines.

On generated data, the same per-pixel models are cross-validated on a random k-fold split and
on kelpseg's AOI-grouped split (same stratification, same k), and also trained on all training
tiles and scored on the hidden test labels. The gap between the random-split and the AOI-split
validation Dice is the optimism that leakage buys; the test Dice on AOIs never seen in training
is what a model really gets on a new area.

Models (scikit-learn): ``logistic`` sees only spectral values (it cannot memorise places);
``trees`` (histogram gradient boosting) also sees the pixel's DEM value and position;
``context`` also sees a fingerprint of the tile's whole DEM (8 principal components of its
DEM embedding), so, like a CNN reading the DEM around a pixel, it can recognise the coast
and memorise where kelp grows on it.

    .venv/bin/python benchmarks/split_honesty.py --data /tmp/synth150s --n-aoi 150 --seed 12 \
        --misaligned-share 0.3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kelpseg.console import console
from kelpseg.io import build_catalog
from kelpseg.io.tiles import MISSING, read_label, read_tile
from kelpseg.split import SplitConfig, assign_folds, compute_embeddings, group_tiles_by_aoi
from kelpseg.synth import SynthConfig, generate_dataset

STRIDE = 3  # every 3rd pixel per axis: 1/9 of the pixels, plenty for a global Dice
# Feature columns each model sees: SWIR1, NIR, R, G, B, NDVI | DEM, row, col | tile context.
COLUMNS = {"logistic": slice(0, 6), "trees": slice(0, 9), "context": slice(None)}
CONTEXT_DIMS = 8


def pixel_features(image_path: str) -> np.ndarray:
    """(pixels, 9) features on the strided grid: 5 bands, NDVI, DEM, row, col."""
    data = read_tile(image_path, allow_all_missing=True).data[:, ::STRIDE, ::STRIDE]
    bands = np.where(data[:5] == MISSING, 0, data[:5]).astype(np.float32) / 10_000
    nir, red = bands[1], bands[2]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-3)
    dem = np.clip(np.where(data[6] == MISSING, -1, data[6]), -1, None).astype(np.float32)
    rows, cols = np.mgrid[0 : data.shape[1], 0 : data.shape[2]].astype(np.float32)
    feats = np.stack([*bands, ndvi, dem, rows, cols])
    return feats.reshape(len(feats), -1).T


def load_pixels(
    frame: pd.DataFrame, context: dict[str, np.ndarray], label_dir: Path | None
) -> tuple[list, list]:
    """Features (pixel features + the tile's context) and labels (strided) of every tile."""
    feats, labels = [], []
    for tile in frame.itertuples(index=False):
        f = pixel_features(str(tile.image_path))
        ctx = np.broadcast_to(context[str(tile.tile_id)], (len(f), CONTEXT_DIMS))
        feats.append(np.hstack([f, ctx]).astype(np.float32))
        mask = str(tile.mask_path) or str(label_dir / f"{tile.tile_id}_kelp.tif")
        labels.append(read_label(mask)[::STRIDE, ::STRIDE].ravel().astype(np.uint8))
    return feats, labels


def training_sample(
    feats: list, labels: list, rng: np.random.Generator, per_tile: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All kelp pixels plus ``per_tile`` random others per tile, weighted to true prevalence."""
    xs, ys, ws = [], [], []
    for f, y in zip(feats, labels, strict=True):
        kelp = np.flatnonzero(y)
        other = np.flatnonzero(y == 0)
        pick = rng.choice(other, size=min(per_tile, len(other)), replace=False)
        xs += [f[kelp], f[pick]]
        ys += [y[kelp], y[pick]]
        ws += [np.ones(len(kelp)), np.full(len(pick), len(other) / max(len(pick), 1))]
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)


def make_model(name: str) -> object:
    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    return HistGradientBoostingClassifier(max_iter=150, max_leaf_nodes=63, random_state=0)


def best_threshold(prob: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Threshold maximising weighted Dice on the training sample (never on validation)."""
    best, best_t = -1.0, 0.5
    for t in np.linspace(0.05, 0.95, 19):
        pred = prob >= t
        inter = (w * (pred & (y == 1))).sum()
        dice = 2 * inter / max((w * pred).sum() + (w * (y == 1)).sum(), 1e-9)
        if dice > best:
            best, best_t = dice, t
    return float(best_t)


def fit_predict(name: str, train: tuple, feats: list, seed: int) -> list[np.ndarray]:
    """Fit on the training tiles' sample, predict masks for ``feats``."""
    rng = np.random.default_rng(seed)
    x, y, w = training_sample(*train, rng)
    cols = COLUMNS[name]
    model = make_model(name)
    fit_kw = (
        {"logisticregression__sample_weight": w} if name == "logistic" else {"sample_weight": w}
    )
    model.fit(x[:, cols], y, **fit_kw)  # type: ignore[attr-defined]
    threshold = best_threshold(model.predict_proba(x[:, cols])[:, 1], y, w)  # type: ignore[attr-defined]
    return [model.predict_proba(f[:, cols])[:, 1] >= threshold for f in feats]  # type: ignore[attr-defined]


def dice(preds: list[np.ndarray], labels: list[np.ndarray]) -> float:
    """Global Dice over all pixels of all tiles (the competition metric)."""
    inter = sum(int((p & (y == 1)).sum()) for p, y in zip(preds, labels, strict=True))
    total = sum(int(p.sum()) + int(y.sum()) for p, y in zip(preds, labels, strict=True))
    return 2 * inter / total if total else 1.0


def subset(
    preds: list[np.ndarray], labels: list[np.ndarray], keep: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The predictions and labels of the tiles where ``keep`` is true."""
    return [preds[i] for i in np.flatnonzero(keep)], [labels[i] for i in np.flatnonzero(keep)]


def cross_validate(name: str, folds: np.ndarray, feats: list, labels: list) -> float:
    """Mean over folds of the validation-fold global Dice."""
    scores = []
    for k in np.unique(folds):
        tr = np.flatnonzero(folds != k)
        va = np.flatnonzero(folds == k)
        preds = fit_predict(
            name, ([feats[i] for i in tr], [labels[i] for i in tr]), [feats[i] for i in va], k
        )
        scores.append(dice(preds, [labels[i] for i in va]))
    return float(np.mean(scores))


def tile_context(tiles: pd.DataFrame, cache: Path) -> dict[str, np.ndarray]:
    """Per tile, the top principal components of its DEM embedding: a fingerprint of the
    coast around every pixel, standing in for the DEM context a CNN sees."""
    emb = compute_embeddings(tiles, SplitConfig(), cache_dir=cache, show_progress=False)
    comps = PCA(CONTEXT_DIMS, random_state=0).fit_transform(emb.vectors).astype(np.float32)
    return dict(zip(emb.tile_ids.tolist(), comps, strict=True))


def main() -> None:
    """Cross-validate both models on both splits, then score on the hidden test labels."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/_data/synth_honesty"))
    parser.add_argument("--n-aoi", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--misaligned-share", type=float, default=0.03)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    if not (args.data / "synth_truth.parquet").is_file():
        synth = SynthConfig(
            n_aoi=args.n_aoi, seed=args.seed, misaligned_share=args.misaligned_share
        )
        generate_dataset(args.data, synth, workers=2)
    truth = pd.read_parquet(args.data / "synth_truth.parquet")
    tiles = build_catalog(args.data).tiles
    grouped, groups = group_tiles_by_aoi(tiles, SplitConfig(), cache_dir=args.data / "_split")
    context = tile_context(tiles, args.data / "_split")
    start = time.perf_counter()
    train = grouped[grouped["split"] == "train"].reset_index(drop=True)
    test = grouped[grouped["split"] == "test"].reset_index(drop=True)
    feats, labels = load_pixels(train, context, None)
    test_feats, test_labels = load_pixels(test, context, args.data / "test_labels")
    train["has_kelp"] = [bool(y.any()) for y in labels]
    console.print(
        f"{len(train)} train / {len(test)} test tiles, {groups.groups} AOI groups; "
        f"pixels loaded in {time.perf_counter() - start:.0f} s"
    )
    seen = set(truth.loc[truth["split"] == "train", "aoi"])
    test_aoi = test.merge(truth[["tile_id", "aoi"]], on="tile_id")["aoi"]
    unseen = ~test_aoi.isin(seen).to_numpy()
    table = Table(title=f"validation Dice, {args.k}-fold, per-pixel baselines")
    for col in (
        "model",
        "random split",
        "AOI split",
        "gap",
        "test: all",
        "test: unseen AOIs",
        "test: seen AOIs",
    ):
        table.add_column(col, justify="right")
    for name in COLUMNS:
        scores = {}
        for mode in ("random", "kfold"):
            cfg = SplitConfig(mode=mode, k=args.k, stratify=["has_kelp"], seed=0)
            folds = assign_folds(train, cfg)[0]["fold"].to_numpy()
            scores[mode] = cross_validate(name, folds, feats, labels)
        preds = fit_predict(name, (feats, labels), test_feats, 0)
        parts = [
            dice(preds, test_labels),
            dice(*subset(preds, test_labels, unseen)),
            dice(*subset(preds, test_labels, ~unseen)),
        ]
        table.add_row(
            name,
            f"{scores['random']:.4f}",
            f"{scores['kfold']:.4f}",
            f"{scores['random'] - scores['kfold']:+.4f}",
            *(f"{s:.4f}" for s in parts),
        )
        console.print(f"{name} done ({time.perf_counter() - start:.0f} s)")
    console.print(table)
    console.print(f"test tiles in AOIs unseen in training: {int(unseen.sum())} of {len(test)}")


if __name__ == "__main__":
    main()
