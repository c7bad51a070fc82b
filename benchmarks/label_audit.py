"""Label audit precision on generated data, whose mislabelled tiles are known (synth_truth).

One command runs the whole chain, reusing every step already done in ``--work``: generate
(wrong-tile rate raised so the precision rests on more than a handful of tiles) -> catalog
-> EDA stats -> k-fold split -> tree pixel dataset -> one tree model per fold, each predicting
its held-out fold (real out-of-fold probabilities, cheap on a CPU) -> audit. It prints
precision@k of every score in ``kelpseg.quality.audit.SCORES`` for k = the number of
mislabelled tiles and a few fixed k, and the precision of the default flagged list.

With ``--network CONFIG`` it also trains that config once per fold on the same split
(``kelpseg train-cv``; band statistics and store built first), predicts each fold's tiles with the
model that held it out (``kelpseg labels oof``), and audits the network alone and the network +
tree committee under every combine rule.

    .venv/bin/python benchmarks/label_audit.py --n-aoi 40 --seed 1 --work /tmp/audit40
    .venv/bin/python benchmarks/label_audit.py --n-aoi 40 --seed 1 --work /tmp/audit40 \
        --network configs/demo.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import yaml

from kelpseg.cli.app import main as kelpseg
from kelpseg.console import console
from kelpseg.quality.audit import (
    COMBINE_RULES,
    SCORES,
    audit_labels,
    mislabelled_ids,
    precision_at_k,
    rank_tiles,
)
from kelpseg.quality.config import AuditConfig
from kelpseg.synth import SynthConfig, generate_dataset
from kelpseg.synth.generator import TRUTH_NAME


def run(argv: list[str]) -> None:
    """Run one kelpseg command; stop on failure."""
    console.print(f"$ kelpseg {' '.join(argv)}", highlight=False)
    if (code := kelpseg(argv)) != 0:
        raise SystemExit(f"kelpseg {argv[0]} failed with exit code {code}")


def out_of_fold(work: Path, config: SynthConfig, k: int, workers: int) -> tuple[Path, Path]:
    """Generate data and tree-model OOF probabilities; return (split catalog, OOF folder)."""
    data, split, oof = work / "data", work / "split" / "split.parquet", work / "oof"
    if not (data / TRUTH_NAME).is_file():
        generate_dataset(data, config, workers=workers, overwrite=True, show_progress=False)
    if not split.is_file():
        run(["eda", "stats", str(data), "--out", str(work / "eda"), "--workers", str(workers),
             "--quiet", "--no-plots"])  # fmt: skip
        run(["split", str(work / "eda" / "tile_stats.parquet"), "--out", str(work / "split"),
             "--set", f"k={k}", "--quiet"])  # fmt: skip
    if not (work / "pixels").is_dir():
        run(["tabular", "build", str(split), "--out", str(work / "pixels"), "--workers",
             str(workers), "--quiet", "--set", f"threads={workers}"])  # fmt: skip
    for fold in range(k):
        model = work / f"tree-{fold}"
        if not model.is_dir():
            run(["tabular", "train", str(work / "pixels"), "--out", str(model), "--fold",
                 str(fold), "--no-mlflow", "--quiet", "--set", f"threads={workers}"])  # fmt: skip
            run(["tabular", "predict", str(model), str(split), "--out", str(oof), "--split",
                 "train", "--fold", str(fold), "--quiet"])  # fmt: skip
    return split, oof


def network_out_of_fold(work: Path, split: Path, config: Path, k: int, epochs: int | None) -> Path:
    """``train-cv`` of ``config`` on the split, then ``labels oof``: the network's OOF folder."""
    channels = yaml.safe_load(config.read_text())["features"]["channels"]
    stats, store, oof = work / "stats.json", work / "store", work / "oof-net"
    if not stats.is_file():
        run(["stats", str(split), "--channels", ",".join(channels), "--out", str(stats),
             "--threads", "1", "--no-progress"])  # fmt: skip
    if not store.is_dir():
        run(["prepare", str(split), "--out", str(store)])
    extra = ["--set", f"trainer.max_epochs={epochs}"] if epochs else []
    run(["train-cv", "--config", str(config), "--folds", ",".join(map(str, range(k))), "--resume",
         "--set", f"data.catalog={split}", "--set", f"data.store={store}",
         "--set", f"stats_path={stats}", "--set", f"output_dir={work / 'net'}",
         "--set", "tracking.enabled=false", *extra])  # fmt: skip
    run(["labels", "oof", str(work / "net"), "--data", str(split), "--out", str(oof), "--quiet"])
    return oof


def committee_report(
    split: Path, members: dict[str, Path], truth: pd.DataFrame, ks: list[int]
) -> None:
    """precision@k of each member alone and of the committee under every combine rule."""
    positives = set(mislabelled_ids(truth))
    variants: list[tuple[str, list[Path], AuditConfig]] = []
    for blob in (0, 20):
        tag = f"+blob{blob}" if blob else ""
        for name, folder in members.items():
            variants.append((f"{name}{tag}", [folder], AuditConfig(min_blob_pixels=blob)))
        for rule in COMBINE_RULES:
            variants.append((f"committee {rule}{tag}", list(members.values()),
                             AuditConfig(combine=rule, min_blob_pixels=blob)))  # fmt: skip
    n_pos = None
    for name, folders, cfg in variants:
        result = audit_labels(folders, split, cfg, show_progress=False)
        ranking = result.ranking
        if n_pos is None:
            n_pos = int(ranking["tile_id"].isin(positives).sum())
            console.print(
                f"{'predictions':>22} "
                + " ".join(f"{'P@' + str(k):>6}" for k in [n_pos, *ks])
                + "  flagged (precision, recall)"
            )
        cells = " ".join(f"{precision_at_k(ranking, positives, k):6.2f}" for k in [n_pos, *ks])
        hits = sum(t in positives for t in result.flagged)
        console.print(
            f"{name:>22} {cells}  {len(result.flagged)} "
            f"({hits / max(len(result.flagged), 1):.2f}, {hits / max(n_pos, 1):.2f})"
        )


def report(split: Path, oof: Path, truth: pd.DataFrame, ks: list[int]) -> None:
    """precision@k of every score, and of the default flagged list."""
    positives = mislabelled_ids(truth)
    base = audit_labels(oof, split, AuditConfig(), show_progress=False)
    audited = set(base.ranking["tile_id"].astype(str))
    n_pos = len(audited & set(positives))
    console.print(
        f"{len(audited)} training tiles audited, {n_pos} mislabelled by the generator "
        f"({truth.loc[truth.tile_id.isin(positives), 'label_corruption'].value_counts().to_dict()})"
    )
    header = f"{'score':>22} " + " ".join(f"{'P@' + str(k):>6}" for k in [n_pos, *ks])
    console.print(header)
    # One audit per mask setting; every score is computed from its agreement columns.
    tables = {
        "": base.ranking,
        "+blob20": audit_labels(
            oof, split, AuditConfig(min_blob_pixels=20), show_progress=False
        ).ranking,
    }
    variants = [
        (f"{name}{tag}", tables[tag], AuditConfig(score=name)) for tag in tables for name in SCORES
    ]
    at_09 = audit_labels(oof, split, AuditConfig(threshold=0.9), show_progress=False).ranking
    variants.append(("dice_area@0.9", at_09, AuditConfig()))
    ranks = {}
    for name, table, cfg in variants:
        ranking = rank_tiles(table.drop(columns=["rank", "flagged", "score"]), cfg)
        cells = " ".join(f"{precision_at_k(ranking, positives, k):6.2f}" for k in [n_pos, *ks])
        console.print(f"{name:>22} {cells}")
        ranks[name] = sorted(ranking.loc[ranking["tile_id"].isin(positives), "rank"].tolist())
    beds = set(truth.loc[truth.label_corruption.str.contains("wrong_bed"), "tile_id"])
    for name in ("dice_area", "dice_area+blob20", "region", "dice_area_region"):
        console.print(f"ranks of the mislabelled tiles, {name}: {ranks[name]}")
        table = tables["+blob20" if name.endswith("+blob20") else ""]
        ranking = rank_tiles(
            table.drop(columns=["rank", "flagged", "score"]),
            AuditConfig(score=name.removesuffix("+blob20")),
        )
        bed_ranks = sorted(ranking.loc[ranking["tile_id"].isin(beds), "rank"].tolist())
        n_beds = len(bed_ranks)
        console.print(
            f"  of which wrong beds beside real kelp: {bed_ranks}; precision@{n_beds} among "
            f"them {precision_at_k(ranking, beds, n_beds):.2f}"
        )
    flagged = base.flagged
    hits = sum(t in set(positives) for t in flagged)
    console.print(
        f"default flagged list (score dice_area >= 0.5 among the worst 20): {len(flagged)} "
        f"tiles, precision {hits / max(len(flagged), 1):.2f}, recall {hits / max(n_pos, 1):.2f}"
    )
    false = truth[truth.tile_id.isin(set(flagged) - set(positives))]
    console.print(
        "flagged but not mislabelled: " + str(false["label_corruption"].value_counts().to_dict())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/kelpseg-label-audit"))
    parser.add_argument("--n-aoi", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wrong-tile-rate", type=float, default=0.05)
    parser.add_argument("--hard", action="store_true", help="synth hard mode (SynthConfig.hard)")
    parser.add_argument(
        "--wrong-bed-rate", type=float, help="train tiles with kelp that get a wrong bed too"
    )
    parser.add_argument("--k", type=int, default=5, help="folds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--network", type=Path, help="also audit this config's OOF predictions")
    parser.add_argument("--epochs", type=int, help="the network's trainer.max_epochs")
    args = parser.parse_args()
    extra = {} if args.wrong_bed_rate is None else {"wrong_bed_rate": args.wrong_bed_rate}
    config = SynthConfig(
        n_aoi=args.n_aoi, seed=args.seed, wrong_tile_rate=args.wrong_tile_rate,
        misaligned_share=0.15, hard=args.hard, **extra,
    )  # fmt: skip
    split, oof = out_of_fold(args.work, config, args.k, args.workers)
    truth = pd.read_parquet(args.work / "data" / TRUTH_NAME)
    report(split, oof, truth, [5, 10, 20])
    if args.network is not None:
        net = network_out_of_fold(args.work, split, args.network, args.k, args.epochs)
        committee_report(split, {"network": net, "tree": oof}, truth, [5, 10, 20])


if __name__ == "__main__":
    main()
