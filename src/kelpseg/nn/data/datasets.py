"""Tile datasets: raw int16 tiles and float masks, from a prepared store or from GeoTIFFs.

Both return ``{"image": int16 (7, H, W), "mask": float32 (1, H, W) in [0, 1], "tile_id": str}``
(no ``"mask"`` for unlabelled tiles). Nothing is decoded, scaled or normalised here: that happens
on the device, in batch (``kelpseg.features.InputBuilder``).

With ``crop_size`` each item is a random square window (with ``context`` set, the whole tile and
its window as ``"crop"``: ``(top, left, size)``, cut by :func:`crop_batch` after the channels are
built); with probability ``kelp_crop_prob`` the
window is centred on a random kelp pixel of the tile (moved inward at the borders). An item key
may be ``(index, seed)`` (what :class:`~kelpseg.nn.data.sampler.TileSampler` yields): the crop is
then a pure function of the key, whatever worker loads it, so runs and resumed runs repeat.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import read_label, read_tile, tile_id_from_path
from kelpseg.nn.data.store_format import StoreSplit
from kelpseg.nn.slicing import snap_to_slice

if TYPE_CHECKING:
    from kelpseg.nn.data.stacked import StackedChannels

PathLike = str | os.PathLike[str]
ItemKey = int | tuple[int, int]
Window = tuple[slice, slice]


def crop_origin(
    kelp: np.ndarray | None,
    shape: tuple[int, int],
    size: int,
    kelp_prob: float,
    rng: np.random.Generator,
) -> tuple[int, int]:
    """Top-left corner of a ``size`` x ``size`` crop of a tile of ``shape``.

    With probability ``kelp_prob`` (and a tile holding kelp) the crop is centred on a random kelp
    pixel, shifted inward where the centre is closer than ``size / 2`` to a border; otherwise its
    position is uniform.

    Args:
        kelp: the tile's (H, W) mask, or the flat indices of its kelp pixels (1-D), or ``None``.
        shape: tile height and width.
        size: crop side.
        kelp_prob: chance of a kelp-centred crop.
        rng: random generator.
    """
    height, width = shape
    if size > height or size > width:
        raise KelpsegError(f"crop size {size} is larger than the tile ({height}x{width})")
    want_kelp = rng.random() < kelp_prob
    if want_kelp and kelp is not None:
        if kelp.ndim == 2:
            kelp = np.flatnonzero(kelp)
        if kelp.size:
            row, col = divmod(int(kelp[rng.integers(kelp.size)]), width)
            top = min(max(row - size // 2, 0), height - size)
            left = min(max(col - size // 2, 0), width - size)
            return top, left
    return int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))


class TileDataset(Dataset[dict[str, Any]]):
    """Base of the tile datasets: keys, crops and the item format.

    Subclasses implement :meth:`read_image`, :meth:`read_mask` and :meth:`tile_shape`.

    Args:
        tile_ids: one id per item.
        labelled: whether items carry a mask.
        crop_size: crop square size, or ``None`` for whole tiles.
        kelp_crop_prob: chance that a crop is centred on kelp.
    """

    def __init__(
        self,
        tile_ids: Sequence[str],
        *,
        labelled: bool,
        crop_size: int | None = None,
        kelp_crop_prob: float = 0.0,
    ) -> None:
        self.tile_ids = list(tile_ids)
        self.labelled = labelled
        self.crop_size = crop_size
        self.kelp_crop_prob = kelp_crop_prob
        self._kelp_pixels: dict[int, np.ndarray] = {}
        # Read whole tiles and hand the crop windows on as "crop" (top, left, size) rows, for
        # channels built on the whole tile (DataConfig.crop_context); set by the data module.
        self.context = False
        # Overlap of the slice grid crops snap to (DataConfig.slicing.train); None: any origin.
        self.slice_overlap: int | None = None
        # Stored channels (data.stacked) read into planes after the seven bands, if any.
        self.stacked: StackedChannels | None = None

    def __len__(self) -> int:
        return len(self.tile_ids)

    def read_image(self, index: int, window: Window | None) -> np.ndarray:
        """Raw (7, h, w) int16 pixels of item ``index`` (a window of it, if given)."""
        raise NotImplementedError

    def read_image_into(self, index: int, window: Window | None, out: np.ndarray) -> None:
        """Write item ``index``'s pixels into ``out`` (a slot of the batch array)."""
        image = self.read_image(index, window)
        if image.shape != out.shape:
            raise KelpsegError(
                f"tiles of different sizes in one batch ({self.tile_ids[index]}: "
                f"{image.shape[-2]}x{image.shape[-1]}, others {out.shape[-2]}x{out.shape[-1]}); "
                "use batch size 1 or crops"
            )
        out[...] = image

    def read_mask(self, index: int) -> np.ndarray | None:
        """The (H, W) uint8 label of item ``index``, or ``None`` when unlabelled."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop anything cached for the previous batch (nothing by default)."""

    def tile_shape(self, index: int) -> tuple[int, int]:
        """Height and width of item ``index``'s tile."""
        raise NotImplementedError

    def __getitem__(self, key: ItemKey) -> dict[str, Any]:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: Sequence[ItemKey]) -> TileBatch:
        """Items of a batch, read straight into one batch array (DataLoader's batched fetch).

        The returned list holds per-item views; :func:`collate_tiles` hands on the batch as it
        is, without stacking copies (torch's default collate also works, with one more copy).
        """
        self.release()
        plans = []
        for key in keys:
            index, seed = _unpack(key)
            mask = self.read_mask(index) if self.labelled else None
            plans.append((index, mask, self._window(index, mask, seed)))
        # With crop context the whole tile is read and the crop only recorded (module crops).
        context = self.context and self.crop_size is not None
        reads = [None if context else window for _, _, window in plans]
        height, width = self._item_shape(plans[0][0], reads[0])
        planes = 7 + (len(self.stacked) if self.stacked is not None else 0)
        images = np.empty((len(plans), planes, height, width), dtype=np.int16)
        masks = np.empty((len(plans), 1, height, width), dtype=np.float32)
        for slot, ((index, mask, _), window) in enumerate(zip(plans, reads, strict=True)):
            self.read_image_into(index, window, images[slot, :7])
            if self.stacked is not None:
                self.stacked.read(self.tile_ids[index], window, images[slot, 7:])
            if mask is not None:
                masks[slot, 0] = mask if window is None else mask[window]
        batch: dict[str, Any] = {
            "image": torch.from_numpy(images),
            "tile_id": [self.tile_ids[index] for index, _, _ in plans],
        }
        if self.labelled:
            batch["mask"] = torch.from_numpy(masks)
        if context:
            windows = [w for _, _, w in plans if w is not None]
            origins = [(rows.start, cols.start, rows.stop - rows.start) for rows, cols in windows]
            batch["crop"] = torch.tensor(origins, dtype=torch.int64)
        items = [{key: value[slot] for key, value in batch.items()} for slot in range(len(plans))]
        return TileBatch(items, batch)

    def _window(self, index: int, mask: np.ndarray | None, seed: int) -> Window | None:
        if self.crop_size is None:
            return None
        rng = np.random.default_rng(seed)
        shape = self.tile_shape(index)
        kelp = None
        if mask is not None and self.kelp_crop_prob > 0:
            if index not in self._kelp_pixels:  # labels do not change: locate kelp once
                self._kelp_pixels[index] = np.flatnonzero(mask).astype(np.int32)
            kelp = self._kelp_pixels[index]
        top, left = crop_origin(kelp, shape, self.crop_size, self.kelp_crop_prob, rng)
        if self.slice_overlap is not None:
            top = snap_to_slice(top, shape[0], self.crop_size, self.slice_overlap)
            left = snap_to_slice(left, shape[1], self.crop_size, self.slice_overlap)
        return slice(top, top + self.crop_size), slice(left, left + self.crop_size)

    def _item_shape(self, index: int, window: Window | None) -> tuple[int, int]:
        if window is not None:
            return window[0].stop - window[0].start, window[1].stop - window[1].start
        return self.tile_shape(index)


class TileBatch(list[dict[str, Any]]):
    """Per-item dicts of a batch plus the batch already collated (``.collated``)."""

    def __init__(self, items: list[dict[str, Any]], collated: dict[str, Any]) -> None:
        super().__init__(items)
        self.collated = collated


def collate_tiles(data: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """DataLoader ``collate_fn``: the pre-collated batch of a :class:`TileBatch`, else stacking."""
    if isinstance(data, TileBatch):
        return data.collated
    return default_collate(list(data))


def crop_batch(x: Tensor, crop: Tensor) -> Tensor:
    """Cut each sample of ``x`` (N, C, H, W) to its window ``crop[i] = (top, left, size)``."""
    rows = crop.tolist()
    return torch.stack([x[i, :, t : t + s, left : left + s] for i, (t, left, s) in enumerate(rows)])


def _unpack(key: ItemKey) -> tuple[int, int]:
    if isinstance(key, tuple):
        return int(key[0]), int(key[1])
    # A plain index (no sampler seed): draw from torch, which DataLoader seeds per worker.
    return int(key), int(torch.randint(0, 2**62, ()).item())


class StoreDataset(TileDataset):
    """Tiles sliced from a prepared store's memory maps: no decode, only the bytes needed.

    Args:
        split: an opened store split (:func:`~kelpseg.nn.data.store_format.open_store`).
        tile_ids: the tiles to serve, in order (default: all of the split).
        with_masks: serve masks (needs a labelled split).
        crop_size: crop square size, or ``None``.
        kelp_crop_prob: chance that a crop is centred on kelp.

    Raises:
        KelpsegError: tiles not in the store, or masks asked of an unlabelled split.
    """

    def __init__(
        self,
        split: StoreSplit,
        tile_ids: Sequence[str] | None = None,
        *,
        with_masks: bool = True,
        crop_size: int | None = None,
        kelp_crop_prob: float = 0.0,
    ) -> None:
        ids = list(split.tile_ids if tile_ids is None else tile_ids)
        if with_masks and not split.labelled:
            raise KelpsegError(f"store split {split.name!r} holds no masks", split.root)
        super().__init__(
            ids, labelled=with_masks, crop_size=crop_size, kelp_crop_prob=kelp_crop_prob
        )
        self.split = split
        self.rows = split.rows(ids)

    def read_image(self, index: int, window: Window | None) -> np.ndarray:
        """Slice the image memmap (only the window's bytes are touched)."""
        tile = self.split.images[self.rows[index]]
        return np.array(tile if window is None else tile[:, window[0], window[1]])

    def read_image_into(self, index: int, window: Window | None, out: np.ndarray) -> None:
        """Copy straight from the memmap into the batch array (one copy, no decode)."""
        tile = self.split.images[self.rows[index]]
        out[...] = tile if window is None else tile[:, window[0], window[1]]

    def read_mask(self, index: int) -> np.ndarray | None:
        """The tile's mask from the store, as a read-only view (``None`` when unlabelled)."""
        masks = self.split.masks
        return None if masks is None else masks[self.rows[index]]

    def tile_shape(self, index: int) -> tuple[int, int]:
        """All tiles of a store share one size."""
        return self.split.height, self.split.width


class GeoTiffDataset(TileDataset):
    """Tiles decoded from ``<tile_id>_satellite.tif`` (and ``_kelp.tif``) files on every read.

    Args:
        image_paths: satellite GeoTIFFs.
        mask_paths: matching label GeoTIFFs, or ``None`` for unlabelled tiles.
        tile_ids: ids of the tiles (default: from the file names).
        crop_size: crop square size, or ``None``.
        kelp_crop_prob: chance that a crop is centred on kelp.
    """

    def __init__(
        self,
        image_paths: Sequence[PathLike],
        mask_paths: Sequence[PathLike] | None = None,
        tile_ids: Sequence[str] | None = None,
        *,
        crop_size: int | None = None,
        kelp_crop_prob: float = 0.0,
    ) -> None:
        self.image_paths = [str(p) for p in image_paths]
        self.mask_paths = None if mask_paths is None else [str(p) for p in mask_paths]
        if self.mask_paths is not None and len(self.mask_paths) != len(self.image_paths):
            raise KelpsegError(
                f"{len(self.image_paths)} images but {len(self.mask_paths)} masks were given"
            )
        ids = [tile_id_from_path(p) for p in self.image_paths] if tile_ids is None else tile_ids
        super().__init__(
            ids,
            labelled=self.mask_paths is not None,
            crop_size=crop_size,
            kelp_crop_prob=kelp_crop_prob,
        )
        self._decoded: dict[int, np.ndarray] = {}

    def _decode(self, index: int) -> np.ndarray:
        # Tiles decoded for a batch are kept until read, so each is decoded once per batch
        # even though its size is needed first (crops, label checks).
        if index not in self._decoded:
            path = self.image_paths[index]
            self._decoded[index] = read_tile(path, expected_size=None, allow_all_missing=True).data
        return self._decoded[index]

    def read_image(self, index: int, window: Window | None) -> np.ndarray:
        """Decode the satellite GeoTIFF (whole tile; deflate strips cannot be skipped)."""
        data = self._decode(index)
        del self._decoded[index]
        return data if window is None else data[:, window[0], window[1]]

    def read_mask(self, index: int) -> np.ndarray | None:
        """Decode the label GeoTIFF (``None`` when unlabelled); it must match the tile's size."""
        if self.mask_paths is None:
            return None
        return read_label(self.mask_paths[index], expected_size=self.tile_shape(index))

    def release(self) -> None:
        """Forget tiles decoded for an earlier batch (e.g. after an error)."""
        self._decoded.clear()

    def tile_shape(self, index: int) -> tuple[int, int]:
        """Size of the decoded tile (kept for the read that follows)."""
        data = self._decode(index)
        return int(data.shape[1]), int(data.shape[2])
