"""Group suite: AOI grouping by neighbour search against the full pairwise matrix, growing n.

Embeddings are shaped like the DEM embedder's (unit vectors, AOI-like clusters of 1-12
near-duplicates, low intrinsic dimension). :func:`kelpseg.split.group_vectors` is timed against
the seed's approach (the full n x n cosine matrix, then the same union-find) and both must give
identical groups. ``benchmarks/group.py`` runs the same measurement in fresh processes to add
peak memory.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import psutil

from kelpseg.bench.config import BenchConfig
from kelpseg.bench.measure import Figure, SuiteResult, median_rate
from kelpseg.errors import KelpsegError
from kelpseg.split import bruteforce_pairs, group_vectors
from kelpseg.split.grouping import components

THRESHOLD = 0.90
METHODS = ("kelpseg", "matrix")


@dataclass(frozen=True)
class GroupSettings:
    """Sizes of the group suite."""

    sizes: tuple[int, ...] = (1000, 4000, 8000)  # from 8000 the neighbour search runs
    dims: int = 3072

    @classmethod
    def for_run(cls, config: BenchConfig) -> GroupSettings:
        """The full sizes, or tiny ones with ``quick``."""
        return cls(sizes=(200, 400), dims=256) if config.quick else cls()


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
    noise = rng.standard_normal((n, dims), dtype=np.float32) / np.sqrt(dims)
    x += 0.02 * np.linalg.norm(x, axis=1, keepdims=True) * noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


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
        """Peak resident memory above the level at the start, in MiB."""
        return (self.peak - self.base) / 2**20


@dataclass
class GroupRun:
    """One grouping: its wall seconds, peak extra memory and the group label of each row."""

    seconds: float
    extra_mib: float
    labels: np.ndarray


def measure_grouping(x: np.ndarray, method: str, threshold: float = THRESHOLD) -> GroupRun:
    """Group the rows of ``x`` with ``kelpseg`` (neighbour search) or ``matrix`` (n x n)."""
    if method not in METHODS:
        raise KelpsegError(f"unknown grouping method {method!r}; one of {', '.join(METHODS)}")
    gc.collect()
    with PeakMemory() as memory:
        start = time.perf_counter()
        if method == "kelpseg":
            labels = group_vectors(x, threshold).labels
        else:
            pairs = bruteforce_pairs(x, threshold)
            labels = components(len(x), pairs.i, pairs.j)
        seconds = time.perf_counter() - start
    return GroupRun(seconds, memory.extra_mib, labels)


def run_group(
    config: BenchConfig, work: Path, settings: GroupSettings | None = None
) -> SuiteResult:
    """Embeddings/s of kelpseg's grouping against the full matrix, per n; groups must match."""
    settings = settings or GroupSettings.for_run(config)
    figures = []
    for n in settings.sizes:
        x = clustered_embeddings(n, settings.dims)
        runs: dict[str, list[GroupRun]] = {}
        for method in METHODS:
            for _ in range(config.warmup):
                measure_grouping(x, method)
            runs[method] = [measure_grouping(x, method) for _ in range(config.repeats)]
        ours, ref = runs["kelpseg"], runs["matrix"]
        identical = bool(np.array_equal(ours[0].labels, ref[0].labels))
        if not identical:
            raise KelpsegError(f"grouping of n={n}: kelpseg and the full matrix disagree")
        figures.append(
            Figure(
                f"group.n{n}",
                median_rate(n, [r.seconds for r in ours]),
                "embeddings/s",
                median_rate(n, [r.seconds for r in ref]),
                "full n x n cosine matrix (brute force)",
                "speed-up over brute force",
                extra={
                    "n": n,
                    "dims": settings.dims,
                    "groups": int(ours[0].labels.max()) + 1,
                    "identical_groups": identical,
                    "seconds": [r.seconds for r in ours],
                    "matrix_seconds": [r.seconds for r in ref],
                },
            )
        )
    return SuiteResult("group", figures, asdict(settings) | {"threshold": THRESHOLD})
