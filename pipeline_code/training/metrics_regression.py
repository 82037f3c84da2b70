"""Evaluation metrics of a regression model: headline, per slice, error parity across the sensitive attribute.

``y`` holds the true values, ``p`` the predicted ones. numpy only, like :mod:`metrics` (the tests
cross-check against scikit-learn):

* ``rmse``, ``mae``, ``r2`` (1 - SSE / SST; ``None`` when the target is constant, as R² is then undefined);
* ``bias``: mean of ``p - y`` (positive: over-predicts); ``mean_target``, ``mean_prediction``, ``target_std``;
* ``abs_error_quantiles``: the 50th, 90th and 99th percentiles of ``|p - y|``;
* for a model trained on a loss other than squared error (``core.problem.LOSSES``), that loss's mean deviance
  (:func:`mean_tweedie_deviance`: ``poisson_deviance`` at power 1, ``gamma_deviance`` at 2, ``tweedie_deviance``
  between), scikit-learn's mean_*_deviance; ``None`` when a prediction is not a positive mean (or, for gamma, a target
  is not positive), where the deviance is undefined.

Fairness compares the eligible groups' errors *relative to the size of what they predict* (each group's
mean ``|y|``), so a skewed target (prices, durations) does not make a group with larger values look treated
worse for errors of the same share, nor hide one group under-estimated and another over-estimated:

* ``error_parity_ratio`` = min / max of the groups' relative MAE (MAE / mean ``|y|``; 1.0 when every group's error
  is 0), gated by ``min_disparate_impact``;
* ``bias_gap`` = max - min of the groups' relative bias (mean ``p - y`` / mean ``|y|``: + over-, - under-estimates),
  with the most over- and most under-estimated group, gated by ``max_demographic_parity_difference`` (the
  regression counterpart of the positive-rate gap; like it, judged only on groups of ``min_group_rows`` rows);
* where a group's mean ``|y|`` is under 1 % of the groups' overall mean ``|y|`` (a target centred on zero, or mostly
  zero in a group) relative errors would explode: the ratio is then of absolute MAE and the gap of absolute bias,
  over the groups' overall mean ``|y|`` (one scale for every group, so still a share of the target's size;
  ``error_measure`` says which); ``mae_difference`` (max - min MAE) is reported. When every compared group's target
  is 0 there is no scale at all and the gap is None (the gate refuses such a report as incomplete).

Demographic parity of a continuous prediction has no threshold in the gate's units, so it is not computed. Group
eligibility follows :mod:`metrics`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from pipeline_code.training.metrics import eligible_group, fairness_frame, group_codes, paired_arrays, slice_table


# A group whose mean |y| is below this share of the groups' overall mean |y| has no meaningful relative error.
MIN_RELATIVE_SCALE = 0.01


def r2(y: Any, p: Any) -> Optional[float]:
    y, p = paired_arrays(y, p)
    if len(y) < 2:
        return None
    total = float(((y - y.mean()) ** 2).sum())
    return None if total == 0 else 1.0 - float(((y - p) ** 2).sum()) / total


def outside_deviance_domain(y: Any, power: float) -> np.ndarray:
    """Which targets ``y`` the mean Tweedie deviance at ``power`` is undefined on: a negative one, and at power 2 and
    above (gamma) 0 too. The monitor leaves such a label out (:func:`pipeline_code.monitoring.quality.usable_labels`)."""
    y = np.asarray(y, dtype=np.float64)
    return (y < 0) | ((y <= 0) if power >= 2 else np.zeros(y.shape, dtype=bool))


def mean_tweedie_deviance(y: Any, p: Any, power: float) -> Optional[float]:
    """The mean Tweedie deviance of means ``p`` at ``power`` (1: Poisson, 2: gamma, between: compound Poisson-gamma),
    as scikit-learn's mean_tweedie_deviance; None when a mean is not positive, a target negative (gamma: not positive),
    or there are no rows."""
    y, p = paired_arrays(y, p)
    if not len(y) or (p <= 0).any() or outside_deviance_domain(y, power).any():
        return None
    return float(np.mean(_unit_deviance(y, p, power)))


def _unit_deviance(y: np.ndarray, p: np.ndarray, power: float) -> np.ndarray:
    """The Tweedie unit deviance of each target ``y`` and mean ``p`` (arrays of one shape) at ``power``."""
    if power == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            y_log = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / p), 0.0)
        return 2 * (y_log - y + p)
    if power == 2:
        return 2 * (np.log(p / y) + y / p - 1)
    return 2 * (np.power(y, 2 - power) / ((1 - power) * (2 - power)) - y * np.power(p, 1 - power) / (1 - power)
                + np.power(p, 2 - power) / (2 - power))


def metric_alone(y: Any, p: Any, metric: str, deviance: Optional[Tuple[str, float]] = None) -> Optional[float]:
    """``headline(y, p, deviance).get(metric)`` without the other metrics (quantiles, means): what a bootstrap of one
    metric computes per draw (the monitor's quality noise, 100 draws a window)."""
    y, p = paired_arrays(y, p)
    if deviance and metric == deviance[0]:
        return mean_tweedie_deviance(y, p, deviance[1])
    if metric == "r2":
        return r2(y, p)
    if metric in ("rmse", "mae", "bias"):
        return _error_metric(p - y, metric) if len(y) else None
    return headline(y, p, deviance).get(metric)


def metric_over_draws(y: Any, p: Any, draws: np.ndarray, metric: str,
                      deviance: Optional[Tuple[str, float]] = None) -> Optional[np.ndarray]:
    """:func:`metric_alone` of every row of ``draws`` (a matrix of row indexes into ``y`` and ``p``, one resample a
    row, each of 2 rows or more) at once: the same float for each, to the bit (numpy reduces each row of a C-ordered
    matrix as it reduces the row alone), NaN where :func:`metric_alone` gives None. None for a metric it does not
    compute so (the caller computes each draw alone). What the monitor's bootstrap of its quality noise runs: one
    pass over the matrix instead of 100 calls."""
    y, p = paired_arrays(y, p)
    draws = np.ascontiguousarray(draws)
    if draws.ndim != 2 or draws.shape[1] < 2:
        return None
    Y, P = y[draws], p[draws]
    with np.errstate(all="ignore"):  # undefined draws become NaN, as metric_alone makes them None
        if deviance and metric == deviance[0]:
            return _deviance_over_draws(Y, P, deviance[1])
        if metric == "r2":
            total = ((Y - Y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            r2_values = 1.0 - ((Y - P) ** 2).sum(axis=1) / total
            return np.where(total == 0, np.nan, r2_values)
        error = P - Y
        if metric == "rmse":
            return np.sqrt(np.mean(error**2, axis=1))
        if metric == "mae":
            return np.abs(error).mean(axis=1)
        if metric == "bias":
            return error.mean(axis=1)
    return None


def _deviance_over_draws(Y: np.ndarray, P: np.ndarray, power: float) -> np.ndarray:
    """:func:`mean_tweedie_deviance` of each row of ``Y`` / ``P`` (NaN where it is None)."""
    undefined = (P <= 0).any(axis=1) | outside_deviance_domain(Y, power).any(axis=1)
    return np.where(undefined, np.nan, np.mean(_unit_deviance(Y, P, power), axis=1))


def _error_metric(error: np.ndarray, metric: str) -> float:
    if metric == "rmse":
        return float(np.sqrt(np.mean(error**2)))
    return float(np.abs(error).mean()) if metric == "mae" else float(error.mean())


def headline(y: Any, p: Any, deviance: Optional[Tuple[str, float]] = None) -> Dict[str, Any]:
    """Every headline metric of one set of predictions (see the module docstring); ``deviance``: the (name, power)
    of the loss's mean deviance to add (``ModelSpec.deviance``), None for a squared-error model."""
    y, p = paired_arrays(y, p)
    n = len(y)
    error = p - y
    absolute = np.abs(error)
    quantiles = np.quantile(absolute, [0.5, 0.9, 0.99]) if n else [None] * 3
    return {
        "rows": int(n),
        "rmse": _error_metric(error, "rmse") if n else None,
        "mae": _error_metric(error, "mae") if n else None,
        "r2": r2(y, p),
        "bias": _error_metric(error, "bias") if n else None,
        "mean_target": float(y.mean()) if n else None,
        "mean_prediction": float(p.mean()) if n else None,
        "target_std": float(y.std()) if n else None,
        "abs_error_quantiles": {name: (None if q is None else float(q)) for name, q in zip(("p50", "p90", "p99"), quantiles)},
        **({deviance[0]: mean_tweedie_deviance(y, p, deviance[1])} if deviance else {}),
    }


def slice_metrics(columns: Dict[str, Any], y: Any, p: Any, *, min_rows: int, primary_metric: str = "r2",
                  deviance: Optional[Tuple[str, float]] = None) -> Dict[str, Any]:
    """``{column: {"min_rows", "values": {value: headline + gated}}}``; a slice with ``min_rows`` rows and a
    defined primary metric is gated."""
    y, p = paired_arrays(y, p)
    return slice_table(columns, lambda mask: headline(y[mask], p[mask], deviance),
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
        error = p[mask] - y[mask]
        mae, bias = (float(np.abs(error).mean()), float(error.mean())) if rows else (None, None)
        scale = float(np.abs(y[mask]).mean()) if rows else 0.0  # mean |y|: what relative errors are relative to
        per_group[label] = {
            "rows": rows,
            "mae": mae,
            "bias": bias,
            "mean_prediction": float(p[mask].mean()) if rows else None,
            "mean_target": float(y[mask].mean()) if rows else None,
            "scale": scale,
            "relative_mae": mae / scale if scale > 0 else None,
            "relative_bias": bias / scale if scale > 0 else None,
            "eligible": eligible_group(label, rows, min_group_rows),
        }
    report = fairness_frame(attribute, min_group_rows, per_group, error_parity_ratio=None, mae_difference=None,
                            bias_gap=None, error_measure=None)
    eligible = report["eligible_groups"]
    if len(eligible) < 2:
        return report
    overall = float(np.mean([per_group[g]["scale"] for g in eligible]))
    relative = overall > 0 and all(per_group[g]["scale"] >= MIN_RELATIVE_SCALE * overall for g in eligible)
    errors = [per_group[g]["relative_mae" if relative else "mae"] for g in eligible]
    high, low = max(errors), min(errors)
    maes = [per_group[g]["mae"] for g in eligible]
    report.update({
        "error_measure": "relative" if relative else "absolute",
        "error_parity_ratio": (low / high) if high > 0 else 1.0,
        "mae_difference": max(maes) - min(maes),
        "highest_error_group": eligible[int(np.argmax(errors))],
        "lowest_error_group": eligible[int(np.argmin(errors))],
    })
    if overall > 0:
        # Absolute bias over one shared scale where a group's own scale is (near) 0: a share of the target's size, as
        # the gate's maximum is, that no group near 0 can blow up.
        biases = [per_group[g]["relative_bias"] if relative else per_group[g]["bias"] / overall for g in eligible]
        report.update({"bias_gap": max(biases) - min(biases), "most_over_estimated_group": eligible[int(np.argmax(biases))],
                       "most_under_estimated_group": eligible[int(np.argmin(biases))]})
    return report


def error_measure_text(fairness: Dict[str, Any], *, long: bool = False) -> str:
    """What a fairness report's error parity compares per group, in words: ``MAE over its mean |target|`` (relative
    errors) or ``MAE`` (absolute; also a report from before relative errors); ``long`` spells MAE out."""
    relative = fairness.get("error_measure") == "relative"
    if long:
        return "mean absolute error relative to its mean |target|" if relative else "mean absolute error"
    return "MAE over its mean |target|" if relative else "MAE"


def bias_measure_text(fairness: Dict[str, Any]) -> str:
    """What a fairness report's bias gap compares per group, in words: each group's mean error over its own mean
    |target| (relative errors), or over the compared groups' mean |target| (absolute errors: a group near 0)."""
    if fairness.get("error_measure") == "relative":
        return "mean error over its mean |target|"
    return "mean error over the compared groups' mean |target|"


def model_quality(y: Any, p: Any) -> Dict[str, Any]:
    """The SageMaker Model Registry ModelQuality block (``regression_metrics``)."""
    h = headline(y, p)

    def value(x: Optional[float]) -> Dict[str, Any]:
        return {"value": None if x is None else float(x), "standard_deviation": "NaN"}

    return {"mae": value(h["mae"]), "mse": value(None if h["rmse"] is None else h["rmse"] ** 2),
            "rmse": value(h["rmse"]), "r2": value(h["r2"])}
