"""``kelpseg export --ensemble SPEC.yaml``: the spec of ``kelpseg ensemble select`` as a package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from kelpseg.cli.app import main
from kelpseg.portable.manifest import read_manifest


def write_spec(folder: Path, models: list[str], **fields: object) -> Path:
    """An ``ensemble.yaml`` as ``kelpseg ensemble select`` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"models": models, "weights": [3.0, 1.0], "ensemble_mode": "mean_logit",
            "threshold": 0.4, **fields}  # fmt: skip
    path = folder / "ensemble.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def export_args(spec: Path, out: Path, *extra: str) -> list[str]:
    return ["export", "--ensemble", str(spec), "--name", "sel", "--version", "1", "--out",
            str(out), *extra]  # fmt: skip


def test_a_spec_is_refused_with_other_weights_a_mode_or_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path / "sel", ["a.ckpt", "b.ckpt"])
    assert main(export_args(spec, tmp_path / "p", "--weights", "1,1")) == 2
    assert "the ensemble spec holds the weights and the mode" in capsys.readouterr().err
    assert main([*export_args(spec, tmp_path / "p"), "-m", "a.ckpt"]) == 2
    assert "not both" in capsys.readouterr().err
    union = write_spec(tmp_path / "vote", ["a.ckpt", "b.ckpt"], ensemble_mode="union")
    assert main(export_args(union, tmp_path / "p")) == 2
    assert "'union': a package holds mean_prob or mean_logit" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [a.ckpt]\nweights: [1]\n")
    assert main(export_args(bad, tmp_path / "p")) == 2
    assert "ensemble spec lacks ['ensemble_mode', 'threshold']" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_a_two_member_spec_exports_as_one_package(tmp_path: Path) -> None:
    import onnxruntime as ort

    from kelpseg.export.verify import crafted_tiles
    from kelpseg.inference.loading import load_torch_predictor
    from tests.portable import exported as ex

    per_sample = {"normalization": "per-sample-min-max"}
    sel = tmp_path / "selection"
    for i, channels in enumerate((["NIR", "R", "G"], ["SWIR1", "NIR", "NDVI"])):
        module = ex.tiny_module("Unet", {"channels": channels, **per_sample}, seed=i)
        ex.save_checkpoint(module, sel / f"m{i}.ckpt")
    # Paths relative to the spec (as a spec moved with its checkpoints holds them).
    spec = write_spec(sel, ["m0.ckpt", "m1.ckpt"])
    report = {"report": {"ensemble_dice": 0.61, "best_single_dice": 0.58, "gain": 0.03}}
    (sel / "selection.json").write_text(json.dumps(report))

    out = tmp_path / "pkg"
    assert main(export_args(spec, out)) == 0
    manifest = read_manifest(out)
    assert [m.weight for m in manifest.members] == pytest.approx([0.75, 0.25])
    assert [Path(m.source).name for m in manifest.members] == ["m0.ckpt", "m1.ckpt"]
    assert manifest.ensemble_mode == "mean_logit"
    assert (manifest.threshold, manifest.threshold_source) == (0.4, "given")
    assert manifest.metrics == pytest.approx(
        {"select_report_dice": 0.61, "select_report_gain": 0.03}
    )
    # The graph is the spec's ensemble: the torch predictor of the same spec agrees with it.
    raw = crafted_tiles(2, 48, 48, seed=5)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_prob = session.run(None, {session.get_inputs()[0].name: raw})[0][:, 0]
    torch_prob = load_torch_predictor(
        [sel / "m0.ckpt", sel / "m1.ckpt"], [3.0, 1.0], device="cpu", ensemble_mode="mean_logit"
    ).predict_batch(raw)
    np.testing.assert_allclose(onnx_prob, torch_prob, atol=1e-4)
