"""Kelp canopy area in hectares from a scene mask, for the whole scene and for user regions.

Pixel area comes from the mask's CRS: in a projected CRS it is the grid cell's area
``|a * e - b * d|`` in square metres (UTM cells are within 0.1% of the ground area); in a
geographic CRS it is the exact area of each row's cell on the CRS's ellipsoid, which shrinks
towards the poles. Regions are GeoJSON polygons in any CRS, reprojected onto the scene and
rasterised there (a pixel belongs to a region when its centre lies inside).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from kelpseg.errors import KelpsegError
from kelpseg.scenes.cog import MASK_NODATA

PathLike = str | os.PathLike[str]
WGS84 = (6378137.0, 298.257223563)  # semi-major axis (m), inverse flattening
WHOLE_SCENE = "whole scene"
STRIP_ROWS = 1024
_ELLIPSOID = re.compile(r'(?:SPHEROID|ELLIPSOID)\["[^"]*",\s*([\d.eE+-]+),\s*([\d.eE+-]+)')


def ellipsoid(crs: CRS) -> tuple[float, float]:
    """Semi-major axis and inverse flattening of a CRS's ellipsoid (WGS 84 if not stated)."""
    match = _ELLIPSOID.search(crs.to_wkt())
    return (float(match.group(1)), float(match.group(2))) if match else WGS84


def _authalic(phi: np.ndarray, e: float) -> np.ndarray:
    """The ellipsoid's area integral in latitude: area between two parallels is
    ``b**2 / 2 * dlon * (q(phi2) - q(phi1))``."""
    s = np.sin(phi)
    if e == 0:
        return 2 * s
    return s / (1 - (e * s) ** 2) + np.log((1 + e * s) / (1 - e * s)) / (2 * e)


def geodesic_cell_areas(
    lat_edges: np.ndarray, dlon_deg: float, a: float = WGS84[0], rf: float = WGS84[1]
) -> np.ndarray:
    """Areas (m^2) of cells between consecutive ``lat_edges`` (degrees), ``dlon_deg`` wide."""
    f = 1 / rf if rf else 0.0
    e = math.sqrt(f * (2 - f))
    b = a * (1 - f)
    q = _authalic(np.radians(np.asarray(lat_edges, dtype=np.float64)), e)
    return np.abs(np.diff(q)) * b**2 / 2 * math.radians(abs(dlon_deg))


def row_pixel_areas(transform: Affine, crs: CRS, rows: int, row_off: int = 0) -> np.ndarray:
    """Pixel area (m^2) of each of ``rows`` rows starting at ``row_off``.

    Raises:
        KelpsegError: no CRS, or a rotated grid in a geographic CRS.
    """
    if crs is None:
        raise KelpsegError("the raster has no CRS, so its pixel area is unknown")
    if crs.is_geographic:
        if transform.b != 0 or transform.d != 0:
            raise KelpsegError("rotated grids in a geographic CRS are not supported")
        edges = transform.f + transform.e * np.arange(row_off, row_off + rows + 1)
        return geodesic_cell_areas(np.clip(edges, -90, 90), transform.a, *ellipsoid(crs))
    metres = crs.linear_units_factor[1]
    area = abs(transform.a * transform.e - transform.b * transform.d) * metres**2
    return np.full(rows, area, dtype=np.float64)


@dataclass(frozen=True)
class Region:
    """A named area of interest: a GeoJSON geometry and the CRS its coordinates are in."""

    name: str
    geometry: dict[str, Any]
    crs: str = "EPSG:4326"


def read_regions(path: PathLike) -> list[Region]:
    """Regions from a GeoJSON file (FeatureCollection, Feature or bare geometry).

    Names come from the ``name``, ``region`` or ``id`` property (else ``region_<n>``);
    coordinates are lon/lat (RFC 7946) unless a legacy ``crs`` member says otherwise.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KelpsegError(f"not a readable GeoJSON file ({exc})", path) from exc
    crs = (data.get("crs") or {}).get("properties", {}).get("name", "EPSG:4326")
    features = data.get("features") if data.get("type") == "FeatureCollection" else [data]
    regions = []
    for n, feature in enumerate(features or []):
        geometry = feature.get("geometry") if feature.get("type") == "Feature" else feature
        if not geometry or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise KelpsegError(f"feature {n} is not a Polygon or MultiPolygon", path)
        props = feature.get("properties") or {}
        name = props.get("name", props.get("region", feature.get("id", props.get("id"))))
        regions.append(Region(str(name if name is not None else f"region_{n}"), geometry, crs))
    if not regions:
        raise KelpsegError("holds no polygons", path)
    if len({r.name for r in regions}) < len(regions):
        raise KelpsegError("region names must be unique", path)
    return regions


def region_geometry(region: Region, crs: CRS) -> dict[str, Any]:
    """The region's geometry in ``crs``."""
    try:
        return dict(transform_geom(region.crs, crs, region.geometry))
    except (RasterioError, ValueError) as exc:
        raise KelpsegError(f"cannot reproject region {region.name!r} ({exc})") from exc


def _tally(row: dict[str, float], inside: np.ndarray, mask: np.ndarray, areas: np.ndarray) -> None:
    """Add a strip's pixels (rows weighted by their area) to a row of the area table."""
    kelp = ((mask == 1) & inside).sum(axis=1)
    seen = ((mask != MASK_NODATA) & inside).sum(axis=1)
    row["kelp_pixels"] += int(kelp.sum())
    row["kelp_ha"] += float(kelp @ areas) / 1e4
    row["observed_ha"] += float(seen @ areas) / 1e4
    row["region_ha"] += float(inside.sum(axis=1) @ areas) / 1e4


def kelp_area(mask_path: PathLike, regions: list[Region] | None = None) -> pd.DataFrame:
    """Kelp area of a scene mask (1 kelp, 0 not, 255 no data), whole and per region.

    Returns:
        One row per region (first ``whole scene``): ``region``, ``kelp_pixels``, ``kelp_ha``,
        ``observed_ha`` (area with data, where kelp could be seen) and ``region_ha`` (the
        region's area on the scene grid). Read in strips, so any scene size fits in memory.
    """
    path = Path(mask_path)
    names = [WHOLE_SCENE, *(r.name for r in regions or [])]
    table = {
        n: dict.fromkeys(("kelp_pixels", "kelp_ha", "observed_ha", "region_ha"), 0.0) for n in names
    }
    try:
        src = rasterio.open(path)
    except RasterioError as exc:
        raise KelpsegError(f"not a readable mask raster ({exc})", path) from exc
    with src:
        if src.count != 1 or src.dtypes[0] != "uint8":
            raise KelpsegError("not a scene mask (expected one uint8 band: 0, 1, 255)", path)
        shapes = [region_geometry(r, src.crs) for r in regions or []]
        for row_off in range(0, src.height, STRIP_ROWS):
            window = Window(0, row_off, src.width, min(STRIP_ROWS, src.height - row_off))
            mask = src.read(1, window=window)
            areas = row_pixel_areas(src.transform, src.crs, mask.shape[0], row_off)
            _tally(table[WHOLE_SCENE], np.ones(mask.shape, bool), mask, areas)
            strip_transform = window_transform(window, src.transform)
            for name, shape in zip(names[1:], shapes, strict=True):
                inside = (
                    rasterize(
                        [(shape, 1)],
                        out_shape=mask.shape,
                        transform=strip_transform,
                        fill=0,
                        dtype="uint8",
                    )
                    == 1
                )
                _tally(table[name], inside, mask, areas)
    frame = pd.DataFrame([{"region": n, **v} for n, v in table.items()])
    return frame.astype({"kelp_pixels": "int64"})
