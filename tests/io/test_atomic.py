"""Write-then-rename and the clean-up of what a killed writer leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from kelpseg.io.atomic import atomic_path, remove_stale_temporaries


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "mask.tif"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["mask.tif"]


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "a_kelp.tif") as tmp:
        tmp.write_text("done")
        stale = tmp.with_name(".b_kelp.tif.0123abcd.tmp")
    stale.write_text("half")  # what a SIGKILL mid-write leaves
    keep = [tmp_path / ".hidden", tmp_path / "c.tmp", tmp_path / ".d.tif.XYZ.tmp"]
    for path in keep:
        path.write_text("user file")
    assert remove_stale_temporaries(tmp_path) == 1
    assert not stale.exists() and all(p.exists() for p in keep)
    assert (tmp_path / "a_kelp.tif").read_text() == "done"
    assert remove_stale_temporaries(tmp_path / "missing") == 0
