"""Group tiles of the same area (AOI): radius neighbour search, union-find, exploding big groups.

Two tiles share an AOI when the cosine similarity of their embeddings is at least a threshold;
groups are the connected components of that relation. The search never builds the n x n
similarity matrix: for many vectors, rows are projected on their top principal components (a
projection never lengthens a distance, so a radius search there returns every true pair and a
few more) and the candidates are checked exactly on the full vectors, chunk by chunk; for few
vectors, exact similarities are computed block by block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kelpseg.errors import KelpsegError
from kelpseg.split._extras import sklearn

# Explode rounds stop here: tiles this similar are the same place whatever the group size.
MAX_THRESHOLD = 0.9999
_PCA_SAMPLE = 2048  # any orthonormal projection is exact; a small sample finds a good one
_EXACT_WORK = 5e10  # n^2 x d below which full similarities are cheaper than the search


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving and union by size."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        """The root of ``x``'s set."""
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        """Merge the sets of ``a`` and ``b``; True when they were distinct."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True

    def union_pairs(self, i: np.ndarray, j: np.ndarray) -> None:
        """Merge every pair ``(i[k], j[k])``."""
        for a, b in zip(i.tolist(), j.tolist(), strict=True):
            self.union(a, b)

    def labels(self) -> np.ndarray:
        """Set id of every element: 0..k-1, numbered by each set's smallest element."""
        roots = np.fromiter((self.find(x) for x in range(len(self.parent))), np.int64)
        return canonical_labels(roots)


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Relabel groups 0..k-1 in the order of their first element (stable across runs)."""
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, inverse = np.unique(labels, return_inverse=True)
    first = np.full(inverse.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(n))
    rank = np.argsort(np.argsort(first))
    return rank[inverse].astype(np.int64)


@dataclass(frozen=True)
class Pairs:
    """Pairs of rows with cosine similarity at or above a threshold (``i < j``)."""

    i: np.ndarray
    j: np.ndarray
    sim: np.ndarray

    def __len__(self) -> int:
        return len(self.i)


def _project(x: np.ndarray, rows: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """``x[rows]`` on ``dims`` orthonormal directions (PCA of a sample): a contraction.

    Projected block by block, so no full-size temporary copy of ``x`` is made.
    """
    if x.shape[1] <= dims or len(rows) <= dims:
        return np.ascontiguousarray(x[rows])
    rng = np.random.default_rng(seed)
    pick = rows if len(rows) <= _PCA_SAMPLE else rng.choice(rows, _PCA_SAMPLE, replace=False)
    pca = sklearn("sklearn.decomposition").PCA(
        n_components=dims, svd_solver="randomized", iterated_power=3, random_state=seed
    )
    pca.fit(x[np.sort(pick)])
    basis = pca.components_.T.astype(np.float32)
    # Centring is a shift of every point: it changes no distance, so it can be left out.
    z = np.empty((len(rows), dims), dtype=np.float32)
    step = _block_rows(x.shape[1])
    for start in range(0, len(rows), step):
        z[start : start + step] = x[rows[start : start + step]] @ basis
    return z


def _block_rows(dims: int, block_bytes: int = 8 * 2**20) -> int:
    """Rows of ``dims`` float32 values that fit in ``block_bytes`` (cache-friendly gathers)."""
    return max(64, block_bytes // (4 * dims))


def similar_pairs(
    vectors: np.ndarray,
    threshold: float,
    *,
    method: str = "auto",
    algorithm: str = "brute",
    search_dims: int = 32,
    chunk_size: int = 4096,
    seed: int = 0,
) -> Pairs:
    """Every pair of rows whose cosine similarity is >= ``threshold``, without an n x n matrix.

    ``projected``: candidates come from a scikit-learn radius search on a ``search_dims`` PCA
    projection (a projection never lengthens a distance, so no true pair is lost); each is then
    checked on the full vectors. ``exact``: similarities of the full vectors, block by block.
    Both return the same pairs with memory O(block x n); ``auto`` takes ``exact`` while
    n^2 x d is small (about 5e10: 4,000 vectors of 3,072 dimensions), where it is faster.

    Args:
        vectors: (n, d) L2-normalised rows; all-zero rows take part in no pair.
        threshold: cosine similarity threshold in (0, 1).
        method: ``auto``, ``projected`` or ``exact``.
        algorithm: scikit-learn ``NearestNeighbors`` algorithm for ``projected`` (``brute`` is
            fastest for embeddings of high intrinsic dimension; ``ball_tree`` also works).
        search_dims: dimensions of the projection searched.
        chunk_size: query rows per radius search.
        seed: seed of the PCA sample.

    Returns:
        The pairs (``i < j``) with their cosine similarity (float32 dot products).
    """
    if method not in ("auto", "projected", "exact"):
        raise KelpsegError(f"unknown pair search {method!r}; use auto, projected or exact")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    rows = np.flatnonzero(np.einsum("ij,ij->i", x, x) > 0.25)  # all-zero rows: no pairs
    if len(rows) < 2:
        return _pairs([], [], [])
    if method == "exact" or (method == "auto" and len(rows) ** 2 * x.shape[1] <= _EXACT_WORK):
        found = _exact_pairs(x[rows], threshold)
        return Pairs(rows[found.i], rows[found.j], found.sim)
    return _projected_pairs(x, rows, threshold, algorithm, search_dims, chunk_size, seed)


def _projected_pairs(
    x: np.ndarray,
    rows: np.ndarray,
    threshold: float,
    algorithm: str,
    dims: int,
    chunk: int,
    seed: int,
) -> Pairs:
    z = _project(x, rows, dims, seed)
    # |a - b|^2 = 2 - 2 cos(a, b) for unit vectors; the slack covers float32 rounding.
    radius = float(np.sqrt(max(2.0 - 2.0 * threshold, 0.0))) + 1e-4
    try:
        neighbors = sklearn("sklearn.neighbors").NearestNeighbors
        index = neighbors(radius=radius, algorithm=algorithm).fit(z)
    except ValueError as exc:
        raise KelpsegError(f"neighbour search: {exc}") from exc
    found_i, found_j, found_s = [], [], []
    for start in range(0, len(z), chunk):
        stop = min(start + chunk, len(z))
        hits = index.radius_neighbors(z[start:stop], return_distance=False)
        counts = np.fromiter((len(h) for h in hits), np.int64, len(hits))
        qi = np.repeat(np.arange(start, stop), counts)
        cj = np.concatenate(hits).astype(np.int64)
        keep = cj > qi
        qi, cj = rows[qi[keep]], rows[cj[keep]]
        sims = _row_dots(x, qi, cj)
        ok = sims >= threshold
        found_i.append(qi[ok])
        found_j.append(cj[ok])
        found_s.append(sims[ok])
    return _pairs(found_i, found_j, found_s)


def _exact_pairs(x: np.ndarray, threshold: float, block_bytes: int = 64 * 2**20) -> Pairs:
    """Pairs from blocks of the upper triangle of ``x @ x.T`` (``block_bytes`` per block)."""
    n = len(x)
    rows_per_block = max(1, block_bytes // (4 * n))
    found_i, found_j, found_s = [], [], []
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        sims = x[start:stop] @ x[start:].T
        qi, cj = np.nonzero(sims >= threshold)
        keep = cj > qi  # column c of this block is row start + c
        qi, cj = qi[keep], cj[keep]
        found_i.append(qi + start)
        found_j.append(cj + start)
        found_s.append(sims[qi, cj])
    return _pairs(found_i, found_j, found_s)


def _pairs(i: list[np.ndarray], j: list[np.ndarray], s: list[np.ndarray]) -> Pairs:
    if not i:
        empty = np.zeros(0, dtype=np.int64)
        return Pairs(empty, empty, np.zeros(0, dtype=np.float32))
    return Pairs(np.concatenate(i), np.concatenate(j), np.concatenate(s))


def _row_dots(x: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Dot products of rows ``x[i[k]]`` and ``x[j[k]]``, in cache-sized batches."""
    out = np.empty(len(i), dtype=np.float32)
    batch = _block_rows(x.shape[1])
    for s in range(0, len(i), batch):
        out[s : s + batch] = np.einsum("ij,ij->i", x[i[s : s + batch]], x[j[s : s + batch]])
    return out


def bruteforce_pairs(vectors: np.ndarray, threshold: float) -> Pairs:
    """Reference: the full n x n similarity matrix, as the seed did. O(n^2) memory."""
    x = np.asarray(vectors, dtype=np.float32)
    sims = x @ x.T
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    return Pairs(i.astype(np.int64), j.astype(np.int64), sims[i, j])


@dataclass(frozen=True)
class Grouping:
    """Groups of rows and how they were formed.

    Attributes:
        labels: group id of every row, 0..k-1 in order of first row.
        threshold: the base cosine threshold.
        exploded: groups above the size limit that were split at stricter thresholds.
        oversize: groups still above the limit at ``MAX_THRESHOLD`` (kept whole).
        rounds: explode rounds run.
        pairs: similar pairs found at the base threshold.
    """

    labels: np.ndarray
    threshold: float
    exploded: int
    oversize: int
    rounds: int
    pairs: int

    @property
    def sizes(self) -> np.ndarray:
        """Members per group."""
        return np.bincount(self.labels) if len(self.labels) else np.zeros(0, np.int64)


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of the graph on 0..n-1 with edges (i, j), via union-find."""
    uf = UnionFind(n)
    uf.union_pairs(i, j)
    return uf.labels()


def group_vectors(
    vectors: np.ndarray,
    threshold: float,
    *,
    max_group_size: int | None = None,
    explode_step: float = 0.01,
    pairs: Pairs | None = None,
    large_groups: str = "explode",
) -> Grouping:
    """Group rows whose similarity chains reach ``threshold``; explode groups that are too big.

    With ``large_groups="explode"`` a group larger than ``max_group_size`` is regrouped using
    only its pairs at ``threshold + explode_step``, then ``+ 2 * explode_step`` ... until every
    part fits or the threshold reaches ``MAX_THRESHOLD``. With ``"singletons"`` (the seed's
    rule) every row of such a group becomes a group of its own. Rows that are all zero end up
    alone.
    """
    if large_groups not in ("explode", "singletons"):
        raise KelpsegError(f"unknown large-group rule {large_groups!r}; use explode or singletons")
    if pairs is None:
        pairs = similar_pairs(vectors, threshold)
    n = len(vectors)
    labels = components(n, pairs.i, pairs.j)
    if large_groups == "singletons":
        return _split_into_singletons(labels, threshold, max_group_size, len(pairs))
    exploded, rounds, level = 0, 0, threshold
    limit = max_group_size or n + 1
    while level < MAX_THRESHOLD:
        sizes = np.bincount(labels, minlength=1)
        over = np.flatnonzero(sizes > limit)
        if len(over) == 0:
            break
        if rounds == 0:
            exploded = len(over)
        rounds += 1
        level = min(threshold + rounds * explode_step, MAX_THRESHOLD)
        in_over = np.isin(labels, over)
        keep = in_over[pairs.i] & (labels[pairs.i] == labels[pairs.j]) & (pairs.sim >= level)
        members = np.flatnonzero(in_over)
        local = np.full(n, -1, dtype=np.int64)
        local[members] = np.arange(len(members))
        sub = components(len(members), local[pairs.i[keep]], local[pairs.j[keep]])
        labels = labels.copy()
        labels[members] = labels.max() + 1 + sub
        labels = canonical_labels(labels)
    oversize = int((np.bincount(labels, minlength=1) > limit).sum())
    return Grouping(labels, threshold, exploded, oversize, rounds, len(pairs))


def _split_into_singletons(
    labels: np.ndarray, threshold: float, max_group_size: int | None, pairs: int
) -> Grouping:
    """Every row of a group above ``max_group_size`` becomes a group of its own."""
    sizes = np.bincount(labels, minlength=1)
    over = np.flatnonzero(sizes > (max_group_size or len(labels) + 1))
    members = np.flatnonzero(np.isin(labels, over))
    labels = labels.copy()
    labels[members] = labels.max(initial=-1) + 1 + np.arange(len(members))
    return Grouping(canonical_labels(labels), threshold, len(over), 0, 0, pairs)
