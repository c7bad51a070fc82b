"""Stored per-tile channels (the out-of-fold tree probability) fed to the network beside the bands.

``data.stacked: {TREEPROB: treeprob/}`` names folders written by
:func:`kelpseg.tabular.stacking.write_stacking_channel` (``tiles/<tile_id>.npy``, float16
probabilities). The datasets append each as one more plane of the raw int16 batch, scaled by
:data:`SCALE` (1e-4 resolution, finer than the float16 it is stored in), so the batch stays one
tensor and moves to the device as before; :class:`StackedInputBuilder` splits the planes off
again, builds the usual channels from the seven bands and appends the stored ones un-normalised
(they are probabilities in [0, 1] already, and no band statistics cover them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from kelpseg.errors import KelpsegError
from kelpseg.features.channels import InputBuilder
from kelpseg.features.config import FeatureConfig
from kelpseg.features.stats import BandStats
from kelpseg.io.tiles import BAND_NAMES

PathLike = str | os.PathLike[str]
SCALE = 10_000.0
# Layout written by kelpseg.tabular.stacking (kept here too: nn does not import tabular).
TILES_DIR = "tiles"
N_BANDS = len(BAND_NAMES)


class StackedChannels:
    """Reads stored channels of a tile (or a window of it) as int16 planes.

    Args:
        folders: channel name -> folder of ``tiles/<tile_id>.npy``, in input order.
    """

    def __init__(self, folders: Mapping[str, PathLike]) -> None:
        self.names = list(folders)
        self.folders = [Path(f) for f in folders.values()]
        for name, folder in zip(self.names, self.folders, strict=True):
            if not (folder / TILES_DIR).is_dir():
                raise KelpsegError(
                    f"stacked channel {name}: no {TILES_DIR}/ folder "
                    "(write it with kelpseg.tabular.stacking.write_stacking_channel)",
                    folder,
                )

    def __len__(self) -> int:
        return len(self.names)

    def read(self, tile_id: str, window: tuple[slice, slice] | None, out: np.ndarray) -> None:
        """Write the tile's (window of its) channels into ``out`` (E, h, w) int16, scaled."""
        for i, folder in enumerate(self.folders):
            path = folder / TILES_DIR / f"{tile_id}.npy"
            if not path.is_file():
                raise KelpsegError(f"no stacked {self.names[i]} for tile {tile_id}", path)
            plane = np.load(path, mmap_mode="r")
            plane = plane if window is None else plane[window]
            if plane.shape != out.shape[1:]:
                raise KelpsegError(
                    f"stacked {self.names[i]} of {tile_id} is {plane.shape}, tile {out.shape[1:]}",
                    path,
                )
            out[i] = np.rint(np.asarray(plane, np.float32) * SCALE)


class StackedInputBuilder(InputBuilder):
    """An :class:`InputBuilder` for batches carrying stored channels after the seven bands.

    Args:
        config: the feature config of the band channels.
        stats: their band statistics.
        stacked: names of the stored channels, appended in this order.
    """

    def __init__(self, config: FeatureConfig, stats: BandStats | None, stacked: list[str]) -> None:
        super().__init__(config, stats)
        self.stacked = list(stacked)

    def _split(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        expected = N_BANDS + len(self.stacked)
        if raw.ndim != 4 or raw.shape[1] != expected:
            raise KelpsegError(
                f"this model also takes the stored channel(s) {', '.join(self.stacked)}: it "
                f"needs batches of {expected} planes (data.stacked), got {tuple(raw.shape)}"
            )
        return raw[:, :N_BANDS], raw[:, N_BANDS:].float() / SCALE

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """Normalised band channels, then the stored channels in [0, 1]."""
        bands, stored = self._split(raw)
        return torch.cat([super().forward(bands), stored.to(torch.float32)], dim=1)

    def raw_channels(self, raw: torch.Tensor) -> torch.Tensor:
        """Band channels before normalisation, then the stored channels."""
        bands, stored = self._split(raw)
        return torch.cat([super().raw_channels(bands), stored.to(torch.float32)], dim=1)


def build_inputs(
    config: FeatureConfig, stats: BandStats | None, stacked: Mapping[str, PathLike]
) -> InputBuilder:
    """The input builder of a run: plain, or with stored channels appended."""
    return (
        StackedInputBuilder(config, stats, list(stacked))
        if stacked
        else InputBuilder(config, stats)
    )
