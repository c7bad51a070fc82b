"""Data quality: a label audit from out-of-fold predictions, and the DEM misalignment check.

Typical use from a notebook::

    from kelpseg.quality import AuditConfig, audit_labels, write_audit

    result = audit_labels("oof-predictions", "split/split.parquet", AuditConfig(fold=0))
    write_audit(result, "oof-predictions", "audit")   # ranking, exclude.txt, gallery.html

    from kelpseg.quality import predict_out_of_fold    # each fold by the model that held it out
    predict_out_of_fold("runs/cv", "split/split.parquet", "oof-net")
    audit_labels(["oof-net", "oof-tree"], "split/split.parquet", AuditConfig(combine="min"))

    from kelpseg.quality import estimate_dem_shift, misaligned_tiles
    misaligned_tiles("eda/tile_stats.parquet")          # DEM shifted by more than a pixel

:mod:`kelpseg.quality.alignment` needs only :mod:`kelpseg.io` (the EDA statistics use it), so
this package imports the audit, which reads predictions and draws galleries, on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from kelpseg.quality.alignment import AlignmentSettings, DemShift, estimate_dem_shift, realign_dem

_LAZY = {
    "AuditConfig": "kelpseg.quality.config",
    "AuditResult": "kelpseg.quality.audit",
    "SCORES": "kelpseg.quality.audit",
    "audit_labels": "kelpseg.quality.audit",
    "precision_at_k": "kelpseg.quality.audit",
    "predict_out_of_fold": "kelpseg.quality.oof",
    "write_audit": "kelpseg.quality.report",
    "misaligned_tiles": "kelpseg.quality.realign",
    "realign_dataset": "kelpseg.quality.realign",
}

__all__ = [
    "SCORES",
    "AlignmentSettings",
    "AuditConfig",
    "AuditResult",
    "DemShift",
    "audit_labels",
    "estimate_dem_shift",
    "misaligned_tiles",
    "precision_at_k",
    "predict_out_of_fold",
    "realign_dataset",
    "realign_dem",
    "write_audit",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kelpseg.quality' has no attribute {name!r}")
