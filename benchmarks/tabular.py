"""Tree-model benchmark: build and predict pixels/s, training time per model, Dice vs NDVI.

Run: ``.venv/bin/python benchmarks/tabular.py [--workdir DIR] [--n-aoi 40] [--threads 1]``

Generates the demo dataset of ``benchmarks/train_demo.py`` (``SynthConfig(n_aoi=40, seed=0)``,
350 px tiles) or reuses ``--workdir``, assigns AOI-grouped folds the same way (AOIs sorted by
id, dealt round-robin into 5 folds), then:

- builds the pixel dataset on a local Dask cluster (``--workers``), reporting tile pixels/s
  (every pixel's channels are computed), sampled rows/s and each worker's peak resident
  memory above its idle size (torch and the feature stage loaded);
- fits the NDVI threshold baseline on folds 1-4 and scores fold 0's whole tiles;
- trains every registered model on folds 1-4 (library defaults of kelpseg, early stopping on
  fold 0's sampled pixels) and reports fit time, whole-tile Dice (at 0.5, untuned, and at
  the best swept threshold), the sampled-pixel Dice (to show its bias) and the model file size;
- times whole-tile prediction of fold 0: channel computation and model, pixels/s of each;
- trains ``--unweighted`` models (default xgboost) again with ``row_weights: none``, every
  sampled row counting 1, to show what ignoring the sampling does to the 0.5 threshold.

Prints a markdown table and the ratios of each model's Dice and speed to the baseline / xgboost.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kelpseg.io.catalog import build_catalog
from kelpseg.io.tiles import read_tile
from kelpseg.synth import SynthConfig, generate_dataset
from kelpseg.tabular import (
    MODELS,
    PixelDataset,
    TabularConfig,
    build_pixel_dataset,
    index_baseline,
    train_tabular,
)
from kelpseg.tabular.inputs import channel_rows

N_FOLDS = 5
FOLD = 0


def split_catalog(data: Path) -> pd.DataFrame:
    """Catalog + ``fold``: AOIs sorted by id, dealt round-robin (as benchmarks/train_demo.py)."""
    catalog = build_catalog(data).tiles
    truth = pd.read_parquet(data / "synth_truth.parquet").set_index("tile_id")
    train = catalog[catalog["split"] == "train"].copy()
    aois = sorted(truth.loc[train["tile_id"].tolist(), "aoi"].astype(str).unique())
    fold_of = {aoi: i % N_FOLDS for i, aoi in enumerate(aois)}
    train["fold"] = [fold_of[str(truth.loc[t, "aoi"])] for t in train["tile_id"]]
    return train.reset_index(drop=True)


def build(
    catalog: pd.DataFrame, config: TabularConfig, out: Path, workers: int
) -> dict[str, float]:
    """Build on a fresh local cluster; time it and read the workers' peak memory."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
            memory_limit="4GiB",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        # Load torch and the feature stage first, so the idle size is measured with them.
        client.run(lambda: __import__("kelpseg.tabular.build"))
        idle = client.run(lambda: _rss_mb())
        start = time.perf_counter()
        result = build_pixel_dataset(
            catalog, config, out, scheduler=cluster.scheduler_address, overwrite=True,
            show_progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        peak = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    size = read_tile(catalog["image_path"].iloc[0]).shape
    return {
        "tiles": len(catalog),
        "seconds": seconds,
        "tile_px_per_s": len(catalog) * size[0] * size[1] / seconds,
        "rows": result.pixels,
        "kelp_rows": result.kelp_pixels,
        "rows_per_s": result.pixels / seconds,
        "idle_mb": max(idle.values()),
        "peak_mb": max(peak.values()),
        "peak_above_idle_mb": max(peak[w] - idle[w] for w in peak),
    }


def _rss_mb() -> float:
    statm = Path("/proc/self/statm").read_text().split()
    return int(statm[1]) * resource.getpagesize() / 2**20


def predict_speed(model: object, tiles: pd.DataFrame, batch: int = 8) -> tuple[float, float]:
    """Pixels/s of the channel computation and of the model alone, over whole tiles."""
    raws = [read_tile(p).data for p in tiles["image_path"]]
    feature_s = model_s = 0.0
    pixels = 0
    for i in range(0, len(raws), batch):
        raw = torch.from_numpy(np.stack(raws[i : i + batch]))
        start = time.perf_counter()
        with torch.no_grad():
            rows = channel_rows(model.builder.raw_channels(raw))  # type: ignore[attr-defined]
        middle = time.perf_counter()
        model.predict_pixels(rows)  # type: ignore[attr-defined]
        model_s += time.perf_counter() - middle
        feature_s += middle - start
        pixels += len(rows)
    return pixels / feature_s, pixels / model_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kelpseg-bench-tabular"))
    parser.add_argument("--n-aoi", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="training/prediction threads")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument(
        "--unweighted", default="xgboost",
        help="models also trained with row_weights: none (comma-separated, '' for none)",
    )  # fmt: skip
    args = parser.parse_args()

    data = args.workdir / "data"
    if not (data / "synth_truth.parquet").is_file():
        generate_dataset(data, SynthConfig(n_aoi=args.n_aoi, seed=0), overwrite=True)
    catalog = split_catalog(data)
    config = TabularConfig(threads=args.threads)
    pixels = args.workdir / "pixels"
    stats = build(catalog, config, pixels, args.workers)
    print(
        f"\nbuild: {stats['tiles']} tiles in {stats['seconds']:.1f} s on {args.workers} workers: "
        f"{stats['tile_px_per_s']:,.0f} tile px/s, {stats['rows_per_s']:,.0f} rows/s "
        f"({stats['rows']:,} rows, {stats['kelp_rows']:,} kelp; "
        f"rows/tile px = {stats['rows'] / (stats['tile_px_per_s'] * stats['seconds']):.4f})"
    )
    print(
        f"build memory per worker: idle {stats['idle_mb']:.0f} MB, peak {stats['peak_mb']:.0f} MB "
        f"(+{stats['peak_above_idle_mb']:.0f} MB while building)"
    )

    dataset = PixelDataset.open(pixels)
    val_tiles = dataset.tiles_of([FOLD])
    base = index_baseline(pixels, FOLD, config, channel="NDVI").evaluation.metrics["dice"]
    table = [{"model": "NDVI threshold (fit on folds 1-4)", "dice_05": base}]
    for name in args.models.split(","):
        table.append(run_model(name, config, pixels, args.workdir / "models" / name, val_tiles))
    for name in args.unweighted.split(",") if args.unweighted else []:
        # Every sampled row counting 1: kelp over-represented ~100x, shows the bias.
        plain = config.model_copy(update={"row_weights": "none"})
        row = run_model(name, plain, pixels, args.workdir / "models" / f"{name}-none", val_tiles)
        table.append({**row, "model": f"{name}, row_weights: none"})
    pixels_val = len(val_tiles) * 350 * 350
    print(f"\nfold {FOLD}: {len(val_tiles)} tiles, {pixels_val:,} px; threads {args.threads}")
    print_table(table, base)


def run_model(
    name: str, config: TabularConfig, pixels: Path, out: Path, val_tiles: pd.DataFrame
) -> dict[str, object]:
    """Train, score and time one model; returns its table row."""
    start = time.perf_counter()
    result = train_tabular(
        pixels, config.model_copy(update={"model": name}), FOLD, out, track=False,
        show_progress=False,
    )  # fmt: skip
    total = time.perf_counter() - start
    feature_rate, model_rate = predict_speed(result.model, val_tiles)
    size = sum(p.stat().st_size for p in out.glob("model.*") if p.name != "model.json")
    m = result.metrics
    print(
        f"{name}: fit {m['fit_seconds']:.1f} s, best iteration {m.get('best_iteration', '-')}, "
        f"channels {feature_rate:,.0f} px/s, model {model_rate:,.0f} px/s, "
        f"threshold {m['val_tiles_threshold_best']:.2f}, top {list(result.importances.index[:5])}"
    )
    return {
        "model": name,
        "dice_05": m["val_tiles_dice_at_0.5"],
        "dice_best": m["val_tiles_dice_best"],
        "dice_sampled": m["val_sampled_dice_at_0.5"],
        "fit_s": m["fit_seconds"],
        "total_s": total,
        "model_px_s": model_rate,
        "mb": size / 2**20,
    }


def print_table(table: list[dict[str, object]], base: float) -> None:
    """The markdown table of docs/tabular.md, with each Dice's ratio to the NDVI baseline."""
    heads = [
        "model", "whole-tile Dice @0.5", "whole-tile Dice @best", "sampled-pixel Dice @0.5",
        "fit s", "train+score s", "model px/s", "model MB", "Dice @0.5 / NDVI",
    ]  # fmt: skip
    print("| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    for row in table:
        dice = float(row["dice_05"])  # type: ignore[arg-type]
        cells = [
            str(row["model"]),
            f"{dice:.3f}",
            _fmt(row.get("dice_best"), ".3f"),
            _fmt(row.get("dice_sampled"), ".3f"),
            _fmt(row.get("fit_s"), ".1f"),
            _fmt(row.get("total_s"), ".1f"),
            _fmt(row.get("model_px_s"), ",.0f"),
            _fmt(row.get("mb"), ".1f"),
            f"{dice / base:.2f}" if base else "-",
        ]
        print("| " + " | ".join(cells) + " |")


def _fmt(value: object, spec: str) -> str:
    return "-" if value is None else format(float(value), spec)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
