"""`kelpseg bench --quick`: every suite runs on the CPU and writes a complete results file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kelpseg.bench import SUITES
from kelpseg.cli.app import main

TINY = ["--quick", "--device", "cpu", "--repeats", "1", "--warmup", "0", "--steps", "1"]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_quick_run_of_every_suite_writes_figures_with_ratios(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    args = ["bench", *TINY, "--out", str(out), "--workdir", str(tmp_path / "work")]
    assert main(args) == 0
    data = json.loads(out.read_text())

    assert data["schema"] == "kelpseg-bench/1"
    env = data["environment"]
    assert env["cores"] >= 1 and env["cpu"] and env["date"] and env["gpu"] is None
    assert env["libraries"]["torch"] and "commit" in env["git"]
    assert data["config"]["quick"] is True
    assert [s["suite"] for s in data["suites"]] == list(SUITES)
    for suite in data["suites"]:
        assert suite["figures"], suite["suite"]
        for figure in suite["figures"]:
            assert figure["name"].startswith(suite["suite"] + ".")
            for key in ("value", "reference", "ratio"):
                assert _positive(figure[key]), (figure["name"], key, figure[key])
            assert figure["ratio"] == pytest.approx(figure["value"] / figure["reference"])

    by_name = {f["name"]: f for s in data["suites"] for f in s["figures"]}
    assert {"train.end_to_end", "train.model_only", "infer.models1"} <= set(by_name)
    assert by_name["train.model_only"]["extra"]["train_gflop_per_sample"] > 0
    assert all(f["extra"]["identical_groups"] for n, f in by_name.items() if n.startswith("group"))
    train = next(s for s in data["suites"] if s["suite"] == "train")
    assert "FlopCounterMode" in train["notes"][0]


def test_cuda_on_a_machine_without_it_is_a_one_line_error(tmp_path: Path) -> None:
    if __import__("torch").cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "results.json"
    assert main(["bench", "--suite", "group", "--device", "cuda", "--out", str(out)]) == 2
    assert not out.exists()


def test_unknown_suite_is_a_config_error(tmp_path: Path) -> None:
    assert main(["bench", "--suite", "speed", "--out", str(tmp_path / "r.json")]) == 2
