"""Kelp Wanted tiles: 7-band int16 satellite GeoTIFFs and 1-band kelp masks.

Band order of ``<tile_id>_satellite.tif`` (see docs/data.md): SWIR1, NIR, R, G, B, QA, DEM.
Missing or corrupted pixels are -32768 in every band.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.io import DatasetReader

from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path

BAND_NAMES: tuple[str, ...] = ("SWIR1", "NIR", "R", "G", "B", "QA", "DEM")
SPECTRAL_BANDS: tuple[str, ...] = BAND_NAMES[:5]
MISSING: int = -32768
TILE_SIZE: int = 350

PathLike = str | os.PathLike[str]
T = TypeVar("T")

# Tiles carry no CRS by design. catch_warnings() is not thread-safe (threaded writers leak the
# warning), so silence this one category for the whole process instead.
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)


@dataclass(frozen=True)
class Tile:
    """One satellite tile: a (7, H, W) int16 array with named bands.

    Attributes:
        tile_id: the id shared by the satellite and kelp files.
        data: raw pixels, band order ``BAND_NAMES``, missing pixels = ``MISSING``.
        path: where the tile was read from (``None`` for in-memory tiles).
    """

    tile_id: str
    data: np.ndarray
    path: Path | None = field(default=None, compare=False)

    def band(self, name: str) -> np.ndarray:
        """Return one band by name (``"NIR"``, ``"DEM"`` ...), as a view."""
        try:
            return self.data[BAND_NAMES.index(name)]
        except ValueError as exc:
            raise KelpsegError(f"unknown band {name!r}; bands are {', '.join(BAND_NAMES)}") from exc

    @property
    def missing(self) -> np.ndarray:
        """Boolean (7, H, W) mask of pixels equal to ``MISSING``."""
        return self.data == MISSING

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width in pixels."""
        return int(self.data.shape[1]), int(self.data.shape[2])


def tile_id_from_path(path: PathLike) -> str:
    """``.../AB123_satellite.tif`` -> ``AB123`` (also for ``_kelp.tif``)."""
    stem = Path(path).name
    for suffix in ("_satellite.tif", "_kelp.tif", ".tif"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return Path(path).stem


def _open_array(path: Path) -> np.ndarray:
    array: np.ndarray = _with_dataset(path, lambda src: src.read())
    return array


def raster_header(path: PathLike) -> tuple[int, np.dtype[Any], int, int]:
    """Band count, pixel type, height and width of a GeoTIFF, without reading its pixels.

    Raises:
        KelpsegError: missing, unreadable or not a GeoTIFF (the same lines as :func:`read_tile`).
    """

    def header(src: DatasetReader) -> tuple[int, np.dtype[Any], int, int]:
        return int(src.count), np.dtype(src.dtypes[0]), int(src.height), int(src.width)

    return _with_dataset(Path(path), header)


def _with_dataset(path: Path, use: Callable[[DatasetReader], T]) -> T:
    """``use(dataset)`` on the opened GeoTIFF, every failure turned into one KelpsegError."""
    if not path.exists():
        raise KelpsegError("file does not exist", path)
    if not os.access(path, os.R_OK):
        raise KelpsegError("file is not readable (permission denied)", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.driver != "GTiff":
                    raise KelpsegError(f"not a GeoTIFF (driver {src.driver})", path)
                return use(src)
    except RasterioIOError as exc:
        raise KelpsegError(f"not a readable GeoTIFF ({_short(exc)})", path) from exc
    except rasterio.errors.RasterioError as exc:
        raise KelpsegError(f"corrupt GeoTIFF ({_short(exc)})", path) from exc


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def read_tile(
    path: PathLike,
    *,
    expected_size: tuple[int, int] | None = (TILE_SIZE, TILE_SIZE),
    allow_all_missing: bool = False,
) -> Tile:
    """Read a ``<tile_id>_satellite.tif`` and check its structure.

    Args:
        path: the GeoTIFF to read.
        expected_size: required (height, width), or ``None`` to accept any size.
        allow_all_missing: accept a tile whose spectral bands are entirely ``MISSING``.

    Raises:
        KelpsegError: unreadable file, wrong band count, dtype or size, or all pixels missing.
    """
    path = Path(path)
    data = _open_array(path)
    if data.shape[0] != len(BAND_NAMES):
        raise KelpsegError(f"expected {len(BAND_NAMES)} bands, found {data.shape[0]}", path)
    if data.dtype != np.int16:
        raise KelpsegError(f"expected int16 pixels, found {data.dtype}", path)
    if expected_size is not None and data.shape[1:] != tuple(expected_size):
        raise KelpsegError(
            f"expected {expected_size[0]}x{expected_size[1]} pixels, "
            f"found {data.shape[1]}x{data.shape[2]}",
            path,
        )
    if not allow_all_missing and bool(np.all(data[: len(SPECTRAL_BANDS)] == MISSING)):
        raise KelpsegError("every spectral pixel is missing (-32768)", path)
    return Tile(tile_id=tile_id_from_path(path), data=data, path=path)


def read_label(path: PathLike, *, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a ``<tile_id>_kelp.tif`` as a (H, W) uint8 array of 0/1.

    Raises:
        KelpsegError: unreadable, not one band, wrong size, or values outside {0, 1}.
    """
    path = Path(path)
    data = _open_array(path)
    if data.shape[0] != 1:
        raise KelpsegError(f"expected 1 band in a label, found {data.shape[0]}", path)
    if not np.issubdtype(data.dtype, np.integer):
        raise KelpsegError(f"expected integer label pixels, found {data.dtype}", path)
    if expected_size is not None and data.shape[1:] != tuple(expected_size):
        raise KelpsegError(
            f"expected {expected_size[0]}x{expected_size[1]} pixels, "
            f"found {data.shape[1]}x{data.shape[2]}",
            path,
        )
    label = data[0]
    bad = (label != 0) & (label != 1)
    if bad.any():
        values = np.unique(label[bad])[:5].tolist()
        raise KelpsegError(f"label values outside {{0, 1}}: {values}", path)
    return label.astype(np.uint8)


def _write(path: PathLike, array: np.ndarray, **profile: Any) -> Path:
    path = Path(path)
    if array.ndim == 2:
        array = array[None]
    base = {
        "driver": "GTiff",
        "count": array.shape[0],
        "height": array.shape[1],
        "width": array.shape[2],
        "dtype": array.dtype.name,
    }
    base.update(profile)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **base) as dst:
            dst.write(array)
    return path


def write_tile(path: PathLike, data: np.ndarray) -> Path:
    """Write a (7, H, W) int16 satellite tile atomically (nodata -32768, unreferenced)."""
    if data.ndim != 3 or data.shape[0] != len(BAND_NAMES) or data.dtype != np.int16:
        raise KelpsegError(f"a tile must be (7, H, W) int16, got {data.shape} {data.dtype}", path)
    # zlevel 1: 2.4x faster writes than the default level at the same size on these tiles.
    return _write(path, data, nodata=MISSING, compress="deflate", predictor=2, zlevel=1)


def write_label(path: PathLike, label: np.ndarray) -> Path:
    """Write a (H, W) 0/1 label or mask atomically as single-band uint8 GeoTIFF."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise KelpsegError(f"a mask must be 2-D, got shape {label.shape}", path)
    values = np.unique(label)
    if not np.isin(values, (0, 1)).all():
        raise KelpsegError(f"mask values outside {{0, 1}}: {values[:5].tolist()}", path)
    return _write(path, label.astype(np.uint8), compress="deflate")


def write_mask(path: PathLike, mask: np.ndarray) -> Path:
    """Write a predicted kelp mask in the submission format (uncompressed uint8 0/1)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise KelpsegError(f"a mask must be 2-D, got shape {mask.shape}", path)
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    values = np.unique(mask)
    if not np.isin(values, (0, 1)).all():
        raise KelpsegError(f"mask values outside {{0, 1}}: {values[:5].tolist()}", path)
    return _write(path, mask.astype(np.uint8))


def write_probability(path: PathLike, prob: np.ndarray) -> Path:
    """Write a (H, W) float32 kelp probability raster atomically."""
    prob = np.asarray(prob, dtype=np.float32)
    if prob.ndim != 2:
        raise KelpsegError(f"a probability raster must be 2-D, got shape {prob.shape}", path)
    return _write(path, prob, compress="deflate")
