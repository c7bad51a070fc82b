"""The development log's experiments as shipped configs, and the table of docs/reproduce.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kelpseg.config import load_config
from kelpseg.nn.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
SEED_LOG = sorted((CONFIGS / "seed-log").glob("*.yaml"))
REPRODUCE = ROOT / "docs" / "reproduce.md"
# configs/spaces/ holds search spaces of `kelpseg tune`, configs/ablations/ ablation specs and
# configs/audit/ label-audit settings: not run configs.
RUN_CONFIGS = sorted(CONFIGS.glob("*.yaml")) + SEED_LOG


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_run_config_validates(path: Path) -> None:
    config = load_config(TrainConfig, path)
    assert config.tracking.enabled and config.trainer.max_epochs >= 1


def test_the_log_configs_are_its_experiments_and_distinct_from_the_final_recipe() -> None:
    assert len(SEED_LOG) >= 10
    configs = {p.stem: load_config(TrainConfig, p) for p in SEED_LOG}
    best = configs["10-best-17-channels"]
    assert best.features.channels == [
        "R", "G", "B", "SWIR1", "NIR", "QA", "DEM", "DEMWM", "NDVI",
        "ATSAVI", "CDOM", "CI", "ClGreen", "GVMI", "I", "MCARI", "MVI",
    ]  # fmt: skip
    assert best.features.adjustment == "nan-adjusted" and best.features.fill_value == "nan"
    assert configs["09-zero-adjusted"].features.adjustment == "zero-adjusted"
    assert configs["09-zero-adjusted"].features.missing_bands == "zero"
    assert not configs["09-zero-adjusted"].features.stats_masked
    seed_best = load_config(TrainConfig, CONFIGS / "seed-best.yaml")
    assert best.features.channels != seed_best.features.channels
    assert configs["07-loss-weighted-ce"].loss.terms[0].params == {"class_weights": [0.4, 0.6]}
    assert configs["08-weighted-sampler"].data.sampler.weighted
    assert configs["03-reorder-ndvi"].features.channels[:3] == ["R", "G", "B"]
    # Pretrained encoders are the default of real-data configs; only the scratch run differs.
    scratch = [name for name, c in configs.items() if c.model.encoder_weights is None]
    assert scratch == ["02-scratch"]
    assert all(c.model.head == "multiclass" for c in configs.values())
    assert len({c.output_dir for c in configs.values()}) == len(configs)


def test_the_log_configs_set_the_authors_code_at_each_date() -> None:
    configs = {p.stem: load_config(TrainConfig, p) for p in SEED_LOG}
    for name, c in configs.items():
        assert c.features.stats_method == "author" and not c.features.dem_clip_zero, name
        assert c.data.augment.rot90 == 0.0 and c.data.augment.rotate == 0.5, name
        assert c.data.augment.rotate_degrees == 90.0, name
        assert c.data.augment.rotate_padding == "zeros", name
        assert c.data.sizing.pad_mode == "zeros" and c.trainer.deterministic == "warn", name
        assert c.optim.pct_start == 0.3, name
        if c.data.sampler.weighted:
            assert c.data.sampler.formula == "author", name
    early = ("01-baseline-resnet50", "02-scratch", "03-reorder-ndvi")
    assert all(configs[n].optim.optimizer == "adam" for n in early)  # AdamW from 2023-12-17
    assert all(configs[n].optim.scheduler == "none" for n in early)
    before_quantile = (*early, "04-aoi-split")
    assert all(configs[n].features.normalization == "z-score" for n in before_quantile)
    assert str(configs["01-baseline-resnet50"].data.catalog).endswith("split-random-5.parquet")
    seed_best = load_config(TrainConfig, CONFIGS / "seed-best.yaml")
    assert seed_best.data.sampler.formula == "author"


def _table_rows() -> list[tuple[str, list[str], list[str]]]:
    rows = []
    for line in REPRODUCE.read_text().splitlines():
        match = re.match(r"\| `([\w.-]+\.yaml)` \|(.*)", line)
        if match:
            cells = [c.strip() for c in match.group(2).split(" | ")]
            rows.append((match.group(1), re.findall(r"`--set ([^`]+)`", cells[0]), cells))
    return rows


def test_every_row_of_the_reproduce_table_is_a_valid_run() -> None:
    rows = _table_rows()
    assert len(rows) >= 150
    assert {name for name, _, _ in rows} == {p.name for p in SEED_LOG}
    for name, overrides, cells in rows:
        base = load_config(TrainConfig, CONFIGS / "seed-log" / name)
        config = load_config(TrainConfig, CONFIGS / "seed-log" / name, overrides)
        assert config.data.catalog is not None
        # Every row names the metric to compare with; val/dice rows the log's macro Dice.
        assert "dice" in cells[-1].lower(), (name, overrides)
        if not cells[2].startswith("LB"):
            assert "dice_macro" in cells[-1], (name, overrides)
        for override in overrides:
            key = override.split("=", 1)[0]
            assert key.split(".")[0] in TrainConfig.model_fields, override
            # The override applies: the key's value is now the one the row asks for.
            node_new: object = config
            node_old: object = base
            for part in key.split("."):
                node_new = getattr(node_new, part)
                node_old = getattr(node_old, part)
            assert node_new != node_old, f"{name}: {override} changes nothing"
