"""``kelpseg export --quantize int8``: calibrated int8 packages, their Dice record and refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from kelpseg.cli import app as cli_app
from kelpseg.cli import portable as portable_cmds
from kelpseg.errors import KelpsegError
from kelpseg.export.verify import crafted_tiles
from kelpseg.io.tiles import write_label, write_tile
from kelpseg.portable.manifest import GRAPH_NAME, read_manifest
from tests.portable.conftest import run_light

pytestmark = pytest.mark.slow

LIGHT_PREDICT = """
import sys
import numpy as np
from kelpseg.portable import OnnxPredictor
"""


@pytest.fixture(scope="module")
def tile_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(calibration folder of tiles, held-out folder of tiles with labels); 64 px, unseen."""
    root = tmp_path_factory.mktemp("quant_tiles")
    calibration, holdout = root / "calibration", root / "holdout"
    for i, tile in enumerate(crafted_tiles(6, 64, 64, seed=5)):
        write_tile(calibration / f"C{i}_satellite.tif", tile)
    for i, tile in enumerate(crafted_tiles(4, 64, 64, seed=6)):
        write_tile(holdout / f"H{i}_satellite.tif", tile)
        write_label(holdout / f"H{i}_kelp.tif", (tile[1] > 9000).astype(np.uint8))
    return calibration, holdout


@pytest.fixture(scope="module")
def int8_package(
    tmp_path_factory: pytest.TempPathFactory,
    members: dict[str, Path],
    tile_sets: tuple[Path, Path],
) -> Path:
    from kelpseg.export.package import export_model

    calibration, holdout = tile_sets
    out = tmp_path_factory.mktemp("packages") / "unet_int8"
    return export_model(
        [members["Unet"]],
        None,
        "unet-int8",
        "1.0",
        out,
        quantize="int8",
        calibration=calibration,
        holdout=holdout,
        max_dice_loss=1.0,
    )


def test_int8_manifest_records_calibration_and_both_dice(
    int8_package: Path, tile_sets: tuple[Path, Path]
) -> None:
    manifest = read_manifest(int8_package)
    q = manifest.quantization
    assert q is not None and q.dtype == "int8" and manifest.format_version == 2
    assert q.calibration.source == str(tile_sets[0]) and q.calibration.tiles == 6
    assert q.calibration.first_ids == [f"C{i}" for i in range(5)]
    assert q.holdout.source == str(tile_sets[1]) and q.holdout.tiles == 4
    assert 0.0 <= q.dice_float <= 1.0 and 0.0 <= q.dice_int8 <= 1.0
    assert q.max_dice_loss == 1.0
    ops = {n.op_type for n in onnx.load(str(int8_package / GRAPH_NAME)).graph.node}
    assert "QLinearConv" in ops and "Conv" not in ops  # every convolution runs in int8
    assert "Cast" in ops  # the preprocessing (int16 -> float) stays in float


def test_int8_package_predicts_through_the_light_runtime(
    int8_package: Path, tmp_path: Path
) -> None:
    np.save(tmp_path / "raw.npy", crafted_tiles(2, 64, 80, seed=3))
    code = (
        LIGHT_PREDICT
        + """
p = OnnxPredictor(sys.argv[1], device="cpu", quiet=True)
prob = p.predict_batch(np.load(sys.argv[2]))
assert prob.shape == (2, 64, 80) and prob.dtype == np.float32
assert np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1
print("ok", float(prob.mean()))
"""
    )
    done = run_light(code, str(int8_package), str(tmp_path / "raw.npy"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_int8_refused_above_the_dice_tolerance(
    tmp_path: Path, members: dict[str, Path], tile_sets: tuple[Path, Path]
) -> None:
    from kelpseg.export.package import export_model

    out = tmp_path / "refused"
    with pytest.raises(KelpsegError, match="loses .* Dice .* package not written"):
        export_model(
            [members["Unet"]],
            None,
            "refused",
            "1.0",
            out,
            quantize="int8",
            calibration=tile_sets[0],
            holdout=tile_sets[1],
            max_dice_loss=-1.0,  # any int8 graph loses more than a negative tolerance
        )
    assert not out.exists() and not list(tmp_path.glob(".refused*"))


def test_cli_int8_refusal_is_one_line_exit_2(
    tmp_path: Path,
    members: dict[str, Path],
    tile_sets: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = cli_app.app
    n_commands = len(app.registered_commands)
    app.command("export")(portable_cmds.export)
    out = tmp_path / "pkg"
    base = ["export", "--name", "u", "--version", "1", "--out", str(out)]
    base += ["--model", str(members["Unet"]), "--quantize", "int8"]
    try:
        code = cli_app.main([*base, "--calibration", str(tile_sets[0])])
        assert code == 2
        assert "--holdout" in capsys.readouterr().err
        sets = ["--calibration", str(tile_sets[0]), "--holdout", str(tile_sets[1])]
        code = cli_app.main([*base, *sets, "--max-dice-loss", "-1"])
    finally:
        del app.registered_commands[n_commands:]
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "package not written" in err[0]
    assert not out.exists()


def test_calibration_and_holdout_must_not_overlap(
    tmp_path: Path, members: dict[str, Path], tile_sets: tuple[Path, Path]
) -> None:
    from kelpseg.export.package import export_model

    with pytest.raises(KelpsegError, match="both a calibration and a held-out tile"):
        export_model(
            [members["Unet"]],
            None,
            "same",
            "1.0",
            tmp_path / "same",
            quantize="int8",
            calibration=tile_sets[1],
            holdout=tile_sets[1],
        )


def test_manifest_of_a_float_package_stays_format_1(single_package: Path) -> None:
    data = json.loads((single_package / "manifest.json").read_text())
    assert data["format_version"] == 1 and data["quantization"] is None
