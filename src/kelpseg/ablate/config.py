"""What an ablation varies: named variants of a base training config, seeds and folds.

A spec file (``kelpseg ablate --vary SPEC.yaml``)::

    seeds: [0, 1, 2]            # every variant trains once per seed (and per fold)
    folds: [0]                  # default: the base config's data.fold
    variants:
      - name: boundary-loss
        description: focal + soft Dice + boundary distance
        set:                    # dotted keys of the training config -> values
          loss: [{name: focal}, {name: dice}, {name: boundary, weight: 0.1}]

Variants change the *technique*, never the budget: keys that decide how long or on what a run
trains (seed, fold, epochs, samples per epoch, batch limits, output folder) are refused, so every
variant gets exactly the base's folds, seeds and steps.
"""

from __future__ import annotations

import re
from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from kelpseg.config import StrictModel
from kelpseg.tune.space import format_override

BASE_NAME = "base"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Keys (and their children) a variant may not set: they are the shared budget.
BUDGET_KEYS: tuple[str, ...] = (
    "seed",
    "output_dir",
    "data.fold",
    "data.catalog",
    "data.store",
    "data.sampler.samples_per_epoch",
    "trainer.max_epochs",
    "trainer.limit_train_batches",
    "trainer.limit_val_batches",
    "trainer.accumulate_grad_batches",
    "tracking",
)


class Variant(StrictModel):
    """One option tried against the base.

    Attributes:
        name: short name, used as the table row and run folder (letters, digits, ``. _ -``).
        description: what the variant is, for the markdown table.
        set: dotted config keys -> values (YAML values: lists and mappings allowed).
    """

    name: str
    description: str = ""
    set: dict[str, Any] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not _NAME.match(value) or value == BASE_NAME:
            raise ValueError(f"variant name {value!r} must be [A-Za-z0-9._-]+ and not 'base'")
        return value

    @field_validator("set")
    @classmethod
    def _no_budget_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            for budget in BUDGET_KEYS:
                if key == budget or key.startswith(budget + ".") or budget.startswith(key + "."):
                    raise ValueError(f"{key!r} is part of the shared budget (same for every run)")
        return value

    def overrides(self) -> list[str]:
        """The ``--set`` strings of this variant, in the order given."""
        return [format_override(key, value) for key, value in self.set.items()]


class AblationSpec(StrictModel):
    """The variants, seeds and folds of one ablation (see the module docstring).

    Attributes:
        seeds: training seeds; each (fold, seed) pair is one run of every variant.
        folds: validation folds (``None``: the base config's ``data.fold``).
        keep_checkpoints: keep each run's ``checkpoints/`` (by default deleted once the run's
            ``result.json`` is written; ``model/best.ckpt`` stays).
        variants: the options compared with the base.
    """

    seeds: list[int] = Field(default_factory=lambda: [42], min_length=1)
    folds: list[int] | None = Field(default=None, min_length=1)
    keep_checkpoints: bool = False
    variants: list[Variant] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [v.name for v in self.variants]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"variant name(s) used twice: {', '.join(repeated)}")
        for label, values in (("seeds", self.seeds), ("folds", self.folds or [])):
            if len(set(values)) != len(values):
                raise ValueError(f"{label} repeat a value: {values}")
        if any(s < 0 for s in self.seeds) or any(f < 0 for f in self.folds or []):
            raise ValueError("seeds and folds must be >= 0")
        return self
