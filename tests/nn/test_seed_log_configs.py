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


def _table_rows() -> list[tuple[str, list[str]]]:
    rows = []
    for line in REPRODUCE.read_text().splitlines():
        match = re.match(r"\| `([\w.-]+\.yaml)` \|(.*)", line)
        if match:
            rows.append((match.group(1), re.findall(r"`--set ([^`]+)`", match.group(2))))
    return rows


def test_every_row_of_the_reproduce_table_is_a_valid_run() -> None:
    rows = _table_rows()
    assert len(rows) >= 30
    for name, overrides in rows:
        config = load_config(TrainConfig, CONFIGS / "seed-log" / name, overrides)
        for override in overrides:
            key = override.split("=", 1)[0]
            assert key.split(".")[0] in TrainConfig.model_fields, override
        assert config.data.catalog is not None
