"""Scene outputs written strip by strip, then turned into Cloud-Optimised GeoTIFFs atomically.

Strips go to a striped GeoTIFF in a hidden temporary folder beside the output; when every
strip is in, GDAL's COG driver copies it into a tiled, compressed file with overviews (read in
blocks, so memory stays bounded), written to a temporary name and renamed onto the target.
An interrupted run leaves no output and removes its temporary folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.windows import Window

from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path

PathLike = str | os.PathLike[str]
MASK_NODATA = 255
PROB_NODATA = float("nan")
COG_BLOCK = 512


def to_cog(src: PathLike, dst: PathLike, *, resampling: str) -> Path:
    """Copy a GeoTIFF into a Cloud-Optimised GeoTIFF at ``dst`` (atomically).

    Args:
        src: any GDAL-readable raster.
        dst: the COG to write.
        resampling: overview resampling (``nearest`` for masks, ``average`` for probabilities).
    """
    dst = Path(dst)
    with atomic_path(dst) as tmp:
        try:
            rasterio.shutil.copy(
                src,
                tmp,
                driver="COG",
                compress="deflate",
                predictor="yes",
                blocksize=COG_BLOCK,
                overview_resampling=resampling,
                bigtiff="if_safer",
            )
        except RasterioError as exc:
            raise KelpsegError(f"cannot write the COG ({exc})", dst) from exc
    return dst


class StripRasters:
    """The kelp mask (uint8, nodata 255) and optional probability (float32, nodata NaN).

    Args:
        mask_path: where the mask COG goes.
        prob_path: where the probability COG goes, or ``None``.
        height: scene rows.
        width: scene columns.
        crs: scene CRS.
        transform: scene transform.
        tags: metadata written into both files (scene name, date, threshold ...).
    """

    def __init__(
        self,
        mask_path: PathLike,
        prob_path: PathLike | None,
        *,
        height: int,
        width: int,
        crs: CRS,
        transform: Affine,
        tags: dict[str, str],
    ) -> None:
        self.mask_path = Path(mask_path)
        self.prob_path = Path(prob_path) if prob_path is not None else None
        self.mask_path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=".kelpseg-scene-", dir=self.mask_path.parent))
        base: dict[str, Any] = {
            "driver": "GTiff",
            "height": height,
            "width": width,
            "count": 1,
            "crs": crs,
            "transform": transform,
            "compress": "deflate",
        }
        self._mask = rasterio.open(
            self._tmp / "mask.tif", "w", dtype="uint8", nodata=MASK_NODATA, **base
        )
        self._mask.update_tags(**tags)
        self._mask.set_band_description(1, "kelp (1), not kelp (0), no data (255)")
        self._prob = None
        if self.prob_path is not None:
            self._prob = rasterio.open(
                self._tmp / "prob.tif", "w", dtype="float32", nodata=PROB_NODATA, **base
            )
            self._prob.update_tags(**tags)
            self._prob.set_band_description(1, "kelp probability")

    def write(self, row: int, mask: np.ndarray, prob: np.ndarray | None = None) -> None:
        """Write rows ``row .. row + len(mask)`` of the mask (and probability)."""
        window = Window(0, row, mask.shape[1], mask.shape[0])
        self._mask.write(mask.astype(np.uint8), 1, window=window)
        if self._prob is not None and prob is not None:
            self._prob.write(prob.astype(np.float32), 1, window=window)

    def finish(self) -> None:
        """Close the strips and write the COGs."""
        self._close()
        to_cog(self._tmp / "mask.tif", self.mask_path, resampling="nearest")
        if self.prob_path is not None:
            to_cog(self._tmp / "prob.tif", self.prob_path, resampling="average")

    def _close(self) -> None:
        for ds in (self._mask, self._prob):
            if ds is not None and not ds.closed:
                ds.close()

    def __enter__(self) -> StripRasters:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.finish()
        finally:
            self._close()
            shutil.rmtree(self._tmp, ignore_errors=True)
