"""Grouping quality on generated data, whose true AOIs are known (synth_truth.parquet).

Generates a dataset (or reuses one), embeds every tile once (cached), then groups at several
thresholds and prints pairwise precision / recall of "same AOI" and the adjusted Rand index:
over all tiles, over tiles whose DEM has structure, and for pairs involving a shifted DEM.

    .venv/bin/python benchmarks/split_quality.py --n-aoi 200 --seed 11 --data /tmp/synth200
    .venv/bin/python benchmarks/split_quality.py --n-aoi 150 --seed 12 --misaligned-share 0.3 \
        --data /tmp/synth150s
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table

from kelpseg.console import console
from kelpseg.io import build_catalog
from kelpseg.split import SplitConfig, compute_embeddings, group_vectors, grouping_scores
from kelpseg.split.grouping import similar_pairs
from kelpseg.synth import SynthConfig, generate_dataset

THRESHOLDS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.95, 0.97)


def load_or_generate(data: Path, config: SynthConfig, workers: int) -> pd.DataFrame:
    """The truth table of ``data``, generating the dataset first if it is not there."""
    truth_path = data / "synth_truth.parquet"
    if not truth_path.is_file():
        start = time.perf_counter()
        generate_dataset(data, config, workers=workers)
        console.print(f"generated in {time.perf_counter() - start:.0f} s")
    return pd.read_parquet(truth_path)


def shifted_pair_recall(true: np.ndarray, pred: np.ndarray, shifted: np.ndarray) -> float:
    """Recall over true same-AOI pairs where at least one tile has a shifted DEM."""
    hits = total = 0
    for aoi in np.unique(true[shifted]):
        members = np.flatnonzero(true == aoi)
        for a in members:
            for b in members[members > a]:
                if shifted[a] or shifted[b]:
                    total += 1
                    hits += int(pred[a] == pred[b])
    return hits / total if total else float("nan")


def similarity_margin(vectors: np.ndarray, true: np.ndarray, info: np.ndarray) -> str:
    """Lowest same-AOI and highest different-AOI cosine among tiles with DEM structure."""
    same_i, same_j = [], []
    for aoi in np.unique(true):
        members = np.flatnonzero((true == aoi) & info)
        a, b = np.triu_indices(len(members), 1)
        same_i.append(members[a])
        same_j.append(members[b])
    i, j = np.concatenate(same_i), np.concatenate(same_j)
    lowest_same = float(np.einsum("ij,ij->i", vectors[i], vectors[j]).min())
    near = similar_pairs(vectors, 0.5)
    diff = near.sim[true[near.i] != true[near.j]]
    highest = f"{diff.max():.4f}" if len(diff) else "< 0.5"
    return f"lowest same-AOI cosine {lowest_same:.4f}, highest different-AOI cosine {highest}"


def main() -> None:
    """Parse arguments, embed, sweep thresholds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/_data/synth_quality"))
    parser.add_argument("--n-aoi", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--misaligned-share", type=float, default=0.03)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--embedder", default="dem")
    args = parser.parse_args()

    synth = SynthConfig(n_aoi=args.n_aoi, seed=args.seed, misaligned_share=args.misaligned_share)
    truth = load_or_generate(args.data, synth, args.workers)
    tiles = build_catalog(args.data).tiles.merge(truth, on=["tile_id", "split"])
    config = SplitConfig(embedder=args.embedder)
    start = time.perf_counter()
    emb = compute_embeddings(tiles, config, cache_dir=args.data / "_split_cache")
    console.print(f"{len(tiles)} tiles embedded in {time.perf_counter() - start:.1f} s")
    true = tiles["aoi"].to_numpy()
    shifted = ((tiles["dem_shift_row"] != 0) | (tiles["dem_shift_col"] != 0)).to_numpy()
    info = emb.informative
    console.print(
        f"{int((~info).sum())} tiles without DEM structure (own group), "
        f"{int(shifted.sum())} with a shifted DEM, {tiles['aoi'].nunique()} true AOIs"
    )
    console.print(similarity_margin(emb.vectors, true, info))
    pairs = similar_pairs(emb.vectors, min(THRESHOLDS))
    table = Table(title=f"grouping quality, embedder '{args.embedder}'")
    for col in ("thr", "P", "R", "ARI", "P*", "R*", "ARI*", "R shifted", "groups"):
        table.add_column(col, justify="right")
    for threshold in THRESHOLDS:
        keep = pairs.sim >= threshold
        sub = type(pairs)(pairs.i[keep], pairs.j[keep], pairs.sim[keep])
        pred = group_vectors(emb.vectors, threshold, pairs=sub).labels
        full = grouping_scores(true, pred)
        inf = grouping_scores(true, pred, info)
        table.add_row(
            f"{threshold:.2f}",
            *(f"{full[k]:.4f}" for k in ("precision", "recall", "ari")),
            *(f"{inf[k]:.4f}" for k in ("precision", "recall", "ari")),
            f"{shifted_pair_recall(true, pred, shifted):.4f}",
            str(len(np.unique(pred))),
        )
    console.print(table)
    console.print(
        "P, R: pairwise precision and recall of 'same AOI'; *: over tiles whose DEM has "
        "structure (the others cannot be matched by DEM); R shifted: recall of pairs with a "
        "shifted DEM"
    )


if __name__ == "__main__":
    main()
