"""Batch augmentations that mix tiles (Mosaic, CutMix) and soften targets (soft labels).

The 1st place trained with Mosaic, CutMix and Gaussian-blurred targets on top of flips and
rotations. Here they run on the device, in batch, like the geometric transforms of
:mod:`kelpseg.nn.data.transforms`; random choices come from the CPU generator passed to
``forward``.

Mixing never resamples: every output pixel is the pixel at the *same position* in one tile of
the batch, and the mask pixel comes from the same tile as the image pixel. Kelp beds are a few
30 m pixels wide, so shrinking four tiles into one (the detection-style Mosaic) would change the
scale the network must learn; Mosaic here cuts the frame into four quadrants about a random
centre and fills each from a different tile. Partners are drawn from the other tiles of the batch
(a batch of one mixes with itself, the identity).
"""

from __future__ import annotations

import math

import kornia.filters as kf
import torch
from torch import Tensor

from kelpseg.nn.data.transforms import BatchAugmentation


def _partners(n: int, k: int, generator: torch.Generator | None) -> Tensor:
    """(n, k) indices of other samples, uniform over the batch without the sample itself.

    The k partners of a sample are distinct when the batch has enough other samples.
    """
    if n == 1:
        return torch.zeros(1, k, dtype=torch.long)
    if n - 1 >= k:
        offsets = torch.rand(n, n - 1, generator=generator).argsort(dim=1)[:, :k] + 1
    else:
        offsets = torch.randint(1, n, (n, k), generator=generator)
    return (torch.arange(n).view(n, 1) + offsets) % n


def _grid(h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Row and column index tensors shaped (1, h, 1) and (1, 1, w)."""
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    return rows, cols


def take_pixels(x: Tensor, source: Tensor) -> Tensor:
    """``out[i, :, r, c] = x[source[i, r, c], :, r, c]``: each pixel from a chosen sample.

    Args:
        x: (N, C, H, W) batch.
        source: (N, H, W) long tensor of sample indices, on ``x``'s device.
    """
    rows, cols = _grid(x.shape[-2], x.shape[-1], x.device)
    return x.permute(0, 2, 3, 1)[source, rows, cols].permute(0, 3, 1, 2).contiguous()


class Mosaic(BatchAugmentation):
    """Four tiles -> one: quadrants about a random centre, each from a different tile.

    The centre is uniform in ``[min_share, 1 - min_share]`` of the height and the width, so no
    quadrant is thinner than ``min_share`` of the tile; the sample itself keeps one quadrant
    (chosen at random), three partners fill the others (distinct tiles in a batch of four or
    more).
    """

    def __init__(self, p: float, min_share: float = 0.25) -> None:
        super().__init__(p)
        self.min_share = min_share

    def forward(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Mosaic the chosen samples of the batch."""
        n, _, h, w = x.shape
        pick = torch.rand(n, generator=generator) < self.p
        centre = self.min_share + (1 - 2 * self.min_share) * torch.rand(n, 2, generator=generator)
        sources = _partners(n, 4, generator)
        own = torch.randint(0, 4, (n,), generator=generator)
        sources[torch.arange(n), own] = torch.arange(n)
        sources = torch.where(pick.view(n, 1), sources, torch.arange(n).view(n, 1))
        cy = (centre[:, 0] * h).round().long().to(x.device).view(n, 1, 1)
        cx = (centre[:, 1] * w).round().long().to(x.device).view(n, 1, 1)
        rows, cols = _grid(h, w, x.device)
        quadrant = (rows >= cy).long() * 2 + (cols >= cx).long()  # (n, h, w) in 0..3
        source = sources.to(x.device).gather(1, quadrant.flatten(1)).view(n, h, w)
        return take_pixels(x, source), take_pixels(y, source)


class CutMix(BatchAugmentation):
    """Paste a box of another tile (image and mask) at the same position.

    The box covers a share of the tile uniform in ``area`` (same share of height and width) at a
    uniform position fully inside the tile.
    """

    def __init__(self, p: float, area: tuple[float, float] = (0.1, 0.5)) -> None:
        super().__init__(p)
        self.area = area

    def forward(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """CutMix the chosen samples of the batch."""
        n, _, h, w = x.shape
        pick = torch.rand(n, generator=generator) < self.p
        low, high = self.area
        side = (low + (high - low) * torch.rand(n, generator=generator)).sqrt()
        box_h = (side * h).round().long().clamp(1, h)
        box_w = (side * w).round().long().clamp(1, w)
        top = (torch.rand(n, generator=generator) * (h - box_h + 1)).long()
        left = (torch.rand(n, generator=generator) * (w - box_w + 1)).long()
        partner = torch.where(pick, _partners(n, 1, generator)[:, 0], torch.arange(n))

        def column(v: Tensor) -> Tensor:
            return v.to(x.device).view(n, 1, 1)

        rows, cols = _grid(h, w, x.device)
        inside = (rows >= column(top)) & (rows < column(top + box_h))
        inside = inside & (cols >= column(left)) & (cols < column(left + box_w))
        source = torch.where(inside, column(partner), column(torch.arange(n)))
        return take_pixels(x, source), take_pixels(y, source)


class SoftLabels(BatchAugmentation):
    """Blur the target with a Gaussian of ``sigma`` pixels; the image is left alone.

    Blurring is a convex average, so soft labels stay in [0, 1]; away from the tile border it
    preserves the amount of kelp (the sum of the target). The kernel spans ``3 sigma`` each way,
    capped where the tile is too small for that; the border is mirrored.
    """

    def __init__(self, sigma: float) -> None:
        super().__init__(1.0)
        self.sigma = sigma

    def forward(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Soften every target of the batch."""
        if self.sigma <= 0:
            return x, y
        radius = min(math.ceil(3 * self.sigma), min(y.shape[-2:]) - 1)
        if radius < 1:
            return x, y
        size = 2 * radius + 1
        soft = kf.gaussian_blur2d(y, (size, size), (self.sigma, self.sigma), "reflect")
        return x, soft.clamp(0.0, 1.0)
