from __future__ import annotations

from pathlib import Path

import pytest

from kelpseg.config import StrictModel, apply_overrides, load_config, save_config
from kelpseg.errors import KelpsegError


class Optim(StrictModel):
    lr: float = 3e-4
    name: str = "adamw"


class Run(StrictModel):
    optim: Optim = Optim()
    epochs: int = 10
    channels: list[str] = ["R", "G"]


def test_defaults_file_and_overrides_compose(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("epochs: 3\noptim:\n  name: sgd\n")
    cfg = load_config(Run, cfg_file, ["optim.lr=1e-3", "channels=[NIR, SWIR1]"])
    assert cfg.epochs == 3
    assert cfg.optim == Optim(lr=1e-3, name="sgd")
    assert cfg.channels == ["NIR", "SWIR1"]


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="config key 'optim.momentum': unknown key"):
        load_config(Run, None, ["optim.momentum=0.9"])


def test_wrong_type_is_named_with_file(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("epochs: many\n")
    with pytest.raises(KelpsegError, match=r"c.yaml: config key 'epochs'"):
        load_config(Run, cfg_file)


@pytest.mark.parametrize("bad", ["noequals", "=3", "a..b=1"])
def test_malformed_override(bad: str) -> None:
    with pytest.raises(KelpsegError):
        apply_overrides({}, [bad])


def test_override_into_a_scalar_is_refused() -> None:
    with pytest.raises(KelpsegError, match="is not a section"):
        apply_overrides({"epochs": 3}, ["epochs.x=1"])


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(KelpsegError, match="not valid YAML"):
        load_config(Run, bad)
    with pytest.raises(KelpsegError, match="does not exist"):
        load_config(Run, tmp_path / "none.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n")
    with pytest.raises(KelpsegError, match="mapping"):
        load_config(Run, listy)


def test_saved_config_reloads_equal(tmp_path: Path) -> None:
    cfg = Run(epochs=7)
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(Run, path) == cfg
