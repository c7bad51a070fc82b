"""The bad-input catalogue: one faulty input per case, for every command of the pipeline.

Each builder sets up a fault in a fresh folder and returns the command line to run, the words the
one error line must contain (the file or key, and the fault), and the folder that must come out
of the failed run exactly as it went in (it is seeded with earlier outputs first). This module
holds the registry and helpers; ``cases_data`` and ``cases_model`` fill :data:`CASES`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from kelpseg.io.tiles import MISSING, write_tile
from tests.conftest import make_tile_array

EARLIER = "earlier-output.txt"


@dataclass
class Env:
    """Shared inputs of the cases (read-only) and the case's own scratch folder."""

    tmp: Path
    data: Path
    split: Path
    ckpt: Path
    other_ckpt: Path
    other_stats: Path

    def copy_data(self) -> Path:
        """A private copy of the dataset, to damage."""
        return Path(shutil.copytree(self.data, self.tmp / "data"))

    def out(self, name: str = "out", *outputs: str) -> Path:
        """An output folder holding earlier outputs (``EARLIER`` and the given file names)."""
        folder = self.tmp / name
        folder.mkdir(parents=True, exist_ok=True)
        for item in (EARLIER, *outputs):
            (folder / item).write_text(f"written by an earlier run: {item}\n")
        return folder

    def train_tiles(self) -> pd.DataFrame:
        """Rows of the split catalog's training tiles."""
        frame = pd.read_parquet(self.split)
        return frame[frame["split"] == "train"].reset_index(drop=True)

    def train_config(self, out: Path, **sections: object) -> Path:
        """A tiny run config YAML (1 epoch of 32 px crops, tracking off), updated by sections."""
        data: dict[str, object] = {
            "data": {
                "catalog": str(self.split),
                "fold": 0,
                "batch_size": 2,
                "num_workers": 0,
                "crop_size": 32,
                "sampler": {"samples_per_epoch": 4},
            },
            "features": {"channels": ["R", "G", "NIR"], "normalization": "per-sample-min-max"},
            "model": {"arch": "Unet", "encoder": "tu-resnet10t", "encoder_weights": None},
            "trainer": {"max_epochs": 1, "accelerator": "cpu", "enable_progress_bar": False},
            "tracking": {"enabled": False},
            "output_dir": str(out / "run"),
        }
        for key, value in sections.items():
            section = data.setdefault(key, {})
            if isinstance(section, dict) and isinstance(value, dict):
                section.update(value)
            else:
                data[key] = value
        path = self.tmp / "run.yaml"
        path.write_text(yaml.safe_dump(data))
        return path


@dataclass
class Case:
    """A command line that must fail cleanly.

    Attributes:
        argv: the kelpseg arguments.
        names: the file or key the error line must name.
        fault: words of the fault the error line must contain.
        watch: the folder that must be left exactly as it was.
        rc: the expected exit code.
        resume_state: glob patterns of new files a resumable command may leave (its progress
            up to the fault, marked unfinished); nothing earlier may change.
    """

    argv: list[str]
    names: str
    fault: str
    watch: Path
    rc: int = 2
    resume_state: tuple[str, ...] = ()


Builder = Callable[[Env], Case]
CASES: dict[str, tuple[str, str, Builder]] = {}  # "command: input" -> (command, input, builder)


def case(name: str, command: str) -> Callable[[Builder], Builder]:
    """Register a case builder under ``name`` for ``command`` (as shown in the docs)."""

    def register(builder: Builder) -> Builder:
        CASES[f"{command}: {name}"] = (command, name, builder)
        return builder

    return register


def damage(path: Path, fault: str) -> None:
    """Replace a satellite tile by one with ``fault``."""
    size = 64
    if fault == "truncated":
        path.write_bytes(path.read_bytes()[:700])
    elif fault == "not-tiff":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    elif fault == "bands":
        write_tile_raw(path, make_tile_array(size)[:4])
    elif fault == "dtype":
        write_tile_raw(path, make_tile_array(size).astype(np.float32))
    elif fault == "size":
        write_tile(path, make_tile_array(48))
    elif fault == "all-missing":
        data = make_tile_array(size)
        data[:5] = MISSING
        write_tile(path, data)
    else:  # pragma: no cover - a typo in a case
        raise ValueError(fault)


def write_tile_raw(path: Path, array: np.ndarray) -> None:
    """Write any array as a GeoTIFF (bypassing the tile writer's checks)."""
    import rasterio

    profile = {"driver": "GTiff", "count": array.shape[0], "height": array.shape[1]}
    profile.update(width=array.shape[2], dtype=array.dtype.name)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)


def damaged_dataset(env: Env, fault: str) -> tuple[Path, Path]:
    """A dataset copy whose second training tile has ``fault``; returns (root, that tile)."""
    root = env.copy_data()
    tiles = sorted((root / "train_satellite").glob("*_satellite.tif"))
    damage(tiles[1], fault)
    return root, tiles[1]
