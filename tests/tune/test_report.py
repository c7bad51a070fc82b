"""The study summary's pages: report.html alone, and the interactive plotly pages beside it."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from kelpseg.tune.report import PLOTS
from kelpseg.tune.summary import summarize_study
from tests.browser import browser_test, load_page


def _objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("optim.lr", 1e-4, 1e-1, log=True)
    arch = trial.suggest_categorical("model.arch", ["Unet", "UnetPlusPlus"])
    value = 0.5
    for epoch in range(3):
        value = 0.8 - abs(lr - 0.01) - (0.05 if arch == "Unet" else 0.0) - 0.1 / (epoch + 1)
        trial.report(value, epoch)
    return value


@pytest.fixture(scope="module")
def summary_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished study of eight crafted trials, summarised with every plot."""
    study = optuna.create_study(
        study_name="crafted", direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(_objective, n_trials=8)
    out = tmp_path_factory.mktemp("tune") / "summary"
    summary = summarize_study(study, out, "in-memory")
    assert summary.skipped == {}
    return out


def test_the_report_holds_every_plot_embedded_and_links_the_interactive_pages(
    summary_dir: Path,
) -> None:
    text = (summary_dir / "report.html").read_text()
    assert "<h1>Study crafted</h1>" in text
    assert len(re.findall(r'<img src="data:image/webp;base64,', text)) == len(PLOTS)
    assert re.findall(r'<a href="([^"]*)"', text) == [f"{name}.html" for name in PLOTS]
    assert "optim.lr" in text and "model.arch" in text  # best values and importances
    assert "plotly" not in text.replace("plotly.min.js", "")  # no script: nothing to load
    assert (summary_dir / "report.html").stat().st_size < 300_000


@browser_test
def test_the_report_loads_in_chromium(summary_dir: Path, tmp_path: Path) -> None:
    load_page(summary_dir / "report.html", tmp_path).assert_clean(images=len(PLOTS))


@browser_test
@pytest.mark.parametrize("name", list(PLOTS))
def test_each_interactive_page_draws_its_plot(summary_dir: Path, tmp_path: Path, name: str) -> None:
    check = load_page(summary_dir / f"{name}.html", tmp_path)
    check.assert_clean(images=0)
    assert check.plots > 0  # plotly drew the chart from plotly.min.js beside the page
