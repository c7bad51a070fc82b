"""Scenes, end to end: read, predict, polygonise, measure, and record what was done.

Beside the mask ``kelp.tif`` it writes ``kelp_area.csv`` (kelp area of the whole scene and of
each region), ``kelp_summary.json`` (scene, counts, areas, settings) and ``kelp_config.yaml``
(the resolved :class:`SceneConfig`). :func:`run_scenes` does so for several scenes with one
loaded model, each into its own folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kelpseg.config import save_config
from kelpseg.errors import KelpsegError, MissingExtraError
from kelpseg.io.atomic import atomic_path
from kelpseg.scenes.area import Region, kelp_area, read_regions
from kelpseg.scenes.bands import band_file_prefixes, locate_scene
from kelpseg.scenes.config import SceneConfig
from kelpseg.scenes.predict import SceneResult, TilePredictor, predict_scene
from kelpseg.scenes.reader import open_scene
from kelpseg.scenes.vector import has_fiona, write_polygons

PathLike = str | os.PathLike[str]
POLYGON_SUFFIXES = (".geojson", ".json", ".gpkg")
#: The mask of each scene of a several-scene run: ``<out>/<scene name>/kelp.tif``.
MASK_NAME = "kelp.tif"


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
            ignore_encoding=config.ignore_encoding,
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


def list_scenes(paths: Sequence[PathLike], config: SceneConfig | None = None) -> list[Path]:
    """The scenes named by ``paths``: scenes themselves, or folders holding several.

    A path that is a scene (stacked GeoTIFF, folder of one scene's band files, product-id
    prefix) stays as it is; a folder that is not one scene stands for the scenes in it: each
    product id of its ``*_SR_B<n>.TIF`` files (as a prefix) and each sub-folder holding a scene.

    Raises:
        KelpsegError: a path that is neither, or a folder with no scene in it.
    """
    config = config or SceneConfig()
    options: dict[str, Any] = {"preset": config.preset, "bands": config.bands or None}
    found: list[Path] = []
    for path in map(Path, paths):
        try:
            locate_scene(path, **options)
        except KelpsegError:
            if not path.is_dir():
                raise
            inner = [path / prefix for prefix in band_file_prefixes(path)]
            inner += [sub for sub in sorted(path.iterdir()) if sub.is_dir() and _is_scene(sub)]
            if not inner:
                raise KelpsegError("no scene found in the folder", path) from None
            found.extend(inner)
        else:
            found.append(path)
    return found


def _is_scene(path: Path) -> bool:
    try:
        locate_scene(path)
    except KelpsegError:
        return False
    return True


def scene_name(path: PathLike) -> str:
    """A scene's name for its output folder: the product id, folder name or file stem."""
    path = Path(path)
    return path.stem if path.is_file() else path.name


def run_scenes(
    scenes: Sequence[PathLike],
    predictor: TilePredictor,
    out_dir: PathLike,
    config: SceneConfig | None = None,
    *,
    polygons: str | None = None,
    regions: PathLike | list[Region] | None = None,
    show_progress: bool = True,
) -> list[SceneRun]:
    """:func:`run_scene` over several scenes with one loaded model: ``<out>/<name>/kelp.tif``.

    Args:
        scenes: the scenes (see :func:`list_scenes`).
        predictor: the loaded model(s), loaded once for every scene.
        out_dir: the folder of per-scene output folders.
        config: as for :func:`run_scene`.
        polygons: file name of each scene's polygons in its folder (``kelp.geojson``).
        regions: as for :func:`run_scene`.
        show_progress: draw progress bars.

    Raises:
        KelpsegError: two scenes of one name, or what :func:`run_scene` raises.
    """
    names = [scene_name(s) for s in scenes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise KelpsegError(f"two scenes are named {repeated[0]}: outputs would collide")
    region_list = read_regions(regions) if isinstance(regions, str | os.PathLike) else regions
    runs = []
    for scene, name in zip(scenes, names, strict=True):
        folder = Path(out_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
        runs.append(
            run_scene(
                scene,
                predictor,
                folder / MASK_NAME,
                config,
                polygons=folder / polygons if polygons else None,
                regions=region_list,
                show_progress=show_progress,
            )
        )
    return runs
