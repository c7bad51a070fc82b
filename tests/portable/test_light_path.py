"""The light install: a package predicts tiles and makes a submission with torch unimportable."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

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
            from kelpseg.portable import export_model
        except Exception as exc:
            print(type(exc).__name__, exc)
        """,
        str(light_package),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "light@1.0"
    assert lines[1].startswith("MissingExtraError") and "pip install 'kelpseg[train]'" in lines[1]
