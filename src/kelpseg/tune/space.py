"""Search spaces declared in YAML: each entry names the dotted training-config key it sets.

```yaml
description: learning rate and schedule
params:
  optim.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
  optim.scheduler: [onecycle, cosine, none]          # shorthand for a categorical
  data.sampler.samples_per_epoch: {type: int, low: 5120, high: 10240, step: 5120}
  loss:                                             # labels -> any YAML value
    type: categorical
    choices: {dice: dice, ce_weighted: [{name: ce, params: {weight: [0.4, 0.6]}}]}
  features.channels:                                # choose 8 of these, after the fixed ones
    type: subset
    k: 8
    fixed: [R, G, B, SWIR1, NIR, QA, DEM, DEMWM, NDVI]
    choices: [ATSAVI, AVI, CDOM, CI, ...]
```

A mapping value is merged key by key into the section it names (``model: {arch: FPN,
encoder: resnet34}`` sets both keys and keeps the rest of ``model``); any other value replaces
the key. Values reach the config as dotted ``key=value`` overrides, exactly what ``--set`` takes.

Subsets use *random keys*: every candidate gets its own float parameter in [0, 1] and the ``k``
highest win (ties by list order), kept in list order. This always yields exactly ``k`` items, is
reproducible from the trial's parameters alone, and gives TPE and CMA-ES one smooth dimension per
candidate, so they learn which candidates good trials share and parameter importance ranks the
candidates. The alternative, one integer over all combinations (``C(45, 8)`` = 215 million), is
as exact but has no structure a sampler can learn from: it is random search in disguise.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal, Self

import optuna
import yaml
from pydantic import Field, TypeAdapter, ValidationError, model_validator

from kelpseg.config import StrictModel, read_yaml
from kelpseg.errors import KelpsegError

Scalar = str | int | float | bool | None
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Keys a trial sets itself: its own run folder and MLflow run.
RESERVED_KEYS = ("output_dir", "tracking")


class FloatParam(StrictModel):
    """A float in [low, high], optionally on a log scale or a grid of ``step``."""

    type: Literal["float"] = "float"
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _range(self) -> Self:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log scale needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        """Draw a value."""
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def corners(self) -> list[float]:
        """Values that check the key accepts the whole range."""
        return [self.low, self.high]


class IntParam(StrictModel):
    """An integer in [low, high], optionally on a log scale or a grid of ``step``."""

    type: Literal["int"] = "int"
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _range(self) -> Self:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low < 1:
            raise ValueError("a log scale needs low >= 1")
        if self.log and self.step != 1:
            raise ValueError("log and step cannot be combined")
        return self

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        """Draw a value."""
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def corners(self) -> list[int]:
        """Values that check the key accepts the whole range."""
        return [self.low, self.high - (self.high - self.low) % self.step]


class CategoricalParam(StrictModel):
    """One of ``choices``: a list of scalars, or a mapping of labels to any YAML value."""

    type: Literal["categorical"] = "categorical"
    choices: list[Scalar] | dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _scalar_list(cls, data: Any) -> Any:
        choices = data.get("choices") if isinstance(data, dict) else None
        if isinstance(choices, list) and any(isinstance(c, list | dict) for c in choices):
            raise ValueError("list or mapping choices need labels: choices: {label: value, ...}")
        return data

    @model_validator(mode="after")
    def _choices(self) -> Self:
        if not self.choices:
            raise ValueError("choices is empty")
        if isinstance(self.choices, list) and len(set(map(repr, self.choices))) < len(self.choices):
            raise ValueError("choices repeat a value")
        return self

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        """Draw a choice (a label for mappings: the trial records the label)."""
        if isinstance(self.choices, dict):
            return self.choices[trial.suggest_categorical(name, list(self.choices))]
        return trial.suggest_categorical(name, self.choices)

    def corners(self) -> list[Any]:
        """Every choice."""
        return list(self.choices.values() if isinstance(self.choices, dict) else self.choices)


class SubsetParam(StrictModel):
    """``k`` of ``choices`` (random keys, see the module docstring), after the ``fixed`` items."""

    type: Literal["subset"] = "subset"
    choices: list[Scalar]
    k: int = Field(ge=1)
    fixed: list[Scalar] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sizes(self) -> Self:
        if len(set(map(repr, self.choices))) < len(self.choices):
            raise ValueError("choices repeat a value")
        if self.k > len(self.choices):
            raise ValueError(f"k ({self.k}) exceeds the {len(self.choices)} choices")
        both = [c for c in self.fixed if c in self.choices]
        if both:
            raise ValueError(f"fixed items are also choices: {both}")
        return self

    def suggest(self, trial: optuna.Trial, name: str) -> list[Any]:
        """Draw one key per candidate; return ``fixed`` + the ``k`` best, in list order."""
        keys = [trial.suggest_float(f"{name}[{item}]", 0.0, 1.0) for item in self.choices]
        return [*self.fixed, *pick_top_k(self.choices, keys, self.k)]

    def corners(self) -> list[list[Any]]:
        """The first ``k`` choices, then all of them at once (checks every candidate)."""
        return [[*self.fixed, *self.choices[: self.k]], [*self.fixed, *self.choices]]


Param = Annotated[
    FloatParam | IntParam | CategoricalParam | SubsetParam, Field(discriminator="type")
]
PARAM_TYPES: dict[str, type[StrictModel]] = {
    "float": FloatParam,
    "int": IntParam,
    "categorical": CategoricalParam,
    "subset": SubsetParam,
}
_PARAM = TypeAdapter(Param)


def pick_top_k(items: list[Any], keys: list[float], k: int) -> list[Any]:
    """The ``k`` items with the highest keys (ties: earlier first), in their list order."""
    ranked = sorted(range(len(items)), key=lambda i: (-keys[i], i))[:k]
    return [items[i] for i in sorted(ranked)]


class SearchSpace(StrictModel):
    """Named parameters, each setting one dotted key of the training config."""

    description: str = ""
    params: dict[str, Param] = Field(min_length=1)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw every parameter for ``trial``: dotted key -> config value."""
        return {key: param.suggest(trial, key) for key, param in self.params.items()}

    def overrides(self, values: dict[str, Any]) -> list[str]:
        """Config values -> ``key=value`` override strings (mappings merged key by key)."""
        out: list[str] = []
        for key, value in values.items():
            out.extend(_override_lines(key, value))
        return out

    def corner_overrides(self) -> list[list[str]]:
        """Override sets that together try every choice and both ends of every range."""
        first = {key: param.corners()[0] for key, param in self.params.items()}
        sets = [self.overrides(first)]
        for key, param in self.params.items():
            for value in param.corners()[1:]:
                sets.append(self.overrides({**first, key: value}))
        return sets


def format_override(key: str, value: Any) -> str:
    """``key=value`` with the value written as one line of YAML (what ``--set`` parses)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31 - 1).strip()
    text = text.removesuffix("...").strip()  # PyYAML's end-of-document marker after scalars
    return f"{key}={text}"


def _override_lines(key: str, value: Any) -> list[str]:
    if isinstance(value, dict) and value:
        return [line for k, v in value.items() for line in _override_lines(f"{key}.{k}", v)]
    return [format_override(key, value)]


def parse_space(data: dict[str, Any], source: str | os.PathLike[str] | None = None) -> SearchSpace:
    """Validate a search-space mapping; errors name the entry (and file).

    Raises:
        KelpsegError: unknown top-level keys, a bad entry, or a key that cannot be a config key.
    """
    unknown = sorted(set(data) - {"description", "params"})
    if unknown:
        raise KelpsegError(f"unknown top-level key(s) {unknown}; expected params", source)
    params = data.get("params")
    if not isinstance(params, dict) or not params:
        raise KelpsegError("'params' must map config keys to parameter specs", source)
    parsed: dict[str, Any] = {}
    for key, spec in params.items():
        parsed[str(key)] = _parse_entry(str(key), spec, source)
    _check_keys(list(parsed), source)
    return SearchSpace(description=str(data.get("description") or ""), params=parsed)


def _parse_entry(key: str, spec: Any, source: str | os.PathLike[str] | None) -> Any:
    where = f"entry '{key}'"
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, dict):
        raise KelpsegError(f"{where}: expected a mapping with 'type' or a list of choices", source)
    kind = spec.get("type")
    if kind not in PARAM_TYPES:
        raise KelpsegError(f"{where}: 'type' must be one of {', '.join(PARAM_TYPES)}", source)
    try:
        return _PARAM.validate_python(spec)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"][1:]) or "type"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        raise KelpsegError(f"{where}: '{field}': {msg}", source) from exc


def _check_keys(keys: list[str], source: str | os.PathLike[str] | None) -> None:
    for key in keys:
        if not _KEY.match(key):
            raise KelpsegError(f"entry '{key}': not a dotted config key", source)
        if key.split(".")[0] in RESERVED_KEYS:
            raise KelpsegError(f"entry '{key}': {key.split('.')[0]} is set by the tuner", source)
        for other in keys:
            if other != key and other.startswith(key + "."):
                raise KelpsegError(f"entries '{key}' and '{other}' set the same key", source)


def load_space(path: str | os.PathLike[str]) -> SearchSpace:
    """Read and validate a search-space YAML file."""
    return parse_space(read_yaml(path), path)
