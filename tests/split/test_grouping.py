"""Neighbour search, union-find, exploding oversize groups and leak exposure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from kelpseg.errors import KelpsegError
from kelpseg.split.grouping import (
    MAX_THRESHOLD,
    UnionFind,
    _exact_pairs,
    bruteforce_pairs,
    canonical_labels,
    components,
    group_vectors,
    similar_pairs,
)
from kelpseg.split.pipeline import aoi_frame, leak_exposure


def clustered(n: int, d: int, seed: int, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around n // 4 random centres, with their centre ids."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 4, d))
    labels = rng.integers(0, len(centres), n)
    x = centres[labels] + noise * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_union_find_merges_and_reports_new_unions() -> None:
    uf = UnionFind(6)
    assert uf.union(0, 1)
    assert uf.union(1, 2)
    assert not uf.union(0, 2)  # already together
    assert uf.union(4, 5)
    assert uf.find(2) == uf.find(0)
    assert uf.find(3) != uf.find(0)
    assert uf.labels().tolist() == [0, 0, 0, 1, 2, 2]


def test_union_find_matches_scipy_components_on_random_graphs() -> None:
    rng = np.random.default_rng(3)
    for n, m in [(50, 30), (200, 150), (500, 700)]:
        i, j = rng.integers(0, n, m), rng.integers(0, n, m)
        ours = components(n, i, j)
        graph = coo_matrix((np.ones(m), (i, j)), shape=(n, n))
        _, ref = connected_components(graph, directed=False)
        # Same partition: the label pairs map one to one.
        pairs = set(zip(ours.tolist(), ref.tolist(), strict=True))
        assert len(pairs) == len(set(ours.tolist())) == len(set(ref.tolist()))


def test_canonical_labels_number_groups_by_first_member() -> None:
    assert canonical_labels(np.array([7, 3, 7, 9, 3])).tolist() == [0, 1, 0, 2, 1]


@pytest.mark.parametrize(
    ("method", "algorithm"), [("projected", "brute"), ("projected", "ball_tree"), ("exact", "")]
)
def test_similar_pairs_equal_the_full_matrix(method: str, algorithm: str) -> None:
    x, _ = clustered(600, 96, seed=1, noise=0.3)
    x[::50] = 0.0  # rows without information take part in no pair
    ours = similar_pairs(
        x, 0.9, method=method, algorithm=algorithm or "brute", search_dims=16, chunk_size=128
    )
    ref = bruteforce_pairs(x, 0.9)
    assert len(ref) > 100
    assert set(zip(ours.i.tolist(), ours.j.tolist(), strict=True)) == set(
        zip(ref.i.tolist(), ref.j.tolist(), strict=True)
    )
    assert (ours.i < ours.j).all()
    assert np.allclose(np.sort(ours.sim), np.sort(ref.sim), atol=1e-5)
    assert not np.isin(np.arange(0, 600, 50), np.concatenate([ours.i, ours.j])).any()


def test_exact_blocks_cover_the_whole_upper_triangle() -> None:
    x, _ = clustered(300, 16, seed=4, noise=0.3)
    blocks = _exact_pairs(x, 0.8, block_bytes=4 * 300 * 7)  # 7 rows per block
    ref = bruteforce_pairs(x, 0.8)
    assert sorted(zip(blocks.i.tolist(), blocks.j.tolist(), strict=True)) == sorted(
        zip(ref.i.tolist(), ref.j.tolist(), strict=True)
    )


def test_similar_pairs_rejects_unknown_search_settings() -> None:
    x, _ = clustered(20, 8, seed=0)
    with pytest.raises(KelpsegError, match="neighbour search"):
        similar_pairs(x, 0.9, method="projected", algorithm="annoy")
    with pytest.raises(KelpsegError, match="unknown pair search 'faiss'"):
        similar_pairs(x, 0.9, method="faiss")


def test_groups_recover_clusters_and_zero_rows_stay_alone() -> None:
    x, centre = clustered(300, 32, seed=2, noise=0.1)
    x[:3] = 0.0
    grouping = group_vectors(x, 0.9)
    labels = grouping.labels
    assert len(set(labels[:3].tolist())) == 3
    assert (np.bincount(labels)[labels[:3]] == 1).all()
    rest = slice(3, None)
    pairs = set(zip(labels[rest].tolist(), centre[rest].tolist(), strict=True))
    assert len(pairs) == len(set(centre[rest].tolist()))  # one group per cluster


def chain_vectors() -> np.ndarray:
    """Two tight clusters of 4 bridged by a middle vector: one group of 9 at 0.9 only."""
    a = [unit([1.0, 0.02 * k, 0.0]) for k in range(4)]
    b = [unit([0.0, 0.02 * k, 1.0]) for k in range(4)]
    bridge = [unit([1.0, 0.0, 1.0])]  # cos 0.707 to both: links at 0.7, not at 0.75
    return np.stack([*a, *bridge, *b])


def test_oversize_group_explodes_at_a_stricter_threshold() -> None:
    x = chain_vectors()
    whole = group_vectors(x, 0.7)
    assert whole.sizes.max() == 9 and whole.exploded == 0
    split = group_vectors(x, 0.7, max_group_size=5, explode_step=0.05)
    assert split.exploded == 1 and split.rounds == 1 and split.oversize == 0
    assert split.sizes.max() <= 5
    labels = split.labels
    assert len(set(labels[:4].tolist())) == 1 and len(set(labels[5:].tolist())) == 1
    assert labels[0] != labels[5]


def test_identical_vectors_beyond_the_size_limit_stay_together() -> None:
    x = np.tile(unit([1.0, 2.0, 3.0]), (6, 1))
    grouping = group_vectors(x, 0.9, max_group_size=3, explode_step=0.05)
    assert grouping.oversize == 1
    assert grouping.sizes.tolist() == [6]
    expected_rounds = int(np.ceil((MAX_THRESHOLD - 0.9) / 0.05 - 1e-9))
    assert grouping.rounds == expected_rounds


def test_aoi_frame_and_leak_exposure() -> None:
    frame = pd.DataFrame(
        {
            "tile_id": ["a", "b", "c", "d", "e"],
            "split": ["train", "train", "test", "test", "test"],
        }
    )
    grouping = group_vectors(
        np.stack([unit([1, 0]), unit([0, 1]), unit([1, 0.01]), unit([1, -0.01]), unit([-1, 0])]),
        0.99,
    )
    out = aoi_frame(frame, np.array(["a", "b", "c", "d", "e"], dtype=object), grouping)
    assert out["aoi_id"].tolist() == [0, 1, 0, 0, 2]
    assert leak_exposure(out) == {
        "test_tiles": 3,
        "test_tiles_sharing_aoi_with_train": 2,
        "aois_shared_by_train_and_test": 1,
    }
    with pytest.raises(KelpsegError, match="no embedding"):
        aoi_frame(frame, np.array(["a", "b"], dtype=object), group_vectors(np.eye(2), 0.9))
