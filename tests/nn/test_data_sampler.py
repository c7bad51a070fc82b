"""The weighted sampler: both weight formulas, draw frequencies, epochs and DDP sharding.

The author formula is pinned to hand-worked values in tests/fidelity/test_formulas.py.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

from kelpseg.errors import KelpsegError
from kelpseg.nn.data.config import ImportanceFactors, SamplerConfig
from kelpseg.nn.data.sampler import IMPORTANCE_COLUMNS, TileSampler, build_sampler, sample_weights


def _stats(**columns: list[object]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base: dict[str, list[object]] = {c: [0.0] * n for c in IMPORTANCE_COLUMNS}
    base["water_pixels_pct"] = [0.0] * n
    for flag in ("has_kelp", "qa_ok", "almost_all_water"):
        base[flag] = [False] * n
    base.update(columns)
    return pd.DataFrame(base)


def test_kelpseg_formula_with_default_factors():
    stats = _stats(
        has_kelp=[True, False, False],
        kelp_pixels_pct=[0.5, 0.0, 0.0],
        qa_ok=[True, True, False],
        qa_corrupted_pixels_pct=[0.0, 0.0, 1.0],
        almost_all_water=[False, True, False],
        dem_nan_pixels_pct=[0.2, 0.8, 0.0],
        dem_zero_pixels_pct=[0.4, 0.0, 1.0],
    )
    weights = sample_weights(stats, formula="kelpseg", min_weight=0.01)
    # Defaults (3.0, 0.2, 0.0, -1.0, 0.5, 0.25, -1.0), worked by hand:
    # kelp tile: 1 + 3 + 0.2*0.5 + 0.25*0.2 - 0.4; water tile: 1 + 0.5 + 0.25*0.8;
    # corrupt land tile: 1 - 1 - 1 = -1, clipped to the minimum.
    np.testing.assert_allclose(weights, [3.75, 1.7, 0.01])


def test_weights_with_other_factors_match_an_independent_sum():
    rng = np.random.default_rng(4)
    n = 50
    columns: dict[str, list[object]] = {c: list(rng.random(n)) for c in IMPORTANCE_COLUMNS}
    for flag in ("has_kelp", "qa_ok", "almost_all_water"):
        columns[flag] = list(rng.random(n) > 0.5)
    stats = _stats(**columns)
    factors = ImportanceFactors(**{c: float(rng.uniform(-2, 2)) for c in IMPORTANCE_COLUMNS})
    expected = 1.0 + sum(
        getattr(factors, c) * stats[c].astype(float).to_numpy() for c in IMPORTANCE_COLUMNS
    )
    got = sample_weights(stats, factors, formula="kelpseg", min_weight=0.05)
    np.testing.assert_allclose(got, np.maximum(expected, 0.05))
    assert got.min() >= 0.05


def test_missing_values_count_as_zero_and_nullable_dtypes_work():
    stats = _stats(has_kelp=[True, None], kelp_pixels_pct=[0.5, None])
    stats = stats.astype({"has_kelp": "boolean", "kelp_pixels_pct": "Float64"})
    np.testing.assert_allclose(sample_weights(stats, formula="kelpseg"), [1 + 3.0 + 0.1, 1.0])
    # Author formula: w = 3 + 0.2 * 0.5 - 1 + 0.5 + 0.25 - 1 vs 0.2 - 1 + 0.5 + 0.25 - 1.
    np.testing.assert_allclose(sample_weights(stats), [1.0, 0.0], atol=1e-9)


def test_heavy_tiles_are_drawn_more_in_proportion():
    stats = _stats(has_kelp=[True] * 5 + [False] * 15)
    config = SamplerConfig(formula="kelpseg", samples_per_epoch=40_000)
    sampler = build_sampler(stats, config, seed=1)
    counts = Counter(index for index, _ in sampler)
    kelp = sum(counts[i] for i in range(5)) / 5
    other = sum(counts[i] for i in range(5, 20)) / 15
    assert kelp / other == pytest.approx(4.0, rel=0.05)  # weights 4 vs 1
    assert len(counts) == 20  # every tile is still drawn


def test_epochs_are_reproducible_and_differ():
    sampler = TileSampler(30, 60, np.linspace(0.1, 3, 30), seed=7)
    first = list(sampler)
    assert list(sampler) == first  # a pure function of (seed, epoch)
    assert list(TileSampler(30, 60, np.linspace(0.1, 3, 30), seed=7)) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first
    assert len({seed for _, seed in first + second}) == 120  # crop seeds are fresh


def test_unweighted_epochs_visit_every_tile():
    stats = _stats(has_kelp=[False] * 12)
    sampler = build_sampler(stats, SamplerConfig(weighted=False, samples_per_epoch=None))
    assert sorted(i for i, _ in sampler) == list(range(12))
    longer = TileSampler(12, 30)
    counts = Counter(i for i, _ in longer)
    assert set(counts) == set(range(12)) and max(counts.values()) == 3


def test_distributed_wrapper_shards_one_draw_and_forwards_the_epoch():
    def shards(epoch: int) -> list[list[tuple[int, int]]]:
        out = []
        for rank in (0, 1):
            wrapper = DistributedSamplerWrapper(
                TileSampler(25, 40, np.arange(1, 26, dtype=float), seed=3),
                num_replicas=2,
                rank=rank,
                shuffle=False,
            )
            wrapper.set_epoch(epoch)
            out.append(list(wrapper))
        return out

    reference = TileSampler(25, 40, np.arange(1, 26, dtype=float), seed=3)
    for epoch in (0, 1):
        reference.set_epoch(epoch)
        rank0, rank1 = shards(epoch)
        assert Counter(rank0 + rank1) == Counter(reference)
        assert len(rank0) == len(rank1) == 20


def test_author_weights_take_their_range_from_the_whole_catalog():
    train = _stats(has_kelp=[True, False], water_pixels_pct=[0.0, 1.0])
    # Training tiles alone: w = (3 + 0.2 - 1 + 0.5 + 0.25 - 1, 0.2 - 1 + 0 + 0.25 - 1).
    np.testing.assert_allclose(sample_weights(train), [1.0, 0.0], atol=1e-9)
    catalog = pd.concat([train, _stats(has_kelp=[True], water_pixels_pct=[0.5])])
    catalog["split"] = ["train", "train", "test"]
    # A test row weighs 0 before normalising: the range becomes [-1.55, 2.95].
    got = sample_weights(train, reference=catalog)
    np.testing.assert_allclose(got, [1.0, 0.0], atol=1e-9)
    catalog["split"] = ["train", "train", "train"]
    got = sample_weights(train, reference=catalog)
    np.testing.assert_allclose(got, [1.0, 0.0], atol=1e-9)


def test_all_equal_author_weights_are_refused():
    stats = _stats(has_kelp=[True, True])
    with pytest.raises(KelpsegError, match="weight 0"):
        build_sampler(stats, SamplerConfig(), source="cat.parquet")
    np.testing.assert_allclose(sample_weights(stats), [0.0, 0.0])


def test_bad_statistics_are_user_errors():
    stats = _stats(has_kelp=[True]).drop(columns=["dem_zero_pixels_pct"])
    with pytest.raises(KelpsegError, match="dem_zero_pixels_pct"):
        sample_weights(stats, source="cat.parquet")
    with pytest.raises(KelpsegError, match="water_pixels_pct"):
        sample_weights(_stats(has_kelp=[True]).drop(columns=["water_pixels_pct"]))
    with pytest.raises(KelpsegError, match="not percent"):
        sample_weights(_stats(kelp_pixels_pct=[35.0]))
    with pytest.raises(KelpsegError, match="0/1"):
        sample_weights(_stats(has_kelp=[2]))
    with pytest.raises(KelpsegError, match="not numeric"):
        sample_weights(_stats(qa_corrupted_pixels_pct=["lots"]))
