"""Check every file of a dataset: readable, band count, size, dtype, value ranges, labels."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.io.catalog import Catalog, Problem, build_catalog
from kelpseg.io.tiles import MISSING, SPECTRAL_BANDS, TILE_SIZE, read_label, read_tile

# Plausible ranges for a Kelp Wanted tile (values outside are flagged, not fatal).
_QA_VALUES = (0, 1)
_DEM_RANGE = (-500, 9000)
_SPECTRAL_RANGE = (-2000, 65535)


@dataclass
class ValidationReport:
    """The outcome of :func:`validate_dataset`: files checked and problems found."""

    root: Path
    files_checked: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def by_kind(self) -> pd.DataFrame:
        """Problems counted by kind, with an example file each."""
        if not self.problems:
            return pd.DataFrame(columns=["kind", "files", "example", "message"])
        frame = pd.DataFrame([vars(p) for p in self.problems])
        grouped = frame.groupby("kind", sort=True)
        return pd.DataFrame(
            {
                "kind": list(grouped.groups),
                "files": grouped.size().to_list(),
                "example": grouped["path"].first().to_list(),
                "message": grouped["message"].first().to_list(),
            }
        )


def check_tile_file(image_path: str, mask_path: str, size: int) -> list[Problem]:
    """All problems of one tile and its label (empty list when clean). Never raises."""
    problems: list[Problem] = []
    expected = (size, size) if size > 0 else None
    try:
        tile = read_tile(image_path, expected_size=expected)
        problems.extend(_value_problems(image_path, tile.data))
    except KelpsegError as exc:
        problems.append(Problem(_kind(exc.message), image_path, exc.message))
    if mask_path:
        try:
            read_label(mask_path, expected_size=expected)
        except KelpsegError as exc:
            problems.append(Problem("label_" + _kind(exc.message), mask_path, exc.message))
    return problems


def _kind(message: str) -> str:
    for key, kind in (
        ("bands", "band_count"),
        ("pixels, found", "size"),
        ("int16", "dtype"),
        ("integer", "dtype"),
        ("missing (-32768)", "all_missing"),
        ("outside", "values"),
        ("permission", "unreadable"),
        ("does not exist", "missing_file"),
    ):
        if key in message:
            return kind
    return "corrupt"


def _value_problems(path: str, data: np.ndarray) -> list[Problem]:
    problems: list[Problem] = []
    qa = data[len(SPECTRAL_BANDS)]
    bad_qa = ~np.isin(qa, (*_QA_VALUES, MISSING))
    if bad_qa.any():
        problems.append(
            Problem(
                "qa_values",
                path,
                f"QA values outside {{0, 1}}: {np.unique(qa[bad_qa])[:5].tolist()}",
            )
        )
    dem = data[len(SPECTRAL_BANDS) + 1]
    valid_dem = dem[dem != MISSING]
    if valid_dem.size and (valid_dem.min() < _DEM_RANGE[0] or valid_dem.max() > _DEM_RANGE[1]):
        problems.append(Problem("dem_range", path, f"DEM outside {_DEM_RANGE} m"))
    spectral = data[: len(SPECTRAL_BANDS)]
    valid = spectral[spectral != MISSING]
    if valid.size and valid.min() < _SPECTRAL_RANGE[0]:
        problems.append(
            Problem(
                "spectral_range",
                path,
                f"spectral value {int(valid.min())} below {_SPECTRAL_RANGE[0]}",
            )
        )
    return problems


def validate_dataset(
    root: str | os.PathLike[str],
    *,
    workers: int | None = None,
    size: int = TILE_SIZE,
    show_progress: bool = True,
    catalog: Catalog | None = None,
) -> ValidationReport:
    """Validate every file of a dataset in parallel over processes.

    Args:
        root: the dataset folder (any layout :func:`build_catalog` accepts).
        workers: worker processes (default: CPU count; 1 runs in-process).
        size: expected tile height and width (0 accepts any size).
        show_progress: show a rich progress bar.
        catalog: a catalog already built for ``root`` (built here when omitted).
    """
    catalog = catalog or build_catalog(root)
    problems = list(catalog.problems)
    rows = list(catalog.tiles[["image_path", "mask_path"]].itertuples(index=False, name=None))
    workers = workers or os.cpu_count() or 1
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("validating", total=len(rows))
        if workers == 1:
            for image, mask in rows:
                problems.extend(check_tile_file(str(image), str(mask), size))
                bar.advance(task)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = pool.map(
                    check_tile_file,
                    [str(r[0]) for r in rows],
                    [str(r[1]) for r in rows],
                    [size] * len(rows),
                    chunksize=max(1, len(rows) // (workers * 8)),
                )
                for found in futures:
                    problems.extend(found)
                    bar.advance(task)
    n_files = len(rows) + int((catalog.tiles["mask_path"] != "").sum())
    return ValidationReport(Path(root), n_files, problems)
