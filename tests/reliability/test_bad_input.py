"""Every command meets bad input with one clear line, exit code 2 and its outputs untouched.

The cases live in :mod:`tests.reliability.cases`. Set ``KELPSEG_CATALOGUE_DOC=docs/reliability.md``
to write the table of what each case printed into that page (between its catalogue markers).
"""

from __future__ import annotations

import hashlib
import os
import re
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio

from kelpseg.cli.app import main
from kelpseg.console import console
from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.features.config import FeatureConfig
from kelpseg.io.tiles import read_label
from kelpseg.io.validate import validate_dataset
from tests.inference.test_predict import save_checkpoint, tiny_module
from tests.reliability import cases_data, cases_model
from tests.reliability.cases import CASES, Env, damage
from tests.reliability.catalogue import record, write_catalogue

PROGRESS = re.compile(r"\d+/\d+ \d+:\d\d:\d\d (-:--:--|\d+:\d\d:\d\d)$")


assert cases_data and cases_model  # imported for their cases


@pytest.fixture(scope="module")
def env_inputs(
    rel_data: Path, rel_split: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """A checkpoint (6 channels) and band statistics of two other channels, shared read-only."""
    folder = tmp_path_factory.mktemp("inputs")
    ckpt = save_checkpoint(tiny_module(), folder / "tiny.ckpt")
    # What Lightning adds to the checkpoints it writes (a resumable last.ckpt).
    loop = {"pytorch-lightning_version": "2.6.0", "epoch": 0, "global_step": 4}
    other_ckpt = save_checkpoint(tiny_module(), folder / "last.ckpt", **loop)
    frame = pd.read_parquet(rel_split)
    train = frame[frame["split"] == "train"]
    stats = compute_band_stats(
        train, FeatureConfig(channels=["R", "G"]), device="cpu", show_progress=False
    )
    other_stats = stats.to_json(folder / "stats-R-G.json")
    return {"ckpt": ckpt, "other_ckpt": other_ckpt, "other_stats": other_stats}


@pytest.fixture(scope="module", autouse=True)
def _catalogue_doc() -> Any:
    yield
    target = os.environ.get("KELPSEG_CATALOGUE_DOC")
    if target:
        write_catalogue(Path(target))


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: files by content hash, folders as 'dir'."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("key", list(CASES))
def test_bad_input_fails_cleanly(
    key: str,
    env_inputs: dict[str, Path],
    rel_data: Path,
    rel_split: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    command, name, build = CASES[key]
    env = Env(tmp_path, rel_data, rel_split, **env_inputs)
    case = build(env)
    if name == "read-only output folder" and os.access(case.watch, os.W_OK):
        pytest.skip("running as root: permission bits do not stop writes")
    before = snapshot(case.watch)
    capsys.readouterr()
    monkeypatch.setattr(console, "width", 200)  # a checker's table rows on one line each

    code = main(case.argv)

    captured = capsys.readouterr()
    if case.rc == 2:
        record(command, name, code, captured.err, re.compile("error:"))
    else:  # the checker's table rows about the member, and its count line
        record(
            command, name, code, captured.out, re.compile(rf"{re.escape(case.names)}|problems \(")
        )
    assert code == case.rc, captured.err + captured.out
    assert "Traceback" not in captured.err + captured.out
    if case.rc == 2:
        # A progress bar drawn before the fault stays on screen (it shows how far the run got).
        lines = [s for s in captured.err.splitlines() if s.strip() and not PROGRESS.search(s)]
        assert len(lines) == 1, captured.err
        assert case.names in lines[0] and case.fault in lines[0], lines[0]
    else:  # a checker: the problem table on stdout names the offending member
        assert captured.err == ""
        assert case.names in captured.out and case.fault in captured.out
    after = snapshot(case.watch)
    assert {k: after[k] for k in before if k in after} == before, "earlier outputs changed"
    new = [k for k in after if k not in before]
    left = [k for k in new if not any(fnmatch(Path(k).name, p) for p in case.resume_state)]
    assert not left, f"the failed run left {left}"


def test_the_catalogue_covers_every_command() -> None:
    commands = {command.split(" --")[0] for command, _, _ in CASES.values()}
    wanted = {"validate", "catalog", "eda stats", "stats", "split", "prepare", "train"}
    wanted |= {"predict", "evaluate", "submit", "tabular build", "tabular train"}
    assert wanted <= commands
    assert len(CASES) >= 24


def test_an_all_missing_tile_is_a_finding_not_a_fault(
    env_inputs: dict[str, Path], rel_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate flags it (exit 1); predict still writes its mask: a submission needs every tile."""
    env = Env(tmp_path, rel_data, rel_data, **env_inputs)
    root = env.copy_data()
    tile = next((root / "test_satellite").glob("*_satellite.tif"))
    damage(tile, "all-missing")
    capsys.readouterr()
    assert main(["validate", str(root), "--size", "0", "--workers", "1"]) == 1
    assert "1 problems" in capsys.readouterr().out
    report = validate_dataset(root, workers=1, size=0)
    assert [(p.path, p.message) for p in report.problems] == [
        (str(tile), "every spectral pixel is missing (-32768)")
    ]
    out = tmp_path / "preds"
    args = ["predict", "-m", str(env.ckpt), "--tiles", str(root / "test_satellite")]
    assert main([*args, "--out", str(out), "--soft", "--device", "cpu", "--quiet"]) == 0
    tile_id = tile.name.removesuffix("_satellite.tif")
    assert read_label(out / f"{tile_id}_kelp.tif").shape == (64, 64)
    with rasterio.open(out / f"{tile_id}_prob.tif") as src:
        assert np.isfinite(src.read(1)).all()
