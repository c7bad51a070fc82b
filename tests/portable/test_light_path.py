"""The light install: packages predict tiles and scenes and make a submission, torch unimportable.

Each test runs a fresh interpreter where torch, Lightning, smp, timm, MLflow and onnx cannot be
imported (``run_light``); the CLI tests run the real ``kelpseg`` entry point there.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from kelpseg.io.tiles import read_label, write_tile
from tests.conftest import make_tile_array
from tests.portable.conftest import light_probability, run_light

TILES_TO_SUBMISSION = """
    import json
    from pathlib import Path
    import numpy as np
    from kelpseg.inference.rasters import binarize
    from kelpseg.inference.submission import write_submission
    from kelpseg.io.catalog import build_catalog
    from kelpseg.io.tiles import read_tile, write_mask
    from kelpseg.portable import load_onnx_predictor
    from kelpseg.scenes import TilePredictor

    package, data, out = map(Path, sys.argv[1:4])
    predictor = load_onnx_predictor(package, device="cpu", threads=1)
    assert isinstance(predictor, TilePredictor)
    catalog = build_catalog(data)
    for row in catalog.tiles.itertuples():
        prob = predictor.predict_batch(read_tile(row.image_path, expected_size=None).data[None])[0]
        mask = binarize(prob, predictor.threshold).astype(np.uint8)
        write_mask(out / f"{row.tile_id}_kelp.tif", mask)
    write_submission(out, catalog, out.parent / "submission.tar", size=40)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "lightning", "onnx"))
    print(json.dumps([m for m in loaded if sys.modules[m] is not None]))
"""


def test_tiles_to_submission_without_torch(light_package: Path, tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "pred"
    out.mkdir()
    raws = {}
    for i in range(3):
        raw = make_tile_array(40, seed=i)
        raw[1, : 10 * i] = 12000  # kelp-bright NIR rows, more in each tile
        raws[f"T{i}"] = raw
        write_tile(data / "test_satellite" / f"T{i}_satellite.tif", raw)
    done = run_light(TILES_TO_SUBMISSION, str(light_package), str(data), str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"  # no torch, lightning or onnx loaded
    assert "CPUExecutionProvider" in done.stdout
    for tile_id, raw in raws.items():
        expected = light_probability(raw[None])[0] >= 0.5
        np.testing.assert_array_equal(read_label(out / f"{tile_id}_kelp.tif"), expected)
    with tarfile.open(tmp_path / "submission.tar") as tf:
        assert sorted(tf.getnames()) == ["T0_kelp.tif", "T1_kelp.tif", "T2_kelp.tif"]


def test_registry_and_cli_modules_import_without_torch(light_package: Path) -> None:
    done = run_light(
        """
        from kelpseg.cli import portable
        from kelpseg.portable import registry
        print(registry.show(sys.argv[1]).ref)
        try:
            from kelpseg.export import export_model
        except Exception as exc:
            print(type(exc).__name__, exc)
        """,
        str(light_package),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "light@1.0"
    assert lines[1].startswith("MissingExtraError") and "pip install 'kelpseg[train]'" in lines[1]


#: The kelpseg command, run as ``python -m kelpseg.cli.app ARGS...`` after the poison.
CLI = """
    import runpy
    sys.argv = ["kelpseg", *sys.argv[1:]]
    runpy.run_module("kelpseg.cli.app", run_name="__main__", alter_sys=True)
"""

#: Several commands in one light interpreter (saves start-ups): exit code of each, as JSON.
CHAIN = """
    import json
    from kelpseg.cli.app import main
    codes = [main(args) for args in json.loads(sys.argv[1])]
    print("codes", json.dumps(codes))
"""


def _light_dataset(folder: Path) -> dict[str, np.ndarray]:
    raws = {}
    for i in range(3):
        raw = make_tile_array(40, seed=10 + i)
        raw[1, :, : 8 * (i + 1)] = 12000  # kelp-bright NIR columns
        raws[f"L{i}"] = raw
        write_tile(folder / "test_satellite" / f"L{i}_satellite.tif", raw)
    return raws


@pytest.mark.slow  # five commands, ~5 s on a loaded 2-core machine
def test_cli_predict_submit_and_scene_from_a_package_without_torch(
    light_package: Path, tmp_path: Path
) -> None:
    import json

    raws = _light_dataset(tmp_path / "data")
    data, pkg = str(tmp_path / "data"), str(light_package)
    pred, tar, scene = tmp_path / "pred", tmp_path / "submission.tar", str(tmp_path / "scene")
    light = ["--threads", "1", "--quiet"]
    chain = [
        ["predict", "--model", pkg, "--tiles", data, "--out", str(pred), "--soft", *light],
        ["submit", str(pred), "--catalog", data, "--out", str(tar), "--size", "40"],
        ["submit", "--check", str(tar), "--catalog", data, "--size", "40"],
        ["synth-scene", "--out", scene, "--grid", "1", "1", "--size", "48"],
        ["predict-scene", scene, "--out", str(tmp_path / "kelp.tif"), "--model", pkg, *light],
    ]
    done = run_light(CHAIN, json.dumps(chain))
    assert done.returncode == 0, done.stderr[-3000:]
    codes = json.loads(done.stdout.split("codes", 1)[1])
    assert codes == [0, 0, 0, 0, 0], done.stdout[-3000:] + done.stderr[-3000:]
    assert "CPUExecutionProvider (1 threads)" in done.stdout
    for tile_id, raw in raws.items():
        expected = light_probability(raw[None])[0] >= 0.5
        np.testing.assert_array_equal(read_label(pred / f"{tile_id}_kelp.tif"), expected)
    with tarfile.open(tar) as tf:
        assert sorted(tf.getnames()) == ["L0_kelp.tif", "L1_kelp.tif", "L2_kelp.tif"]
    assert "valid submission" in done.stdout
    assert (tmp_path / "kelp.tif").is_file()


def test_light_cli_lists_every_command_and_names_the_missing_extras(tmp_path: Path) -> None:
    import json

    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"a checkpoint needs torch")
    _light_dataset(tmp_path / "data")
    predict = ["predict", "--model", str(ckpt), "--tiles", str(tmp_path / "data"), "--out", "p"]
    unknown = [*predict[:2], "kelp-unet", *predict[3:]]  # a model name nothing installed
    chain = [["--help"], ["tabular", "build"], predict, unknown]
    done = run_light(CHAIN, json.dumps(chain))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.split("codes", 1)[1]) == [0, 2, 2, 2]
    for command in ("predict", "predict-scene", "submit", "train", "models"):
        assert f" {command} " in done.stdout
    errors = [" ".join(line.split()) for line in done.stderr.strip().splitlines()]
    assert "Traceback" not in done.stderr and len(errors) == 3
    assert errors[0].endswith("pip install 'kelpseg[tabular]'")
    assert errors[1].endswith("pip install 'kelpseg[train]'")
    assert errors[2] == "error: no model named kelp-unet; see `kelpseg models list`"


def test_light_entry_point_train_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    done = run_light(CLI, "train", "--config", str(tmp_path / "x.yaml"))
    assert done.returncode == 2, done.stdout + done.stderr
    err = " ".join(done.stderr.split())
    assert err.startswith("error: this needs the 'train' extra") and "Traceback" not in err
    assert err.endswith("pip install 'kelpseg[train]'")


def test_tta_names_match_the_torch_transforms() -> None:
    from kelpseg.inference.config import TTA_MERGES, TTA_TRANSFORMS
    from kelpseg.inference.tta import MERGES, TRANSFORMS

    assert tuple(TRANSFORMS) == TTA_TRANSFORMS
    assert tuple(MERGES) == TTA_MERGES
