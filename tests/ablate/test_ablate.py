"""The ablation harness: spec checks, paired gains, and a tiny real ablation that resumes."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kelpseg.ablate import AblationSpec, run_ablation, summarise, to_markdown
from kelpseg.cli.app import main
from kelpseg.config import validate_config
from kelpseg.errors import KelpsegError
from tests.nn.conftest import split_catalog, split_catalog_path, synth_root  # noqa: F401
from tests.nn.model_fixtures import band_stats_path, tiny_config_dict  # noqa: F401

SPEC = {
    "seeds": [1, 2],
    "variants": [
        {"name": "ce-only", "description": "cross-entropy alone", "set": {"loss": "ce"}},
        {"name": "high-lr", "set": {"optim.lr": 0.01, "optim.scheduler": "none"}},
    ],
}


@pytest.mark.parametrize(
    "key", ["seed", "trainer.max_epochs", "data.sampler.samples_per_epoch", "data", "tracking.uri"]
)
def test_a_variant_may_not_change_the_shared_budget(key: str) -> None:
    spec = {"variants": [{"name": "cheat", "set": {key: 1}}]}
    with pytest.raises(KelpsegError, match="budget"):
        validate_config(AblationSpec, spec)


def test_variant_names_must_be_unique_and_not_base() -> None:
    twice = {"variants": [{"name": "a", "set": {"optim.lr": 1}}, {"name": "a", "set": {"x": 1}}]}
    with pytest.raises(KelpsegError, match="used twice"):
        validate_config(AblationSpec, twice)
    with pytest.raises(KelpsegError, match="not 'base'"):
        validate_config(AblationSpec, {"variants": [{"name": "base", "set": {"optim.lr": 1}}]})


def test_gains_are_paired_by_fold_and_seed() -> None:
    runs = pd.DataFrame(
        {
            "variant": ["base", "base", "base", "v", "v", "v"],
            "fold": [0, 0, 1, 0, 0, 1],
            "seed": [1, 2, 1, 2, 1, 1],  # the variant's rows come in another order
            "dice": [0.50, 0.60, 0.70, 0.65, 0.52, 0.69],
        }
    )
    table = summarise(runs, {"v": "a variant"}).set_index("variant")
    deltas = [0.65 - 0.60, 0.52 - 0.50, 0.69 - 0.70]
    assert table.loc["v", "delta_mean"] == pytest.approx(statistics.fmean(deltas))
    assert table.loc["v", "delta_std"] == pytest.approx(statistics.stdev(deltas))
    assert table.loc["v", "dice_std"] == pytest.approx(statistics.stdev([0.65, 0.52, 0.69]))
    assert table.loc["v", "wins"] == 2
    assert table.loc["base", "delta_mean"] == 0.0
    assert "| v | 3 | 0.6200 ± " in to_markdown(table.reset_index())


@pytest.mark.slow
def test_a_tiny_ablation_writes_its_table_and_a_rerun_trains_nothing(
    tmp_path: Path,
    split_catalog_path: Path,  # noqa: F811
    band_stats_path: Path,  # noqa: F811
) -> None:
    base = tiny_config_dict(split_catalog_path, band_stats_path, tmp_path / "unused")
    base_file = tmp_path / "base.yaml"
    base_file.write_text(yaml.safe_dump(base))
    spec = validate_config(AblationSpec, SPEC)
    out = tmp_path / "ablation"

    result = run_ablation(base_file, spec, out, show_progress=False)

    assert result.runs["trained"].all() and len(result.runs) == 6
    # Every number in the table comes from the runs' own result.json files.
    dice = {
        (name, seed): json.loads((out / "runs" / name / f"fold-0-seed-{seed}" / "result.json")
                                 .read_text())["best_dice"]
        for name in ("base", "ce-only", "high-lr") for seed in (1, 2)
    }  # fmt: skip
    table = pd.read_csv(out / "ablation.csv").set_index("variant")
    assert list(table.index) == ["base", "ce-only", "high-lr"]
    for name in ("ce-only", "high-lr"):
        gains = [dice[(name, s)] - dice[("base", s)] for s in (1, 2)]
        assert table.loc[name, "dice_mean"] == pytest.approx(
            statistics.fmean([dice[(name, 1)], dice[(name, 2)]]), abs=1e-6
        )
        assert table.loc[name, "delta_mean"] == pytest.approx(statistics.fmean(gains), abs=1e-6)
        assert table.loc[name, "delta_std"] == pytest.approx(statistics.stdev(gains), abs=1e-6)
    run_cfg = yaml.safe_load(
        (out / "runs" / "high-lr" / "fold-0-seed-2" / "config.yaml").read_text()
    )
    assert run_cfg["optim"]["lr"] == 0.01 and run_cfg["seed"] == 2
    assert run_cfg["trainer"]["max_epochs"] == base["trainer"]["max_epochs"]
    assert "| ce-only | 2 |" in (out / "ablation.md").read_text()

    # Resumable: the CLI re-run reads every finished run back and writes the same table.
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    before = (out / "ablation.csv").read_text()
    code = main(["ablate", "--config", str(base_file), "--vary", str(spec_file),
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    assert not pd.read_csv(out / "runs.csv")["trained"].any()
    assert (out / "ablation.csv").read_text() == before

    # A changed variant under an old name is refused rather than mixed into the table.
    changed = {**SPEC, "variants": [{"name": "high-lr", "set": {"optim.lr": 0.02}}]}
    spec_file.write_text(yaml.safe_dump(changed))
    code = main(["ablate", "--config", str(base_file), "--vary", str(spec_file),
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 2


def _at(config: object, key: str) -> object:
    for part in key.split("."):
        config = getattr(config, part)
    return config.model_dump() if hasattr(config, "model_dump") else config


@pytest.mark.parametrize(
    "spec_path", sorted(Path(__file__).parents[2].glob("configs/ablations/*.yaml")), ids=str
)
def test_shipped_ablation_specs_give_valid_run_configs(spec_path: Path, tmp_path: Path) -> None:
    """Every variant of every shipped spec validates on the demo config and changes its keys."""
    from kelpseg.ablate.runner import load_spec, run_config

    base_path = Path(__file__).parents[2] / "configs" / "demo.yaml"
    spec = load_spec(spec_path)
    base = run_config(base_path, [], None, 0, spec.seeds[0], tmp_path / "base")
    for variant in spec.variants:
        config = run_config(base_path, [], variant, 0, spec.seeds[0], tmp_path / variant.name)
        changed = [key for key in variant.set if _at(config, key) != _at(base, key)]
        assert changed, f"{variant.name}: no key differs from the base"
