"""Sliced training windows and overlapped sliced prediction (the seed's SAHI experiment).

The seed's author cut every tile into 128 px slices at a 64 px step, trained on the slices
(each resized to the network's input size) and predicted a tile as the average of its
overlapping slices. Here both are options of one config (``data.slicing``): training crops
are drawn from the slice grid, and validation and prediction average the network's
probabilities over the grid's overlapping windows.

One deliberate difference: the seed padded the slices that run past a tile's edge; here the
last slice of a row or column is shifted inward to end at the edge, so no slice holds
invented pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from kelpseg.errors import KelpsegError

_EPS = 1e-6


def slice_origins(length: int, size: int, overlap: int) -> list[int]:
    """Start offsets of ``size`` px windows along an axis of ``length``, ``size - overlap`` apart.

    The last window is shifted to end at the edge; windows cover every pixel.
    """
    if size > length:
        raise KelpsegError(f"slice size {size} is larger than the tile side {length}")
    step = size - overlap
    if step <= 0:
        raise KelpsegError(f"slice overlap {overlap} must be smaller than the slice size {size}")
    starts = list(range(0, length - size + 1, step))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def snap_to_slice(origin: int, length: int, size: int, overlap: int) -> int:
    """The slice-grid origin nearest to ``origin`` (ties to the lower one)."""
    starts = slice_origins(length, size, overlap)
    return min(starts, key=lambda s: (abs(s - origin), s))


def _to_probabilities(out: Tensor) -> Tensor:
    out = out.float()
    return torch.sigmoid(out) if out.shape[1] == 1 else torch.softmax(out, dim=1)


def _to_logits(prob: Tensor) -> Tensor:
    p = prob.clamp(_EPS, 1.0 - _EPS)
    # Binary: the logit; two classes: log-probabilities, whose softmax gives p back.
    return torch.log(p) - torch.log1p(-p) if p.shape[1] == 1 else torch.log(p)


def sliced_outputs(fn: Callable[[Tensor], Tensor], x: Tensor, size: int, overlap: int) -> Tensor:
    """Head outputs of ``x`` as the average of overlapping slices, in probability space.

    Args:
        fn: maps a (N, C, size, size) slice to (N, K, size, size) logits (K = 1: binary head,
            sigmoid; K = 2: softmax head).
        x: (N, C, H, W) input.
        size: slice side; overlap: pixels shared by neighbouring slices.

    Returns:
        (N, K, H, W) logits whose sigmoid (K = 1) or softmax (K = 2) is the mean of the
        slices' probabilities at each pixel.
    """
    height, width = int(x.shape[-2]), int(x.shape[-1])
    total: Tensor | None = None
    count = torch.zeros((1, 1, height, width), device=x.device)
    for top in slice_origins(height, size, overlap):
        for left in slice_origins(width, size, overlap):
            prob = _to_probabilities(fn(x[..., top : top + size, left : left + size]))
            if total is None:
                total = torch.zeros((*prob.shape[:2], height, width), device=x.device)
            total[..., top : top + size, left : left + size] += prob
            count[..., top : top + size, left : left + size] += 1.0
    assert total is not None  # slice_origins returns at least one window
    return _to_logits(total / count)
