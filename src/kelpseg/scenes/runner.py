"""One scene, end to end: read, predict, polygonise, measure, and record what was done.

Beside the mask ``kelp.tif`` it writes ``kelp_area.csv`` (kelp area of the whole scene and of
each region), ``kelp_summary.json`` (scene, counts, areas, settings) and ``kelp_config.yaml``
(the resolved :class:`SceneConfig`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kelpseg.config import save_config
from kelpseg.errors import KelpsegError, MissingExtraError
from kelpseg.io.atomic import atomic_path
from kelpseg.scenes.area import Region, kelp_area, read_regions
from kelpseg.scenes.config import SceneConfig
from kelpseg.scenes.predict import SceneResult, TilePredictor, predict_scene
from kelpseg.scenes.reader import open_scene
from kelpseg.scenes.vector import has_fiona, write_polygons

PathLike = str | os.PathLike[str]
POLYGON_SUFFIXES = (".geojson", ".json", ".gpkg")


@dataclass(frozen=True)
class SceneRun:
    """Everything a scene run produced."""

    result: SceneResult
    scene: dict[str, Any]
    areas: pd.DataFrame
    polygons: Path | None
    area_path: Path
    summary_path: Path
    config_path: Path


def sidecar(mask_path: PathLike, what: str, suffix: str) -> Path:
    """``kelp.tif`` -> ``kelp_<what><suffix>`` beside it."""
    path = Path(mask_path)
    return path.with_name(f"{path.stem}_{what}{suffix}")


def _check_outputs(out_path: Path, polygons: Path | None) -> None:
    """Fail before a long run, not after it."""
    if out_path.suffix.lower() not in (".tif", ".tiff"):
        raise KelpsegError("the mask output must be a .tif file", out_path)
    if polygons is not None and polygons.suffix.lower() not in POLYGON_SUFFIXES:
        raise KelpsegError(f"polygon output must end in {', '.join(POLYGON_SUFFIXES)}", polygons)
    if polygons is not None and polygons.suffix.lower() == ".gpkg" and not has_fiona():
        raise MissingExtraError("scenes", "fiona")


def _write_summary(run: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(run, indent=2, default=str))


def run_scene(
    scene_path: PathLike,
    predictor: TilePredictor,
    out_path: PathLike,
    config: SceneConfig | None = None,
    *,
    polygons: PathLike | None = None,
    regions: PathLike | list[Region] | None = None,
    show_progress: bool = True,
) -> SceneRun:
    """Predict kelp on a scene and write the mask, polygons, areas and a summary.

    Args:
        scene_path: stacked GeoTIFF, folder of band files, or product-id prefix.
        predictor: the loaded model(s), any :class:`~kelpseg.scenes.predict.TilePredictor`.
        out_path: the mask COG to write (``.tif``).
        config: reading, blending and output settings (``config.models`` etc. are recorded,
            not loaded: the caller loads the predictor).
        polygons: write kelp polygons here (``.geojson``, RFC 7946 unless
            ``config.geojson_crs`` is ``scene``; or ``.gpkg`` in the scene's CRS).
        regions: GeoJSON file (or regions) to measure kelp area in, besides the whole scene.
        show_progress: draw progress bars.
    """
    config = config or SceneConfig()
    out = Path(out_path)
    polygon_path = Path(polygons) if polygons is not None else None
    _check_outputs(out, polygon_path)
    region_list = read_regions(regions) if isinstance(regions, str | os.PathLike) else regions
    with open_scene(
        scene_path,
        preset=config.preset,
        bands=config.bands or None,
        scaling=config.scaling,
        scale=config.scale,
        offset=config.offset,
        qa=config.qa,
        dem=config.dem,
    ) as scene:
        info = scene.describe()
        result = predict_scene(
            scene,
            predictor,
            out,
            overlap=config.overlap,
            blend=config.blend,
            batch_size=config.batch_size,
            write_prob=config.write_prob,
            threshold=config.threshold,
            nodata_on_qa=config.nodata_on_qa,
            show_progress=show_progress,
        )
    if polygon_path is not None:
        polygon_path = write_polygons(
            out,
            polygon_path,
            min_pixels=config.polygon_min_pixels,
            geojson_crs=config.geojson_crs,
        )
    areas = kelp_area(out, region_list)
    areas.insert(0, "date", info["date"])
    areas.insert(0, "scene", info["scene"])
    area_path = sidecar(out, "area", ".csv")
    with atomic_path(area_path) as tmp:
        areas.to_csv(tmp, index=False)
    summary = {
        "scene": info,
        "result": asdict(result),
        "polygons": polygon_path,
        "areas": areas.to_dict(orient="records"),
    }
    summary_path = sidecar(out, "summary", ".json")
    _write_summary(summary, summary_path)
    config_path = save_config(config, sidecar(out, "config", ".yaml"))
    return SceneRun(result, info, areas, polygon_path, area_path, summary_path, config_path)
