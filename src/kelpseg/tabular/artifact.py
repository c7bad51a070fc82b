"""A trained tree model with everything needed to use it: channels, features, threshold, folds.

Saved as a folder: the model in its library's own format (``model.ubj``, ``model.txt``,
``model.cbm`` or ``model.skops``), ``model.json`` (the sidecar: model name, channel list,
feature config, decision threshold, the folds it was trained on and the one it never saw) and,
when the features need them, ``band_stats.json``. The sidecar is written last, so a folder
with a sidecar holds a complete model.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kelpseg.errors import KelpsegError
from kelpseg.features import BandStats, FeatureConfig, InputBuilder
from kelpseg.io.atomic import atomic_path
from kelpseg.tabular.inputs import make_builder
from kelpseg.tabular.models import get_model_spec

SIDECAR = "model.json"
STATS_FILE = "band_stats.json"
FORMAT = "kelpseg.tabular_model"
VERSION = 1
PathLike = str | os.PathLike[str]


@dataclass
class TabularModel:
    """A fitted tree model and the feature recipe its columns come from.

    Attributes:
        name: registry key (``"xgboost"`` ...).
        estimator: the library's model object.
        features: channels (column order) and masking of the inputs.
        threshold: decision threshold (chosen on the validation fold when there is one).
        holdout_fold: the fold never seen in training (``None``: trained on every fold).
        train_folds: the folds whose pixels trained it.
        params: the library parameters used.
        best_iteration: boosting rounds kept by early stopping, if any.
        stats: band statistics the features were filled with, if any.
        path: the folder it was loaded from or saved to.
    """

    name: str
    estimator: Any
    features: FeatureConfig
    threshold: float = 0.5
    holdout_fold: int | None = None
    train_folds: list[int] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    best_iteration: int | None = None
    stats: BandStats | None = None
    path: Path | None = None
    _builder: InputBuilder | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def channels(self) -> list[str]:
        """Feature columns, in order."""
        return list(self.features.channels)

    @property
    def builder(self) -> InputBuilder:
        """The channel builder for raw tiles (built once)."""
        if self._builder is None:
            self._builder = make_builder(self.features, self.stats)
        return self._builder

    def predict_pixels(self, x: np.ndarray, batch_pixels: int = 2_000_000) -> np.ndarray:
        """Kelp probability of each row of ``x`` (n, C), in batches of ``batch_pixels`` rows."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.channels):
            raise KelpsegError(
                f"model {self.name} expects (n, {len(self.channels)}) features, got {x.shape}"
            )
        spec = get_model_spec(self.name)
        out = np.empty(len(x), dtype=np.float32)
        for start in range(0, len(x), batch_pixels):
            part = x[start : start + batch_pixels]
            out[start : start + len(part)] = spec.predict(self.estimator, part)
        return np.clip(out, 0.0, 1.0)

    def importances(self) -> pd.Series:
        """Feature importances normalised to sum 1, highest first, indexed by channel."""
        values = np.asarray(get_model_spec(self.name).importances(self.estimator), np.float64)
        total = values.sum()
        values = values / total if total > 0 else values
        series = pd.Series(values, index=pd.Index(self.channels, name="channel"), name="importance")
        return series.sort_values(ascending=False, kind="stable")

    def sidecar(self, model_file: str) -> dict[str, Any]:
        """The JSON document saved beside the model file."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": self.name,
            "file": model_file,
            "channels": self.channels,
            "features": self.features.model_dump(mode="json"),
            "threshold": float(self.threshold),
            "holdout_fold": self.holdout_fold,
            "train_folds": [int(f) for f in self.train_folds],
            "params": self.params,
            "best_iteration": self.best_iteration,
            "stats_file": STATS_FILE if self.stats is not None else None,
        }

    def save(self, out_dir: PathLike) -> Path:
        """Write the model folder (model file, stats, then the sidecar); returns the folder."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        spec = get_model_spec(self.name)
        model_file = f"model{spec.suffix}"
        _save_with_suffix(out / model_file, lambda tmp: spec.save(self.estimator, tmp))
        if self.stats is not None:
            self.stats.to_json(out / STATS_FILE)
        with atomic_path(out / SIDECAR) as tmp:
            tmp.write_text(json.dumps(self.sidecar(model_file), indent=1, default=_plain))
        self.path = out
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _save_with_suffix(target: Path, save: Callable[[Path], None]) -> None:
    # Libraries pick the format from the suffix, so the temporary file keeps it.
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        save(tmp)
        tmp.replace(target)
    except OSError as exc:
        raise KelpsegError(f"cannot write model ({exc.strerror or exc})", target) from exc
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def read_sidecar(model_dir: PathLike) -> dict[str, Any]:
    """The ``model.json`` of a model folder, checked for format and required keys."""
    path = Path(model_dir) / SIDECAR
    if not path.is_file():
        raise KelpsegError(f"not a tabular model folder (no {SIDECAR})", model_dir)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KelpsegError(f"unreadable model sidecar ({exc})", path) from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KelpsegError(f"not a {FORMAT} sidecar", path)
    missing = {"model", "file", "channels", "features", "threshold"} - set(doc)
    if missing:
        raise KelpsegError(f"sidecar lacks keys {sorted(missing)}", path)
    return doc


def load_model(model_dir: PathLike) -> TabularModel:
    """Load a model folder written by :meth:`TabularModel.save`.

    Raises:
        KelpsegError: no sidecar, an unknown model name, a missing model file, or a channel
            list that disagrees with the feature config.
    """
    root = Path(model_dir)
    doc = read_sidecar(root)
    spec = get_model_spec(str(doc["model"]))
    features = FeatureConfig.model_validate(doc["features"])
    if list(doc["channels"]) != features.channels:
        raise KelpsegError("sidecar channels disagree with its feature config", root / SIDECAR)
    model_path = root / str(doc["file"])
    if not model_path.is_file():
        raise KelpsegError("model file is missing", model_path)
    try:
        estimator = spec.load(model_path)
    except KelpsegError:
        raise
    except Exception as exc:  # each library raises its own error types for bad files
        raise KelpsegError(f"cannot load {spec.name} model ({exc})", model_path) from exc
    stats_file = doc.get("stats_file")
    stats = BandStats.from_json(root / stats_file) if stats_file else None
    holdout = doc.get("holdout_fold")
    return TabularModel(
        name=spec.name,
        estimator=estimator,
        features=features,
        threshold=float(doc["threshold"]),
        holdout_fold=None if holdout is None else int(holdout),
        train_folds=[int(f) for f in doc.get("train_folds", [])],
        params=dict(doc.get("params", {})),
        best_iteration=doc.get("best_iteration"),
        stats=stats,
        path=root,
    )
