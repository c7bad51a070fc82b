"""Figures of a tree-model run: feature importances, confusion matrix, precision-recall curves.

Built on :class:`matplotlib.figure.Figure` directly (no pyplot state), so they work in workers
and notebooks alike, and saved atomically as PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kelpseg.evaluation.result import EvaluationResult
from kelpseg.io.atomic import atomic_path

PathLike = str | os.PathLike[str]


def _save(fig: Figure, path: PathLike, dpi: int = 100) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)


def plot_importances(
    importances: pd.Series, path: PathLike, top: int = 25, title: str = ""
) -> Path:
    """Horizontal bars of the ``top`` most important channels, the most important on top."""
    shown = importances.head(top).iloc[::-1]
    fig = Figure(figsize=(6, 0.3 * len(shown) + 1.2))
    ax = fig.add_subplot()
    ax.barh(list(shown.index), shown.to_numpy(), color="#2a7f62")
    ax.set_xlabel("share of importance")
    ax.set_title(title or "feature importance")
    return _save(fig, path)


def plot_confusion(result: EvaluationResult, path: PathLike, title: str = "") -> Path:
    """The 2x2 confusion matrix at the result's threshold: counts and row shares."""
    matrix = np.asarray(result.confusion, dtype=np.float64)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(4.2, 3.8))
    ax = fig.add_subplot()
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if shares[i, j] > 0.5 else "black"
        ax.text(j, i, f"{int(count):,}\n{shares[i, j]:.1%}", ha="center", va="center", color=colour)
    ax.set_xticks([0, 1], ["not kelp", "kelp"])
    ax.set_yticks([0, 1], ["not kelp", "kelp"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("label")
    ax.set_title(title or f"confusion at threshold {result.threshold:g}")
    return _save(fig, path)


def plot_pr_curves(curves: dict[str, EvaluationResult], path: PathLike) -> Path:
    """Precision-recall curves of several results (e.g. sampled pixels and whole tiles)."""
    fig = Figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    for name, result in curves.items():
        curve = result.pr_curve
        ax.plot(
            curve["recall"],
            curve["precision"],
            label=f"{name} (AP {result.average_precision:.3f})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision-recall (validation fold)")
    ax.legend(loc="lower left")
    return _save(fig, path)
