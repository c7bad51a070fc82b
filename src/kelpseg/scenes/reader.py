"""A georeferenced Landsat scene read window by window as tile-ordered int16 bands.

``scene.read(window)`` returns what a Kelp Wanted tile holds for those pixels: a (7, h, w)
int16 array SWIR1, NIR, R, G, B, QA, DEM with -32768 for missing data, so any tile model
applies. Only the window is read, never the whole scene.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import BAND_NAMES, MISSING, SPECTRAL_BANDS
from kelpseg.scenes.bands import BandSource, SceneFiles, acquisition_date, locate_scene, read_mtl
from kelpseg.scenes.dem import DemReader, missing_dem
from kelpseg.scenes.qa import QaConfig, fill_pixels, qa_band
from kelpseg.scenes.scaling import Scaling, mtl_scaling, resolve_scaling, to_tile_dn

PathLike = str | os.PathLike[str]


class LandsatScene:
    """An open scene: its grid, per-band scaling, QA rules and optional DEM.

    Use :func:`open_scene` to build one; close it with :meth:`close` or a ``with`` block.

    Attributes:
        files: where each input lives.
        height, width: scene size in pixels.
        crs, transform: the scene grid (from the first spectral band).
        nodata: the spectral bands' nodata value as stored (``None`` if unset).
        scalings: the scaling used per tile band meaning.
        date: acquisition date from the MTL or product id (``None`` if unknown).
        has_dem: whether a DEM raster was given.
    """

    def __init__(
        self,
        files: SceneFiles,
        *,
        scaling: str = "auto",
        scale: float | None = None,
        offset: float | None = None,
        qa: QaConfig | None = None,
        dem: PathLike | None = None,
    ) -> None:
        self.files = files
        self.qa = qa or QaConfig()
        self._datasets: dict[Path, Any] = {}
        self._dem: DemReader | None = None
        try:
            self._open_all()
            mtl = read_mtl(files.mtl) if files.mtl else {}
            self.scalings = {
                name: resolve_scaling(
                    scaling,
                    self._dataset(src).dtypes[src.index - 1],
                    scale=scale,
                    offset=offset,
                    mtl=mtl_scaling(mtl, files.band_numbers[name]),
                )
                for name, src in files.spectral.items()
            }
            date_text = mtl.get("IMAGE_ATTRIBUTES.DATE_ACQUIRED")
            self.date = dt.date.fromisoformat(date_text) if date_text else None
            self.date = self.date or acquisition_date(files.name)
            self._dem = DemReader(dem) if dem is not None else None
        except BaseException:
            self.close()
            raise

    def _open_all(self) -> None:
        sources = [*self.files.spectral.values(), self.files.qa_pixel, self.files.qa_radsat]
        for src in filter(None, sources):
            if src.path not in self._datasets:
                try:
                    self._datasets[src.path] = rasterio.open(src.path)
                except RasterioError as exc:
                    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise KelpsegError(f"not a readable raster ({text})", src.path) from exc
        first = self._dataset(self.files.spectral[SPECTRAL_BANDS[0]])
        self.height, self.width = int(first.height), int(first.width)
        self.crs: CRS = first.crs
        self.transform: Affine = first.transform
        self.nodata: float | None = first.nodatavals[self.files.spectral["SWIR1"].index - 1]
        if self.crs is None:
            raise KelpsegError("scene has no CRS (not georeferenced)", first.name)
        for path, ds in self._datasets.items():
            if (ds.height, ds.width) != (self.height, self.width) or ds.crs != self.crs:
                raise KelpsegError("band does not share the scene's size and CRS", path)
            if not ds.transform.almost_equals(self.transform):
                raise KelpsegError("band does not share the scene's grid (transform)", path)

    def _dataset(self, src: BandSource) -> Any:
        return self._datasets[src.path]

    @property
    def name(self) -> str:
        """The scene's product id or file stem."""
        return self.files.name

    @property
    def has_dem(self) -> bool:
        """Whether a DEM raster was given."""
        return self._dem is not None

    def _read(self, src: BandSource, window: Window) -> np.ndarray:
        try:
            return self._dataset(src).read(src.index, window=window)
        except RasterioError as exc:
            raise KelpsegError(f"cannot read band {src.index} ({exc})", src.path) from exc

    def read(self, window: Window) -> np.ndarray:
        """The window as a (7, h, w) int16 array in tile band order (see module docstring)."""
        h, w = int(window.height), int(window.width)
        out = np.empty((len(BAND_NAMES), h, w), dtype=np.int16)
        for i, name in enumerate(SPECTRAL_BANDS):
            src = self.files.spectral[name]
            nodata = self._dataset(src).nodatavals[src.index - 1]
            out[i] = to_tile_dn(self._read(src, window), self.scalings[name], nodata)
        qa_pixel = self._read(self.files.qa_pixel, window) if self.files.qa_pixel else None
        if qa_pixel is not None:
            out[: len(SPECTRAL_BANDS), fill_pixels(qa_pixel)] = MISSING
        radsat = self._read(self.files.qa_radsat, window) if self.files.qa_radsat else None
        out[5] = qa_band(
            np.any(out[: len(SPECTRAL_BANDS)] == MISSING, axis=0),
            self.qa,
            qa_pixel=qa_pixel,
            qa_radsat=radsat,
            band_numbers=list(self.files.band_numbers.values()),
        )
        if self._dem is None:
            out[6] = missing_dem((h, w))
        else:
            out[6] = self._dem.read((h, w), window_transform(window, self.transform), self.crs)
        return out

    def describe(self) -> dict[str, Any]:
        """What was opened, for logs and the run summary."""
        return {
            "scene": self.name,
            "size": [self.height, self.width],
            "crs": self.crs.to_string(),
            "date": self.date.isoformat() if self.date else None,
            "preset": self.files.preset,
            "bands": {k: f"{v.path.name}:{v.index}" for k, v in self.files.spectral.items()},
            "qa_pixel": str(self.files.qa_pixel.path.name) if self.files.qa_pixel else None,
            "scaling": {k: _scaling_text(v) for k, v in self.scalings.items()},
            "dem": str(self._dem.path) if self._dem else None,
        }

    def close(self) -> None:
        """Close every open raster."""
        for ds in self._datasets.values():
            ds.close()
        self._datasets.clear()
        if self._dem is not None:
            self._dem.close()

    def __enter__(self) -> LandsatScene:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _scaling_text(scaling: Scaling) -> str:
    return f"{scaling.name} ({scaling.scale:g} x + {scaling.offset:g})"


def open_scene(
    path: PathLike,
    *,
    preset: str | None = None,
    bands: dict[str, int] | None = None,
    scaling: str = "auto",
    scale: float | None = None,
    offset: float | None = None,
    qa: QaConfig | None = None,
    dem: PathLike | None = None,
) -> LandsatScene:
    """Open a stacked GeoTIFF or a folder of Collection 2 Level-2 band files as a scene.

    Args:
        path: stacked GeoTIFF, folder of ``*_SR_B<n>.TIF`` files, or a product-id prefix.
        preset: ``landsat57`` or ``landsat89`` (detected from the MTL or file name if omitted).
        bands: explicit band numbers per meaning (``{"SWIR1": 6, ...}``), over the preset.
        scaling: ``auto``, ``c2l2``, ``reflectance``, ``x10000`` or ``custom``.
        scale: multiplier of a ``custom`` scaling (reflectance = value * scale + offset).
        offset: offset of a ``custom`` scaling.
        qa: which QA bits count as bad.
        dem: elevation raster in any CRS covering the scene; ``None`` for no DEM.
    """
    files = locate_scene(path, preset=preset, bands=bands)
    return LandsatScene(files, scaling=scaling, scale=scale, offset=offset, qa=qa, dem=dem)
