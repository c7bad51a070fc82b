"""Search spaces: YAML validation with clear errors, values as overrides, subsets, shipped spaces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from kelpseg.config import apply_overrides, load_config, parse_override
from kelpseg.errors import KelpsegError
from kelpseg.nn.config import TrainConfig
from kelpseg.tune.objective import check_space, load_base_config
from kelpseg.tune.space import format_override, load_space, parse_space, pick_top_k
from tests.tune.conftest import SPACE

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "configs" / "spaces").glob("*.yaml"))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"optim.lr": {"type": "float", "low": 1.0, "high": 0.1}}, "'optim.lr'.*must be below"),
        ({"optim.lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "log scale"),
        ({"optim.lr": {"type": "float", "low": 1e-4, "high": 1.0, "lows": 3}}, "'lows': unknown"),
        ({"optim.lr": {"type": "uniform", "low": 0, "high": 1}}, "'type' must be one of"),
        ({"data.batch_size": {"type": "int", "low": 1, "high": 64, "log": True, "step": 2}},
         "log and step"),
        ({"loss": {"type": "categorical", "choices": []}}, "choices is empty"),
        ({"loss": [["dice"], ["ce"]]}, "need labels"),
        ({"features.channels": {"type": "subset", "k": 3, "choices": ["A", "B"]}}, "k \\(3\\)"),
        ({"features.channels": {"type": "subset", "k": 1, "choices": ["A"], "fixed": ["A"]}},
         "fixed items are also choices"),
        ({"output_dir": ["a", "b"]}, "set by the tuner"),
        ({"tracking.uri": ["a", "b"]}, "set by the tuner"),
        ({"model": {"type": "categorical", "choices": {"a": {"arch": "FPN"}}},
          "model.arch": ["Unet"]}, "set the same key"),
        ({"optim..lr": ["a"]}, "not a dotted config key"),
        ({"optim.lr": 0.1}, "expected a mapping"),
    ],
)  # fmt: skip
def test_bad_entries_are_one_line_errors_naming_the_file_and_entry(
    tmp_path: Path, params: dict[str, Any], message: str
) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"params": params}))
    with pytest.raises(KelpsegError, match=message) as info:
        load_space(path)
    assert info.value.path == str(path)
    assert "\n" not in str(info.value)


def test_a_space_needs_params_and_nothing_else(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="unknown top-level"):
        parse_space({"params": {"optim.lr": ["a"]}, "parms": {}})
    with pytest.raises(KelpsegError, match="'params' must map"):
        parse_space({"description": "empty"})


@pytest.mark.parametrize(
    "value",
    [3e-4, 1e-5, 10240, "dice", "1e-4", "yes", "a: b", True, None, [1, 2.5],
     [{"name": "ce", "params": {"class_weights": [0.4, 0.6]}}], "sqlite:////tmp/x.db"],
)  # fmt: skip
def test_override_strings_parse_back_to_the_same_value(value: Any) -> None:
    keys, parsed = parse_override(format_override("a.b", value))
    assert keys == ["a", "b"]
    assert parsed == value and type(parsed) is type(value)


def test_mapping_values_are_merged_into_their_section() -> None:
    space = parse_space({
        "params": {"model": {"type": "categorical",
                             "choices": {"fpn": {"arch": "FPN", "arch_kwargs": {"k": 1}}}}}
    })  # fmt: skip
    lines = space.overrides({"model": {"arch": "FPN", "arch_kwargs": {"k": 1}}})
    assert lines == ["model.arch=FPN", "model.arch_kwargs.k=1"]
    merged = apply_overrides({"model": {"arch": "Unet", "encoder": "resnet18"}}, lines)
    assert merged["model"] == {"arch": "FPN", "encoder": "resnet18", "arch_kwargs": {"k": 1}}


def test_top_k_keeps_list_order_and_breaks_ties_by_position() -> None:
    items = ["a", "b", "c", "d", "e"]
    assert pick_top_k(items, [0.1, 0.9, 0.5, 0.95, 0.2], 2) == ["b", "d"]
    assert pick_top_k(items, [0.5] * 5, 3) == ["a", "b", "c"]


def test_a_trial_draws_every_kind_with_the_subset_exactly_k_long() -> None:
    space = parse_space(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(20):
        trial = study.ask()
        values = space.suggest(trial)
        channels = values["features.channels"]
        assert channels[:3] == ["R", "G", "B"] and len(channels) == 5
        assert set(channels[3:]) <= set(SPACE["params"]["features.channels"]["choices"])
        assert 1e-5 <= values["optim.lr"] <= 1e-1
        assert values["optim.scheduler"] in ("onecycle", "cosine", "none")
        # The chosen items are a function of the trial's parameters alone.
        keys = [trial.params[f"features.channels[{c}]"] for c in ("NDVI", "CDOM", "KIVU", "SABI",
                                                                  "WAVI")]  # fmt: skip
        assert channels[3:] == pick_top_k(["NDVI", "CDOM", "KIVU", "SABI", "WAVI"], keys, 2)
        seen.add(tuple(channels))
        study.tell(trial, 0.0)
    assert len(seen) > 3  # the subsets vary


def test_labelled_choices_record_the_label_and_set_the_value() -> None:
    space = parse_space({"params": {"loss": {"type": "categorical", "choices": {
        "ce_w": [{"name": "ce", "params": {"class_weights": [0.4, 0.6]}}]}}}})  # fmt: skip
    trial = optuna.create_study().ask()
    values = space.suggest(trial)
    assert trial.params == {"loss": "ce_w"}
    assert values["loss"] == [{"name": "ce", "params": {"class_weights": [0.4, 0.6]}}]


def test_space_check_finds_a_key_the_config_does_not_have(base_config: Path) -> None:
    _, overrides = load_base_config(base_config, [])
    bad = parse_space({"params": {"optim.lrr": {"type": "float", "low": 0.1, "high": 1.0}}})
    with pytest.raises(KelpsegError, match="search space.*'optim.lrr': unknown key"):
        check_space(bad, base_config, overrides)
    # Only the last choice is wrong: every choice is tried, not just the first.
    wrong = parse_space({"params": {"optim.scheduler": ["onecycle", "linear"]}})
    with pytest.raises(KelpsegError, match="optim.scheduler"):
        check_space(wrong, base_config, overrides)
    unknown_index = parse_space({"params": {"features.channels": {
        "type": "subset", "k": 1, "choices": ["NDVI", "NOTANINDEX"]}}})  # fmt: skip
    with pytest.raises(KelpsegError, match="NOTANINDEX"):
        check_space(unknown_index, base_config, overrides)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_spaces_fit_the_shipped_configs(path: Path) -> None:
    space = load_space(path)
    for config in ("seed-best.yaml", "demo.yaml"):
        _, overrides = load_base_config(ROOT / "configs" / config, [])
        check_space(space, ROOT / "configs" / config, overrides)


def test_shipped_spaces_cover_the_seeds_searches() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"sampler", "indices", "loss", "architecture", "optim"} <= names
    sampler = load_space(ROOT / "configs/spaces/sampler.yaml").params
    factors = set(TrainConfig().data.sampler.factors.model_dump())
    assert {k.rsplit(".", 1)[1] for k in sampler if ".factors." in k} == factors
    assert "data.sampler.samples_per_epoch" in sampler
    indices = load_space(ROOT / "configs/spaces/indices.yaml").params["features.channels"]
    assert indices.k == 8 and len(indices.choices) >= 40  # type: ignore[union-attr]
    # The seed's best AML combination is one point of the space.
    seed_best = {"CI", "CYA", "ClGreen", "IPVI", "KIVU", "NormNIR", "SABI", "mCRIG"}
    assert seed_best <= set(indices.choices)  # type: ignore[union-attr]


def test_every_architecture_pair_names_an_existing_encoder() -> None:
    import segmentation_models_pytorch as smp
    import timm

    space = load_space(ROOT / "configs/spaces/architecture.yaml")
    known = set(smp.encoders.get_encoder_names())
    for value in space.params["model"].corners():
        encoder = value["encoder"]
        ok = timm.is_model(encoder[3:]) if encoder.startswith("tu-") else encoder in known
        assert ok, encoder
        config = load_config(TrainConfig, None, space.overrides({"model": value}))
        assert config.model.encoder == encoder and config.model.encoder_weights == "imagenet"
