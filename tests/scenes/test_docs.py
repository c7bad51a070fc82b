"""docs/scenes.md stays in sync with the commands and the config it describes."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.main import get_command

from kelpseg.cli import scenes as scenes_cmds
from kelpseg.scenes.config import SceneConfig
from kelpseg.scenes.qa import QA_PIXEL_BITS
from kelpseg.scenes.scaling import SCALING_CHOICES
from kelpseg.scenes.windows import BLENDS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "scenes.md").read_text()


def _options() -> set[str]:
    app = typer.Typer()
    for function in (scenes_cmds.predict_scene, scenes_cmds.area, scenes_cmds.synth_scene):
        app.command()(function)
    names: set[str] = set()
    for command in get_command(app).commands.values():  # type: ignore[attr-defined]
        for param in command.params:
            names.update(o for o in param.opts if o.startswith("--"))
    return names


def test_every_flag_in_the_docs_exists() -> None:
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", DOC))
    assert flags - {"--help"} <= _options(), flags - _options()
    assert {"--model", "--dem", "--regions", "--bands", "--preset", "--dates"} <= flags


def test_every_set_key_in_the_docs_is_a_config_field() -> None:
    keys = set(re.findall(r"--set '?([a-z_.]+)=", DOC)) - {"key"}
    assert len(keys) >= 4
    for key in keys:
        section, _, field = key.partition(".")
        assert section in SceneConfig.model_fields, key
        if field:
            annotation = SceneConfig.model_fields[section].annotation
            assert field in annotation.model_fields, key  # type: ignore[union-attr]


def test_documented_choices_match_the_registries() -> None:
    for flag in QA_PIXEL_BITS:
        assert f"| `{flag}` |" in DOC
    for name in (*SCALING_CHOICES, *BLENDS):
        assert f"`{name}`" in DOC, name
