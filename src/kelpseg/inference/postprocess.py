"""Post-processing of predicted kelp masks: named, configurable steps applied in order.

Each step is a small config model with an ``apply(mask, tile)`` method; :data:`POSTPROCESSORS`
maps the name a user writes in YAML to its model. Every step can hurt as well as help (the
seed found so), so measure each on validation data with ``kelpseg evaluate --postprocess``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, SerializeAsAny, ValidationError, field_validator
from scipy import ndimage

from kelpseg.config import StrictModel
from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import BAND_NAMES, MISSING

_DEM = BAND_NAMES.index("DEM")


class PostprocessStep(StrictModel):
    """Base of every step: ``name`` selects it; ``removes_only`` steps never add kelp."""

    name: str
    needs_tile: ClassVar[bool] = False
    removes_only: ClassVar[bool] = True

    def apply(self, mask: np.ndarray, tile: np.ndarray | None) -> np.ndarray:
        """Return the processed (H, W) bool mask; ``tile`` is the raw (7, H, W) int16 tile."""
        raise NotImplementedError


def land_mask(tile: np.ndarray, dilation: int = 0, min_land_pixels: int = 1) -> np.ndarray:
    """Bool (H, W) land mask: DEM > 0, grown by ``dilation`` pixels with a box sum.

    A pixel is land when the (2 * dilation + 1)^2 box around it holds at least
    ``min_land_pixels`` land pixels; missing DEM (-32768, far over sea) is water.
    """
    dem = tile[_DEM]
    land = (dem > 0) & (dem != MISSING)
    if dilation == 0:
        return land
    return box_sum(land.astype(np.int32), dilation) >= min_land_pixels


def box_sum(values: np.ndarray, radius: int) -> np.ndarray:
    """Exact sum of each (2r+1)^2 box of a 2-D integer array (zeros beyond the border)."""
    h, w = values.shape
    size = 2 * radius + 1
    # Integral image with a leading zero row and column: box = I[b] - I[t] - I[l] + I[tl].
    integral = np.zeros((h + size, w + size), dtype=np.int64)
    integral[1:, 1:] = np.pad(values, radius).cumsum(0).cumsum(1)
    return integral[size:, size:] - integral[:h, size:] - integral[size:, :w] + integral[:h, :w]


def _require_tile(step: PostprocessStep, tile: np.ndarray | None, shape: tuple[int, ...]) -> None:
    if tile is None:
        raise KelpsegError(f"post-processing step {step.name!r} needs the satellite tile (DEM)")
    if tile.ndim != 3 or tile.shape[0] != len(BAND_NAMES) or tile.shape[1:] != shape:
        raise KelpsegError(
            f"post-processing step {step.name!r}: tile shape {tile.shape} does not fit mask {shape}"
        )


class LandMask(PostprocessStep):
    """Remove kelp on land (DEM > 0), the land optionally dilated (the 3rd place's trick)."""

    name: Literal["land_mask"] = "land_mask"
    dilation: int = Field(default=0, ge=0, le=50, description="grow land by this many pixels (box)")
    min_land_pixels: int = Field(
        default=1, ge=1, description="land pixels in the box to count as land"
    )
    needs_tile: ClassVar[bool] = True

    def apply(self, mask: np.ndarray, tile: np.ndarray | None) -> np.ndarray:
        _require_tile(self, tile, mask.shape)
        assert tile is not None
        return mask & ~land_mask(tile, self.dilation, self.min_land_pixels)


class FarFromWater(PostprocessStep):
    """Remove kelp more than ``max_distance`` pixels from any water pixel (deep inland)."""

    name: Literal["far_from_water"] = "far_from_water"
    max_distance: float = Field(default=3.0, ge=0.0, description="pixels (Euclidean)")
    needs_tile: ClassVar[bool] = True

    def apply(self, mask: np.ndarray, tile: np.ndarray | None) -> np.ndarray:
        _require_tile(self, tile, mask.shape)
        assert tile is not None
        land = land_mask(tile)
        if land.all():  # no water in the tile at all: every pixel is "far" from water
            return np.zeros_like(mask)
        return mask & (ndimage.distance_transform_edt(land) <= self.max_distance)


class FarFromCoast(PostprocessStep):
    """Remove kelp more than ``max_distance`` pixels from land (kelp grows near shore).

    A tile without any land is left alone: its coast lies outside the tile.
    """

    name: Literal["far_from_coast"] = "far_from_coast"
    max_distance: float = Field(default=60.0, ge=0.0, description="pixels (Euclidean)")
    needs_tile: ClassVar[bool] = True

    def apply(self, mask: np.ndarray, tile: np.ndarray | None) -> np.ndarray:
        _require_tile(self, tile, mask.shape)
        assert tile is not None
        land = land_mask(tile)
        if not land.any():
            return mask
        return mask & (ndimage.distance_transform_edt(~land) <= self.max_distance)


class MinComponent(PostprocessStep):
    """Remove connected kelp components smaller than ``min_pixels``."""

    name: Literal["min_component"] = "min_component"
    min_pixels: int = Field(default=5, ge=1, description="smallest component kept")
    connectivity: Literal[4, 8] = Field(default=8, description="pixel neighbourhood")

    def apply(self, mask: np.ndarray, tile: np.ndarray | None) -> np.ndarray:
        structure = ndimage.generate_binary_structure(2, 2 if self.connectivity == 8 else 1)
        labels, count = ndimage.label(mask, structure=structure)
        if count == 0:
            return mask
        sizes = np.bincount(labels.ravel())
        keep = sizes >= self.min_pixels
        keep[0] = False
        return keep[labels]


def _structure(shape: str, radius: int) -> np.ndarray:
    if shape == "square":
        return np.ones((2 * radius + 1,) * 2, dtype=bool)
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return np.asarray(yy**2 + xx**2 <= radius**2)


class Opening(PostprocessStep):
    """Morphological opening: removes specks and thin bridges narrower than the element."""

    name: Literal["opening"] = "opening"
    radius: int = Field(default=1, ge=1, le=20, description="structuring element radius (pixels)")
    shape: Literal["square", "disk"] = "disk"

    def apply(self, mask: np.ndarray, tile: np.ndarray | None) -> np.ndarray:
        element = _structure(self.shape, self.radius)
        # Outside the tile counts as kelp for the erosion, so beds cut by the border survive.
        eroded = ndimage.binary_erosion(mask, element, border_value=1)
        return ndimage.binary_dilation(eroded, element) & mask


class Closing(PostprocessStep):
    """Morphological closing: fills gaps narrower than the element (adds kelp)."""

    name: Literal["closing"] = "closing"
    radius: int = Field(default=1, ge=1, le=20, description="structuring element radius (pixels)")
    shape: Literal["square", "disk"] = "disk"
    removes_only: ClassVar[bool] = False

    def apply(self, mask: np.ndarray, tile: np.ndarray | None) -> np.ndarray:
        element = _structure(self.shape, self.radius)
        # Padding keeps the erosion from eating kelp that touches the tile border.
        pad = self.radius
        grown = ndimage.binary_dilation(np.pad(mask, pad), element)
        closed = ndimage.binary_erosion(grown, element, border_value=1)
        return closed[pad:-pad, pad:-pad] | mask


#: name -> step model: the names users write in ``postprocess.steps``.
POSTPROCESSORS: dict[str, type[PostprocessStep]] = {
    "land_mask": LandMask,
    "far_from_water": FarFromWater,
    "far_from_coast": FarFromCoast,
    "min_component": MinComponent,
    "opening": Opening,
    "closing": Closing,
}


class PostprocessConfig(StrictModel):
    """Post-processing steps, applied in the order listed (empty: none).

    Example YAML::

        steps:
          - {name: land_mask, dilation: 1}
          - {name: min_component, min_pixels: 10}
    """

    steps: list[SerializeAsAny[PostprocessStep]] = Field(default_factory=list)

    @field_validator("steps", mode="before")
    @classmethod
    def _dispatch(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [_build_step(i, item) for i, item in enumerate(value)]

    @property
    def needs_tile(self) -> bool:
        """Whether any step reads the satellite tile."""
        return any(step.needs_tile for step in self.steps)


def _build_step(index: int, item: Any) -> PostprocessStep:
    if isinstance(item, PostprocessStep):
        return item
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict) or "name" not in item:
        raise ValueError("each step must be a mapping with a 'name'")
    step = POSTPROCESSORS.get(str(item["name"]))
    if step is None:
        raise ValueError(f"unknown step {item['name']!r}; known: {', '.join(POSTPROCESSORS)}")
    try:
        return step.model_validate(item)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"step {index} ({step.__name__}) key '{key}': {err['msg']}") from None


def apply_postprocess(
    mask: np.ndarray, tile_raw: np.ndarray | None, config: PostprocessConfig
) -> np.ndarray:
    """Apply every configured step to a (H, W) 0/1 mask; returns a uint8 0/1 mask.

    Args:
        mask: predicted mask (bool or 0/1 integers).
        tile_raw: the raw (7, H, W) int16 tile; only steps that read the DEM need it.
        config: the steps, in order.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise KelpsegError(f"a mask must be 2-D, got shape {mask.shape}")
    out = mask.astype(bool)
    for step in config.steps:
        out = np.asarray(step.apply(out, tile_raw), dtype=bool)
    return out.astype(np.uint8)
