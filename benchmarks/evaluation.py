"""Evaluation and submission speed: one-pass threshold sweep vs brute force, tar write/check.

Run: ``.venv/bin/python benchmarks/evaluation.py [--tiles 200]``. Prints tiles/s, the speed-up of
the single-pass histogram sweep over thresholding once per threshold (results checked equal),
and the time to write and check a submission of the real test-set size (1,426 tiles).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from kelpseg.evaluation.config import EvaluateConfig
from kelpseg.evaluation.evaluate import evaluate_predictions
from kelpseg.inference.submission import check_submission, write_submission
from kelpseg.io.tiles import TILE_SIZE, write_label, write_mask, write_probability
from kelpseg.metrics import count_tile

TEST_TILES = 1426


def _tiles(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        label = (rng.random((TILE_SIZE, TILE_SIZE)) < 0.01).astype(np.uint8)
        prob = np.clip(label * 0.5 + rng.random(label.shape) * 0.5, 0, 1).astype(np.float32)
        out.append((prob, label))
    return out


def bench_sweep(n: int) -> None:
    config = EvaluateConfig()
    thresholds = config.thresholds()
    tiles = _tiles(n)
    start = time.perf_counter()
    one_pass = [count_tile("t", p, t, thresholds, config.n_bins) for p, t in tiles]
    fast = time.perf_counter() - start
    start = time.perf_counter()
    for (prob, label), counts in zip(tiles, one_pass, strict=True):
        p64, truth = prob.astype(np.float64), label.astype(bool)
        tp, fp = [], []
        for th in thresholds:
            pred = p64 >= th
            tp.append(int((pred & truth).sum()))
            fp.append(int(pred.sum()) - tp[-1])
        assert np.array_equal(tp, counts.tp), "single pass and brute force disagree"
        assert np.array_equal(fp, counts.fp), "single pass and brute force disagree"
    slow = time.perf_counter() - start
    grid_slow = slow * (config.n_bins + 1) / len(thresholds)
    print(f"{n} tiles of {TILE_SIZE} px; the one pass gives the {len(thresholds)}-threshold sweep")
    print(f"and the {config.n_bins + 1}-point precision-recall curve at once:")
    print(f"  one pass                   {n / fast:8.1f} tiles/s  ({fast:.2f} s)")
    print(f"  brute force, sweep only    {n / slow:8.1f} tiles/s  ({slow:.2f} s)")
    print(f"  brute force, full PR grid  {n / grid_slow:8.1f} tiles/s  (extrapolated)")
    print(f"  ratio vs sweep x{slow / fast:.1f}, vs full grid x{grid_slow / fast:.0f}")
    print(f"  {TEST_TILES} tiles: ~{TEST_TILES * fast / n:.1f} s of counting")


def bench_evaluate(n: int) -> None:
    tiles = _tiles(n, seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        preds, labels = Path(tmp) / "preds", Path(tmp) / "labels"
        for i, (prob, label) in enumerate(tiles):
            write_probability(preds / f"T{i:05d}_prob.tif", prob)
            write_label(labels / f"T{i:05d}_kelp.tif", label)
        for workers in (1, 2):
            start = time.perf_counter()
            config = EvaluateConfig(workers=workers)
            evaluate_predictions(preds, labels, config, show_progress=False)
            took = time.perf_counter() - start
            print(f"evaluate_predictions from disk, {workers} thread(s): {n / took:6.1f} tiles/s")


def bench_submission() -> None:
    rng = np.random.default_rng(1)
    ids = [f"T{i:05d}" for i in range(TEST_TILES)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "preds"
        for tile_id in ids:
            mask = (rng.random((TILE_SIZE, TILE_SIZE)) < 0.01).astype(np.uint8)
            write_mask(folder / f"{tile_id}_kelp.tif", mask)
        start = time.perf_counter()
        tar = write_submission(folder, ids, Path(tmp) / "submission.tar")
        written = time.perf_counter() - start
        start = time.perf_counter()
        problems = check_submission(tar, ids)
        checked = time.perf_counter() - start
        assert problems == []
        size = tar.stat().st_size / 2**20
    print(f"submission of {TEST_TILES} masks ({size:.0f} MiB):")
    print(f"  write (validate + pack) {written:.2f} s, check {checked:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiles", type=int, default=200, help="tiles for the sweep benchmark")
    args = parser.parse_args()
    bench_sweep(args.tiles)
    bench_evaluate(args.tiles)
    bench_submission()


if __name__ == "__main__":
    main()
