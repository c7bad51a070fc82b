"""The competition submission: an uncompressed tar of ``<tile_id>_kelp.tif`` masks.

:func:`write_submission` checks a prediction folder against the test tiles of a catalog and
packs it atomically; :func:`check_submission` lists everything wrong with an existing archive,
reading each member in memory (nothing is ever extracted to disk).
"""

from __future__ import annotations

import io
import os
import tarfile
import warnings
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import MemoryFile

from kelpseg.errors import KelpsegError
from kelpseg.inference.rasters import MASK_SUFFIX
from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import Catalog, Problem, build_catalog, load_catalog
from kelpseg.io.tiles import TILE_SIZE

PathLike = str | os.PathLike[str]
#: A catalog, its table, a catalog parquet or dataset folder, or the test tile ids themselves.
CatalogSource = Catalog | pd.DataFrame | PathLike | list[str] | tuple[str, ...]
#: A mask of 350x350 uint8 is ~120 kB; anything far larger is not a mask (or a tar bomb).
MAX_MEMBER_BYTES = 16 * 2**20


class InvalidPredictionsError(KelpsegError):
    """The prediction folder cannot be submitted; ``problems`` lists why."""

    def __init__(self, folder: PathLike, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(f"cannot submit: {first.kind} {first.path}: {first.message}{more}", folder)


def submission_tile_ids(catalog: CatalogSource) -> list[str]:
    """Sorted ids of the test tiles of a catalog, a catalog parquet or a dataset folder."""
    if isinstance(catalog, list | tuple):
        if not catalog:
            raise KelpsegError("no test tile ids given")
        return sorted(str(t) for t in catalog)
    if isinstance(catalog, Catalog):
        frame = catalog.tiles
    elif isinstance(catalog, pd.DataFrame):
        frame = catalog
    else:
        path = Path(catalog)
        frame = build_catalog(path).tiles if path.is_dir() else load_catalog(path)
    if "split" not in frame.columns or "tile_id" not in frame.columns:
        raise KelpsegError("catalog needs 'tile_id' and 'split' columns")
    ids = sorted(str(t) for t in frame.loc[frame["split"] == "test", "tile_id"])
    if not ids:
        raise KelpsegError("the catalog holds no test tiles")
    return ids


def check_mask_bytes(data: bytes, where: str, size: int = TILE_SIZE) -> list[Problem]:
    """Problems of one mask file's bytes: unreadable, bands, size, dtype, values."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with MemoryFile(data) as mem, mem.open() as src:
                count, dtype, shape = src.count, src.dtypes[0], (src.height, src.width)
                array = src.read(1) if count >= 1 else None
    except RasterioError as exc:
        return [Problem("unreadable", where, f"not a readable GeoTIFF ({exc})")]
    problems = []
    if count != 1:
        problems.append(Problem("band_count", where, f"expected 1 band, found {count}"))
    if shape != (size, size):
        problems.append(
            Problem("wrong_size", where, f"expected {size}x{size}, found {shape[0]}x{shape[1]}")
        )
    if not np.issubdtype(np.dtype(dtype), np.integer):
        message = f"expected integer 0/1 pixels, found {dtype}"
        problems.append(Problem("wrong_dtype", where, message))
    if array is not None:
        bad = (array != 0) & (array != 1)
        if bad.any():
            values = np.unique(array[bad])[:5].tolist()
            problems.append(Problem("bad_values", where, f"values outside {{0, 1}}: {values}"))
    return problems


def check_prediction_dir(
    pred_dir: PathLike, catalog: CatalogSource, size: int = TILE_SIZE
) -> list[Problem]:
    """Everything that stops ``pred_dir`` from becoming a valid submission (empty when ok).

    Every test tile needs one valid ``<tile_id>_kelp.tif``; masks of other tiles are extra.
    Other files (probabilities, configs) are ignored: they are never packed.
    """
    folder = Path(pred_dir)
    if not folder.is_dir():
        raise KelpsegError("prediction folder does not exist", folder)
    wanted = submission_tile_ids(catalog)
    found = {p.name[: -len(MASK_SUFFIX)]: p for p in folder.glob(f"*{MASK_SUFFIX}")}
    problems = [
        Problem("missing_tile", str(folder / f"{t}{MASK_SUFFIX}"), "test tile without a mask")
        for t in wanted
        if t not in found
    ]
    extra = sorted(set(found) - set(wanted))
    problems += [
        Problem("extra_file", str(found[t]), "mask of a tile not in the test set") for t in extra
    ]
    for tile_id in wanted:
        if tile_id in found:
            path = found[tile_id]
            if not path.is_file():
                problems.append(Problem("non_regular", str(path), "not a regular file"))
                continue
            problems += check_mask_bytes(path.read_bytes(), str(path), size)
    return problems


def write_submission(
    pred_dir: PathLike, catalog: CatalogSource, out_tar: PathLike, size: int = TILE_SIZE
) -> Path:
    """Validate ``pred_dir`` and pack its test masks into an uncompressed tar, atomically.

    Members are ``<tile_id>_kelp.tif`` at the archive's top level, sorted, with fixed owner
    and mtime so the same masks give the same archive bytes.

    Raises:
        InvalidPredictionsError: a mask is missing, extra or malformed (``.problems``).
    """
    folder = Path(pred_dir)
    wanted = submission_tile_ids(catalog)
    problems = check_prediction_dir(folder, wanted, size)
    if problems:
        raise InvalidPredictionsError(folder, problems)
    out = Path(out_tar)
    with atomic_path(out) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for tile_id in wanted:
            data = (folder / f"{tile_id}{MASK_SUFFIX}").read_bytes()
            info = tarfile.TarInfo(f"{tile_id}{MASK_SUFFIX}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out


def _member_problems(member: tarfile.TarInfo, where: str, seen: set[str]) -> list[Problem]:
    name = member.name
    if name in seen:
        return [Problem("duplicate", where, "member appears more than once")]
    seen.add(name)
    pure = PurePosixPath(name.replace("\\", "/"))
    if len(pure.parts) != 1 or pure.name != name or name.startswith("/"):
        return [Problem("nested_path", where, "members must sit at the top level (no folders)")]
    if not member.isfile():
        return [Problem("non_regular", where, f"not a regular file (tar type {member.type!r})")]
    if not name.endswith(MASK_SUFFIX):
        return [Problem("extra_file", where, f"not a <tile_id>{MASK_SUFFIX} mask")]
    return []


def check_submission(
    tar_path: PathLike, catalog: CatalogSource | None = None, size: int = TILE_SIZE
) -> list[Problem]:
    """List everything wrong with a submission archive (empty list when it is valid).

    Checks: uncompressed tar; members regular files at the top level, no duplicates, only
    ``<tile_id>_kelp.tif``; each a 1-band ``size`` x ``size`` integer 0/1 GeoTIFF; with a
    catalog, exactly one mask per test tile and none for other tiles.
    """
    path = Path(tar_path)
    if not path.is_file():
        raise KelpsegError("submission file does not exist", path)
    head = _head(path)
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return [Problem("compressed", str(path), "the archive must be an uncompressed tar")]
    try:
        with tarfile.open(path, "r:") as tar:
            problems, present = _check_members(tar, path, size)
    except (tarfile.TarError, OSError) as exc:
        return [Problem("not_tar", str(path), f"not a readable tar archive ({exc})")]
    if catalog is not None:
        wanted = submission_tile_ids(catalog)
        problems += _coverage_problems(path, wanted, present)
    return problems


def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(6)


def _check_members(tar: tarfile.TarFile, path: Path, size: int) -> tuple[list[Problem], set[str]]:
    problems: list[Problem] = []
    seen: set[str] = set()
    present: set[str] = set()
    for member in tar:
        where = f"{path}:{member.name}"
        found = _member_problems(member, where, seen)
        if found:
            problems += found
            continue
        present.add(member.name[: -len(MASK_SUFFIX)])
        if member.size > MAX_MEMBER_BYTES:
            message = f"{member.size} bytes is far too large for a mask"
            problems.append(Problem("too_large", where, message))
            continue
        handle = tar.extractfile(member)
        data = handle.read() if handle is not None else b""
        problems += check_mask_bytes(data, where, size)
    if not seen:
        problems.append(Problem("empty", str(path), "the archive holds no members"))
    return problems, present


def _coverage_problems(path: Path, wanted: Iterable[str], present: set[str]) -> list[Problem]:
    wanted_set = set(wanted)
    problems = [
        Problem("missing_tile", f"{path}:{t}{MASK_SUFFIX}", "test tile without a mask")
        for t in sorted(wanted_set - present)
    ]
    problems += [
        Problem("extra_file", f"{path}:{t}{MASK_SUFFIX}", "mask of a tile not in the test set")
        for t in sorted(present - wanted_set)
    ]
    return problems
