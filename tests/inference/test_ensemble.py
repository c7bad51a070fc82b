"""Ensemble maths: identity of identical members, weights, logit mean, logical ensembles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.inference import ensemble
from kelpseg.inference.ensemble import (
    ENSEMBLE_MODES,
    EnsembleSource,
    combine,
    normalise_weights,
    weights_from_scores,
    write_soft_labels,
)
from kelpseg.inference.rasters import PredictionDir, read_prediction


def _probs(seed: int, shape: tuple[int, ...] = (16, 16)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float64).astype(np.float32)


@pytest.mark.parametrize("mode", ["mean_prob", "union", "intersection", "majority"])
@pytest.mark.parametrize("weights", [None, [0.3, 0.7], [5.0, 1.0]])
def test_two_identical_members_equal_the_single_member(mode: str, weights: list | None) -> None:
    p = _probs(0)
    p[0, :4] = [0.0, 1.0, 0.5, np.float32(0.5) - np.float32(1e-7)]
    single = combine([p], mode=mode)
    pair = combine([p, p.copy()], weights, mode=mode)
    assert pair.dtype == np.float32
    np.testing.assert_array_equal(pair, single)
    if mode == "mean_prob":
        np.testing.assert_array_equal(single, p)
    else:
        np.testing.assert_array_equal(single, (p.astype(np.float64) >= 0.5).astype(np.float32))


def test_identical_members_under_mean_logit_equal_the_member_closely() -> None:
    p = np.clip(_probs(1), 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(combine([p, p, p], [1, 2, 3], "mean_logit"), p, atol=1e-6)


def test_identical_torch_members_equal_the_single_member() -> None:
    p = torch.from_numpy(_probs(2))
    out = combine([p, p.clone()], [0.2, 0.8])
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert torch.equal(out, p)


def test_the_float32_device_path_keeps_identity_and_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Accelerators combine in float32; run that code path on the CPU.
    monkeypatch.setattr(ensemble, "_wide_dtype", lambda device: torch.float32)
    p = torch.from_numpy(_probs(3))
    assert torch.equal(combine([p, p.clone()]), p)
    torch.testing.assert_close(combine([p, p], [0.2, 0.8]), p, rtol=1e-6, atol=1e-7)
    q = torch.from_numpy(_probs(4))
    torch.testing.assert_close(combine([p, q], [3, 1]), 0.75 * p + 0.25 * q)
    torch.testing.assert_close(combine([p, p], mode="mean_logit"), p, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_members_on_the_gpu_combine_like_on_the_cpu() -> None:
    a, b = torch.from_numpy(_probs(5)), torch.from_numpy(_probs(6))
    on_gpu = combine([a.cuda(), b.cuda()], [1, 2], "mean_logit")
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    torch.testing.assert_close(on_gpu.cpu(), combine([a, b], [1, 2], "mean_logit"))


def test_weights_are_respected_in_the_probability_mean() -> None:
    a, b = np.full((4, 4), 0.9, np.float32), np.full((4, 4), 0.1, np.float32)
    np.testing.assert_allclose(combine([a, b], [3, 1]), 0.75 * 0.9 + 0.25 * 0.1, rtol=1e-6)
    np.testing.assert_allclose(combine([a, b], [0.3, 0.1]), 0.75 * 0.9 + 0.25 * 0.1, rtol=1e-6)
    np.testing.assert_array_equal(combine([a, b], [1, 0]), a)
    np.testing.assert_allclose(combine([a, b]), 0.5, rtol=1e-6)


def test_mean_logit_is_the_sigmoid_of_the_weighted_mean_logit() -> None:
    a, b = _probs(3), _probs(4)
    w = np.array([0.25, 0.75])
    za = np.log(a.astype(np.float64) / (1 - a))
    zb = np.log(b.astype(np.float64) / (1 - b))
    expected = 1 / (1 + np.exp(-(w[0] * za + w[1] * zb)))
    np.testing.assert_allclose(combine([a, b], w, "mean_logit"), expected, rtol=1e-5)
    torch_out = combine([torch.from_numpy(a), torch.from_numpy(b)], w, "mean_logit")
    np.testing.assert_allclose(torch_out.numpy(), expected, rtol=1e-5)


def test_logical_ensembles_on_crafted_masks() -> None:
    m1 = np.array([[1, 1, 0, 0]], np.float32)
    m2 = np.array([[1, 0, 1, 0]], np.float32)
    m3 = np.array([[1, 0, 1, 1]], np.float32)
    members = [m1, m2, m3]
    np.testing.assert_array_equal(combine(members, mode="union"), [[1, 1, 1, 1]])
    np.testing.assert_array_equal(combine(members, mode="intersection"), [[1, 0, 0, 0]])
    np.testing.assert_array_equal(combine(members, mode="majority"), [[1, 0, 1, 0]])
    # A heavy first member outvotes the other two.
    np.testing.assert_array_equal(combine(members, [0.6, 0.2, 0.2], "majority"), m1)
    # Two equal members that disagree tie: a tie is not kelp.
    np.testing.assert_array_equal(combine([m1, m2], mode="majority"), [[1, 0, 0, 0]])


def test_logical_ensembles_threshold_probabilities() -> None:
    a = np.array([[0.2, 0.6]], np.float32)
    b = np.array([[0.4, 0.45]], np.float32)
    np.testing.assert_array_equal(combine([a, b], mode="union", threshold=0.5), [[0, 1]])
    np.testing.assert_array_equal(combine([a, b], mode="union", threshold=0.3), [[1, 1]])
    np.testing.assert_array_equal(combine([a, b], mode="intersection", threshold=0.3), [[0, 1]])


def test_weights_from_scores_min_max_scales_like_the_seed() -> None:
    w = weights_from_scores([0.80, 0.85, 0.82, 0.90])
    np.testing.assert_allclose(w, [0.2, 0.6, 0.36, 1.0])
    np.testing.assert_allclose(weights_from_scores([0.7, 0.7]), [1.0, 1.0])
    np.testing.assert_allclose(weights_from_scores([1, 3], low=0.0, high=2.0), [0.0, 2.0])
    with pytest.raises(KelpsegError):
        weights_from_scores([])
    with pytest.raises(KelpsegError):
        weights_from_scores([0.5, float("nan")])


def test_normalise_weights_sums_to_one_and_rejects_bad_weights() -> None:
    np.testing.assert_allclose(normalise_weights([2, 6], 2), [0.25, 0.75])
    np.testing.assert_allclose(normalise_weights(None, 4), [0.25] * 4)
    for bad in ([1.0], [1.0, -1.0], [0.0, 0.0], [1.0, float("inf")]):
        with pytest.raises(KelpsegError):
            normalise_weights(bad, 2)


def test_combine_rejects_unknown_modes_and_mixed_shapes() -> None:
    assert set(ENSEMBLE_MODES) == {
        "mean_prob", "mean_logit", "union", "intersection", "majority", "seed_mean", "seed_vote"
    }  # fmt: skip
    with pytest.raises(KelpsegError, match="unknown ensemble mode"):
        combine([_probs(0)], mode="median")
    with pytest.raises(KelpsegError, match="differ in shape"):
        combine([_probs(0), _probs(0, (8, 8))])
    with pytest.raises(KelpsegError, match="at least one"):
        combine([])


def test_ensemble_source_combines_lazily_and_checks_tiles() -> None:
    a = {"T1": _probs(5), "T2": _probs(6)}
    b = {"T1": _probs(7), "T2": _probs(8)}
    source = EnsembleSource([a, b], [1, 3])
    assert list(source) == ["T1", "T2"] and len(source) == 2
    np.testing.assert_allclose(source["T2"], 0.25 * a["T2"] + 0.75 * b["T2"], rtol=1e-6)
    with pytest.raises(KelpsegError, match="differs from member 1 in 1 tiles"):
        EnsembleSource([a, {"T1": _probs(9)}])


def test_soft_labels_are_written_as_rasters_and_not_rewritten(tmp_path: Path) -> None:
    a = {"T1": _probs(10), "T2": _probs(11)}
    b = {"T1": _probs(12), "T2": _probs(13)}
    out = tmp_path / "soft"
    assert write_soft_labels([a, b], out, weights=[1, 1], show_progress=False) == 2
    soft = PredictionDir(out, kind="prob")
    np.testing.assert_array_equal(soft["T1"], combine([a["T1"], b["T1"]]))
    mask = read_prediction(out / "T1_kelp.tif")
    np.testing.assert_array_equal(mask, (soft["T1"].astype(np.float64) >= 0.5).astype(np.float32))
    assert write_soft_labels([a, b], out, show_progress=False) == 0
    assert write_soft_labels([a, b], out, overwrite=True, show_progress=False) == 2
