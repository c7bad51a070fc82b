"""The 3rd place's "holes" augmentation: random rectangles blanked in the image, zeroed in the mask.

Blanking a rectangle in both image and label teaches the network that a missing patch (cloud
gaps, striping, no-data) holds no kelp it can see, and keeps it from leaning on any one region.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kelpseg.errors import KelpsegError
from kelpseg.nn.data.transforms import BatchAugmentation


class RandomHoles(BatchAugmentation):
    """Up to ``max_holes`` axis-aligned rectangles per chosen sample, image ``fill``, mask 0.

    Args:
        p: chance a sample gets holes.
        max_holes: each chosen sample gets 1..max_holes rectangles (uniform).
        size: (min, max) side of a rectangle as a fraction of the tile side; height and width
            are drawn independently.
        fill: value of the blanked image pixels (0 = the low end of ``quantile`` inputs).
    """

    def __init__(
        self,
        p: float,
        max_holes: int = 4,
        size: tuple[float, float] = (0.05, 0.2),
        fill: float = 0.0,
    ) -> None:
        super().__init__(p)
        low, high = size
        if max_holes < 1 or not 0.0 < low <= high <= 1.0:
            raise KelpsegError(f"holes need max_holes >= 1 and 0 < size <= 1, got {size}")
        self.max_holes, self.size, self.fill = max_holes, (low, high), fill

    def forward(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Blank rectangles in the chosen samples (a new tensor; inputs are not modified)."""
        keep = self.keep_mask(x.shape[0], x.shape[-2], x.shape[-1], generator).to(x.device)
        return torch.where(keep, x, self.fill), y * keep

    def keep_mask(
        self, n: int, height: int, width: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """(n, 1, H, W) bool on the CPU: False inside a hole."""
        pick = torch.rand(n, generator=generator) < self.p
        count = torch.randint(1, self.max_holes + 1, (n,), generator=generator)
        low, high = self.size
        shape = (n, self.max_holes)
        hole_h = ((low + (high - low) * torch.rand(shape, generator=generator)) * height).ceil()
        hole_w = ((low + (high - low) * torch.rand(shape, generator=generator)) * width).ceil()
        top = (torch.rand(shape, generator=generator) * (height - hole_h + 1)).floor()
        left = (torch.rand(shape, generator=generator) * (width - hole_w + 1)).floor()
        active = pick[:, None] & (torch.arange(self.max_holes)[None, :] < count[:, None])
        rows = torch.arange(height).view(1, 1, -1, 1)
        cols = torch.arange(width).view(1, 1, 1, -1)
        inside_rows = (rows >= top[..., None, None]) & (rows < (top + hole_h)[..., None, None])
        inside_cols = (cols >= left[..., None, None]) & (cols < (left + hole_w)[..., None, None])
        holes = inside_rows & inside_cols & active[..., None, None]
        return ~holes.any(dim=1, keepdim=True)
