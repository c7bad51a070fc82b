"""Which file and band holds each meaning: band presets, mapping flags, Landsat file naming.

A scene is either a stacked multi-band GeoTIFF or a folder (or product-id prefix) of Landsat
Collection 2 Level-2 band files ``<product_id>_SR_B<n>.TIF`` with ``<product_id>_QA_PIXEL.TIF``
(and optionally ``_QA_RADSAT.TIF`` and ``_MTL.txt``) beside them.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import SPECTRAL_BANDS

PathLike = str | os.PathLike[str]

#: Landsat band number of each tile band meaning (docs/data.md, "Landsat scenes").
PRESETS: dict[str, dict[str, int]] = {
    "landsat57": {"SWIR1": 5, "NIR": 4, "R": 3, "G": 2, "B": 1},
    "landsat89": {"SWIR1": 6, "NIR": 5, "R": 4, "G": 3, "B": 2},
}
#: Mission prefix of a product id (``LC08_...``) -> preset.
MISSION_PRESETS = {"LT04": "landsat57", "LT05": "landsat57", "LE07": "landsat57"}
MISSION_PRESETS |= {"LC08": "landsat89", "LO08": "landsat89", "LC09": "landsat89"}
QA_KEYS = ("QA_PIXEL", "QA_RADSAT")
_ALIASES = {"RED": "R", "GREEN": "G", "BLUE": "B", "SWIR": "SWIR1"}
_PRODUCT_ID = re.compile(r"(L[COTEM]\d{2})_L\w{3}_\d{6}_(\d{8})_\d{8}_\d{2}_\w{2}")
_ANY_DATE = re.compile(r"(?<!\d)((?:19|20)\d{6})(?!\d)")
_BAND_FILE = re.compile(r"^(?P<prefix>.+)_SR_B(?P<n>\d+)\.tiff?$", re.IGNORECASE)


@dataclass(frozen=True)
class BandSource:
    """One band of one raster file (``index`` counts from 1, as GDAL does)."""

    path: Path
    index: int = 1


@dataclass(frozen=True)
class SceneFiles:
    """Where every input of a scene lives.

    Attributes:
        name: the product id (``LC08_L2SP_...``) or the stacked file's stem.
        spectral: tile band meaning (``SWIR1`` ... ``B``) -> its source, in tile band order.
        band_numbers: tile band meaning -> Landsat band number (for QA_RADSAT bits).
        qa_pixel: the QA_PIXEL bit mask, if there is one.
        qa_radsat: the radiometric saturation mask, if there is one.
        mtl: the scene's ``_MTL.txt`` metadata, if found.
        preset: the preset the band numbers came from, if any.
    """

    name: str
    spectral: dict[str, BandSource]
    band_numbers: dict[str, int]
    qa_pixel: BandSource | None = None
    qa_radsat: BandSource | None = None
    mtl: Path | None = None
    preset: str | None = None


def parse_band_mapping(text: str) -> dict[str, int]:
    """``"SWIR1=6,NIR=5,R=4"`` -> ``{"SWIR1": 6, "NIR": 5, "R": 4}`` (also QA_PIXEL, QA_RADSAT).

    Raises:
        KelpsegError: a malformed pair, an unknown meaning or a band number below 1.
    """
    known = (*SPECTRAL_BANDS, *QA_KEYS)
    mapping: dict[str, int] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, number = pair.partition("=")
        key = _ALIASES.get(name.strip().upper(), name.strip().upper())
        if not sep or key not in known or not number.strip().isdigit() or int(number) < 1:
            raise KelpsegError(
                f"band mapping {pair!r} must look like NAME=NUMBER with NAME one of "
                f"{', '.join(known)} and NUMBER >= 1"
            )
        mapping[key] = int(number)
    return mapping


def product_mission(name: str) -> str | None:
    """``LC08_L2SP_...`` -> ``LC08``; ``None`` when the name holds no Landsat product id."""
    match = _PRODUCT_ID.search(name)
    return match.group(1) if match else None


def acquisition_date(name: str) -> dt.date | None:
    """The acquisition date in a Landsat product id (``..._217096_20231012_...``).

    Falls back to the first valid ``YYYYMMDD`` in the name; ``None`` if there is none.
    """
    match = _PRODUCT_ID.search(name)
    candidates = [match.group(2)] if match else _ANY_DATE.findall(name)
    for text in candidates:
        try:
            return dt.datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            continue
    return None


def read_mtl(path: PathLike) -> dict[str, str]:
    """Read a Landsat ``_MTL.txt`` as ``{"GROUP.KEY": "value"}`` (innermost group, quotes off)."""
    values: dict[str, str] = {}
    groups: list[str] = []
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as exc:
        raise KelpsegError(f"cannot read MTL metadata ({exc.strerror})", path) from exc
    for line in lines:
        key, sep, value = (part.strip() for part in line.partition("="))
        if not sep:
            continue
        if key == "GROUP":
            groups.append(value)
        elif key == "END_GROUP":
            groups = groups[:-1]
        else:
            values[f"{groups[-1] if groups else ''}.{key}"] = value.strip('"')
    return values


def resolve_bands(
    preset: str | None, bands: dict[str, int] | None, detected: str | None
) -> tuple[dict[str, int], str | None]:
    """Band number per meaning: the preset (given or detected), then explicit ``bands`` on top."""
    preset = preset or detected
    if preset is not None and preset not in PRESETS:
        raise KelpsegError(f"unknown band preset {preset!r}; presets are {', '.join(PRESETS)}")
    mapping = dict(PRESETS[preset]) if preset else {}
    mapping.update(bands or {})
    lacking = [name for name in SPECTRAL_BANDS if name not in mapping]
    if lacking:
        raise KelpsegError(
            f"no band number for {', '.join(lacking)}: pass --preset "
            f"({' or '.join(PRESETS)}) or --bands SWIR1=..,NIR=..,R=..,G=..,B=.."
        )
    return mapping, preset


def _single(paths: list[Path], what: str, where: Path) -> Path | None:
    if len(paths) > 1:
        raise KelpsegError(f"{len(paths)} {what} files match; keep one scene per folder", where)
    return paths[0] if paths else None


def band_file_prefixes(folder: Path) -> list[str]:
    """The product ids of the ``*_SR_B<n>.TIF`` band files in ``folder``, sorted."""
    names = (_BAND_FILE.match(f.name) for f in folder.glob("*"))
    return sorted({m["prefix"] for m in names if m})


def _band_files(path: Path) -> tuple[str, dict[int, Path]]:
    """Product id and ``{band number: file}`` of the band files at ``path`` (folder or prefix)."""
    folder, wanted = (path, None) if path.is_dir() else (path.parent, path.name)
    found: dict[str, dict[int, Path]] = {}
    for file in sorted(folder.glob("*")) if folder.is_dir() else []:
        match = _BAND_FILE.match(file.name)
        if match and (wanted is None or match["prefix"] == wanted.split("_SR_B")[0]):
            found.setdefault(match["prefix"], {})[int(match["n"])] = file
    if not found:
        raise KelpsegError("no *_SR_B<n>.TIF band files found", path)
    if len(found) > 1:
        raise KelpsegError(
            f"holds {len(found)} scenes ({', '.join(sorted(found)[:3])} ...); "
            "pass one scene's product-id prefix instead",
            path,
        )
    return next(iter(found.items()))


def _folder_scene(path: Path, preset: str | None, bands: dict[str, int] | None) -> SceneFiles:
    prefix, files = _band_files(path)
    folder = next(iter(files.values())).parent
    mtl = _single(sorted(folder.glob(f"{prefix}_MTL.txt")), "MTL", folder)
    mapping, used = resolve_bands(preset, bands, _detect_preset(prefix, mtl))
    spectral = {}
    for name in SPECTRAL_BANDS:
        if mapping[name] not in files:
            raise KelpsegError(f"no band file {prefix}_SR_B{mapping[name]}.TIF for {name}", folder)
        spectral[name] = BandSource(files[mapping[name]])
    qa = {k: _single(sorted(folder.glob(f"{prefix}_{k}.[Tt][Ii][Ff]")), k, folder) for k in QA_KEYS}
    return SceneFiles(
        name=prefix,
        spectral=spectral,
        band_numbers={k: mapping[k] for k in SPECTRAL_BANDS},
        qa_pixel=BandSource(qa["QA_PIXEL"]) if qa["QA_PIXEL"] else None,
        qa_radsat=BandSource(qa["QA_RADSAT"]) if qa["QA_RADSAT"] else None,
        mtl=mtl,
        preset=used,
    )


def _detect_preset(name: str, mtl: Path | None) -> str | None:
    if mtl is not None:
        spacecraft = read_mtl(mtl).get("IMAGE_ATTRIBUTES.SPACECRAFT_ID", "")
        digits = re.sub(r"\D", "", spacecraft)
        if digits in {"4", "5", "7"}:
            return "landsat57"
        if digits in {"8", "9"}:
            return "landsat89"
    mission = product_mission(name)
    return MISSION_PRESETS.get(mission) if mission else None


def _stack_descriptions(path: Path) -> tuple[str | None, ...]:
    try:
        with rasterio.open(path) as src:
            return tuple(d.upper() if d else None for d in src.descriptions)
    except RasterioError as exc:
        raise KelpsegError(f"not a readable raster ({str(exc).splitlines()[0]})", path) from exc


def _stack_scene(path: Path, preset: str | None, bands: dict[str, int] | None) -> SceneFiles:
    """Bands of a stack are found by description (``SR_B5``, ``QA_PIXEL``) or by index."""
    descriptions = _stack_descriptions(path)
    stem = path.name.split(".")[0]
    product = _PRODUCT_ID.search(stem)
    mtl = path.parent / f"{product.group(0)}_MTL.txt" if product else None
    mtl = mtl if mtl is not None and mtl.is_file() else None
    mapping, used = resolve_bands(preset, bands, _detect_preset(stem, mtl))
    explicit = bands or {}

    def index_of(key: str, number: int) -> int:
        if number > len(descriptions):
            raise KelpsegError(
                f"{key} is band {number} but the stack has {len(descriptions)}", path
            )
        return number

    # An explicit number wins; otherwise a band described SR_B<n> / QA_PIXEL, else index = n.
    spectral = {}
    for name in SPECTRAL_BANDS:
        described = f"SR_B{mapping[name]}"
        if name not in explicit and described in descriptions:
            spectral[name] = BandSource(path, descriptions.index(described) + 1)
        else:
            spectral[name] = BandSource(path, index_of(name, mapping[name]))
    qa: dict[str, int | None] = {}
    for key in QA_KEYS:
        if key in explicit:
            qa[key] = index_of(key, explicit[key])
        else:
            qa[key] = descriptions.index(key) + 1 if key in descriptions else None
    return SceneFiles(
        name=stem,
        spectral=spectral,
        band_numbers={k: mapping[k] for k in SPECTRAL_BANDS},
        qa_pixel=BandSource(path, qa["QA_PIXEL"]) if qa["QA_PIXEL"] else None,
        qa_radsat=BandSource(path, qa["QA_RADSAT"]) if qa["QA_RADSAT"] else None,
        mtl=mtl,
        preset=used,
    )


def locate_scene(
    path: PathLike, *, preset: str | None = None, bands: dict[str, int] | None = None
) -> SceneFiles:
    """Find a scene's band files and which band holds each meaning.

    Args:
        path: a stacked GeoTIFF, a folder holding one scene's ``*_SR_B<n>.TIF`` files, or a
            product-id prefix (``downloads/LC08_L2SP_217096_20231012_20231020_02_T1``).
        preset: ``landsat57`` or ``landsat89``; detected from the MTL or product id if omitted.
        bands: explicit band numbers per meaning, on top of the preset. In a stack, a number is
            the band index (stack bands described ``SR_B<n>`` are found by description).

    Raises:
        KelpsegError: nothing found, several scenes, or band numbers missing or out of range.
    """
    path = Path(path)
    if path.is_file() and not _BAND_FILE.match(path.name):
        return _stack_scene(path, preset, bands)
    if path.is_dir() or path.parent.is_dir():
        return _folder_scene(path, preset, bands)
    raise KelpsegError("scene not found (a stacked GeoTIFF, a folder or a product-id prefix)", path)
