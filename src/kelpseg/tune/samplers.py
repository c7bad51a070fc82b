"""Samplers and pruners by the name ``kelpseg tune --sampler/--pruner`` takes."""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler

from kelpseg.errors import KelpsegError


def _cmaes(seed: int | None) -> BaseSampler:
    try:
        import cmaes  # noqa: F401  (Optuna's CMA-ES sampler needs it)
    except ImportError as exc:
        raise KelpsegError("sampler 'cmaes' needs the cmaes package: pip install cmaes") from exc
    # Categorical parameters fall back to independent sampling; that is expected here.
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


SAMPLERS: dict[str, Callable[[int | None], BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "cmaes": _cmaes,
}
# Pruners by name; the argument is the trial's epoch budget. Epoch 0 is never judged: OneCycle's
# warm-up makes first-epoch Dice a poor predictor.
PRUNERS: dict[str, Callable[[int], BasePruner]] = {
    "median": lambda epochs: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    "hyperband": lambda epochs: optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=max(epochs, 2), reduction_factor=3
    ),
    "none": lambda epochs: optuna.pruners.NopPruner(),
}
