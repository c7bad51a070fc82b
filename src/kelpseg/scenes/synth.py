"""Generated georeferenced scenes: synthetic AOIs mosaicked onto a real UTM grid near the Falklands.

Each cell of the mosaic is one AOI image from :mod:`kelpseg.synth` (terrain, kelp, clouds,
sensor faults). The scene is written as Landsat Collection 2 Level-2 files would be: per-band
``<product_id>_SR_B<n>.TIF`` (uint16, 0 = fill) with ``_QA_PIXEL.TIF``, ``_QA_RADSAT.TIF`` and
``_MTL.txt``, and/or one stacked GeoTIFF with described bands; the DEM goes to its own raster.
``SyntheticScene.raw`` holds what reading the scene must give back, in tile band order.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import array_bounds
from rasterio.warp import Resampling, calculate_default_transform, reproject

from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.tiles import MISSING, SPECTRAL_BANDS
from kelpseg.scenes.bands import PRESETS
from kelpseg.scenes.qa import QA_PIXEL_BITS
from kelpseg.scenes.scaling import reflectance_to_tile_dn
from kelpseg.synth import SynthConfig
from kelpseg.synth.kelp import kelp_density
from kelpseg.synth.plan import TilePlan
from kelpseg.synth.scene import dn_to_reflectance, draw_cover, render_scene
from kelpseg.synth.terrain import make_terrain

PathLike = str | os.PathLike[str]
#: WGS 84 / UTM zone 21S; the default origin lies just west of the Falkland Islands.
SCENE_CRS = "EPSG:32721"
ORIGIN = (380_000.0, 4_300_000.0)
PIXEL_SIZE = 30.0
#: Preset -> product-id mission, synth platform, default acquisition date.
MISSIONS = {
    "landsat89": ("LC08", "L8", dt.date(2023, 1, 15)),
    "landsat57": ("LT05", "L5", dt.date(2009, 1, 15)),
}
_CLEAR, _WATER, _CLOUD_CONF_HIGH = 1 << 6, 1 << 7, 3 << 8


@dataclass(frozen=True)
class SyntheticScene:
    """A generated scene on disk and what reading it must give.

    Attributes:
        raw: (7, H, W) int16 in tile band order, DEM included: the scene as tiles would hold it.
        truth: (H, W) bool visible kelp (not under flagged cloud or missing data).
        product_id: the Landsat-style product id (acquisition date inside).
        preset: ``landsat57`` or ``landsat89``.
        date: acquisition date.
        crs, transform: the scene grid.
        stack_path: the stacked GeoTIFF, if written.
        band_prefix: ``<folder>/<product_id>``, the prefix of the band files, if written.
        dem_path: the DEM raster.
    """

    raw: np.ndarray
    truth: np.ndarray
    product_id: str
    preset: str
    date: dt.date
    crs: CRS
    transform: Affine
    stack_path: Path | None
    band_prefix: Path | None
    dem_path: Path


def mosaic_aois(
    grid: tuple[int, int], config: SynthConfig, platform: str, date: dt.date, slc_off: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Render ``rows x cols`` AOI images of ``config.tile_size`` into one (7, H, W) mosaic."""
    size = config.tile_size
    raw = np.empty((7, grid[0] * size, grid[1] * size), dtype=np.int16)
    truth = np.zeros(raw.shape[1:], dtype=bool)
    for aoi in range(grid[0] * grid[1]):
        terrain = make_terrain(
            np.random.default_rng([config.seed, 101, aoi]),
            size,
            config.open_water_aoi_share,
            config.mostly_land_aoi_share,
            config.kelp_aoi_share,
        )
        # Coasts stay put across dates; kelp extent, clouds and noise change with the date.
        rng = np.random.default_rng([config.seed, 102, aoi, date.toordinal()])
        kelp = kelp_density(rng, terrain, config.kelp_absent_date_share, config.kelp_abundance)
        cover = draw_cover(
            rng, config.cloud_free_share, config.mostly_cloudy_share, config.cloud_cover_max
        )
        plan = TilePlan(f"S{aoi:04d}", aoi, 0, "test", date, platform, slc_off, (0, 0))
        scene = render_scene(rng, terrain, kelp, plan, cover, rng.random() < 0.2)
        r, c = divmod(aoi, grid[1])
        cells = np.s_[r * size : (r + 1) * size, c * size : (c + 1) * size]
        raw[(slice(None), *cells)] = scene.data
        truth[cells] = (kelp > 0) & ~scene.cloud & ~scene.missing
    return raw, truth


def outside_footprint(shape: tuple[int, int], share: float = 0.25) -> np.ndarray:
    """Triangular corners outside a tilted acquisition footprint, as in real scenes."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    u, v = rows / shape[0], cols / shape[1]
    return (u + v < share) | ((1 - u) + (1 - v) < share)


def encode_qa(raw: np.ndarray, cloud: np.ndarray, preset: str) -> tuple[np.ndarray, np.ndarray]:
    """QA_PIXEL and QA_RADSAT (uint16) that decode back to the tiles' QA band.

    Pixels missing in every band are fill; missing in some bands, saturated in those bands;
    other QA pixels are cloud (with its dilation bit and high confidence).
    """
    missing = raw[:5] == MISSING
    fill = missing.all(axis=0)
    qa = np.where(raw[6] > 0, _CLEAR, _CLEAR | _WATER).astype(np.uint16)
    cloudy = cloud & ~fill
    qa[cloudy] = (1 << QA_PIXEL_BITS["cloud"]) | (1 << QA_PIXEL_BITS["dilated_cloud"])
    qa[cloudy] |= _CLOUD_CONF_HIGH
    qa[fill] = 1 << QA_PIXEL_BITS["fill"]
    radsat = np.zeros(qa.shape, dtype=np.uint16)
    partly = missing & ~fill[None]
    for i, name in enumerate(SPECTRAL_BANDS):
        radsat[partly[i]] |= 1 << (PRESETS[preset][name] - 1)
    return qa, radsat


def _extra_bands(raw: np.ndarray, preset: str) -> dict[int, np.ndarray]:
    """SR bands the model does not read (coastal, SWIR2), plausible and with the same gaps."""
    swir1 = dn_to_reflectance(raw[0])
    swir2 = reflectance_to_tile_dn(0.6 * swir1)
    extra = {7: swir2}
    if preset == "landsat89":
        extra[1] = raw[4]  # coastal aerosol, close to blue
    return extra


def sr_bands(raw: np.ndarray, preset: str) -> dict[int, np.ndarray]:
    """Landsat band number -> uint16 Collection 2 SR values (0 = fill)."""
    bands = {PRESETS[preset][name]: raw[i] for i, name in enumerate(SPECTRAL_BANDS)}
    bands |= _extra_bands(raw, preset)
    return {n: np.where(a == MISSING, 0, a).astype(np.uint16) for n, a in sorted(bands.items())}


def _write_raster(
    path: Path, arrays: list[np.ndarray], names: list[str], **profile: object
) -> None:
    h, w = arrays[0].shape
    with (
        atomic_path(path) as tmp,
        rasterio.open(
            tmp,
            "w",
            driver="GTiff",
            height=h,
            width=w,
            count=len(arrays),
            dtype=arrays[0].dtype.name,
            compress="deflate",
            tiled=True,
            **profile,
        ) as dst,
    ):
        for i, (array, name) in enumerate(zip(arrays, names, strict=True), start=1):
            dst.write(array, i)
            dst.set_band_description(i, name)


def write_mtl(path: Path, product_id: str, date: dt.date, preset: str) -> None:
    """A minimal Collection 2 Level-2 MTL: spacecraft, date, both reflectance scalings."""
    spacecraft = {"landsat89": "LANDSAT_8", "landsat57": "LANDSAT_5"}[preset]
    numbers = sorted(sr_bands(np.zeros((7, 1, 1), np.int16), preset))
    lines = ["GROUP = LANDSAT_METADATA_FILE", "  GROUP = PRODUCT_CONTENTS"]
    lines += [f'    LANDSAT_PRODUCT_ID = "{product_id}"', "  END_GROUP = PRODUCT_CONTENTS"]
    lines += ["  GROUP = IMAGE_ATTRIBUTES", f'    SPACECRAFT_ID = "{spacecraft}"']
    lines += [f"    DATE_ACQUIRED = {date.isoformat()}", "  END_GROUP = IMAGE_ATTRIBUTES"]
    lines += ["  GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"]
    for n in numbers:
        lines += [
            f"    REFLECTANCE_MULT_BAND_{n} = 2.75E-05",
            f"    REFLECTANCE_ADD_BAND_{n} = -0.2",
        ]
    lines += ["  END_GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"]
    # Level-1 top-of-atmosphere values sit in the same file and must not be used for SR.
    lines += ["  GROUP = LEVEL1_RADIOMETRIC_RESCALING"]
    for n in numbers:
        lines += [
            f"    REFLECTANCE_MULT_BAND_{n} = 2.0000E-05",
            f"    REFLECTANCE_ADD_BAND_{n} = -0.1",
        ]
    lines += [
        "  END_GROUP = LEVEL1_RADIOMETRIC_RESCALING",
        "END_GROUP = LANDSAT_METADATA_FILE",
        "END",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def write_dem(
    path: Path, dem: np.ndarray, crs: CRS, transform: Affine, dst_crs: str | None
) -> None:
    """The DEM on the scene grid, or (``dst_crs``) reprojected to another CRS as users have it."""
    profile = {"crs": crs, "transform": transform, "nodata": MISSING}
    if dst_crs is None:
        _write_raster(path, [dem], ["elevation"], **profile)
        return
    h, w = dem.shape
    bounds = array_bounds(h, w, transform)  # west, south, east, north
    dst_t, dw, dh = calculate_default_transform(crs, dst_crs, w, h, *bounds)
    out = np.full((dh, dw), MISSING, dtype=np.int16)
    reproject(
        dem,
        out,
        src_transform=transform,
        src_crs=crs,
        src_nodata=MISSING,
        dst_transform=dst_t,
        dst_crs=dst_crs,
        dst_nodata=MISSING,
        resampling=Resampling.nearest,
    )
    _write_raster(
        path,
        [out],
        ["elevation"],
        crs=CRS.from_user_input(dst_crs),
        transform=dst_t,
        nodata=MISSING,
    )


def write_synthetic_scene(
    out_dir: PathLike,
    *,
    preset: str = "landsat89",
    grid: tuple[int, int] = (2, 3),
    tile_size: int = 350,
    seed: int = 0,
    date: dt.date | None = None,
    stack: bool = True,
    band_files: bool = True,
    dem_crs: str | None = None,
    footprint: bool = True,
    config: SynthConfig | None = None,
) -> SyntheticScene:
    """Generate a georeferenced scene and write it as Landsat Level-2 files.

    Args:
        out_dir: folder for the files (band files, ``<product_id>_stack.tif``, ``dem.tif``).
        preset: ``landsat89`` (Landsat 8 band numbers) or ``landsat57`` (Landsat 5).
        grid: AOIs down and across; the scene is ``grid * tile_size`` pixels.
        tile_size: pixels per AOI image.
        seed: fixes every pixel.
        date: acquisition date (in the product id and MTL); default one in the mission's life.
        stack: write one stacked GeoTIFF with bands described ``SR_B<n>`` and ``QA_PIXEL``.
        band_files: write per-band files, QA rasters and the MTL.
        dem_crs: write the DEM in this CRS (e.g. ``EPSG:4326``) instead of on the scene grid.
        footprint: leave the corners outside the acquisition footprint (fill), as real scenes do.
        config: generator settings (default: kelp along every shore, more land than tiles).
    """
    if preset not in MISSIONS:
        raise KelpsegError(f"unknown preset {preset!r}; choose one of {', '.join(MISSIONS)}")
    mission, platform, default_date = MISSIONS[preset]
    date = date or default_date
    config = config or SynthConfig(
        seed=seed,
        tile_size=tile_size,
        kelp_aoi_share=1.0,
        kelp_absent_date_share=0.0,
        mostly_land_aoi_share=0.3,  # real scenes hold inland areas that need no prediction
    )
    raw, truth = mosaic_aois(grid, config, platform, date, slc_off=False)
    cloud = (raw[5] > 0) & ~(raw[:5] == MISSING).any(axis=0)
    if footprint:
        outside = outside_footprint(raw.shape[1:])
        raw[:5, outside] = MISSING
        raw[5, outside] = 1
        truth &= ~outside
    product_id = f"{mission}_L2SP_217096_{date:%Y%m%d}_{date:%Y%m%d}_02_T1"
    transform = Affine(PIXEL_SIZE, 0.0, ORIGIN[0], 0.0, -PIXEL_SIZE, ORIGIN[1])
    crs = CRS.from_user_input(SCENE_CRS)
    out = Path(out_dir)
    profile = {"crs": crs, "transform": transform}
    qa_pixel, radsat = encode_qa(raw, cloud, preset)
    sr = sr_bands(raw, preset)
    stack_path = out / f"{product_id}_stack.tif" if stack else None
    if stack_path is not None:
        names = [f"SR_B{n}" for n in sr] + ["QA_PIXEL"]
        _write_raster(stack_path, [*sr.values(), qa_pixel], names, **profile)
    if band_files:
        for n, band in sr.items():
            _write_raster(out / f"{product_id}_SR_B{n}.TIF", [band], [f"SR_B{n}"], **profile)
        _write_raster(out / f"{product_id}_QA_PIXEL.TIF", [qa_pixel], ["QA_PIXEL"], **profile)
        _write_raster(out / f"{product_id}_QA_RADSAT.TIF", [radsat], ["QA_RADSAT"], **profile)
        write_mtl(out / f"{product_id}_MTL.txt", product_id, date, preset)
    dem_path = out / "dem.tif"
    write_dem(dem_path, raw[6], crs, transform, dem_crs)
    return SyntheticScene(
        raw,
        truth,
        product_id,
        preset,
        date,
        crs,
        transform,
        stack_path,
        out / product_id if band_files else None,
        dem_path,
    )
