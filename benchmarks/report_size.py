"""HTML report sizes at two dataset sizes: every report the project writes, page and linked files.

Run: ``.venv/bin/python benchmarks/report_size.py`` (33 and 300 tiles; ``--tiles 33 300``).
For each size it generates a demo dataset with ``kelpseg.synth`` (linked into a flat folder of
exactly that many tiles, as ``benchmarks/eda_stats.py`` does), writes crafted out-of-fold
probabilities for the labelled tiles (the label blurred, plus noise, some tiles wrong), and
builds through the CLI:

- the EDA report (``kelpseg eda stats`` then ``kelpseg eda report``);
- the evaluation report (``kelpseg evaluate``);
- the label-audit gallery (``kelpseg labels audit``);
- the tuning report (``summary/report.html`` of a crafted 30-trial Optuna study: it depends on
  the trials, not the tiles, so it is the same at both sizes).

It prints, per report and size, the HTML file and the folder of files it links (full-size
pictures; for tuning, the interactive pages and ``plotly.min.js``), then the ratio of the page
sizes against the ratio of the tile counts: a page that grows slower than the data is below it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import optuna
from eda_stats import make_dataset  # the flat linked dataset of benchmarks/eda_stats.py
from scipy import ndimage

from kelpseg.cli.app import main as kelpseg
from kelpseg.io.tiles import read_label, write_probability
from kelpseg.tune.summary import summarize_study

REPORTS = ("EDA", "evaluation", "label audit", "tuning")


def run(argv: list[str]) -> None:
    """Run one kelpseg command; stop on failure."""
    if (code := kelpseg(argv)) != 0:
        raise SystemExit(f"kelpseg {' '.join(argv)} failed with exit code {code}")


def write_predictions(label_paths: list[tuple[str, str]], out: Path, seed: int = 0) -> Path:
    """Plausible out-of-fold probabilities: blurred label plus noise; one tile in ten wrong."""
    rng = np.random.default_rng(seed)
    for tile_id, path in label_paths:
        label = read_label(path).astype(np.float32)
        if rng.random() < 0.1:
            label = np.roll(label, 60, axis=1)  # a model that disagrees with this label
        prob = ndimage.gaussian_filter(label, 1.5) * 0.9 + rng.random(label.shape) * 0.15
        write_probability(out / f"{tile_id}_prob.tif", np.clip(prob, 0, 1).astype(np.float32))
    return out


def tuning_summary(out: Path, trials: int = 30) -> Path:
    """``summary/report.html`` of a crafted study (random search, three epochs per trial)."""

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("optim.lr", 1e-5, 1e-1, log=True)
        arch = trial.suggest_categorical("model.arch", ["Unet", "UnetPlusPlus", "FPN"])
        decay = trial.suggest_float("optim.weight_decay", 1e-6, 1e-2, log=True)
        value = 0.0
        for epoch in range(3):
            value = 0.8 - abs(np.log10(lr) + 3) / 10 - decay - (arch == "FPN") * 0.05
            trial.report(value - 0.1 / (epoch + 1), epoch)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="crafted", direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(objective, n_trials=trials)
    summarize_study(study, out, "in-memory")
    return out / "report.html"


def size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (0 if absent)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def build_reports(work: Path, n_tiles: int, workers: int) -> dict[str, tuple[int, int]]:
    """Every report for ``n_tiles`` tiles: {report: (page bytes, linked-files bytes)}."""
    catalog = make_dataset(work, n_tiles, n_aoi=max(3, -(-n_tiles // 6)))
    flat = work / "tiles"
    labelled = catalog[catalog["mask_path"].astype(bool)]
    preds = write_predictions(list(zip(labelled["tile_id"], labelled["mask_path"], strict=True)),
                              work / "oof")  # fmt: skip
    run(["eda", "stats", str(flat), "--out", str(work / "eda"), "--workers", str(workers),
         "--no-plots", "--quiet"])  # fmt: skip
    run(["eda", "report", str(work / "eda"), "--quiet"])
    run(["evaluate", str(preds), "--labels", str(flat), "--out", str(work / "eval"), "--quiet"])
    run(["labels", "audit", "--predictions", str(preds), "--data", str(flat), "--out",
         str(work / "audit"), "--quiet"])  # fmt: skip
    tuning = tuning_summary(work / "tune" / "summary")
    pages = {
        "EDA": work / "eda" / "report.html",
        "evaluation": work / "eval" / "report.html",
        "label audit": work / "audit" / "gallery.html",
    }
    sizes = {name: (size(p), size(p.with_name(f"{p.stem}_files"))) for name, p in pages.items()}
    interactive = size(tuning.parent) - size(tuning) - size(tuning.parent / "summary.json")
    interactive -= size(tuning.parent / "trials.csv")
    sizes["tuning"] = (size(tuning), interactive)
    return sizes


def main() -> None:
    """Parse flags, build the reports at each size, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, nargs=2, default=[33, 300], help="two tile counts")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers of eda stats")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the outputs here")
    args = parser.parse_args()
    small, large = args.tiles
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        measured = {}
        for n in (small, large):
            work = root / f"tiles-{n}"
            shutil.rmtree(work, ignore_errors=True)  # a kept workdir from an earlier run
            measured[n] = build_reports(work, n, args.workers)
    mb = 1e6
    print(f"\n{'report':<12} {'tiles':>6} {'page MB':>8} {'linked MB':>10}")
    for name in REPORTS:
        for n in (small, large):
            page, linked = measured[n][name]
            print(f"{name:<12} {n:>6} {page / mb:>8.2f} {linked / mb:>10.2f}")
    print(f"\n{'report':<12} {'page ratio':>11} {'tile ratio':>11}  ({large} / {small} tiles)")
    for name in REPORTS:
        ratio = measured[large][name][0] / measured[small][name][0]
        print(f"{name:<12} {ratio:>10.2f}x {large / small:>10.2f}x")


if __name__ == "__main__":
    main()
