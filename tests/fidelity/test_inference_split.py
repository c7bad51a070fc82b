"""The seed's inference and split rules, pinned to values worked out by hand.

Sources: the author's technical report (the two final submissions' weights and thresholds),
his averaging script (a weight sum that starts at the first member's weight), his fold-weight
script (public leaderboard Dice per fold, min-max scaled), his AOI grouping (groups over 100
tiles become single tiles) and his split (tiles with over 40% kelp dropped; AOIs stratified by
their most common label).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from kelpseg.inference.ensemble import (
    combine,
    seed_effective_threshold,
    seed_votes_needed,
    weights_from_scores,
)
from kelpseg.nn.models import kelp_logit
from kelpseg.split.config import SplitConfig
from kelpseg.split.folds import assign_folds, majority_labels
from kelpseg.split.grouping import group_vectors

#: Submission 2's ensemble weights, folds 0..9, as the technical report lists them.
SUBMISSION_2_WEIGHTS = [0.666, 0.5, 0.666, 0.88, 0.637, 0.59, 0.733, 0.63, 1.0, 0.2]
#: Public leaderboard Dice of folds 0..9 (the author's fold-weight script).
FOLD_LB_SCORES = [0.7110, 0.7086, 0.7110, 0.7139, 0.7106, 0.7100, 0.7119, 0.7105, 0.7155, 0.7047]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# -- the probability of a 2-class head -----------------------------------------------------


@pytest.mark.parametrize(
    ("z_background", "z_kelp"), [(2.0, 1.0), (-1.0, 0.5), (0.0, 0.0), (3.0, -2.0)]
)
def test_sigmoid_kelp_ignores_the_background_logit_where_softmax_does_not(
    z_background: float, z_kelp: float
) -> None:
    out = torch.tensor([z_background, z_kelp]).reshape(1, 2, 1, 1)
    softmax = float(torch.sigmoid(kelp_logit(out, "softmax")))
    seed = float(torch.sigmoid(kelp_logit(out, "sigmoid_kelp")))
    # softmax kelp probability = e^zk / (e^zb + e^zk) = sigmoid(zk - zb)
    assert softmax == pytest.approx(_sigmoid(z_kelp - z_background), abs=1e-6)
    assert seed == pytest.approx(_sigmoid(z_kelp), abs=1e-6)


def test_the_two_rules_disagree_on_a_crafted_pixel_at_the_seeds_threshold() -> None:
    # zb = 2, zk = 1: softmax 0.269 (no kelp), sigmoid(zk) 0.731 (kelp) at threshold 0.45.
    out = torch.tensor([2.0, 1.0]).reshape(1, 2, 1, 1)
    assert float(torch.sigmoid(kelp_logit(out, "softmax"))) == pytest.approx(0.26894, abs=1e-5)
    assert float(torch.sigmoid(kelp_logit(out, "sigmoid_kelp"))) == pytest.approx(0.73106, abs=1e-5)


def test_a_binary_head_has_one_probability_under_both_rules() -> None:
    out = torch.tensor([0.3]).reshape(1, 1, 1, 1)
    assert torch.equal(kelp_logit(out, "softmax"), kelp_logit(out, "sigmoid_kelp"))


# -- the seed's averaging --------------------------------------------------------------------


def test_seed_mean_counts_the_first_weight_twice() -> None:
    # weights (2, 1), probabilities (0.6, 0.3): the seed's sum 2*0.6 + 1*0.3 = 1.5 over a weight
    # sum that starts at 2 and adds 2 and 1: 1.5 / 5 = 0.3 (a plain weighted mean gives 0.5).
    probs = [np.array([0.6]), np.array([0.3])]
    assert float(combine(probs, [2.0, 1.0], "seed_mean")[0]) == pytest.approx(0.3)
    assert float(combine(probs, [2.0, 1.0], "mean_prob")[0]) == pytest.approx(0.5)


def test_seed_mean_skips_zero_weights_so_the_first_non_zero_one_counts_twice() -> None:
    # weights (0, 1, 3), probabilities (0.9, 0.2, 0.6): (0.2 + 1.8) / (1 + 1 + 3) = 0.4
    probs = [np.array([0.9]), np.array([0.2]), np.array([0.6])]
    assert float(combine(probs, [0.0, 1.0, 3.0], "seed_mean")[0]) == pytest.approx(0.4)


def test_submission_1_needs_6_of_10_votes() -> None:
    # Ten equal weights, masks at 0.48, mean over 11 weights: 5/11 = 0.4545 < 0.48 <= 6/11.
    assert seed_votes_needed(10, 0.48) == 6
    assert seed_votes_needed(10, 0.5) == 6  # 5.5 of 11
    assert seed_votes_needed(9, 0.5) == 5  # 5/10
    members = [np.zeros(3) for _ in range(10)]
    for k in range(5):
        members[k][0] = 0.9  # pixel 0: 5 votes
    for k in range(6):
        members[k][1] = 0.9  # pixel 1: 6 votes
    members[0][2] = 0.47  # pixel 2: a member just under the member threshold
    share = combine(members, None, "seed_vote", threshold=0.48)
    assert share.tolist() == pytest.approx([5 / 11, 6 / 11, 0.0])
    assert (share >= 0.48).tolist() == [False, True, False]


def test_submission_2_thresholds_the_weighted_mean_at_about_0_496() -> None:
    # 0.45 * (1 + 0.666 / 6.502) = 0.45 * 1.1024300 = 0.4960935
    assert sum(SUBMISSION_2_WEIGHTS) == pytest.approx(6.502)
    effective = seed_effective_threshold(SUBMISSION_2_WEIGHTS, 0.45)
    assert effective == pytest.approx(0.4960935, abs=1e-6)
    # The same seen through combine: a crafted pixel whose true weighted mean is just above /
    # just below the effective threshold lands on either side of 0.45.
    for mean, kelp in ((0.4965, True), (0.4955, False)):
        probs = [np.array([mean]) for _ in SUBMISSION_2_WEIGHTS]
        assert (combine(probs, SUBMISSION_2_WEIGHTS, "seed_mean")[0] >= 0.45) == kelp


def test_score_weights_are_the_leaderboard_scores_min_max_scaled_to_0_2_1() -> None:
    # min 0.7047 (fold 9), max 0.7155 (fold 8), span 0.0108; w = 0.2 + 0.8 (s - min) / span
    by_hand = [0.2 + 0.8 * (s - 0.7047) / 0.0108 for s in FOLD_LB_SCORES]
    assert by_hand[0] == pytest.approx(0.66667, abs=1e-4)
    assert by_hand[1] == pytest.approx(0.48889, abs=1e-4)
    w = weights_from_scores(FOLD_LB_SCORES)
    assert w.tolist() == pytest.approx(by_hand, abs=1e-9)
    # The report's weights are these values rounded, except fold 1 (0.489 -> 0.5 in the report).
    report = np.array(SUBMISSION_2_WEIGHTS)
    close = np.abs(w - report) < 0.006
    assert close.tolist() == [True, False, *[True] * 8]


# -- the split -------------------------------------------------------------------------------


def test_groups_over_the_limit_become_single_tiles() -> None:
    # Rows 0-4: one place (5 tiles); rows 5-6: another (2 tiles); row 7 alone. Limit 3.
    base = np.eye(4, dtype=np.float32)
    vectors = base[[0, 0, 0, 0, 0, 1, 1, 2]]
    grouping = group_vectors(vectors, 0.97, max_group_size=3, large_groups="singletons")
    labels = grouping.labels.tolist()
    assert len(set(labels[:5])) == 5  # the big group broke into 5 groups of 1
    assert labels[5] == labels[6] and labels[5] not in labels[:5]  # the small group stays
    assert sorted(np.bincount(grouping.labels).tolist()) == [1, 1, 1, 1, 1, 1, 2]
    assert grouping.exploded == 1 and grouping.oversize == 0
    # Exactly at the limit a group stays whole (the seed: "more than 100").
    kept = group_vectors(vectors, 0.97, max_group_size=5, large_groups="singletons")
    assert len(set(kept.labels[:5].tolist())) == 1


def _table() -> pd.DataFrame:
    n = 24
    return pd.DataFrame(
        {
            "tile_id": [f"T{i:02d}" for i in range(n)],
            "split": ["train"] * 20 + ["test"] * 4,
            "aoi_id": [i // 2 for i in range(n)],
            "kelp_pixels_pct": [0.0, 0.41, 0.4, 0.05, np.nan, 0.9, *[0.01] * 14, 0.8, 0.8, 0, 0],
            "qa_ok": [True] * n,
            "has_kelp": [False, True, True, True, False, True, *[True, False] * 7, *[True] * 4],
        }
    )


def test_tiles_over_40_percent_kelp_are_excluded_and_test_tiles_are_not() -> None:
    config = SplitConfig(k=2, stratify=["has_kelp"], exclude_kelp_above=0.4)
    out, summary = assign_folds(_table(), config)
    subset = dict(zip(out["tile_id"], out["subset"], strict=True))
    assert [subset[t] for t in ("T01", "T05")] == ["excluded", "excluded"]  # 0.41, 0.9
    assert [subset[t] for t in ("T00", "T02", "T04")] == ["train"] * 3  # 0.0, 0.4 (not >), NaN
    assert [subset[t] for t in ("T20", "T21")] == ["test", "test"]  # 0.8, but test tiles
    assert summary.excluded == 2 and summary.excluded_high_kelp == 2
    assert (out.loc[out["subset"] == "excluded", "fold"] == -1).all()


def test_each_aoi_takes_its_most_common_label() -> None:
    labels = np.array(["a", "b", "b", "a", "c", "c", "a"])
    groups = np.array([0, 0, 0, 1, 1, 1, 2])
    # AOI 0: b (2 of 3); AOI 1: c (2 of 3); AOI 2: a.
    assert majority_labels(labels, groups).to_dict() == {0: "b", 1: "c", 2: "a"}
    # A tie goes to the label seen first.
    assert majority_labels(np.array(["x", "y"]), np.array([5, 5])).to_dict() == {5: "x"}


def test_majority_folds_keep_aois_whole_and_balance_aoi_labels() -> None:
    table = _table()
    config = SplitConfig(k=2, stratify=["has_kelp"], group_stratification="majority")
    out, _ = assign_folds(table, config)
    train = out[out["subset"] == "train"]
    assert (train.groupby("aoi_id")["fold"].nunique() == 1).all()
    # AOI labels (has_kelp majority, ties to the first tile): stratified over the two folds.
    per_aoi = train.groupby("aoi_id").agg(fold=("fold", "first"), kelp=("has_kelp", "first"))
    counts = per_aoi.groupby(["kelp", "fold"]).size().unstack(fill_value=0)
    assert (counts.max(axis=1) - counts.min(axis=1) <= 1).all()


def test_kelpseg_majority_at_0_48_is_submission_1s_rule() -> None:
    rng = np.random.default_rng(0)
    members = [rng.random(500) for _ in range(10)]
    seed = combine(members, [1.0] * 10, "seed_vote", threshold=0.48) >= 0.48
    majority = combine(members, [1.0] * 10, "majority", threshold=0.48) >= 0.48
    assert np.array_equal(seed, majority) and 0 < seed.sum() < 500


def test_majority_folds_work_when_no_aoi_label_fills_every_fold() -> None:
    """Ten AOIs with ten different labels and k=5: scikit-learn alone refuses; labels merge."""
    n = 10
    table = pd.DataFrame(
        {
            "tile_id": [f"T{i:02d}" for i in range(n)],
            "split": ["train"] * n,
            "aoi_id": list(range(n)),
            "has_kelp": [True] * n,
            "qa_ok": [i % 2 == 0 for i in range(n)],
            "dem_has_nans": [i % 3 == 0 for i in range(n)],
            "high_corrupted_pixels_pct": [i / 10 for i in range(n)],
        }
    )
    config = SplitConfig(
        k=5,
        stratify=["qa_ok", "dem_has_nans", "high_corrupted_pixels_pct"],
        group_stratification="majority",
    )
    out, _ = assign_folds(table, config)
    assert sorted(out["fold"].value_counts().tolist()) == [2] * 5
