"""Ablations: train a base config and named variants on the same folds, seeds and budget.

Typical use (see docs/training.md, "Ablations")::

    spec = load_spec("configs/ablations/first-place.yaml")
    result = run_ablation("configs/demo.yaml", spec, "runs/ablation")
    print(result.table)                     # val Dice per variant, gain over base ± std
"""

from kelpseg.ablate.config import BASE_NAME, BUDGET_KEYS, AblationSpec, Variant
from kelpseg.ablate.runner import AblationResult, load_spec, run_ablation, run_config
from kelpseg.ablate.table import RunScore, summarise, to_markdown, write_tables

__all__ = [
    "BASE_NAME",
    "BUDGET_KEYS",
    "AblationResult",
    "AblationSpec",
    "RunScore",
    "Variant",
    "load_spec",
    "run_ablation",
    "run_config",
    "summarise",
    "to_markdown",
    "write_tables",
]
