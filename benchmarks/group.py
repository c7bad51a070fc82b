"""Grouping speed and memory: kelpseg's neighbour search vs the full pairwise matrix.

The measurement is the ``group`` suite's (:mod:`kelpseg.bench.group`, the one implementation;
``kelpseg bench --suite group`` times it in-process); this script runs each size in a fresh
process to add peak memory, and goes to sizes where the full matrix no longer fits.

For 2k, 20k and 100k synthetic embeddings shaped like the DEM embedder's (3,072 dimensions,
AOI-like clusters of 1-12 near-duplicates, low intrinsic dimension), time
:func:`kelpseg.split.group_vectors` against the seed's approach (the full n x n cosine matrix in
numpy, then the same union-find) where that matrix fits in memory (<= ``--max-brute`` rows),
print the speed ratio and the peak memory each needs beyond the embeddings themselves (resident
memory sampled every 5 ms), and assert that both give identical groups. Each run is a fresh
subprocess. Linux only (reads /proc/self/statm).

    .venv/bin/python benchmarks/group.py                 # 2k, 20k, 100k
    .venv/bin/python benchmarks/group.py --sizes 2000 --dims 512
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from rich.table import Table

from kelpseg.bench.group import THRESHOLD, clustered_embeddings, measure_grouping
from kelpseg.console import console


def run_one(n: int, dims: int, method: str) -> dict[str, float | list[int]]:
    """Group ``n`` embeddings with one method; seconds, peak extra memory, the groups."""
    run = measure_grouping(clustered_embeddings(n, dims), method)
    return {
        "seconds": run.seconds,
        "extra_mib": run.extra_mib,
        "groups": int(run.labels.max()) + 1,
        "labels": run.labels.tolist() if n <= 20_000 else [],
    }


def spawn(n: int, dims: int, method: str) -> dict[str, float | list[int]]:
    """Run :func:`run_one` in a fresh interpreter (isolated peak memory)."""
    out = subprocess.run(
        [sys.executable, __file__, "--one", str(n), method, "--dims", str(dims)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float | list[int]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Time both methods per size, print the table and assert identical groups."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000, 100_000])
    parser.add_argument("--dims", type=int, default=3072)
    parser.add_argument("--max-brute", type=int, default=20_000, help="largest n x n matrix")
    parser.add_argument("--one", nargs=2, metavar=("N", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(int(args.one[0]), args.dims, args.one[1])))
        return
    table = Table(title=f"grouping {args.dims}-dim embeddings at cosine >= {THRESHOLD}")
    for col in (
        "n",
        "kelpseg s",
        "kelpseg extra MiB",
        "full matrix s",
        "matrix extra MiB",
        "speed-up",
        "groups",
        "identical",
    ):
        table.add_column(col, justify="right")
    for n in args.sizes:
        ours = spawn(n, args.dims, "kelpseg")
        row = [f"{n:,}", f"{ours['seconds']:.2f}", f"{ours['extra_mib']:.0f}"]
        if n <= args.max_brute:
            ref = spawn(n, args.dims, "matrix")
            same = ours["labels"] == ref["labels"]
            assert same, f"n={n}: kelpseg and the full matrix disagree"
            ratio = float(ref["seconds"]) / float(ours["seconds"])
            row += [f"{ref['seconds']:.2f}", f"{ref['extra_mib']:.0f}", f"{ratio:.1f}x"]
        else:
            need = n * n * 4 / 2**30
            row += [f"(needs {need:.0f} GiB)", "-", "-"]
            same = None
        row += [str(ours["groups"]), {True: "yes", False: "NO", None: "-"}[same]]
        table.add_row(*row)
        console.print(f"n={n:,} done")
    console.print(table)
    console.print(f"data itself: {args.dims * 4 / 2**20 * 1000:.1f} MiB per 1,000 embeddings")


if __name__ == "__main__":
    main()
