"""The DEM band of a scene: a user raster resampled onto the scene grid, or none.

As in the tiles: metres above sea, > 0 on land, 0 on the sea inside the DEM's extent (values
<= 0 become 0), and -32768 where the DEM has no data or does not reach.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import Resampling, reproject

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import MISSING

PathLike = str | os.PathLike[str]


def dem_to_tile(values: np.ndarray) -> np.ndarray:
    """Float elevations (NaN = no data) -> int16 tile DEM: sea 0, land > 0, missing -32768."""
    out = np.full(values.shape, MISSING, dtype=np.int16)
    valid = np.isfinite(values)
    out[valid] = np.clip(np.rint(np.maximum(values[valid], 0.0)), 0, 32767).astype(np.int16)
    return out


class DemReader:
    """Reads a user DEM resampled (bilinear) onto any window of the scene grid.

    The source dataset stays open; close it with :meth:`close` or a ``with`` block. Each
    :meth:`read` warps only the part of the DEM under the window, so memory stays bounded.

    Raises:
        KelpsegError: the DEM cannot be opened or has no CRS.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        try:
            self._src = rasterio.open(self.path)
        except RasterioError as exc:
            raise KelpsegError(f"DEM is not a readable raster ({_short(exc)})", path) from exc
        if self._src.crs is None:
            self._src.close()
            raise KelpsegError("DEM has no CRS, so it cannot be placed on the scene", path)

    def read(self, shape: tuple[int, int], transform: Affine, crs: CRS) -> np.ndarray:
        """The int16 tile DEM of a (rows, cols) window with the given transform and CRS."""
        dst = np.full(shape, np.nan, dtype=np.float32)
        try:
            reproject(
                rasterio.band(self._src, 1),
                dst,
                src_nodata=self._src.nodata,
                dst_transform=transform,
                dst_crs=crs,
                dst_nodata=np.nan,
                resampling=Resampling.bilinear,
            )
        except RasterioError as exc:
            raise KelpsegError(f"cannot resample the DEM ({_short(exc)})", self.path) from exc
        return dem_to_tile(dst)

    def close(self) -> None:
        """Close the source raster."""
        self._src.close()

    def __enter__(self) -> DemReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def missing_dem(shape: tuple[int, int]) -> np.ndarray:
    """The DEM band of a scene without DEM: all ``MISSING`` (no land known anywhere)."""
    return np.full(shape, MISSING, dtype=np.int16)


def require_dem(needs_dem: bool, has_dem: bool, scene: str) -> None:
    """Raise a one-line error when the model needs a DEM band and the scene has none."""
    if needs_dem and not has_dem:
        raise KelpsegError(
            "this model was trained with a DEM band: pass --dem DEM.tif (any elevation raster "
            "covering the scene), or use a model trained without DEM",
            scene,
        )


def _short(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
