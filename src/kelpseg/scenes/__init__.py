"""Kelp maps, areas and time series from full georeferenced Landsat scenes.

Builds on tile inference: any model with the :class:`TilePredictor` shape runs over a scene in
sliding windows. Reading, blending and writing happen window by window, so a 7,000 x 7,000
scene fits in a small memory budget. See docs/scenes.md.
"""

from kelpseg.scenes.area import Region, kelp_area, read_regions, row_pixel_areas
from kelpseg.scenes.bands import PRESETS, SceneFiles, locate_scene, parse_band_mapping
from kelpseg.scenes.config import SceneConfig
from kelpseg.scenes.predict import SceneResult, TilePredictor, predict_scene
from kelpseg.scenes.qa import QA_PIXEL_BITS, QaConfig, qa_band
from kelpseg.scenes.reader import LandsatScene, open_scene
from kelpseg.scenes.runner import SceneRun, run_scene
from kelpseg.scenes.scaling import SCALINGS, Scaling, to_tile_dn
from kelpseg.scenes.timeseries import area_timeseries, plot_timeseries, write_timeseries
from kelpseg.scenes.vector import kelp_polygons, write_polygons
from kelpseg.scenes.windows import BLENDS, WindowGrid

__all__ = [
    "BLENDS",
    "PRESETS",
    "QA_PIXEL_BITS",
    "SCALINGS",
    "LandsatScene",
    "QaConfig",
    "Region",
    "Scaling",
    "SceneConfig",
    "SceneFiles",
    "SceneResult",
    "SceneRun",
    "TilePredictor",
    "WindowGrid",
    "area_timeseries",
    "kelp_area",
    "kelp_polygons",
    "locate_scene",
    "open_scene",
    "parse_band_mapping",
    "plot_timeseries",
    "predict_scene",
    "qa_band",
    "read_regions",
    "row_pixel_areas",
    "run_scene",
    "to_tile_dn",
    "write_polygons",
    "write_timeseries",
]
