"""The ablation table: val Dice per variant, its difference to the base, spread over seeds.

Differences are *paired*: variant minus base on the same (fold, seed), so the seed's own luck
(initial weights, sampled crops) cancels and the spread shown is that of the gain itself.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kelpseg.ablate.config import BASE_NAME
from kelpseg.io.atomic import atomic_path

CSV_FILE = "ablation.csv"
MARKDOWN_FILE = "ablation.md"
RUNS_FILE = "runs.csv"
COLUMNS = (
    "variant", "runs", "dice_mean", "dice_std", "delta_mean", "delta_std", "wins", "description",
)  # fmt: skip


@dataclass(frozen=True)
class RunScore:
    """One run's best validation Dice."""

    variant: str
    fold: int
    seed: int
    dice: float
    trained: bool


def _std(values: list[float]) -> float:
    """Sample standard deviation (0 for a single value)."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(runs: pd.DataFrame, descriptions: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per variant (base first): mean ± std of Dice and of the paired gain over base.

    Args:
        runs: rows ``variant, fold, seed, dice`` (the base's rows named ``"base"``).
        descriptions: variant name -> description.

    Returns:
        Columns ``variant, runs, dice_mean, dice_std, delta_mean, delta_std, wins,
        description``; ``wins`` counts the (fold, seed) pairs where the variant beat the base.
    """
    descriptions = descriptions or {}
    scores: dict[str, dict[tuple[int, int], float]] = {}
    for name, fold, seed, dice in zip(
        runs["variant"], runs["fold"], runs["seed"], runs["dice"], strict=True
    ):
        scores.setdefault(str(name), {})[(int(fold), int(seed))] = float(dice)
    base = scores.get(BASE_NAME, {})
    names = [BASE_NAME, *(n for n in scores if n != BASE_NAME)]
    rows = []
    for name in names:
        own = scores.get(name, {})
        dice = list(own.values())
        deltas = [value - base[key] for key, value in own.items() if key in base]
        rows.append(
            {
                "variant": name,
                "runs": len(dice),
                "dice_mean": statistics.fmean(dice) if dice else math.nan,
                "dice_std": _std(dice),
                "delta_mean": statistics.fmean(deltas) if deltas else math.nan,
                "delta_std": _std(deltas),
                "wins": sum(d > 0 for d in deltas),
                "description": descriptions.get(name, ""),
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def to_markdown(table: pd.DataFrame) -> str:
    """The table as GitHub markdown: Dice and gain as mean ± std over runs."""
    lines = [
        "| variant | runs | val Dice (mean ± std) | Δ vs base (mean ± std) | beats base | what |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in table.itertuples(index=False):
        delta = "—" if r.variant == BASE_NAME else f"{r.delta_mean:+.4f} ± {r.delta_std:.4f}"
        wins = "—" if r.variant == BASE_NAME else f"{r.wins}/{r.runs}"
        lines.append(
            f"| {r.variant} | {r.runs} | {r.dice_mean:.4f} ± {r.dice_std:.4f} | {delta} | "
            f"{wins} | {r.description} |"
        )
    return "\n".join(lines) + "\n"


def write_tables(out: Path, runs: pd.DataFrame, table: pd.DataFrame) -> tuple[Path, Path]:
    """Write ``runs.csv``, ``ablation.csv`` and ``ablation.md`` (returns the last two)."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / RUNS_FILE) as tmp:
        runs.to_csv(tmp, index=False)
    with atomic_path(out / CSV_FILE) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    with atomic_path(out / MARKDOWN_FILE) as tmp:
        tmp.write_text(to_markdown(table))
    return out / CSV_FILE, out / MARKDOWN_FILE
