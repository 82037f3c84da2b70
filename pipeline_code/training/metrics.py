"""Evaluation metrics: headline, per slice, fairness across the sensitive attribute.

numpy only (the SageMaker container's scikit-learn version is not ours to choose); the
tests cross-check every number against scikit-learn on the same data.

Definitions (``threshold`` defaults to 0.5; a prediction is positive when ``p >= threshold``):

* ``auc``: area under the ROC curve (Mann-Whitney U with average ranks for ties);
  ``None`` when only one class is present.
* ``pr_auc``: average precision (area under the precision-recall curve); ``None`` without positives.
* ``log_loss``: mean negative log-likelihood, probabilities clipped to ``[eps, 1 - eps]``.
* ``brier``: mean squared error of the probability.
* ``ece``: expected calibration error: the scores cut into :data:`CALIBRATION_BINS` equal-width bins of ``[0, 1]``
  (``(lo, hi]``, the first ``[0, hi]``: scikit-learn's ``calibration_curve(strategy="uniform")``), each bin's
  |observed positive rate - mean score| weighted by its share of the rows; 0 for perfectly calibrated scores, at most 1.
* ``accuracy``, ``precision`` (0 when nothing is predicted positive), ``recall``
  (0 without positives), ``f1``, ``positive_rate`` (share predicted positive),
  ``prevalence`` (share of actual positives).

Fairness (groups = values of the sensitive attribute; missing values form the group
``(missing)``, reported but never used for the disparity numbers; groups with fewer than
``min_group_rows`` rows are reported but not used either):

* ``demographic_parity_difference`` = max - min positive prediction rate;
* ``equal_opportunity_difference``  = max - min true-positive rate (groups with positives);
* ``disparate_impact``              = min / max positive prediction rate (1.0 when every
  eligible group's rate is 0: equal rates);
* each is ``None`` when fewer than two groups are eligible (fairness cannot be assessed).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pandas as pd

from pipeline_code.core.thresholds import MISSING_GROUP, eligible_group

DEFAULT_THRESHOLD = 0.5
# Equal-width probability bins of the expected calibration error (the gate's max_calibration_error).
CALIBRATION_BINS = 10


def paired_arrays(y: Any, p: Any) -> tuple:
    """``(y, p)`` as flat float64 arrays of one length (a ValueError names both lengths otherwise)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and predictions differ in length: {y.shape[0]} != {p.shape[0]}")
    return y, p


def roc_auc(y: Any, p: Any) -> Optional[float]:
    """ROC AUC; ``None`` when ``y`` holds a single class (undefined)."""
    y, p = paired_arrays(y, p)
    n_pos = float((y == 1).sum())
    n_neg = float(len(y) - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(p, kind="mergesort")
    sorted_p = p[order]
    starts_mask = np.empty(len(sorted_p), dtype=bool)
    starts_mask[0] = True
    starts_mask[1:] = sorted_p[1:] != sorted_p[:-1]
    starts = np.flatnonzero(starts_mask)
    counts = np.diff(np.append(starts, len(sorted_p)))
    average_rank = starts + (counts + 1) / 2.0  # 1-based mean rank of each tie group
    ranks = np.repeat(average_rank, counts)
    rank_sum = ranks[y[order] == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def pr_auc(y: Any, p: Any) -> Optional[float]:
    """Area under the precision-recall curve as average precision (scikit-learn's definition: the mean of
    the precision at each distinct threshold, weighted by the recall it adds); ``None`` without positives.

    It reads the ranking where a rare event lives (the top): a random model scores the prevalence, not 0.5.
    """
    y, p = paired_arrays(y, p)
    positives = float((y == 1).sum())
    if positives == 0:
        return None
    order = np.argsort(-p, kind="mergesort")
    scores, labels = p[order], y[order]
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]
    tp = np.cumsum(labels)[last_of_tie]
    flagged = np.cumsum(np.ones_like(labels))[last_of_tie]
    recall_gain = np.diff(np.r_[0.0, tp]) / positives
    return float(np.sum(recall_gain * tp / flagged))


def log_loss(y: Any, p: Any) -> float:
    y, p = paired_arrays(y, p)
    if len(y) == 0:
        return float("nan")
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def brier(y: Any, p: Any) -> float:
    y, p = paired_arrays(y, p)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def expected_calibration_error(y: Any, p: Any, bins: int = CALIBRATION_BINS) -> float:
    """The expected calibration error of scores ``p`` for 0/1 outcomes ``y`` (see the module docstring); NaN on no rows."""
    y, p = paired_arrays(y, p)
    if not len(y):
        return float("nan")
    which = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], p)
    # Per bin, |positives - sum of scores| / all rows = the bin's share of the rows x |observed rate - mean score|.
    gap = np.abs(np.bincount(which, weights=y, minlength=bins) - np.bincount(which, weights=p, minlength=bins))
    return float(gap.sum() / len(y))


def confusion(y: Any, p: Any, threshold: float = DEFAULT_THRESHOLD) -> Dict[str, int]:
    y, p = paired_arrays(y, p)
    predicted = p >= threshold
    actual = y == 1
    return {
        "tp": int((predicted & actual).sum()),
        "fp": int((predicted & ~actual).sum()),
        "tn": int((~predicted & ~actual).sum()),
        "fn": int((~predicted & actual).sum()),
    }


def ratio(a: float, b: float) -> float:
    """``a / b``, 0 when ``b`` is 0 (scikit-learn's zero_division=0)."""
    return float(a) / float(b) if b else 0.0


def classification(y: Any, p: Any, threshold: float = DEFAULT_THRESHOLD) -> Dict[str, Any]:
    """Threshold metrics; precision/recall/F1 are 0 when undefined (scikit-learn's zero_division=0)."""
    c = confusion(y, p, threshold)
    n = c["tp"] + c["fp"] + c["tn"] + c["fn"]
    precision = ratio(c["tp"], c["tp"] + c["fp"])
    recall = ratio(c["tp"], c["tp"] + c["fn"])
    return {
        "accuracy": ratio(c["tp"] + c["tn"], n),
        "precision": precision,
        "recall": recall,
        "f1": ratio(2 * precision * recall, precision + recall),
        "positive_rate": ratio(c["tp"] + c["fp"], n),
        "true_positive_rate": recall,
        "false_positive_rate": ratio(c["fp"], c["fp"] + c["tn"]),
        "confusion": c,
    }


def headline(y: Any, p: Any, threshold: float = DEFAULT_THRESHOLD) -> Dict[str, Any]:
    """Every headline metric of one set of predictions."""
    y, p = paired_arrays(y, p)
    out: Dict[str, Any] = {
        "rows": int(len(y)),
        "positives": int((y == 1).sum()),
        "prevalence": float(y.mean()) if len(y) else None,
        "auc": roc_auc(y, p),
        "pr_auc": pr_auc(y, p),
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "ece": expected_calibration_error(y, p),
        "mean_score": float(p.mean()) if len(p) else None,
        "threshold": threshold,
    }
    out.update(classification(y, p, threshold))
    return out


def metric_alone(y: Any, p: Any, metric: str, threshold: float = DEFAULT_THRESHOLD) -> Any:
    """``headline(y, p, threshold).get(metric)`` without the other metrics: what a bootstrap of one metric computes per
    resample (the evaluation's paired standard error, 200 resamples of each model; the monitor's quality noise, 100)."""
    y, p = paired_arrays(y, p)
    alone = {"auc": roc_auc, "pr_auc": pr_auc, "log_loss": log_loss, "brier": brier, "ece": expected_calibration_error}
    if metric in alone:
        return alone[metric](y, p)
    by_threshold = classification(y, p, threshold)
    return by_threshold[metric] if metric in by_threshold else headline(y, p, threshold).get(metric)


def group_codes(values: Any) -> tuple:
    """(codes, labels) of a categorical column; nulls become the group :data:`MISSING_GROUP`."""
    series = pd.Series(values).astype(object)
    series = series.where(series.notna(), MISSING_GROUP).astype(str)
    codes, uniques = pd.factorize(series, sort=True)
    return codes, [str(u) for u in uniques]


def slice_table(columns: Dict[str, Any], score: Callable[[np.ndarray], Dict[str, Any]],
                gated: Callable[[Dict[str, Any]], bool], **settings: Any) -> Dict[str, Any]:
    """The per-slice report of every problem type: ``{column: {**settings, "values": {value: metrics + gated}}}``,
    where ``score(mask)`` gives the metrics of one slice's rows and ``gated(metrics)`` whether the gate judges it."""
    out: Dict[str, Any] = {}
    for name, values in columns.items():
        codes, labels = group_codes(values)
        entries = {}
        for code, label in enumerate(labels):
            metrics = score(codes == code)
            metrics["gated"] = bool(gated(metrics))
            entries[label] = metrics
        out[name] = {**settings, "values": entries}
    return out


def fairness_frame(attribute: str, min_group_rows: int, groups: Dict[str, Any], **unassessed: Any) -> Dict[str, Any]:
    """The fairness report around per-group entries (each with ``eligible``): the disparity keys ``unassessed``
    (None) until two groups are eligible, else a ``note`` saying fairness cannot be assessed."""
    eligible = [g for g, v in groups.items() if v["eligible"]]
    report: Dict[str, Any] = {"attribute": attribute, "min_group_rows": min_group_rows, "groups": groups,
                              "eligible_groups": eligible, **unassessed}
    if len(eligible) < 2:
        report["note"] = f"fewer than two groups with >= {min_group_rows} rows: fairness cannot be assessed"
    return report


def slice_metrics(
    columns: Dict[str, Any], y: Any, p: Any, *, min_rows: int, min_positives: int = 1, threshold: float = DEFAULT_THRESHOLD
) -> Dict[str, Any]:
    """``{column: {"min_rows": n, "values": {value: metrics + rows + gated}}}``.

    ``gated`` is true when the slice has at least ``min_rows`` rows and at least ``min_positives``
    positives and as many negatives (AUC defined and not resting on a handful of cases); other
    slices are reported for information only.
    """
    y, p = paired_arrays(y, p)

    def gated(metrics: Dict[str, Any]) -> bool:
        rarer = min(metrics["positives"], metrics["rows"] - metrics["positives"])
        return metrics["rows"] >= min_rows and rarer >= min_positives and metrics["auc"] is not None

    return slice_table(columns, lambda mask: headline(y[mask], p[mask], threshold), gated,
                       min_rows=min_rows, min_positives=min_positives)


def fairness(
    groups: Any, y: Any, p: Any, *, attribute: str, min_group_rows: int, threshold: float = DEFAULT_THRESHOLD
) -> Dict[str, Any]:
    """Fairness of thresholded predictions across the values of the sensitive attribute."""
    y, p = paired_arrays(y, p)
    codes, labels = group_codes(groups)
    predicted = p >= threshold
    per_group: Dict[str, Any] = {}
    for code, label in enumerate(labels):
        mask = codes == code
        rows = int(mask.sum())
        positives = int((y[mask] == 1).sum())
        flagged = int(predicted[mask].sum())
        true_pos = int((predicted[mask] & (y[mask] == 1)).sum())
        false_pos = flagged - true_pos
        negatives = rows - positives
        per_group[label] = {
            "rows": rows,
            "positives": positives,
            "base_rate": ratio(positives, rows),
            "predicted_positives": flagged,
            "positive_rate": ratio(flagged, rows),
            "true_positive_rate": (true_pos / positives) if positives else None,
            "false_positive_rate": (false_pos / negatives) if negatives else None,
            "eligible": eligible_group(label, rows, min_group_rows),
        }
    eligible = [g for g, v in per_group.items() if v["eligible"]]
    rates = [per_group[g]["positive_rate"] for g in eligible]
    tprs = [per_group[g]["true_positive_rate"] for g in eligible if per_group[g]["true_positive_rate"] is not None]
    report: Dict[str, Any] = {
        "attribute": attribute,
        "threshold": threshold,
        "min_group_rows": min_group_rows,
        "groups": per_group,
        "eligible_groups": eligible,
        "demographic_parity_difference": None,
        "equal_opportunity_difference": None,
        "disparate_impact": None,
    }
    if len(eligible) >= 2:
        high, low = max(rates), min(rates)
        report["demographic_parity_difference"] = high - low
        report["disparate_impact"] = (low / high) if high > 0 else 1.0
        if len(tprs) >= 2:
            report["equal_opportunity_difference"] = max(tprs) - min(tprs)
        report["most_favoured_group"] = eligible[int(np.argmax(rates))]
        report["least_favoured_group"] = eligible[int(np.argmin(rates))]
    else:
        report["note"] = f"fewer than two groups with >= {min_group_rows} rows: fairness cannot be assessed"
    return report


def roc_curve(y: Any, p: Any, max_points: int = 101) -> Dict[str, List[float]]:
    """(FPR, TPR) at up to ``max_points`` thresholds (quantiles of the scores), plus the ends."""
    y, p = paired_arrays(y, p)
    n_pos, n_neg = (y == 1).sum(), (y == 0).sum()
    if n_pos == 0 or n_neg == 0:
        return {"false_positive_rates": [], "true_positive_rates": [], "thresholds": []}
    thresholds = np.unique(np.quantile(p, np.linspace(0, 1, max_points)))[::-1]
    fpr, tpr = [0.0], [0.0]
    for t in thresholds:
        flagged = p >= t
        tpr.append(float((flagged & (y == 1)).sum() / n_pos))
        fpr.append(float((flagged & (y == 0)).sum() / n_neg))
    fpr.append(1.0)
    tpr.append(1.0)
    return {"false_positive_rates": fpr, "true_positive_rates": tpr, "thresholds": [float(t) for t in thresholds]}


def model_quality(y: Any, p: Any, threshold: float = DEFAULT_THRESHOLD) -> Dict[str, Any]:
    """The SageMaker Model Registry ModelQuality statistics block (``binary_classification_metrics``).

    Only keys of SageMaker's model-quality format (log loss and Brier live in the headline
    metrics of the report instead).
    """
    y, p = paired_arrays(y, p)
    h = headline(y, p, threshold)
    c = h["confusion"]

    def value(x: Optional[float]) -> Dict[str, Any]:
        return {"value": None if x is None else float(x), "standard_deviation": "NaN"}

    def f_beta(beta: float) -> float:
        pr, rc = h["precision"], h["recall"]
        denominator = beta * beta * pr + rc
        return (1 + beta * beta) * pr * rc / denominator if denominator else 0.0

    curve = roc_curve(y, p)
    return {
        "confusion_matrix": {"0": {"0": c["tn"], "1": c["fp"]}, "1": {"0": c["fn"], "1": c["tp"]}},
        "recall": value(h["recall"]),
        "precision": value(h["precision"]),
        "accuracy": value(h["accuracy"]),
        "true_positive_rate": value(h["true_positive_rate"]),
        "true_negative_rate": value(ratio(c["tn"], c["tn"] + c["fp"])),
        "false_positive_rate": value(h["false_positive_rate"]),
        "false_negative_rate": value(ratio(c["fn"], c["fn"] + c["tp"])),
        "auc": value(h["auc"]),
        "f0_5": value(f_beta(0.5)),
        "f1": value(h["f1"]),
        "f2": value(f_beta(2.0)),
        "receiver_operating_characteristic_curve": {
            "false_positive_rates": curve["false_positive_rates"],
            "true_positive_rates": curve["true_positive_rates"],
        },
    }


def sample_indices(n: int, max_rows: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded sample of at most ``max_rows`` of ``n`` rows (all when smaller)."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))

