"""Security hygiene: no code runs from a loaded file, no shell, no archive escapes its folder."""

from __future__ import annotations

import ast
import pathlib
from pathlib import Path

import pytest
import torch

import kelpseg
from kelpseg.cli.app import main
from tests.inference.test_predict import save_checkpoint, tiny_module

PACKAGE = Path(kelpseg.__file__).parent


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """Every call with its dotted callee name (``torch.load``, ``tf.extractall`` ...)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found.append((ast.unparse(node.func), node))
    return found


def _keyword(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name:
            return ast.literal_eval(kw.value) if isinstance(kw.value, ast.Constant) else "expr"
    return None


def audit(source: str) -> list[str]:
    """Unsafe calls in Python ``source``, one line each."""
    faults = []
    for name, call in _calls(ast.parse(source)):
        line = f"line {call.lineno}: {name}"
        if name == "torch.load" and _keyword(call, "weights_only") is not True:
            faults.append(f"{line} without weights_only=True")
        if name.endswith("extractall") and "tf" in name and _keyword(call, "filter") != "data":
            faults.append(f"{line} without filter='data'")
        if name in {"pickle.load", "pickle.loads", "joblib.load", "dill.load", "pd.read_pickle"}:
            faults.append(f"{line} unpickles a file")
        if name == "yaml.load" or name == "yaml.unsafe_load":
            faults.append(f"{line} (use yaml.safe_load)")
        if _keyword(call, "shell") is True or name in {"os.system", "os.popen", "eval", "exec"}:
            faults.append(f"{line} runs a shell or evaluates text")
        if name == "np.load" and _keyword(call, "allow_pickle") not in (None, False):
            faults.append(f"{line} with allow_pickle")
    return faults


def test_the_audit_finds_each_unsafe_pattern() -> None:
    unsafe = "\n".join(
        [
            "torch.load(p)",
            "torch.load(p, weights_only=False)",
            "tf.extractall(d)",
            "pickle.load(f)",
            "yaml.load(t)",
            "subprocess.run(c, shell=True)",
            "np.load(p, allow_pickle=True)",
        ]
    )
    assert len(audit(unsafe)) == 7
    safe = "torch.load(p, weights_only=True)\ntf.extractall(d, filter='data')\nyaml.safe_load(t)"
    assert audit(safe) == []


def test_the_package_has_no_unsafe_loading_shell_or_extraction() -> None:
    faults = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if (found := audit(path.read_text()))
    }
    assert faults == {}


class _Payload:
    """Unpickling this touches ``marker``: the proof that loading ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (pathlib.Path.touch, (str(self.marker),))  # type: ignore[return-value]


def _booby_trapped(path: Path, marker: Path) -> Path:
    """A checkpoint that is a real kelpseg checkpoint plus an object that runs code."""
    extra = {"pytorch-lightning_version": "2.6.0", "callbacks": {"x": _Payload(marker)}}
    save_checkpoint(tiny_module(), path, **extra)
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
    return path


def test_predict_refuses_a_checkpoint_that_would_run_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "code-ran"
    ckpt = _booby_trapped(tmp_path / "model.ckpt", marker)
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    args = ["predict", "-m", str(ckpt), "--tiles", str(tiles), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert not marker.exists()


def test_resume_refuses_a_checkpoint_that_would_run_code(
    tmp_path: Path, rel_split: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kelpseg.config import save_config
    from tests.nn.model_fixtures import tiny_config

    marker = tmp_path / "code-ran"
    run = tmp_path / "run"
    _booby_trapped(run / "checkpoints" / "last.ckpt", marker)
    config = tiny_config(rel_split, None, run, "features.normalization=per-sample-min-max")
    path = save_config(config, tmp_path / "run.yaml")
    assert main(["train", "--config", str(path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "not a readable checkpoint" in err and "last.ckpt" in err
    assert not marker.exists()
