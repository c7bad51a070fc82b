"""Mergeable per-channel statistics of a stream of batches, in memory independent of its length.

Exact parts: count, min, max, and mean / variance from per-batch float64 moments merged with
Chan et al.'s parallel formula. Quantiles come from a histogram over float32 bit patterns:
a value's bucket is its sign, exponent and top ``log2(bins)`` mantissa bits, so every power of
two is split into ``bins`` equal buckets. One pass needs no value range, and reporting a
bucket's midpoint is off by at most ``|q| / (2 * bins)`` (plus ``2**(shift - 149)`` near zero,
where subnormals are bucketed linearly and the buckets touching zero report 0.0). Histograms
add, so partials from tiles, batches, GPUs or Dask workers merge exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from kelpseg.errors import KelpsegError


def bucket_shift(bins: int) -> int:
    """Bits dropped from a float32 pattern to get ``bins`` buckets per power of two."""
    if bins < 1 or bins > 2**23 or bins & (bins - 1):
        raise KelpsegError(f"quantile_bins must be a power of two in [1, 2**23], got {bins}")
    return 23 - int(math.log2(bins))


def error_bound(bins: int) -> tuple[float, float]:
    """(relative, absolute) bound of a quantile read from a histogram with ``bins``."""
    # Normal floats: half a bucket, relative. The two buckets around zero (subnormals) are
    # reported as 0.0: off by at most one bucket width there.
    return 1.0 / (2 * bins), math.ldexp(1.0, bucket_shift(bins) - 149)


def bucket_keys(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Monotone bucket index in ``[0, 2**(32 - shift))`` of each float32 value."""
    bits = x.contiguous().view(torch.int32)
    # Flip the magnitude bits of negatives so integer order equals float order.
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    return (ordered >> shift) + (1 << (31 - shift))


def bucket_bounds(keys: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest float32 value of the buckets ``keys``."""
    lo = (keys.astype(np.int64) - (1 << (31 - shift))) << shift
    hi = lo + (1 << shift) - 1

    def decode(ordered: np.ndarray) -> np.ndarray:
        o = ordered.astype(np.int32)
        return (o ^ ((o >> 31) & 0x7FFFFFFF)).view(np.float32).astype(np.float64)

    return decode(lo), decode(hi)


def rank(q: float, n: int) -> int:
    """1-based rank of the q-quantile under numpy's ``inverted_cdf`` definition."""
    nq = n * q
    k = math.floor(nq) + (1 if nq - math.floor(nq) > 0 else 0)
    return min(max(k, 1), n)


@dataclass
class StatsAccumulator:
    """Running statistics of C channels; ``update`` with batches, ``merge`` partials.

    Attributes:
        channels: channel names, in order.
        bins: histogram buckets per power of two (a power of two).
        count: finite values seen per channel.
        nonfinite: NaN / inf values seen (masked, missing or undefined pixels).
        mean, m2: running mean and sum of squared deviations (float64).
        min, max: exact extremes of the finite values.
        counts: (C, 2**(32 - shift)) bucket counts on the host (read :attr:`hist`).
        tiles: tiles seen.
    """

    channels: list[str]
    bins: int
    count: np.ndarray
    nonfinite: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray
    counts: np.ndarray
    tiles: int = 0
    _pending: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @classmethod
    def empty(cls, channels: Iterable[str], bins: int = 256) -> StatsAccumulator:
        """An accumulator that has seen nothing."""
        names = list(channels)
        c, keys = len(names), 1 << (32 - bucket_shift(bins))
        return cls(
            channels=names,
            bins=bins,
            count=np.zeros(c, np.int64),
            nonfinite=np.zeros(c, np.int64),
            mean=np.zeros(c),
            m2=np.zeros(c),
            min=np.full(c, np.inf),
            max=np.full(c, -np.inf),
            counts=np.zeros((c, keys), np.int64),
        )

    @property
    def hist(self) -> np.ndarray:
        """(C, buckets) histogram counts, including those still on the device."""
        self.flush()
        return self.counts

    @property
    def shift(self) -> int:
        """Bits dropped from float32 patterns for the buckets."""
        return bucket_shift(self.bins)

    def update(self, x: torch.Tensor) -> None:
        """Add a (N, C, H, W) batch; non-finite values are counted, not summarised."""
        if x.ndim != 4 or x.shape[1] != len(self.channels):
            raise KelpsegError(f"expected (N, {len(self.channels)}, H, W), got {tuple(x.shape)}")
        if self._pending is None or self._pending.device != x.device:
            self.flush()
            self._pending = torch.zeros(self.counts.shape, dtype=torch.int64, device=x.device)
        moments = torch.empty((6, len(self.channels)), dtype=torch.float64, device=x.device)
        for c in range(len(self.channels)):
            v = x[:, c].to(torch.float32).reshape(-1)
            moments[:, c] = self._channel(v, self._pending[c])
        # Moments are a few numbers per channel: merge them on the host every batch; the
        # histogram stays on the device until it is needed.
        self._merge_moments(*moments.cpu().numpy())
        self.tiles += int(x.shape[0])

    def flush(self) -> None:
        """Move histogram counts gathered on the device into :attr:`hist`."""
        if self._pending is not None:
            self.counts += self._pending.cpu().numpy()
            self._pending = None

    def _channel(self, v: torch.Tensor, hist: torch.Tensor) -> torch.Tensor:
        valid = torch.isfinite(v)
        n = valid.sum().to(torch.float64)
        # float64 for the moments: the batch's deviations are then exact to ~1e-16, so the
        # merged mean and std match a one-shot float64 computation whatever the batching.
        zeroed = torch.where(valid, v, 0.0).to(torch.float64)
        mean = zeroed.sum() / n.clamp_min(1.0)
        dev = torch.where(valid, zeroed - mean, 0.0)
        m2 = (dev * dev).sum()
        low = torch.where(valid, v, torch.inf).amin().to(torch.float64)
        high = torch.where(valid, v, -torch.inf).amax().to(torch.float64)
        keys = bucket_keys(v, self.shift)
        # Non-finite values go to one extra bucket that is dropped.
        keys = torch.where(valid, keys, hist.numel())
        hist += torch.bincount(keys, minlength=hist.numel() + 1)[:-1]
        bad = (~valid).sum().to(torch.float64)
        return torch.stack([n, mean, m2, low, high, bad])

    def _merge_moments(
        self,
        n_b: np.ndarray,
        mean_b: np.ndarray,
        m2_b: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
        bad: np.ndarray,
    ) -> None:
        n_a = self.count.astype(np.float64)
        n = n_a + n_b
        safe = np.where(n > 0, n, 1.0)
        delta = mean_b - self.mean
        self.mean = np.where(n > 0, self.mean + delta * n_b / safe, 0.0)
        self.m2 = self.m2 + m2_b + delta**2 * n_a * n_b / safe
        self.count = self.count + n_b.astype(np.int64)
        self.nonfinite = self.nonfinite + bad.astype(np.int64)
        self.min = np.minimum(self.min, low)
        self.max = np.maximum(self.max, high)

    def merge(self, other: StatsAccumulator) -> StatsAccumulator:
        """Fold ``other`` (same channels and bins) into this one; returns self."""
        if other.channels != self.channels or other.bins != self.bins:
            raise KelpsegError("cannot merge statistics of different channels or bins")
        self._merge_moments(
            other.count.astype(np.float64),
            other.mean,
            other.m2,
            other.min,
            other.max,
            other.nonfinite,
        )
        self.counts += other.hist
        self.tiles += other.tiles
        return self

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation of the finite values (NaN where none)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, np.sqrt(self.m2 / self.count), np.nan)

    def quantiles(self, qs: Iterable[float]) -> dict[float, np.ndarray]:
        """Per-channel quantiles (``inverted_cdf``), bucket midpoints clamped to [min, max]."""
        qs = list(qs)
        out = {q: np.full(len(self.channels), np.nan) for q in qs}
        cum = np.cumsum(self.hist, axis=1)
        for c in range(len(self.channels)):
            n = int(cum[c, -1])
            if n == 0:
                continue
            ranks = [rank(q, n) for q in qs]
            lo, hi = bucket_bounds(np.searchsorted(cum[c], ranks), self.shift)
            mid = np.where((lo == 0) | (hi == 0), 0.0, (lo + hi) / 2)
            mid = np.clip(mid, self.min[c], self.max[c])
            for q, k, value in zip(qs, ranks, mid, strict=True):
                # The extremes are known exactly.
                out[q][c] = self.min[c] if k == 1 else self.max[c] if k == n else value
        return out

    def __getstate__(self) -> dict[str, Any]:
        # Histograms are sparse; ship (index, count) pairs to keep Dask transfers small.
        self.flush()
        state = dict(self.__dict__)
        flat = self.counts.reshape(-1)
        nonzero = np.flatnonzero(flat)
        state["counts"] = (self.counts.shape, nonzero, flat[nonzero])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        shape, index, values = state["counts"]
        counts = np.zeros(shape, np.int64)
        counts.reshape(-1)[index] = values
        state["counts"] = counts
        self.__dict__.update(state)
