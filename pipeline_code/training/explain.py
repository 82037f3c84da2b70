"""Feature attributions with TreeSHAP (xgboost ``pred_contribs=True``).

For every row xgboost returns one exact SHAP value per feature plus a bias term, in
log-odds (margin) units; per row they sum to the model's margin. The report holds the
mean absolute SHAP value per feature and the resulting ranking - what the explainability
report and the attribution-drift monitor compare. Attributions are computed on a seeded
sample of at most ``max_rows`` rows (TreeSHAP costs trees x leaves x depth^2 per row;
the mean |SHAP| ranking is stable at a few thousand rows).

A multiclass model has one margin per class: a feature's attribution is the sum over the classes of its
absolute SHAP values (how much it moves the class scores in all), the signed mean is over rows and classes.
A regression model's SHAP values are in the target's units.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import pandas as pd

from pipeline_code.core import problem
from pipeline_code.training.metrics import sample_indices
from pipeline_code.training.train import TrainedModel, to_dmatrix

DEFAULT_MAX_ROWS = 2_000
_UNITS = {problem.BINARY: "log-odds (margin)", problem.MULTICLASS: "log-odds (margin), summed over the classes",
          problem.REGRESSION: "target units"}


def shap_values(model: TrainedModel, frame: pd.DataFrame) -> np.ndarray:
    """(rows, features + 1) SHAP contributions - (rows, classes, features + 1) for a multiclass model; the last
    column is the bias (expected margin)."""
    return model.booster.predict(to_dmatrix(model, frame), pred_contribs=True, validate_features=True)


def attributions(model: TrainedModel, frame: pd.DataFrame, *, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0) -> Dict[str, Any]:
    """Mean |SHAP| per feature (margin units) and the ranking, on a seeded sample of ``frame``."""
    rows = sample_indices(len(frame), max_rows, seed)
    sample = frame.iloc[rows]
    contributions = shap_values(model, sample).astype(np.float64)
    names = model.feature_names
    if contributions.ndim == 3:  # multiclass: (rows, classes, features + 1)
        per_feature = np.abs(contributions[:, :, : len(names)]).sum(axis=1)
        signed = contributions[:, :, : len(names)].mean(axis=1)
        bias = contributions[:, :, -1].mean(axis=1)
    else:
        per_feature, signed, bias = np.abs(contributions[:, : len(names)]), contributions[:, : len(names)], contributions[:, -1]
    mean_abs = per_feature.mean(axis=0) if len(sample) else np.zeros(len(names))
    mean_signed = signed.mean(axis=0) if len(sample) else np.zeros(len(names))
    order = sorted(range(len(names)), key=lambda i: (-mean_abs[i], names[i]))
    total = float(mean_abs.sum())
    features = {
        names[i]: {
            "mean_abs_shap": float(mean_abs[i]),
            "mean_shap": float(mean_signed[i]),
            "share": float(mean_abs[i] / total) if total else 0.0,
            "rank": rank + 1,
        }
        for rank, i in enumerate(order)
    }
    return {
        "method": "TreeSHAP (xgboost pred_contribs)",
        "units": _UNITS.get(model.problem_type, _UNITS[problem.BINARY]),
        "rows": int(len(sample)),
        "rows_available": int(len(frame)),
        "sample_seed": seed,
        "expected_value": float(bias.mean()) if len(sample) else None,
        "features": features,
        "ranking": [names[i] for i in order],
    }
