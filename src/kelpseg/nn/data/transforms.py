"""On-device batch transforms: augmentations of image and mask together, and input sizing.

Everything here works on float tensors (N, C, H, W) already on the device. Random choices are
drawn per sample on the CPU from an optional ``torch.Generator`` (else torch's global generator),
so a seeded step augments identically on any device.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kelpseg.errors import KelpsegError
from kelpseg.nn.data.config import AugmentConfig, SizingConfig


def _chosen(n: int, p: float, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Boolean (n,) tensor: which samples a transform of probability ``p`` applies to."""
    return (torch.rand(n, generator=generator) < p).to(device)


class BatchAugmentation(nn.Module):
    """One augmentation: ``forward(x, y, generator) -> (x, y)`` with matching geometry."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Augment the chosen samples of the batch."""
        raise NotImplementedError


class RandomFlip(BatchAugmentation):
    """Mirror along one axis (``dim=-1`` left-right, ``dim=-2`` up-down)."""

    def __init__(self, p: float, dim: int) -> None:
        super().__init__(p)
        self.dim = dim

    def forward(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Flip the chosen samples."""
        pick = _chosen(x.shape[0], self.p, generator, x.device).view(-1, 1, 1, 1)
        return torch.where(pick, x.flip(self.dim), x), torch.where(pick, y.flip(self.dim), y)


class RandomRot90(BatchAugmentation):
    """Quarter turns by 90, 180 or 270 degrees (uniform); only 180 for non-square batches."""

    def forward(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Turn the chosen samples."""
        n = x.shape[0]
        pick = torch.rand(n, generator=generator) < self.p
        turns = torch.randint(1, 4, (n,), generator=generator)
        if x.shape[-1] != x.shape[-2]:
            turns = torch.full_like(turns, 2)  # odd turns would change the shape
        turns = torch.where(pick, turns, 0)
        return rot90_per_sample(x, turns), rot90_per_sample(y, turns)


def rot90_per_sample(x: Tensor, turns: Tensor) -> Tensor:
    """Rotate each sample of ``x`` (N, C, H, W) counter-clockwise by ``turns[i]`` quarter turns."""
    turns = turns.cpu() % 4
    out = x.clone()
    for k in (1, 2, 3):
        idx = (turns == k).nonzero().flatten().to(x.device)
        if idx.numel():
            out[idx] = torch.rot90(x[idx], k, dims=(-2, -1))
    return out


class RandomRotation(BatchAugmentation):
    """Free rotation by an angle uniform in ``[-degrees, degrees]`` about the tile centre.

    Image and mask are resampled through the same grid (so a mask that equals an image channel
    stays equal); bilinear resampling gives soft mask edges in [0, 1].
    """

    def __init__(
        self,
        p: float,
        degrees: float,
        mode: Literal["bilinear", "nearest"] = "bilinear",
        padding: Literal["reflection", "zeros", "border"] = "reflection",
    ) -> None:
        super().__init__(p)
        self.degrees = degrees
        self.mode = mode
        self.padding = padding

    def forward(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Rotate the chosen samples."""
        n, _, h, w = x.shape
        pick = torch.rand(n, generator=generator) < self.p
        angles = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(self.degrees)
        idx = pick.nonzero().flatten()
        if not idx.numel():
            return x, y
        cos, sin = angles[idx].cos(), angles[idx].sin()
        # affine_grid works in [-1, 1] coordinates; scale by the aspect so pixels stay square.
        theta = torch.zeros(idx.numel(), 2, 3)
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
        theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
        theta = theta.to(device=x.device, dtype=x.dtype)
        grid = F.affine_grid(theta, [idx.numel(), 1, h, w], align_corners=False)
        idx = idx.to(x.device)
        x, y = x.clone(), y.clone()
        x[idx] = self._sample(x[idx], grid)
        y[idx] = self._sample(y[idx], grid).clamp(0.0, 1.0)
        return x, y

    def _sample(self, x: Tensor, grid: Tensor) -> Tensor:
        return F.grid_sample(
            x, grid, mode=self.mode, padding_mode=self.padding, align_corners=False
        )


def build_augmentations(config: AugmentConfig) -> list[BatchAugmentation]:
    """The augmentations a config switches on, in application order (p = 0 ones left out).

    Soft labels first (each tile's own mask is blurred, never across a mixing seam), then the
    per-tile geometry, then Mosaic and CutMix (which then mix tiles already turned differently).
    """
    # Here: mixing's classes subclass BatchAugmentation from this module.
    from kelpseg.nn.data.mixing import CutMix, Mosaic, SoftLabels

    ops: list[BatchAugmentation] = []
    if config.soft_label_sigma > 0:
        ops.append(SoftLabels(config.soft_label_sigma))
    if config.hflip > 0:
        ops.append(RandomFlip(config.hflip, dim=-1))
    if config.vflip > 0:
        ops.append(RandomFlip(config.vflip, dim=-2))
    if config.rot90 > 0:
        ops.append(RandomRot90(config.rot90))
    if config.rotate > 0:
        ops.append(
            RandomRotation(
                config.rotate,
                config.rotate_degrees,
                config.rotate_interpolation,
                config.rotate_padding,
            )
        )
    if config.holes > 0:
        from kelpseg.nn.data.holes import RandomHoles  # imports this module

        ops.append(
            RandomHoles(config.holes, config.holes_max, config.holes_size, config.holes_fill)
        )
    if config.mosaic > 0:
        ops.append(Mosaic(config.mosaic, config.mosaic_min_share))
    if config.cutmix > 0:
        ops.append(CutMix(config.cutmix, config.cutmix_area))
    return ops


class Augmenter(nn.Module):
    """Training-batch augmentation on the device; identity when disabled or in eval mode.

    Args:
        config: which augmentations, with which probabilities.
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        super().__init__()
        self.config = config or AugmentConfig()
        self.ops = nn.ModuleList(build_augmentations(self.config) if self.config.enabled else [])

    def forward(
        self, x: Tensor, y: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Augment image ``x`` (N, C, H, W) and mask ``y`` (N, 1, H, W) identically per sample.

        Args:
            x: float image batch.
            y: float mask batch (soft labels allowed).
            generator: CPU generator for the random choices (default: torch's global one).
        """
        if x.shape[0] != y.shape[0] or x.shape[-2:] != y.shape[-2:]:
            raise KelpsegError(f"image {tuple(x.shape)} and mask {tuple(y.shape)} do not match")
        if not self.training:
            return x, y
        for op in self.ops:
            x, y = op(x, y, generator)
        return x, y


class InputSizer(nn.Module):
    """Brings tiles to a size the network accepts, and predictions back to the tile's size.

    ``pad``: pad (centred) to ``size`` x ``size``, or with ``size=None`` to the next multiple of
    ``multiple`` (350 -> 352); ``restore`` crops the padding away. ``resize``: resample to
    ``size`` x ``size`` (``None``: the next multiple), or with ``scale`` by that factor, each
    side rounded up to a multiple (scale 2: 128 -> 256, 350 -> 704; scale 1.5: 350 -> 544), so
    training crops and whole tiles keep one resolution; ``restore`` resamples back.

    Args:
        size: target height and width (a multiple of ``multiple``), or ``None``.
        strategy: ``"pad"`` or ``"resize"``.
        multiple: the size divisor the network needs (32 for most encoders).
        scale: resize factor (``resize`` only, not with ``size``), or ``None``.
        pad_mode: ``"reflect"`` (mirror, repeated for pads wider than the tile), ``"zeros"``
            or ``"replicate"``.
        interpolation: ``"bilinear"`` or ``"bicubic"`` for resizing.
        mask_interpolation: how masks are resized: ``"soft"`` (like the image, clamped to
            [0, 1]), ``"nearest"``, or ``"bilinear"`` then thresholded at 0.5 (hard labels).
    """

    def __init__(
        self,
        size: int | None = None,
        strategy: Literal["pad", "resize"] = "pad",
        multiple: int = 32,
        *,
        pad_mode: Literal["reflect", "zeros", "replicate"] = "reflect",
        interpolation: Literal["bilinear", "bicubic"] = "bilinear",
        mask_interpolation: Literal["soft", "nearest", "bilinear"] = "soft",
        scale: float | None = None,
    ) -> None:
        super().__init__()
        if multiple < 1 or (size is not None and (size < 1 or size % multiple)):
            raise KelpsegError(f"input size {size} must be a positive multiple of {multiple}")
        if strategy not in ("pad", "resize"):
            raise KelpsegError(f"unknown sizing strategy {strategy!r} (pad or resize)")
        if scale is not None:
            if not (math.isfinite(scale) and scale > 0):
                raise KelpsegError(f"scale {scale} must be a positive number", "data.sizing.scale")
            if size is not None or strategy != "resize":
                raise KelpsegError("scale needs strategy resize and no size", "data.sizing.scale")
        self.size, self.strategy, self.multiple = size, strategy, multiple
        self.scale = None if scale is None else float(scale)
        self.pad_mode, self.interpolation = pad_mode, interpolation
        self.mask_interpolation = mask_interpolation

    @classmethod
    def from_config(cls, config: SizingConfig) -> InputSizer:
        """Build from ``DataConfig.sizing``."""
        return cls(
            config.size,
            config.strategy,
            config.multiple,
            pad_mode=config.pad_mode,
            interpolation=config.interpolation,
            mask_interpolation=config.mask_interpolation,
            scale=config.scale,
        )

    def target_hw(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) a tile of the given size is brought to."""
        if self.size is not None:
            return self.size, self.size
        m = self.multiple
        if self.scale is not None:
            # Rounded before the ceiling: 200 * 1.12 / 32 is 7.000000000000001 in floats, not 8.
            up = [math.ceil(round(side * self.scale / m, 9)) * m for side in (height, width)]
            return up[0], up[1]
        return -(-height // m) * m, -(-width // m) * m

    def forward(self, x: Tensor) -> Tensor:
        """Size a float batch (N, C, H, W)."""
        return self._size(x, mask=False)

    def size_mask(self, y: Tensor) -> Tensor:
        """Size a mask batch (N, 1, H, W) exactly like its images (values kept in [0, 1])."""
        return self._size(y, mask=True)

    def restore(self, pred: Tensor, original_hw: tuple[int, int]) -> Tensor:
        """Bring a prediction (N, C, H', W') of a sized batch back to ``original_hw``."""
        h, w = original_hw
        if tuple(pred.shape[-2:]) == (h, w):
            return pred
        if self.strategy == "pad":
            big_h, big_w = pred.shape[-2:]
            top, left = (big_h - h) // 2, (big_w - w) // 2
            return pred[..., top : top + h, left : left + w]
        return self._resize(pred, (h, w))

    def restore_mask(self, y: Tensor, original_hw: tuple[int, int]) -> Tensor:
        """Bring a sized mask batch back to ``original_hw`` (``mask_interpolation`` applies)."""
        if self.strategy == "pad" or tuple(y.shape[-2:]) == tuple(original_hw):
            return self.restore(y, original_hw)
        return self._resize_mask(y, original_hw)

    def _resize_mask(self, y: Tensor, hw: tuple[int, int]) -> Tensor:
        if self.mask_interpolation == "nearest":
            return F.interpolate(y, size=hw, mode="nearest-exact")
        if self.mask_interpolation == "bilinear":
            out = F.interpolate(y, size=hw, mode="bilinear", align_corners=False)
            return (out >= 0.5).to(y.dtype)
        return self._resize(y, hw).clamp(0.0, 1.0)

    def _size(self, x: Tensor, mask: bool) -> Tensor:
        h, w = x.shape[-2:]
        big_h, big_w = self.target_hw(h, w)
        if (big_h, big_w) == (h, w):
            return x
        if self.strategy == "resize":
            return self._resize_mask(x, (big_h, big_w)) if mask else self._resize(x, (big_h, big_w))
        if big_h < h or big_w < w:
            raise KelpsegError(
                f"tiles of {h}x{w} px do not fit input size {self.size} by padding "
                "(use sizing.strategy=resize or a larger sizing.size)",
                "data.sizing",
            )
        top, left = (big_h - h) // 2, (big_w - w) // 2
        return _pad(x, (top, big_h - h - top, left, big_w - w - left), self.pad_mode)

    def _resize(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        shrink = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
        return F.interpolate(
            x, size=hw, mode=self.interpolation, align_corners=False, antialias=shrink
        )


def _pad(x: Tensor, pads: tuple[int, int, int, int], mode: str) -> Tensor:
    """Pad (top, bottom, left, right); reflection is repeated while a pad exceeds the tile."""
    top, bottom, left, right = pads
    if mode == "zeros":
        return F.pad(x, (left, right, top, bottom), mode="constant", value=0.0)
    if mode == "replicate" or min(x.shape[-2:]) < 2:
        return F.pad(x, (left, right, top, bottom), mode="replicate")
    while top or bottom or left or right:
        h, w = x.shape[-2:]
        t, b, lf, r = min(top, h - 1), min(bottom, h - 1), min(left, w - 1), min(right, w - 1)
        x = F.pad(x, (lf, r, t, b), mode="reflect")
        top, bottom, left, right = top - t, bottom - b, left - lf, right - r
    return x
