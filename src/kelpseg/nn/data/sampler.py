"""The weighted tile sampler: more draws of kelp tiles, fewer of corrupted ones.

The 2nd-place author's per-tile weight, from the EDA statistics in the catalog::

    weight = max(min_weight, 1 + sum_i factor_i * column_i)

over ``has_kelp, kelp_pixels_pct, qa_ok, qa_corrupted_pixels_pct, almost_all_water,
dem_nan_pixels_pct, dem_zero_pixels_pct`` (booleans as 0/1, percentages as fractions 0..1).
Tiles are drawn with replacement in proportion to their weight by torch's
``WeightedRandomSampler``, ``samples_per_epoch`` per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Sampler, WeightedRandomSampler

from kelpseg.errors import KelpsegError
from kelpseg.nn.data.config import ImportanceFactors, SamplerConfig

IMPORTANCE_COLUMNS: tuple[str, ...] = tuple(ImportanceFactors.model_fields)
_BOOLEAN_COLUMNS = ("has_kelp", "qa_ok", "almost_all_water")


def sample_weights(
    stats: pd.DataFrame,
    factors: ImportanceFactors | None = None,
    *,
    min_weight: float = 0.01,
    source: str | None = None,
) -> np.ndarray:
    """Per-tile sampling weights ``max(min_weight, 1 + sum(factor * column))``.

    Args:
        stats: one row per tile with the ``IMPORTANCE_COLUMNS`` (missing values count as 0).
        factors: importance factors (default: the seed's best).
        min_weight: lower clip, so that no tile is never drawn.
        source: file the statistics come from, for error messages.

    Raises:
        KelpsegError: a column is missing, not numeric, or a fraction lies outside 0..1.
    """
    factors = factors or ImportanceFactors()
    missing = [c for c in IMPORTANCE_COLUMNS if c not in stats.columns]
    if missing:
        raise KelpsegError(
            f"the weighted sampler needs the EDA columns {missing} (run kelpseg eda stats, "
            "or set data.sampler.weighted=false)",
            source,
        )
    weight = np.ones(len(stats), dtype=np.float64)
    for name in IMPORTANCE_COLUMNS:
        weight += getattr(factors, name) * _column(stats, name, source)
    return np.maximum(weight, min_weight)


def _column(stats: pd.DataFrame, name: str, source: str | None) -> np.ndarray:
    try:
        values = stats[name].astype("Float64").to_numpy(dtype=np.float64, na_value=0.0)
    except (TypeError, ValueError) as exc:
        raise KelpsegError(f"column {name!r} is not numeric ({exc})", source) from exc
    if name in _BOOLEAN_COLUMNS:
        bad = ~np.isin(values, (0.0, 1.0))
    else:
        bad = (values < 0.0) | (values > 1.0)
    if bad.any():
        kind = "0/1" if name in _BOOLEAN_COLUMNS else "fractions 0..1 (not percent)"
        raise KelpsegError(f"column {name!r} must hold {kind}; found {values[bad][0]:g}", source)
    return values


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for one epoch of a run."""
    state = np.random.SeedSequence([seed % 2**63, epoch]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


class TileSampler(Sampler[tuple[int, int]]):
    """Draws an epoch of ``(tile index, crop seed)`` keys; a pure function of (seed, epoch).

    Weighted: torch's ``WeightedRandomSampler`` draws indices with replacement. Unweighted:
    shuffled passes over all tiles (concatenated when ``num_samples`` exceeds them). Lightning
    calls :meth:`set_epoch` before each epoch (also through its distributed wrapper); call it
    yourself in a plain loop, as with ``DistributedSampler``.

    Args:
        num_tiles: tiles in the dataset.
        num_samples: keys per epoch.
        weights: per-tile weights, or ``None`` for uniform passes.
        seed: run seed.
    """

    def __init__(
        self,
        num_tiles: int,
        num_samples: int,
        weights: Sequence[float] | np.ndarray | None = None,
        *,
        seed: int = 0,
    ) -> None:
        if num_tiles < 1 or num_samples < 1:
            raise KelpsegError(f"a sampler needs tiles and samples, got {num_tiles}, {num_samples}")
        if weights is not None and len(weights) != num_tiles:
            raise KelpsegError(f"{len(weights)} weights for {num_tiles} tiles")
        self.num_tiles = num_tiles
        self.num_samples = num_samples
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draw the next iteration yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def indices(self, generator: torch.Generator) -> list[int]:
        """The tile indices of one epoch, drawn with ``generator``."""
        if self.weights is not None:
            drawer = WeightedRandomSampler(
                self.weights.tolist(), self.num_samples, replacement=True, generator=generator
            )
            return list(drawer)
        passes = -(-self.num_samples // self.num_tiles)
        order = torch.cat(
            [torch.randperm(self.num_tiles, generator=generator) for _ in range(passes)]
        )
        return order[: self.num_samples].tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        indices = self.indices(generator)
        seeds = torch.randint(0, 2**62, (len(indices),), generator=generator).tolist()
        return iter(list(zip(indices, seeds, strict=True)))


def build_sampler(
    stats: pd.DataFrame, config: SamplerConfig, *, seed: int = 0, source: str | None = None
) -> TileSampler:
    """The training sampler for the tiles of ``stats`` (one row per tile, in dataset order)."""
    weights = None
    if config.weighted:
        weights = sample_weights(stats, config.factors, min_weight=config.min_weight, source=source)
    return TileSampler(len(stats), config.samples_per_epoch or len(stats), weights, seed=seed)
