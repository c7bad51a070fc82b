"""Kelp beds as polygons: GeoJSON (RFC 7946 by default) or GeoPackage (the ``scenes`` extra).

Each 4-connected group of kelp pixels becomes one polygon (with holes where it surrounds
non-kelp), traced along pixel edges by ``rasterio.features.shapes``, so rasterising the
polygons back onto the grid gives the mask exactly. Properties: ``id``, ``pixels``,
``area_ha`` (from the CRS, as in :mod:`kelpseg.scenes.area`).

GeoJSON follows RFC 7946 unless asked otherwise: lon/lat on WGS 84 and no ``crs`` member.
``geojson_crs="scene"`` keeps the scene's CRS and adds the legacy (pre-RFC, non-standard)
``crs`` member that GDAL and QGIS still read. A GeoPackage stores its CRS itself, so it keeps
the scene's CRS; writing one needs ``fiona`` (``pip install 'kelpseg[scenes]'``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.features import shapes
from rasterio.warp import transform_geom
from scipy import ndimage

from kelpseg.errors import KelpsegError, MissingExtraError
from kelpseg.io.atomic import atomic_path
from kelpseg.scenes.area import row_pixel_areas

PathLike = str | os.PathLike[str]
POLYGON_CRS = ("scene", "wgs84")
GEOPACKAGE_LAYER = "kelp"
_FOUR = ndimage.generate_binary_structure(2, 1)


def kelp_polygons(
    mask_path: PathLike, *, min_pixels: int = 1, crs: str = "scene"
) -> tuple[list[dict[str, Any]], CRS]:
    """GeoJSON features of the kelp beds (mask value 1) of a scene mask.

    Args:
        mask_path: a scene mask (1 kelp, 0 not, 255 no data).
        min_pixels: drop beds smaller than this.
        crs: ``scene`` keeps the mask's CRS; ``wgs84`` gives lon/lat (RFC 7946).

    Returns:
        The features and the CRS of their coordinates.
    """
    if crs not in POLYGON_CRS:
        raise KelpsegError(f"polygon CRS must be one of {', '.join(POLYGON_CRS)}, got {crs!r}")
    try:
        with rasterio.open(mask_path) as src:
            kelp = src.read(1) == 1
            transform, src_crs = src.transform, src.crs
    except RasterioError as exc:
        raise KelpsegError(f"not a readable mask raster ({exc})", mask_path) from exc
    labels, n = ndimage.label(kelp, structure=_FOUR)
    pixels = np.bincount(labels.ravel(), minlength=n + 1)
    row_area = row_pixel_areas(transform, src_crs, kelp.shape[0])
    area = np.bincount(labels.ravel(), weights=np.repeat(row_area, kelp.shape[1]), minlength=n + 1)
    out_crs = CRS.from_epsg(4326) if crs == "wgs84" else src_crs
    features = []
    for geometry, value in shapes(
        labels.astype(np.int32), mask=kelp, connectivity=4, transform=transform
    ):
        k = int(value)
        if pixels[k] < min_pixels:
            continue
        if crs == "wgs84":
            geometry = transform_geom(src_crs, out_crs, geometry)
        features.append(
            {
                "type": "Feature",
                "id": k,
                "properties": {"id": k, "pixels": int(pixels[k]), "area_ha": float(area[k]) / 1e4},
                "geometry": dict(geometry),
            }
        )
    return features, out_crs


def _crs_member(crs: CRS) -> dict[str, Any] | None:
    """The legacy GeoJSON ``crs`` member for coordinates that are not lon/lat (not RFC 7946)."""
    epsg = crs.to_epsg()
    if epsg == 4326:
        return None
    name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else crs.to_wkt()
    return {"type": "name", "properties": {"name": name}}


def write_geojson(features: list[dict[str, Any]], crs: CRS, path: PathLike) -> Path:
    """Write features as a GeoJSON FeatureCollection (atomically).

    Coordinates in any CRS but WGS 84 get the legacy ``crs`` member naming it.
    """
    collection: dict[str, Any] = {"type": "FeatureCollection"}
    member = _crs_member(crs)
    if member is not None:
        collection["crs"] = member
    collection["features"] = features
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(collection))
    return Path(path)


def write_geopackage(features: list[dict[str, Any]], crs: CRS, path: PathLike) -> Path:
    """Write features to a GeoPackage layer ``kelp`` with fiona (atomically).

    Raises:
        MissingExtraError: ``fiona`` (the ``scenes`` extra) is not installed.
    """
    if not has_fiona():
        raise MissingExtraError("scenes", "fiona")
    import fiona

    schema = {
        "geometry": "Polygon",
        "properties": {"id": "int", "pixels": "int", "area_ha": "float"},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # GDAL's GPKG driver wants the .gpkg name, so write in a temporary folder, then rename.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".kelpseg-") as folder:
        tmp = Path(folder) / path.name
        with fiona.open(
            tmp, "w", driver="GPKG", layer=GEOPACKAGE_LAYER, schema=schema, crs=crs.to_wkt()
        ) as dst:
            dst.writerecords(features)
        tmp.replace(path)
    return path


def has_fiona() -> bool:
    """Whether ``fiona`` (the ``scenes`` extra, needed for GeoPackage) is installed."""
    return importlib.util.find_spec("fiona") is not None


def write_polygons(
    mask_path: PathLike,
    out_path: PathLike,
    *,
    min_pixels: int = 1,
    geojson_crs: str = "wgs84",
) -> Path:
    """Polygonise a scene mask into ``out_path`` (``.geojson``/``.json`` or ``.gpkg``).

    Args:
        mask_path: a scene mask (1 kelp, 0 not, 255 no data).
        out_path: the file to write; its suffix picks the format.
        min_pixels: drop beds smaller than this.
        geojson_crs: ``wgs84`` (RFC 7946 lon/lat) or ``scene`` (the mask's CRS, with the legacy
            ``crs`` member). A GeoPackage always keeps the scene's CRS, which it records.

    Raises:
        MissingExtraError: a ``.gpkg`` without ``fiona`` (nothing is written).
    """
    out = Path(out_path)
    suffix = out.suffix.lower()
    if suffix == ".gpkg":
        if not has_fiona():
            raise MissingExtraError("scenes", "fiona")
        features, out_crs = kelp_polygons(mask_path, min_pixels=min_pixels, crs="scene")
        return write_geopackage(features, out_crs, out)
    if suffix not in (".geojson", ".json"):
        raise KelpsegError("polygon output must end in .geojson, .json or .gpkg", out)
    features, out_crs = kelp_polygons(mask_path, min_pixels=min_pixels, crs=geojson_crs)
    return write_geojson(features, out_crs, out)
