"""Ensemble maths: weighted probability/logit averages and logical (vote) ensembles.

Works on numpy arrays and torch tensors alike, so :mod:`predict` can combine members on the
device and ensemble selection can combine saved out-of-fold probabilities on the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from kelpseg.errors import KelpsegError
from kelpseg.inference.rasters import PredictionSource, write_predictions

Array = Any  # np.ndarray or torch.Tensor; torch stays an optional import here
_EPS = 1e-7


def normalise_weights(weights: Sequence[float] | np.ndarray | None, n: int) -> np.ndarray:
    """Weights of ``n`` members as float64 summing to 1 (``None``: equal weights).

    Raises:
        KelpsegError: wrong count, a negative or non-finite weight, or all weights zero.
    """
    if n < 1:
        raise KelpsegError("an ensemble needs at least one member")
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size != n:
        raise KelpsegError(f"got {w.size} weights for {n} ensemble members")
    if not np.isfinite(w).all() or (w < 0).any():
        raise KelpsegError(f"ensemble weights must be finite and >= 0, got {w.tolist()}")
    if w.sum() <= 0:
        raise KelpsegError("ensemble weights must not all be zero")
    return w / w.sum()


def weights_from_scores(
    scores: Sequence[float] | np.ndarray, low: float = 0.2, high: float = 1.0
) -> np.ndarray:
    """Min-max scale validation scores to [low, high] (the seed used [0.2, 1.0]).

    The best member gets ``high``, the worst ``low``; equal scores all get ``high``.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0 or not np.isfinite(s).all():
        raise KelpsegError(f"scores must be a non-empty list of finite numbers, got {s.tolist()}")
    if not 0.0 <= low <= high:
        raise KelpsegError(f"need 0 <= low <= high, got low={low}, high={high}")
    span = s.max() - s.min()
    if span == 0:
        return np.full(s.size, high)
    return low + (s - s.min()) / span * (high - low)


def _is_torch(x: Array) -> bool:
    return type(x).__module__.startswith("torch")


def _lib(x: Array) -> Any:
    if _is_torch(x):
        import torch

        return torch
    return np


def _mean_prob(stack: Array, w: Array, threshold: float) -> Array:
    return (stack * w).sum(0)


def _mean_logit(stack: Array, w: Array, threshold: float) -> Array:
    lib = _lib(stack)
    p = stack.clip(_EPS, 1.0 - _EPS)
    z = ((lib.log(p) - lib.log1p(-p)) * w).sum(0)
    return 1.0 / (1.0 + lib.exp(-z))


def _union(stack: Array, w: Array, threshold: float) -> Array:
    return (stack >= threshold).any(0)


def _intersection(stack: Array, w: Array, threshold: float) -> Array:
    return (stack >= threshold).all(0)


def _majority(stack: Array, w: Array, threshold: float) -> Array:
    # Strictly more than half the total weight: a tie is not kelp.
    return ((stack >= threshold) * w).sum(0) > 0.5


def _first_weight(w: Array) -> Array:
    # The seed skipped members of weight 0, so its double count hit the first non-zero one.
    flat = w.reshape(-1)
    return flat[flat > 0][0]


def _seed_mean(stack: Array, w: Array, threshold: float) -> Array:
    # The seed's average: its weight sum started at the first member's weight and then added
    # every weight again, so the first weight is counted twice in the denominator.
    return (stack * w).sum(0) / (1.0 + _first_weight(w))


def _seed_vote(stack: Array, w: Array, threshold: float) -> Array:
    # The same average over members' masks (each thresholded first, as the seed's hard labels).
    return ((stack >= threshold) * w).sum(0) / (1.0 + _first_weight(w))


#: name -> fn(stack (M, ...), weights broadcastable to it and summing to 1, threshold).
ENSEMBLE_MODES: dict[str, Callable[[Array, Array, float], Array]] = {
    "mean_prob": _mean_prob,
    "mean_logit": _mean_logit,
    "union": _union,
    "intersection": _intersection,
    "majority": _majority,
    "seed_mean": _seed_mean,
    "seed_vote": _seed_vote,
}


def seed_effective_threshold(weights: Sequence[float] | np.ndarray, threshold: float) -> float:
    """The threshold on the true weighted mean that the seed's averaging amounts to.

    ``seed_mean`` divides by ``sum(w) + w_first``, so ``mean >= threshold`` there is
    ``sum(w p) / sum(w) >= threshold * (1 + w_first / sum(w))``. Submission 2 (weights 0.666
    ... 0.2, threshold 0.45) thresholds the weighted mean at about 0.496.
    """
    w = normalise_weights(weights, len(weights))
    return float(threshold * (1.0 + w[w > 0][0]))


def seed_votes_needed(members: int, threshold: float) -> int:
    """Members (equal weights) whose masks must agree for ``seed_vote`` to mark a pixel.

    The vote share is ``votes / (members + 1)``; submission 1 (10 members, threshold 0.48)
    needs 6 of 10 votes, not 5.
    """
    if members < 1:
        raise KelpsegError("an ensemble needs at least one member")
    share = np.arange(members + 1) / (members + 1)
    return int(np.flatnonzero(share >= threshold)[0]) if (share >= threshold).any() else members + 1


def _wide_dtype(device: Any) -> Any:
    """The dtype of the ensemble maths on ``device``.

    float64 makes identical members combine to exactly that member; accelerators are slow at
    (or lack) float64, so they use float32 (identity then holds to ~1e-7).
    """
    import torch

    return torch.float64 if device.type == "cpu" else torch.float32


def _check_mode(mode: str) -> None:
    if mode not in ENSEMBLE_MODES:
        raise KelpsegError(f"unknown ensemble mode {mode!r}; known: {', '.join(ENSEMBLE_MODES)}")


def combine(
    probs: Sequence[Array],
    weights: Sequence[float] | np.ndarray | None = None,
    mode: str = "mean_prob",
    threshold: float = 0.5,
) -> Array:
    """Combine member probabilities of the same tiles into one probability map.

    Args:
        probs: member probabilities, all the same shape; numpy arrays or torch tensors.
        weights: one weight per member (normalised here); ``None`` for equal weights.
            The logical modes use them too: ``majority`` is a weighted vote.
        mode: ``mean_prob``, ``mean_logit`` (average of logits, then sigmoid), or a logical
            ensemble of the members' masks at ``threshold``: ``union``, ``intersection``,
            ``majority`` (more than half the weight); ``seed_mean`` / ``seed_vote``: the seed's
            average of probabilities / of masks at ``threshold``, whose denominator counts the
            first member's weight twice (see :func:`seed_effective_threshold`).
        threshold: the member decision threshold of the logical modes.

    Returns:
        Probabilities of the same type, shape and float dtype as the members; the logical
        modes return exact 0.0/1.0. The maths runs in float64 on the CPU, so an ensemble of
        identical members equals that member exactly (``mean_logit`` to ~1e-7).
    """
    _check_mode(mode)
    if len(probs) == 0:
        raise KelpsegError("an ensemble needs at least one member")
    shapes = {tuple(p.shape) for p in probs}
    if len(shapes) > 1:
        raise KelpsegError(f"ensemble members differ in shape: {sorted(shapes)}")
    w = normalise_weights(weights, len(probs))
    first = probs[0]
    if _is_torch(first):
        import torch

        wide = _wide_dtype(first.device)
        stack = torch.stack([p.to(wide) for p in probs])
        wt = torch.as_tensor(w, dtype=wide, device=first.device)
        merged = ENSEMBLE_MODES[mode](stack, wt.reshape(-1, *([1] * first.ndim)), threshold)
        dtype = first.dtype if first.is_floating_point() else torch.float32
        return merged.to(dtype)
    arrays = np.stack([np.asarray(p, dtype=np.float64) for p in probs])
    out = ENSEMBLE_MODES[mode](arrays, w.reshape(-1, *([1] * arrays[0].ndim)), threshold)
    kind = np.asarray(first).dtype
    return np.asarray(out).astype(kind if np.issubdtype(kind, np.floating) else np.float32)


class EnsembleSource(Mapping[str, np.ndarray]):
    """Member prediction sources combined lazily, tile by tile, as one source.

    Every member must hold the same tiles; combining happens when a tile is read, so large
    ensembles of saved predictions never sit in memory at once.
    """

    def __init__(
        self,
        members: Sequence[PredictionSource],
        weights: Sequence[float] | np.ndarray | None = None,
        mode: str = "mean_prob",
        threshold: float = 0.5,
    ) -> None:
        _check_mode(mode)
        self.members = list(members)
        self.weights = normalise_weights(weights, len(self.members))
        self.mode = mode
        self.threshold = threshold
        self._ids = sorted(self.members[0])
        expected = set(self._ids)
        for i, member in enumerate(self.members[1:], start=2):
            diff = expected.symmetric_difference(member)
            if diff:
                example = sorted(diff)[0]
                raise KelpsegError(
                    f"ensemble member {i} differs from member 1 in {len(diff)} tiles "
                    f"(e.g. {example})"
                )

    def __getitem__(self, tile_id: str) -> np.ndarray:
        arrays = [member[tile_id] for member in self.members]
        return combine(arrays, self.weights, self.mode, self.threshold)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


def write_soft_labels(
    members: Sequence[PredictionSource],
    out_dir: str | os.PathLike[str],
    *,
    weights: Sequence[float] | np.ndarray | None = None,
    mode: str = "mean_prob",
    threshold: float = 0.5,
    overwrite: bool = False,
    show_progress: bool = True,
) -> int:
    """Write the ensemble's probabilities (soft labels, ``_prob.tif``) and masks to ``out_dir``.

    Returns:
        The number of tiles written (existing outputs are kept unless ``overwrite``).
    """
    source = EnsembleSource(members, weights, mode, threshold)
    return write_predictions(
        source,
        out_dir,
        threshold=threshold,
        soft=True,
        overwrite=overwrite,
        show_progress=show_progress,
    )
