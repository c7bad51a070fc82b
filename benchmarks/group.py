"""Grouping speed and memory: kelpseg's neighbour search vs the full pairwise matrix.

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
import gc
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from rich.table import Table

from kelpseg.console import console
from kelpseg.split import bruteforce_pairs, group_vectors
from kelpseg.split.grouping import components

THRESHOLD = 0.90


def clustered_embeddings(n: int, dims: int, seed: int = 0, latent: int = 48) -> np.ndarray:
    """Unit vectors in clusters of 1-12 (an AOI's tiles), on a ``latent``-dim subspace + noise.

    Real DEM embeddings have a fast-decaying spectrum (on 1,517 generated tiles, 32 principal
    components hold 77% of the variance); the latent scales mimic that.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 13, n)
    aoi = np.repeat(np.arange(n), sizes)[:n]
    scales = (1.0 / np.sqrt(np.arange(1, latent + 1))).astype(np.float32)
    centres = rng.standard_normal((aoi.max() + 1, latent), dtype=np.float32) * scales
    points = centres[aoi] + 0.08 * rng.standard_normal((n, latent), dtype=np.float32) * scales
    basis = np.linalg.qr(rng.standard_normal((dims, latent)))[0].T.astype(np.float32)
    x = points @ basis
    x += (
        0.02
        * np.linalg.norm(x, axis=1, keepdims=True)
        * rng.standard_normal((n, dims), dtype=np.float32)
        / np.sqrt(dims)
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


class PeakMemory:
    """Samples this process's resident memory in a thread; ``extra_mib`` is the peak growth."""

    def __init__(self, every_s: float = 0.005) -> None:
        self.every_s = every_s
        self.base = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def extra_mib(self) -> float:
        return (self.peak - self.base) / 2**20


def _rss_bytes() -> int:
    statm = Path("/proc/self/statm").read_text()  # Linux: resident pages are the 2nd field
    return int(statm.split()[1]) * resource.getpagesize()


def run_one(n: int, dims: int, method: str) -> dict[str, float | list[int]]:
    """Group ``n`` embeddings with one method; seconds, peak extra memory, the groups."""
    x = clustered_embeddings(n, dims)
    gc.collect()
    with PeakMemory() as memory:
        start = time.perf_counter()
        if method == "kelpseg":
            labels = group_vectors(x, THRESHOLD).labels
        else:
            pairs = bruteforce_pairs(x, THRESHOLD)
            labels = components(n, pairs.i, pairs.j)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "extra_mib": memory.extra_mib,
        "groups": int(labels.max()) + 1,
        "labels": labels.tolist() if n <= 20_000 else [],
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
