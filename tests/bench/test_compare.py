"""compare_results, BenchReport round trips and `kelpseg bench compare` exit codes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kelpseg.bench import BenchReport, Figure, SuiteResult, compare_results
from kelpseg.cli.app import main
from kelpseg.errors import KelpsegError


def report(values: dict[str, tuple[float, float]], cpu: str = "AMD EPYC") -> BenchReport:
    """A results file with one suite; ``values`` maps figure name -> (value, reference)."""
    figures = [Figure(name, v, "x/s", r, "floor") for name, (v, r) in values.items()]
    suite = SuiteResult("train", figures, {"batch": 4})
    return BenchReport({"quick": True}, {"cpu": cpu, "cores": 2, "device": "cpu"}, [suite])


def test_drop_beyond_tolerance_is_a_regression() -> None:
    old = report({"train.a": (100.0, 200.0), "train.b": (10.0, 10.0)})
    new = report({"train.a": (80.0, 200.0), "train.b": (9.5, 10.0)})
    result = compare_results(old, new, tolerance=0.10)
    flagged = {(c.figure, c.metric) for c in result.regressions}
    assert flagged == {("train.a", "value"), ("train.a", "ratio")}
    change = next(c for c in result.changes if c.figure == "train.a" and c.metric == "value")
    assert change.relative == pytest.approx(-0.2)


def test_ratio_only_ignores_a_machine_wide_slowdown() -> None:
    old = report({"train.a": (100.0, 200.0)})
    new = report({"train.a": (50.0, 100.0)})  # both sides halved: a busy machine
    assert compare_results(old, new, 0.1, ["value"]).regressions
    assert not compare_results(old, new, 0.1, ["ratio"]).regressions


def test_improvements_missing_and_added_figures() -> None:
    old = report({"train.a": (100.0, 200.0), "train.gone": (1.0, 1.0)})
    new = report({"train.a": (150.0, 200.0), "train.new": (1.0, 1.0)}, cpu="Other CPU")
    result = compare_results(old, new)
    assert not result.regressions
    assert result.missing == ["train.gone"]
    assert result.added == ["train.new"]
    assert any("cpu differs" in w for w in result.warnings)


def test_non_finite_new_value_is_a_regression() -> None:
    old = report({"train.a": (100.0, 200.0)})
    new = report({"train.a": (math.nan, 200.0)})
    assert compare_results(old, new, metrics=["value"]).regressions


@pytest.mark.parametrize(("tolerance", "metrics"), [(1.5, ["value"]), (0.1, ["speed"]), (0.1, [])])
def test_bad_arguments_are_errors(tolerance: float, metrics: list[str]) -> None:
    with pytest.raises(KelpsegError):
        compare_results(report({}), report({}), tolerance, metrics)  # type: ignore[arg-type]


def test_report_round_trip(tmp_path: Path) -> None:
    original = report({"train.a": (100.0, 200.0)})
    loaded = BenchReport.load(original.save(tmp_path / "r.json"))
    assert loaded.figures["train.a"].ratio == pytest.approx(0.5)
    assert loaded.suites[0].settings == {"batch": 4}
    assert json.loads((tmp_path / "r.json").read_text())["suites"][0]["figures"][0]["ratio"] == 0.5


def test_load_rejects_other_json(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(KelpsegError, match="not a kelpseg benchmark"):
        BenchReport.load(path)
    with pytest.raises(KelpsegError, match="no such"):
        BenchReport.load(tmp_path / "absent.json")


def test_cli_compare_exit_codes(tmp_path: Path) -> None:
    old = report({"train.a": (100.0, 200.0)}).save(tmp_path / "old.json")
    same = report({"train.a": (98.0, 200.0)}).save(tmp_path / "same.json")
    worse = report({"train.a": (50.0, 200.0)}).save(tmp_path / "worse.json")
    assert main(["bench", "compare", str(old), str(same)]) == 0
    assert main(["bench", "compare", str(old), str(worse)]) == 1
    assert main(["bench", "compare", str(old), str(worse), "--tolerance", "0.6"]) == 0
    assert main(["bench", "compare", str(old), str(tmp_path / "absent.json")]) == 2


def test_cli_compare_json_is_the_only_stdout(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    old = report({"train.a": (100.0, 200.0), "train.b": (0.0, 1.0)}).save(tmp_path / "old.json")
    worse = report({"train.a": (50.0, 200.0), "train.b": (1.0, 1.0)}).save(tmp_path / "w.json")
    capsys.readouterr()
    assert main(["bench", "compare", str(old), str(worse), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)  # strict JSON: no NaN for train.b's change
    assert {(r["figure"], r["metric"]) for r in result["regressions"]} == {
        ("train.a", "value"),
        ("train.a", "ratio"),
    }
    change = next(c for c in result["changes"] if c["figure"] == "train.a")
    assert change["old"] == 100.0 and change["new"] == 50.0 and change["regression"] is True
    assert {c["relative"] for c in result["changes"] if c["figure"] == "train.b"} == {None}
