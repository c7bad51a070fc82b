"""What the validation-picked decision threshold is worth on test tiles (issue 24, item 1).

Run: ``.venv/bin/python benchmarks/threshold_gain.py [--modes standard hard] [--seeds 0 1]
[--n-aoi 24] [--folds 5] [--epochs 5] [--workdir DIR] [--set key=value ...]``

For each mode and seed it runs the documented chain through the CLI on generated data (``kelpseg
synth``, ``--hard`` for the hard mode: thin fringing beds, sparse canopy, loose outlines, test
truth as noisy as the training labels), then ``catalog``, ``eda stats``, ``split`` (AOI-grouped
folds), ``stats``, ``prepare``, ``train --config configs/demo.yaml`` (validation on fold 0, which
picks the threshold), ``predict`` on the test tiles and ``evaluate`` at 0.5 and at the picked
threshold. Test tiles never train, validate or pick anything. Prints one row per run and the
mean and spread of the test Dice gain per mode.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHANNELS = "R,G,B,SWIR1,NIR,QA,DEM,DEMWM,NDVI"  # configs/demo.yaml's channels
KELPSEG = str(Path(sys.executable).with_name("kelpseg"))


def run(*args: str) -> str:
    """One kelpseg command; its stdout (stops the benchmark on a failure)."""
    done = subprocess.run([KELPSEG, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"kelpseg {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def dice_at(pred: Path, labels: Path, out: Path, threshold: float | None) -> float:
    """Global test Dice of a --soft prediction folder (at ``threshold``, else predict's)."""
    extra = [] if threshold is None else ["--threshold", str(threshold)]
    args = ["evaluate", str(pred), "--labels", str(labels), "--out", str(out), "--json", "-q"]
    return float(json.loads(run(*args, *extra, "--overwrite"))["metrics"]["dice"])


def one_run(
    work: Path, mode: str, seed: int, n_aoi: int, folds: int, epochs: int, sets: list[str]
) -> dict:
    """The whole chain for one mode and seed; the numbers of one table row."""
    data = work / "data"
    start = time.perf_counter()
    run("synth", "--out", str(data), "--n-aoi", str(n_aoi), "--seed", str(seed), "--overwrite",
        "-q", *(["--hard"] if mode == "hard" else []))  # fmt: skip
    run("catalog", str(data), "--out", str(work / "catalog.parquet"), "--overwrite")
    run("eda", "stats", str(data), "--out", str(work / "eda"), "--workers", "1", "-q",
        "--no-plots", "--overwrite")  # fmt: skip
    run("split", str(work / "eda" / "tile_stats.parquet"), "--out", str(work / "split"), "-q",
        "--set", f"k={folds}", "--overwrite")  # fmt: skip
    run("stats", str(work / "catalog.parquet"), "--channels", CHANNELS, "--out",
        str(work / "stats.json"), "--threads", "1", "-q", "--overwrite")  # fmt: skip
    run("prepare", str(work / "split" / "split.parquet"), "--out", str(work / "store"), "-q")
    train_dir = work / "train"
    sets_args = [x for s in sets for x in ("--set", s)]
    run("train", "--config", "configs/demo.yaml", "--out", str(train_dir), "-q",
        "--set", f"data.catalog={work / 'split' / 'split.parquet'}",
        "--set", f"data.store={work / 'store'}", "--set", f"stats_path={work / 'stats.json'}",
        "--set", f"trainer.max_epochs={epochs}", "--set", "tracking.enabled=false",
        *sets_args)  # fmt: skip
    pick = json.loads((train_dir / "result.json").read_text())["threshold"]
    pred = work / "predictions"
    run("predict", "--model", str(train_dir), "--tiles", str(work / "catalog.parquet"),
        "--split", "test", "--out", str(pred), "--soft", "--overwrite", "-q")  # fmt: skip
    labels = data / "test_labels"
    row = {
        "mode": mode,
        "seed": seed,
        "threshold": pick["threshold"],
        "val@0.5": pick["val_dice_default"],
        "val@pick": pick["val_dice"],
        "test@0.5": dice_at(pred, labels, work / "eval-0.5", 0.5),
        "test@pick": dice_at(pred, labels, work / "eval-pick", None),
    }
    clean = data / "test_kelp_clean"
    if clean.is_dir():  # hard mode: the clean truth, the ceiling the noisy one hides
        row["clean@0.5"] = dice_at(pred, clean, work / "eval-clean-0.5", 0.5)
        row["clean@pick"] = dice_at(pred, clean, work / "eval-clean-pick", None)
    row["minutes"] = (time.perf_counter() - start) / 60
    return row


def main() -> None:
    """Parse flags, run every mode and seed, print the rows and the gain per mode."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["standard", "hard"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n-aoi", type=int, default=24)
    parser.add_argument("--folds", type=int, default=5, help="AOI-grouped folds of the split")
    parser.add_argument("--epochs", type=int, default=5, help="the demo config's 5 by default")
    parser.add_argument("--workdir", type=Path, default=Path("threshold-gain"))
    parser.add_argument("--set", dest="sets", action="append", default=[], help="train override")
    args = parser.parse_args()
    rows = []
    for mode in args.modes:
        for seed in args.seeds:
            work = args.workdir / f"{mode}-{seed}"
            row = one_run(work, mode, seed, args.n_aoi, args.folds, args.epochs, args.sets)
            rows.append(row)
            print("\t".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items()), flush=True)  # fmt: skip
    print("\nmode\truns\ttest Dice at 0.5\ttest Dice at the picked threshold\tgain (mean ± std)")
    for mode in args.modes:
        sub = [r for r in rows if r["mode"] == mode]
        gain = np.array([r["test@pick"] - r["test@0.5"] for r in sub])
        at_half = np.array([r["test@0.5"] for r in sub])
        at_pick = np.array([r["test@pick"] for r in sub])
        cells = [f"{a.mean():.4f} ± {a.std():.4f}" for a in (at_half, at_pick)]
        cells.append(f"{gain.mean():+.4f} ± {gain.std():.4f}")
        print(f"{mode}\t{len(sub)}\t" + "\t".join(cells))
    (args.workdir / "results.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
