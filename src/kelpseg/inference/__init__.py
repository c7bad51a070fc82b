"""Inference: TTA, ensembles, post-processing, prediction folders and the submission.

Everything here takes models as plain callables and predictions as arrays, so it runs
without a trained model. :mod:`kelpseg.inference.tta` needs torch (the ``train`` extra) and is
imported lazily: ``from kelpseg.inference import tta_predict`` works, but importing this
package alone does not load torch.
"""

from __future__ import annotations

from typing import Any

from kelpseg.inference.ensemble import (
    ENSEMBLE_MODES,
    EnsembleSource,
    combine,
    normalise_weights,
    weights_from_scores,
    write_soft_labels,
)
from kelpseg.inference.postprocess import (
    POSTPROCESSORS,
    PostprocessConfig,
    apply_postprocess,
)
from kelpseg.inference.rasters import (
    MASK_SUFFIX,
    PROB_SUFFIX,
    PredictionDir,
    as_source,
    read_prediction,
    write_predictions,
)
from kelpseg.inference.submission import (
    InvalidPredictionsError,
    check_prediction_dir,
    check_submission,
    write_submission,
)

_LAZY = {"tta_predict", "TtaConfig", "TRANSFORMS", "MERGES", "to_probability"}
_PREDICT = {"Predictor", "PredictConfig", "load_predictor", "predict_tiles", "run_predict"}

__all__ = [
    "ENSEMBLE_MODES",
    "MASK_SUFFIX",
    "MERGES",
    "POSTPROCESSORS",
    "PROB_SUFFIX",
    "TRANSFORMS",
    "EnsembleSource",
    "InvalidPredictionsError",
    "PostprocessConfig",
    "PredictConfig",
    "PredictionDir",
    "Predictor",
    "TtaConfig",
    "apply_postprocess",
    "as_source",
    "check_prediction_dir",
    "check_submission",
    "combine",
    "load_predictor",
    "normalise_weights",
    "predict_tiles",
    "read_prediction",
    "run_predict",
    "to_probability",
    "tta_predict",
    "weights_from_scores",
    "write_predictions",
    "write_soft_labels",
    "write_submission",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from kelpseg.inference import tta

        return getattr(tta, name)
    if name in _PREDICT:
        from kelpseg.inference import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'kelpseg.inference' has no attribute {name!r}")
