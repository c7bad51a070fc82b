"""One config system: pydantic models per stage, YAML files, dotted command-line overrides.

Every stage defines its settings as a :class:`StrictModel`; a run config composes them. Unknown
keys and bad values are :class:`~kelpseg.errors.KelpsegError` naming the key (and file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-4"`` -> (["train", "lr"], 0.0003); the value is parsed as YAML."""
    if "=" not in text:
        raise KelpsegError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise KelpsegError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise KelpsegError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted ``key=value`` overrides applied."""
    out: dict[str, Any] = _deep_copy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise KelpsegError(f"override {text!r}: {key!r} is not a section")
            node = child
        node[keys[-1]] = value
    return out


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise KelpsegError("config file does not exist", path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise KelpsegError(f"not valid YAML ({str(exc).splitlines()[0]})", path) from exc
    if not isinstance(data, dict):
        raise KelpsegError("a config file must hold a mapping at its top level", path)
    return data


def validate_config(model: type[M], data: dict[str, Any], source: str | None = None) -> M:
    """Build ``model`` from ``data``; the first error names its dotted key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        where = f"{source}: " if source else ""
        raise KelpsegError(f"{where}config key '{key}': {msg}{more}") from exc


def load_config(
    model: type[M],
    path: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
) -> M:
    """Load ``model`` from an optional YAML file plus dotted overrides.

    Args:
        model: the pydantic config class.
        path: YAML file; ``None`` starts from the model's defaults.
        overrides: ``key.sub=value`` strings, applied in order after the file.
    """
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides or [])
    return validate_config(model, data, str(path) if path is not None else None)


def save_config(config: BaseModel, path: str | os.PathLike[str]) -> Path:
    """Write the resolved config as YAML beside the outputs it produced (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return path
