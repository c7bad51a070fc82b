"""Band statistics: per-channel min, max, mean, std and quantiles, saved as JSON with options.

The options record how the numbers were made (masking, fill adjustment, DEM clipping, index
constants, quantile error bound); :meth:`BandStats.check_compatible` refuses a config that
would read them differently or needs channels they lack.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kelpseg.errors import KelpsegError
from kelpseg.features.config import FeatureConfig
from kelpseg.io.atomic import atomic_path

FORMAT = "kelpseg.band_stats"
VERSION = 1
FIELDS = ("min", "max", "mean", "std")
# Options that change the numbers, compared with the consumer's config.
CHECKED_OPTIONS = (
    "mask_using_qa",
    "mask_using_water_mask",
    "adjustment",
    "dem_clip_zero",
    "missing_bands",
    "method",
)
# Options added after files were written: a file without the key was made with this value.
OPTION_DEFAULTS: dict[str, Any] = {"missing_bands": "nan", "method": "kelpseg"}


@dataclass
class BandStats:
    """Statistics of a set of channels over a dataset.

    Attributes:
        channels: channel names, in the order they were computed.
        min, max, mean, std: per-channel values over finite pixels (NaN if a channel had none).
        count: finite pixels per channel.
        quantiles: quantile level -> channel -> value.
        options: how they were computed (see docs/features.md).
        source: the file they were read from, for messages.
    """

    channels: list[str]
    min: dict[str, float]
    max: dict[str, float]
    mean: dict[str, float]
    std: dict[str, float]
    count: dict[str, int]
    quantiles: dict[float, dict[str, float]]
    options: dict[str, Any] = field(default_factory=dict)
    source: Path | None = field(default=None, compare=False)

    def vector(self, name: str, channels: Sequence[str]) -> np.ndarray:
        """One statistic (``"min"``, ``"max"``, ``"mean"``, ``"std"``) for ``channels``."""
        if name not in FIELDS:
            raise KelpsegError(f"unknown statistic {name!r}; one of {', '.join(FIELDS)}")
        self._require(channels)
        values: dict[str, float] = getattr(self, name)
        return np.array([values[c] for c in channels], dtype=np.float64)

    def quantile(self, q: float, channels: Sequence[str]) -> np.ndarray:
        """The ``q`` quantile of ``channels``; error if it was not computed."""
        self._require(channels)
        key = self._quantile_key(q)
        if key is None:
            have = ", ".join(f"{k:g}" for k in sorted(self.quantiles))
            raise KelpsegError(
                f"band statistics hold no {q:g} quantile (have {have}); recompute them",
                self.source,
            )
        return np.array([self.quantiles[key][c] for c in channels], dtype=np.float64)

    def _quantile_key(self, q: float) -> float | None:
        return next((k for k in self.quantiles if math.isclose(k, q, abs_tol=1e-9)), None)

    def _require(self, channels: Sequence[str]) -> None:
        missing = [c for c in channels if c not in self.channels]
        if missing:
            raise KelpsegError(
                f"band statistics lack channel(s) {', '.join(missing)}; recompute them with "
                "`kelpseg stats --channels ...`",
                self.source,
            )

    def check_compatible(self, config: FeatureConfig) -> None:
        """Refuse statistics that lack a channel or were made with other options.

        Raises:
            KelpsegError: naming the missing channels or each differing option.
        """
        self._require(config.channels)
        made_with = config.stats_config()
        wanted = {
            "mask_using_qa": made_with.mask_using_qa,
            "mask_using_water_mask": made_with.mask_using_water_mask,
            "adjustment": config.adjustment,
            "dem_clip_zero": config.dem_clip_zero,
            "missing_bands": config.missing_bands,
            "method": config.stats_method,
        }
        have = {key: self.options.get(key, OPTION_DEFAULTS.get(key)) for key in wanted}
        diffs = [
            f"{key}={have[key]!r} (config wants {value!r})"
            for key, value in wanted.items()
            if have[key] != value
        ]
        constants = self.options.get("index_constants", {})
        if constants != config.index_constants:
            diffs.append(f"index_constants={constants!r} (config wants {config.index_constants!r})")
        if diffs:
            raise KelpsegError(
                "band statistics were computed with other options: " + "; ".join(diffs),
                self.source,
            )
        for q in config.quantiles:
            self.quantile(q, config.channels)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the statistics atomically as JSON (non-finite values as ``null``)."""
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "channels": self.channels,
            "options": self.options,
            "stats": {c: self._channel_doc(c) for c in self.channels},
        }
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
        return path

    def _channel_doc(self, c: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"count": int(self.count[c])}
        doc.update({f: _finite(getattr(self, f)[c]) for f in FIELDS})
        doc["quantiles"] = {repr(q): _finite(v[c]) for q, v in sorted(self.quantiles.items())}
        return doc

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> BandStats:
        """Read statistics written by :meth:`to_json`.

        Raises:
            KelpsegError: missing, unreadable or malformed file (named in the message).
        """
        path = Path(path)
        if not path.is_file():
            raise KelpsegError("band statistics file does not exist", path)
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KelpsegError(f"not a readable JSON file ({exc})", path) from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise KelpsegError(f"not a kelpseg band statistics file (format != {FORMAT})", path)
        if doc.get("version") != VERSION:
            raise KelpsegError(f"unsupported band statistics version {doc.get('version')}", path)
        try:
            return cls._from_doc(doc, path)
        except (KeyError, TypeError, ValueError) as exc:
            raise KelpsegError(
                f"malformed band statistics ({type(exc).__name__}: {exc})", path
            ) from exc

    @classmethod
    def _from_doc(cls, doc: dict[str, Any], path: Path) -> BandStats:
        channels = [str(c) for c in doc["channels"]]
        stats = doc["stats"]
        values = {f: {c: _number(stats[c][f]) for c in channels} for f in FIELDS}
        levels = {float(q) for c in channels for q in stats[c]["quantiles"]}
        quantiles = {
            q: {c: _number(stats[c]["quantiles"][repr(q)]) for c in channels}
            for q in sorted(levels)
        }
        return cls(
            channels=channels,
            count={c: int(stats[c]["count"]) for c in channels},
            quantiles=quantiles,
            options=dict(doc.get("options", {})),
            source=path,
            **values,
        )


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)
