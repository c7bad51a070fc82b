from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.io.catalog import build_catalog, load_catalog

LABEL = np.zeros((350, 350), dtype=np.uint8)


def _metadata(root: Path, rows: list[tuple[str, str, bool, str]]) -> Path:
    path = root / "metadata_fTq0l2T.csv"
    pd.DataFrame(rows, columns=["filename", "type", "in_train", "tile_id"]).to_csv(
        path, index=False
    )
    return path


def _download_layout(root: Path, tile_factory) -> None:  # type: ignore[no-untyped-def]
    tile_factory("AA001", label=LABEL, root=root)
    tile_factory("AA002", label=LABEL, root=root)
    tile_factory("BB001", folder="test_satellite", root=root)
    _metadata(
        root,
        [
            ("AA001_satellite.tif", "satellite", True, "AA001"),
            ("AA001_kelp.tif", "kelp", True, "AA001"),
            ("AA002_satellite.tif", "satellite", True, "AA002"),
            ("AA002_kelp.tif", "kelp", True, "AA002"),
            ("BB001_satellite.tif", "satellite", False, "BB001"),
        ],
    )


def test_download_layout_is_catalogued_from_metadata(tmp_path: Path, tile_factory) -> None:  # type: ignore[no-untyped-def]
    _download_layout(tmp_path, tile_factory)
    cat = build_catalog(tmp_path)
    assert cat.problems == []
    assert list(cat.train["tile_id"]) == ["AA001", "AA002"]
    assert list(cat.test["tile_id"]) == ["BB001"]
    assert cat.train["mask_path"].str.endswith("_kelp.tif").all()
    assert (cat.test["mask_path"] == "").all()
    out = cat.save(tmp_path / "catalog.parquet")
    pd.testing.assert_frame_equal(load_catalog(out), cat.tiles)


def test_flat_folder_without_metadata(tmp_path: Path, tile_factory) -> None:  # type: ignore[no-untyped-def]
    tile_factory("AA001", folder="flat", label=LABEL)
    tile_factory("AA002", folder="flat")
    cat = build_catalog(tmp_path / "flat")
    assert dict(zip(cat.tiles["tile_id"], cat.tiles["split"], strict=True)) == {
        "AA001": "train",
        "AA002": "test",
    }


def test_cross_checks_find_every_disagreement(tmp_path: Path, tile_factory) -> None:  # type: ignore[no-untyped-def]
    tile_factory("AA001", label=LABEL)
    tile_factory("AA002")  # train tile, no label on disk
    tile_factory("CC009")  # on disk, not in metadata
    _metadata(
        tmp_path,
        [
            ("AA001_satellite.tif", "satellite", True, "AA001"),
            ("AA001_satellite.tif", "satellite", True, "AA001"),  # duplicate id
            ("AA002_satellite.tif", "satellite", True, "AA002"),
            ("ZZ999_satellite.tif", "satellite", False, "ZZ999"),  # missing file
        ],
    )
    kinds = sorted(p.kind for p in build_catalog(tmp_path).problems)
    assert kinds == ["duplicate_id", "missing_file", "missing_label", "unlisted_file"]


def test_explicit_metadata_elsewhere(tmp_path: Path, tile_factory) -> None:  # type: ignore[no-untyped-def]
    tile_factory("AA001", label=LABEL)
    meta = tmp_path.parent / f"{tmp_path.name}-meta.csv"
    pd.DataFrame(
        [("AA001_satellite.tif", "satellite", True, "AA001")],
        columns=["filename", "type", "in_train", "tile_id"],
    ).to_csv(meta, index=False)
    assert list(build_catalog(tmp_path, meta).tiles["tile_id"]) == ["AA001"]


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="no \\*_satellite.tif tiles found"):
        build_catalog(tmp_path)


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="does not exist"):
        build_catalog(tmp_path / "nope")


def test_metadata_without_needed_columns(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text("a,b\n1,2\n")
    with pytest.raises(KelpsegError, match="metadata lacks columns"):
        build_catalog(tmp_path)


def test_bad_catalog_parquet(tmp_path: Path) -> None:
    bad = tmp_path / "c.parquet"
    bad.write_text("nope")
    with pytest.raises(KelpsegError, match="not a readable parquet"):
        load_catalog(bad)
