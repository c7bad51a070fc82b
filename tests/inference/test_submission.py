"""Submission: the writer packs exactly the test masks; the checker finds every fault."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kelpseg.errors import KelpsegError
from kelpseg.inference import submission
from kelpseg.inference.submission import (
    InvalidPredictionsError,
    check_prediction_dir,
    check_submission,
    submission_tile_ids,
    write_submission,
)
from kelpseg.io.tiles import write_mask, write_probability
from tests.inference.conftest import SIZE, make_masks

IDS = ["TE001", "TE002", "TE003"]


def _tif_bytes(array: np.ndarray, count: int = 1) -> bytes:
    with rasterio.MemoryFile() as mem:
        with mem.open(
            driver="GTiff",
            count=count,
            height=array.shape[0],
            width=array.shape[1],
            dtype=array.dtype.name,
        ) as dst:
            for band in range(1, count + 1):
                dst.write(array, band)
        return bytes(mem.read())


def _good(value: int = 0) -> bytes:
    return _tif_bytes(np.full((SIZE, SIZE), value, np.uint8))


def _tar(path: Path, members: list[tuple[str, bytes | str]]) -> Path:
    """Members are (name, bytes) files, or (name, "dir") / (name, "symlink") special entries."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif data == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def _kinds(problems: list) -> list[str]:
    return sorted(p.kind for p in problems)


def test_written_submission_passes_the_checker(
    pred_dir: Path, submission_catalog: pd.DataFrame, tmp_path: Path
) -> None:
    write_probability(pred_dir / "TE001_prob.tif", np.zeros((SIZE, SIZE), np.float32))
    out = write_submission(pred_dir, submission_catalog, tmp_path / "sub.tar", size=SIZE)
    assert check_submission(out, submission_catalog, size=SIZE) == []
    assert out.read_bytes()[:2] != b"\x1f\x8b"
    with tarfile.open(out, "r:") as tar:
        names = tar.getnames()
        assert names == [f"{t}_kelp.tif" for t in IDS]
        data = tar.extractfile("TE002_kelp.tif").read()  # type: ignore[union-attr]
    assert data == (pred_dir / "TE002_kelp.tif").read_bytes()
    again = write_submission(pred_dir, IDS, tmp_path / "again.tar", size=SIZE)
    assert again.read_bytes() == out.read_bytes()


def test_invalid_predictions_write_nothing(pred_dir: Path, tmp_path: Path) -> None:
    (pred_dir / "TE003_kelp.tif").unlink()
    write_mask(pred_dir / "TR001_kelp.tif", np.zeros((SIZE, SIZE), np.uint8))
    with pytest.raises(InvalidPredictionsError) as info:
        write_submission(pred_dir, IDS, tmp_path / "sub.tar", size=SIZE)
    assert _kinds(info.value.problems) == ["extra_file", "missing_tile"]
    assert not list(tmp_path.glob("*.tar")) and not list(tmp_path.glob(".*tmp"))


def test_prediction_folder_faults_are_each_reported(tmp_path: Path) -> None:
    folder = make_masks(tmp_path / "p", IDS)
    (folder / "TE001_kelp.tif").write_bytes(_tif_bytes(np.zeros((SIZE + 1, SIZE), np.uint8)))
    (folder / "TE002_kelp.tif").write_bytes(_tif_bytes(np.zeros((SIZE, SIZE), np.float32)))
    (folder / "TE003_kelp.tif").write_bytes(_tif_bytes(np.full((SIZE, SIZE), 255, np.uint8)))
    problems = check_prediction_dir(folder, IDS, size=SIZE)
    assert _kinds(problems) == ["bad_values", "wrong_dtype", "wrong_size"]
    assert all(p.path.endswith("_kelp.tif") for p in problems)


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ([("TE001_kelp.tif", b"G"), ("TE002_kelp.tif", b"G")], ["missing_tile"]),
        ([*((f"{t}_kelp.tif", b"G") for t in IDS), ("notes.txt", b"hi")], ["extra_file"]),
        ([*((f"{t}_kelp.tif", b"G") for t in IDS), ("TE999_kelp.tif", b"G")], ["extra_file"]),
        (
            [("preds/TE001_kelp.tif", b"G"), ("TE002_kelp.tif", b"G"), ("TE003_kelp.tif", b"G")],
            ["missing_tile", "nested_path"],
        ),
        (
            [("./TE001_kelp.tif", b"G"), ("TE002_kelp.tif", b"G"), ("TE003_kelp.tif", b"G")],
            ["missing_tile", "nested_path"],
        ),
        (
            [("../TE001_kelp.tif", b"G"), ("TE002_kelp.tif", b"G"), ("TE003_kelp.tif", b"G")],
            ["missing_tile", "nested_path"],
        ),
        ([*((f"{t}_kelp.tif", b"G") for t in IDS), ("TE001_kelp.tif", b"G")], ["duplicate"]),
        ([*((f"{t}_kelp.tif", b"G") for t in IDS), ("extra", "dir")], ["non_regular"]),
        (
            [("TE001_kelp.tif", "symlink"), ("TE002_kelp.tif", b"G"), ("TE003_kelp.tif", b"G")],
            ["missing_tile", "non_regular"],
        ),
        (
            [("TE001_kelp.tif", b"S"), ("TE002_kelp.tif", b"G"), ("TE003_kelp.tif", b"G")],
            ["wrong_size"],
        ),
        (
            [("TE001_kelp.tif", b"F"), ("TE002_kelp.tif", b"G"), ("TE003_kelp.tif", b"G")],
            ["wrong_dtype"],
        ),
        (
            [("TE001_kelp.tif", b"V"), ("TE002_kelp.tif", b"G"), ("TE003_kelp.tif", b"G")],
            ["bad_values"],
        ),
        (
            [("TE001_kelp.tif", b"B"), ("TE002_kelp.tif", b"G"), ("TE003_kelp.tif", b"G")],
            ["band_count"],
        ),
        (
            [("TE001_kelp.tif", b"junk"), ("TE002_kelp.tif", b"G"), ("TE003_kelp.tif", b"G")],
            ["unreadable"],
        ),
    ],
)
def test_checker_catches_each_fault(tmp_path: Path, members: list, expected: list[str]) -> None:
    content = {
        b"G": _good(1),
        b"S": _tif_bytes(np.zeros((SIZE, SIZE + 2), np.uint8)),
        b"F": _tif_bytes(np.zeros((SIZE, SIZE), np.float32)),
        b"V": _tif_bytes(np.full((SIZE, SIZE), 2, np.int16)),
        b"B": _tif_bytes(np.zeros((SIZE, SIZE), np.uint8), count=2),
        b"hi": b"hi",
        b"junk": b"junk",
    }
    real = [(n, content[d] if isinstance(d, bytes) else d) for n, d in members]
    tar = _tar(tmp_path / "sub.tar", real)
    assert _kinds(check_submission(tar, IDS, size=SIZE)) == expected


def test_checker_never_extracts_members(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    tar = _tar(
        inner / "sub.tar", [("../TE001_kelp.tif", _good()), ("/tmp/TE002_kelp.tif", _good())]
    )
    problems = check_submission(tar, size=SIZE)
    assert _kinds(problems) == ["nested_path", "nested_path"]
    assert not (tmp_path / "TE001_kelp.tif").exists()
    assert sorted(p.name for p in inner.iterdir()) == ["sub.tar"]


def test_compressed_empty_broken_and_huge_archives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _tar(tmp_path / "a.tar", [(f"{t}_kelp.tif", _good()) for t in IDS])
    gz = tmp_path / "a.tar.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert _kinds(check_submission(gz, IDS, size=SIZE)) == ["compressed"]
    empty = _tar(tmp_path / "empty.tar", [])
    assert "empty" in _kinds(check_submission(empty, size=SIZE))
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"\x00not a tar" * 100)
    assert _kinds(check_submission(broken, size=SIZE)) in (["not_tar"], ["empty"])
    monkeypatch.setattr(submission, "MAX_MEMBER_BYTES", 100)
    assert _kinds(check_submission(plain, IDS, size=SIZE)) == ["too_large"] * 3
    with pytest.raises(KelpsegError, match="does not exist"):
        check_submission(tmp_path / "nope.tar")


def test_catalog_sources_give_the_test_ids(
    submission_catalog: pd.DataFrame, tmp_path: Path
) -> None:
    assert submission_tile_ids(submission_catalog) == IDS
    path = tmp_path / "catalog.parquet"
    submission_catalog.astype("string").to_parquet(path)
    assert submission_tile_ids(path) == IDS
    with pytest.raises(KelpsegError, match="no test tiles"):
        submission_tile_ids(submission_catalog[submission_catalog.split == "train"])


def test_real_sized_masks_from_write_mask_are_valid(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    write_mask(folder / "TE001_kelp.tif", np.eye(350, dtype=np.uint8))
    out = write_submission(folder, ["TE001"], tmp_path / "sub.tar")
    assert check_submission(out, ["TE001"]) == []


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ids=st.sets(st.from_regex(r"[A-Z]{2}[0-9]{3}", fullmatch=True), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
    size=st.integers(1, 12),
)
def test_round_trip_write_then_check_finds_nothing(
    tmp_path_factory: pytest.TempPathFactory, ids: set[str], seed: int, size: int
) -> None:
    root = tmp_path_factory.mktemp("rt")
    folder = make_masks(root / "p", sorted(ids), size=size, seed=seed)
    out = write_submission(folder, sorted(ids), root / "s.tar", size=size)
    assert check_submission(out, sorted(ids), size=size) == []
