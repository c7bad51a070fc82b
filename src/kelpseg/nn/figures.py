"""Figures logged during training: input channels, prediction grids, confusion matrices.

Plain matplotlib ``Figure`` objects (no pyplot state), so they work in any backend and thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from kelpseg.io.tiles import BAND_NAMES, MISSING


def rgb_composite(raw: np.ndarray) -> np.ndarray:
    """(7, H, W) raw tile -> (H, W, 3) RGB in [0, 1], stretched over its 2-98th percentiles."""
    bands = raw[[BAND_NAMES.index(b) for b in ("R", "G", "B")]].astype(np.float32)
    valid = bands != MISSING
    if not valid.any():
        return np.zeros((*raw.shape[1:], 3), dtype=np.float32)
    low, high = np.percentile(bands[valid], [2, 98])
    out = np.where(valid, (bands - low) / max(float(high - low), 1e-6), 0.0)
    return np.clip(out, 0.0, 1.0).transpose(1, 2, 0)


def prediction_grid(samples: list[dict[str, Any]], threshold: float = 0.5) -> Figure:
    """Rows of tiles: RGB, target, probability, errors (green hit, red false kelp, blue missed)."""
    fig = Figure(figsize=(10, 2.6 * len(samples)), layout="constrained")
    axes = fig.subplots(len(samples), 4, squeeze=False)
    for row, s in zip(axes, samples, strict=True):
        truth, pred = s["mask"] > 0.5, s["prob"] > threshold
        errors = np.stack([pred & ~truth, pred & truth, ~pred & truth], axis=-1).astype(np.float32)
        panels = [(rgb_composite(s["image"]), s["tile_id"]), (s["mask"], "target"),
                  (s["prob"], "probability"), (errors, "errors")]  # fmt: skip
        for ax, (img, title) in zip(row, panels, strict=True):
            ax.imshow(img, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
    return fig


def confusion_figure(matrix: np.ndarray, title: str = "") -> Figure:
    """A 2x2 confusion matrix (rows: true, columns: predicted) with counts and row shares."""
    fig = Figure(figsize=(3.6, 3.2), layout="constrained")
    ax = fig.subplots()
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, vmin=0.0, vmax=1.0, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        color = "white" if shares[i, j] > 0.5 else "black"
        ax.text(j, i, f"{int(count)}\n{shares[i, j]:.1%}", ha="center", va="center", color=color)
    ax.set_xticks([0, 1], ["water/land", "kelp"])
    ax.set_yticks([0, 1], ["water/land", "kelp"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    return fig


def channel_figure(channels: np.ndarray, names: list[str]) -> Figure:
    """Every model input channel of one tile, as the network sees it (normalised)."""
    cols = min(6, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(2.2 * cols, 2.3 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, image, name in zip(axes, channels, names, strict=False):
        ax.imshow(image, cmap="gray", interpolation="nearest")
        ax.set_title(name, fontsize=8)
    return fig
