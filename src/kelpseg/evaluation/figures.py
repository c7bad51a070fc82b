"""Figures of the evaluation report, drawn with matplotlib's object API.

No pyplot: figures are plain ``Figure`` objects, so rendering is thread-safe and never opens
a window or needs a display.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from kelpseg.evaluation.result import EvaluationResult


def threshold_figure(result: EvaluationResult) -> Figure:
    """Dice, precision and recall against the decision threshold; best and used marked."""
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    sweep = result.sweep
    for name, style in (("dice", "-"), ("precision", "--"), ("recall", ":")):
        ax.plot(sweep["threshold"], sweep[name], style, label=name)
    ax.axvline(result.best_threshold, color="tab:green", lw=1)
    ax.axvline(result.threshold, color="grey", lw=1, ls="--")
    ax.set_title(f"best threshold {result.best_threshold:.3f}: Dice {result.best_dice:.4f}")
    ax.set_xlabel("decision threshold")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return fig


def pr_figure(result: EvaluationResult) -> Figure:
    """Precision-recall curve over every grid threshold, headline threshold marked."""
    fig = Figure(figsize=(4.5, 4.2))
    ax = fig.add_subplot()
    curve = result.pr_curve
    ax.plot(curve["recall"], curve["precision"], color="tab:blue")
    m = result.metrics
    ax.plot([m["recall"]], [m["precision"]], "o", color="tab:red", label=f"t = {result.threshold}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    raw = " (raw probabilities)" if result.postprocess else ""
    ax.set_title(f"average precision {result.average_precision:.4f}{raw}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return fig


def per_tile_figure(result: EvaluationResult) -> Figure:
    """Histogram of per-tile Dice, tiles with kelp in the label apart from the rest."""
    fig = Figure(figsize=(6, 3.4))
    ax = fig.add_subplot()
    tiles = result.per_tile
    kelp = tiles["label_pixels"].to_numpy() > 0
    dice = tiles["dice"].to_numpy(dtype=np.float64)
    bins = [i / 20 for i in range(21)]
    ax.hist(
        [dice[kelp], dice[~kelp]],
        bins=bins,
        stacked=True,
        label=["kelp in label", "no kelp in label"],
        color=["tab:green", "tab:grey"],
    )
    ax.set_xlabel("per-tile Dice")
    ax.set_ylabel("tiles")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def confusion_figure(result: EvaluationResult) -> Figure:
    """The 2x2 confusion matrix, counts and shares of all pixels."""
    fig = Figure(figsize=(3.8, 3.4))
    ax = fig.add_subplot()
    cm = result.confusion.astype(np.float64)
    share = cm / max(cm.sum(), 1.0)
    shade = np.log10(cm + 1)
    ax.imshow(shade, cmap="Blues", vmin=0)
    for (r, c), value in np.ndenumerate(result.confusion):
        colour = "white" if shade[r, c] > 0.6 * shade.max() else "black"
        text = f"{value:,}\n{share[r, c]:.2%}"
        ax.text(c, r, text, ha="center", va="center", fontsize=9, color=colour)
    ax.set_xticks([0, 1], ["no kelp", "kelp"])
    ax.set_yticks([0, 1], ["no kelp", "kelp"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("label")
    return fig
