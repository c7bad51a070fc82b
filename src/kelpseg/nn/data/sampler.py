"""The weighted tile sampler: more draws of kelp tiles, fewer of corrupted ones.

Two per-tile weight formulas over the EDA statistics in the catalog (``data.sampler.formula``):

``author`` (the 2nd-place author's, the default)::

    w = f_has_kelp * has_kelp + f_qa_ok * qa_ok
        + f_kelp_pixels_pct * (1 - kelp_pixels_pct)
        + f_qa_corrupted_pixels_pct * (1 - qa_corrupted_pixels_pct)
        + f_almost_all_water * (1 - water_pixels_pct)
        + f_dem_nan_pixels_pct * (1 - dem_nan_pixels_pct)
        + f_dem_zero_pixels_pct * (1 - dem_zero_pixels_pct)
    weight = (w - min(w)) / (max(w) - min(w) + 1e-10)

min and max run over the tiles of the whole catalog, not only the training fold: his metadata
table held the training and validation tiles of every fold and the test tiles, which he gave
``w = 0`` before normalising. The tile(s) at the minimum get weight 0 and are never drawn; when
every tile has the same ``w`` all weights are 0 and the sampler refuses to start.

``kelpseg``: ``max(min_weight, 1 + sum(factor * column))`` over the columns as they are
(``almost_all_water`` is then the over-98%-water flag). The default factors were tuned for the
author's formula; under this one most non-kelp terms change sign.

Booleans count as 0/1, percentages as fractions 0..1. Tiles are drawn with replacement in
proportion to their weight by torch's ``WeightedRandomSampler``, ``samples_per_epoch`` per epoch.
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
# The author's column for each factor, and whether it enters as is (flag) or as 1 - share.
AUTHOR_TERMS: dict[str, tuple[str, bool]] = {
    "has_kelp": ("has_kelp", True),
    "kelp_pixels_pct": ("kelp_pixels_pct", False),
    "qa_ok": ("qa_ok", True),
    "qa_corrupted_pixels_pct": ("qa_corrupted_pixels_pct", False),
    "almost_all_water": ("water_pixels_pct", False),
    "dem_nan_pixels_pct": ("dem_nan_pixels_pct", False),
    "dem_zero_pixels_pct": ("dem_zero_pixels_pct", False),
}
AUTHOR_EPS = 1e-10  # the author's denominator guard in the min-max step


def raw_author_weights(
    stats: pd.DataFrame, factors: ImportanceFactors | None = None, source: str | None = None
) -> np.ndarray:
    """The author's per-tile sum ``w`` before min-max normalisation (see the module doc)."""
    factors = factors or ImportanceFactors()
    columns = [column for column, _ in AUTHOR_TERMS.values()]
    _require(stats, columns, source)
    weight = np.zeros(len(stats), dtype=np.float64)
    for name, (column, flag) in AUTHOR_TERMS.items():
        values = _column(stats, column, source)
        weight += getattr(factors, name) * (values if flag else 1.0 - values)
    return weight


def min_max(weights: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """``(w - lo) / (hi - lo + 1e-10)``, lo and hi over ``reference`` (default ``weights``)."""
    ref = weights if reference is None else reference
    lo, hi = float(np.min(ref)), float(np.max(ref))
    return (weights - lo) / (hi - lo + AUTHOR_EPS)


def sample_weights(
    stats: pd.DataFrame,
    factors: ImportanceFactors | None = None,
    *,
    formula: str = "author",
    min_weight: float = 0.01,
    reference: pd.DataFrame | None = None,
    source: str | None = None,
) -> np.ndarray:
    """Per-tile sampling weights of ``stats`` under ``formula`` (see the module doc).

    Args:
        stats: one row per tile with the formula's columns (missing values count as 0).
        factors: importance factors (default: the author's best).
        formula: ``"author"`` or ``"kelpseg"``.
        min_weight: lower clip of the kelpseg formula (so that no tile is never drawn).
        reference: author formula: the rows whose weights set the min-max range (the whole
            catalog: its ``split == "test"`` rows count as weight 0); default ``stats``.
        source: file the statistics come from, for error messages.

    Raises:
        KelpsegError: a column is missing, not numeric, or a fraction lies outside 0..1.
    """
    factors = factors or ImportanceFactors()
    if formula == "author":
        weight = raw_author_weights(stats, factors, source)
        ref = None
        if reference is not None:
            test = (reference["split"] == "test").to_numpy() if "split" in reference else None
            labelled = reference[~test] if test is not None else reference
            ref = raw_author_weights(labelled, factors, source)
            if test is not None and test.any():
                ref = np.append(ref, 0.0)
        return min_max(weight, ref)
    if formula != "kelpseg":
        raise KelpsegError(f"unknown sampler formula {formula!r}; one of author, kelpseg", source)
    _require(stats, IMPORTANCE_COLUMNS, source)
    weight = np.ones(len(stats), dtype=np.float64)
    for name in IMPORTANCE_COLUMNS:
        weight += getattr(factors, name) * _column(stats, name, source)
    return np.maximum(weight, min_weight)


def _require(stats: pd.DataFrame, columns: Sequence[str], source: str | None) -> None:
    missing = [c for c in columns if c not in stats.columns]
    if missing:
        raise KelpsegError(
            f"the weighted sampler needs the EDA columns {missing} (run kelpseg eda stats, "
            "or set data.sampler.weighted=false)",
            source,
        )


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
    stats: pd.DataFrame,
    config: SamplerConfig,
    *,
    seed: int = 0,
    source: str | None = None,
    catalog: pd.DataFrame | None = None,
) -> TileSampler:
    """The training sampler for the tiles of ``stats`` (one row per tile, in dataset order).

    Args:
        stats: the training tiles' catalog rows.
        config: the sampler settings.
        seed: run seed.
        source: the catalog file, for error messages.
        catalog: the whole catalog (the author formula's min-max range); default ``stats``.

    Raises:
        KelpsegError: the weights are unusable (every tile weighs 0).
    """
    weights = None
    if config.weighted:
        weights = sample_weights(
            stats,
            config.factors,
            formula=config.formula,
            min_weight=config.min_weight,
            reference=catalog,
            source=source,
        )
        if not (weights > 0).any():
            raise KelpsegError(
                f"every training tile has sampling weight 0 under the {config.formula!r} "
                "formula (all tiles have the same weight before min-max normalisation); set "
                "data.sampler.weighted=false or other factors",
                source,
            )
    return TileSampler(len(stats), config.samples_per_epoch or len(stats), weights, seed=seed)
