"""Evaluation metrics of a regression model: headline, per slice, error parity across the sensitive attribute.

``y`` holds the true values, ``p`` the predicted ones. numpy only, like :mod:`metrics` (the tests
cross-check against scikit-learn):

* ``rmse``, ``mae``, ``r2`` (1 - SSE / SST; ``None`` when the target is constant, as R² is then undefined);
* ``bias``: mean of ``p - y`` (positive: over-predicts); ``mean_target``, ``mean_prediction``, ``target_std``;
* ``abs_error_quantiles``: the 50th, 90th and 99th percentiles of ``|p - y|``.

Fairness is *error parity*: each eligible group's mean absolute error; ``error_parity_ratio`` = min / max
MAE (1.0 when every group's MAE is 0: equal errors), gated by the environment's ``min_disparate_impact``;
``mae_difference`` = max - min, reported. Demographic parity of a continuous prediction has no threshold in
the gate's units, so it is not computed. Group eligibility follows :mod:`metrics`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from pipeline_code.training.metrics import eligible_group, fairness_frame, group_codes, paired_arrays, slice_table


def r2(y: Any, p: Any) -> Optional[float]:
    y, p = paired_arrays(y, p)
    if len(y) < 2:
        return None
    total = float(((y - y.mean()) ** 2).sum())
    return None if total == 0 else 1.0 - float(((y - p) ** 2).sum()) / total


def headline(y: Any, p: Any) -> Dict[str, Any]:
    """Every headline metric of one set of predictions (see the module docstring)."""
    y, p = paired_arrays(y, p)
    n = len(y)
    error = p - y
    absolute = np.abs(error)
    quantiles = np.quantile(absolute, [0.5, 0.9, 0.99]) if n else [None] * 3
    return {
        "rows": int(n),
        "rmse": float(np.sqrt(np.mean(error**2))) if n else None,
        "mae": float(absolute.mean()) if n else None,
        "r2": r2(y, p),
        "bias": float(error.mean()) if n else None,
        "mean_target": float(y.mean()) if n else None,
        "mean_prediction": float(p.mean()) if n else None,
        "target_std": float(y.std()) if n else None,
        "abs_error_quantiles": {name: (None if q is None else float(q)) for name, q in zip(("p50", "p90", "p99"), quantiles)},
    }


def slice_metrics(columns: Dict[str, Any], y: Any, p: Any, *, min_rows: int, primary_metric: str = "r2") -> Dict[str, Any]:
    """``{column: {"min_rows", "values": {value: headline + gated}}}``; a slice with ``min_rows`` rows and a
    defined primary metric is gated."""
    y, p = paired_arrays(y, p)
    return slice_table(columns, lambda mask: headline(y[mask], p[mask]),
                       lambda metrics: metrics["rows"] >= min_rows and metrics.get(primary_metric) is not None,
                       min_rows=min_rows)


def fairness(groups: Any, y: Any, p: Any, *, attribute: str, min_group_rows: int) -> Dict[str, Any]:
    """Error parity across the values of the sensitive attribute (see the module docstring)."""
    y, p = paired_arrays(y, p)
    codes, labels = group_codes(groups)
    per_group: Dict[str, Any] = {}
    for code, label in enumerate(labels):
        mask = codes == code
        rows = int(mask.sum())
        per_group[label] = {
            "rows": rows,
            "mae": float(np.abs(p[mask] - y[mask]).mean()) if rows else None,
            "bias": float((p[mask] - y[mask]).mean()) if rows else None,
            "mean_prediction": float(p[mask].mean()) if rows else None,
            "mean_target": float(y[mask].mean()) if rows else None,
            "eligible": eligible_group(label, rows, min_group_rows),
        }
    report = fairness_frame(attribute, min_group_rows, per_group, error_parity_ratio=None, mae_difference=None)
    eligible = report["eligible_groups"]
    if len(eligible) < 2:
        return report
    errors = [per_group[g]["mae"] for g in eligible]
    high, low = max(errors), min(errors)
    report.update({
        "error_parity_ratio": (low / high) if high > 0 else 1.0,
        "mae_difference": high - low,
        "highest_error_group": eligible[int(np.argmax(errors))],
        "lowest_error_group": eligible[int(np.argmin(errors))],
    })
    return report


def model_quality(y: Any, p: Any) -> Dict[str, Any]:
    """The SageMaker Model Registry ModelQuality block (``regression_metrics``)."""
    h = headline(y, p)

    def value(x: Optional[float]) -> Dict[str, Any]:
        return {"value": None if x is None else float(x), "standard_deviation": "NaN"}

    return {"mae": value(h["mae"]), "mse": value(None if h["rmse"] is None else h["rmse"] ** 2),
            "rmse": value(h["rmse"]), "r2": value(h["r2"])}
