"""Evaluation metrics of a multiclass model: headline, per slice, fairness across the sensitive attribute.

``y`` holds class codes 0 .. K-1 (the prepare job's encoding, in the order of the model's ``classes``);
``P`` is the (n, K) matrix of class probabilities; the prediction of a row is its most probable class.
numpy only, like :mod:`metrics` (the tests cross-check against scikit-learn):

* ``auc``: the macro average of one-vs-rest ROC AUCs over the classes present in ``y`` (scikit-learn's
  ``roc_auc_score(multi_class="ovr", average="macro")`` when every class is present); ``None`` with
  fewer than two classes present.
* ``log_loss``: mean negative log-probability of the true class, clipped to ``[eps, 1]``.
* ``brier``: mean over rows of the squared distance between ``P`` and the one-hot truth.
* ``ece``: the top-label expected calibration error (:func:`top_label_ece`): how far the predicted class's
  probability is from how often the predicted class is right, in :mod:`metrics`' bins.
* ``accuracy``; ``macro_precision`` / ``macro_recall`` / ``macro_f1``: unweighted means over *all* K
  classes, 0 where undefined (scikit-learn's ``labels=range(K), zero_division=0``).
* ``per_class``: rows, precision, recall, F1 and the predicted share of each class; ``confusion``: the
  K x K matrix (rows: actual, columns: predicted).

Fairness is parity per class: for each class, the gap (max - min) and the ratio (min / max) of the rate at
which the eligible groups are *predicted* that class; ``demographic_parity_difference`` is the largest gap
over the classes and ``disparate_impact`` the smallest ratio, with the class they come from. Eligibility of
groups and slices follows :mod:`metrics` (``min_group_rows``; ``(missing)`` never eligible).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from pipeline_code.training.metrics import eligible_group, expected_calibration_error, fairness_frame, group_codes, ratio, roc_auc, slice_table


def _arrays(y: Any, P: Any) -> tuple:
    y = np.asarray(y, dtype=np.float64).ravel().astype(np.int64)
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != y.shape[0]:
        raise ValueError(f"labels and probabilities differ in shape: {y.shape} vs {P.shape}")
    return y, P


def class_shares(y: Any, k: int) -> List[float]:
    """The share of each class code 0 .. k-1 in ``y``."""
    codes = np.asarray(y, dtype=np.float64).astype(np.int64)
    counts = np.bincount(codes, minlength=k)[:k]
    return [float(c) / len(codes) if len(codes) else 0.0 for c in counts]


# Up to this many rows (a quality bootstrap's draw: monitoring.quality draws at most 1,000), :func:`macro_auc` takes
# every class's one-vs-rest AUC in one pass (:func:`_one_vs_rest_aucs`); beyond, a class at a time is faster.
SMALL_ROWS = 1_000


def macro_auc(y: Any, P: Any) -> Optional[float]:
    """Macro one-vs-rest ROC AUC over the classes present in ``y`` (see the module docstring)."""
    y, P = _arrays(y, P)
    present = [k for k in range(P.shape[1]) if (y == k).any()]
    if len(y) <= SMALL_ROWS:
        aucs = _one_vs_rest_aucs(y, P, present)
    else:
        aucs = [roc_auc(y == k, P[:, k]) for k in present]
    aucs = [a for a in aucs if a is not None]
    return float(np.mean(aucs)) if len(aucs) >= 2 else None


def _one_vs_rest_aucs(y: np.ndarray, P: np.ndarray, classes: List[int]) -> List[Optional[float]]:
    """``metrics.roc_auc(y == k, P[:, k])`` of each class ``k`` of ``classes``, all at once: the same stable sort of
    each class's scores, the same mean rank per tie group, the same formula (the rank sums, halves of whole numbers,
    are exact in any order), without a round of numpy calls per class - a bootstrap of a 40-class window's AUC takes
    thousands."""
    scores = np.ascontiguousarray(P[:, classes].T)  # a row per class
    rows = scores.shape[1]
    positive = y[None, :] == np.asarray(classes, dtype=np.int64)[:, None]
    n_pos = positive.sum(axis=1).astype(np.float64)
    n_neg = rows - n_pos
    order = np.argsort(scores, axis=1, kind="mergesort")
    ordered = np.take_along_axis(scores, order, axis=1)
    starts_group = np.empty(ordered.shape, dtype=bool)
    starts_group[:, :1] = True
    starts_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends_group = np.empty(ordered.shape, dtype=bool)
    ends_group[:, -1:] = True
    ends_group[:, :-1] = starts_group[:, 1:]
    index = np.arange(rows)[None, :]
    start = np.maximum.accumulate(np.where(starts_group, index, 0), axis=1)  # 0-based first place of its tie group
    end = np.minimum.accumulate(np.where(ends_group, index + 1, rows)[:, ::-1], axis=1)[:, ::-1]
    average_rank = start + ((end - start) + 1) / 2.0  # 1-based mean rank of each tie group
    rank_sum = np.where(np.take_along_axis(positive, order, axis=1), average_rank, 0.0).sum(axis=1)
    aucs = (rank_sum - n_pos * (n_pos + 1) / 2.0) / np.where((n_pos > 0) & (n_neg > 0), n_pos * n_neg, 1.0)
    return [float(a) if p > 0 and q > 0 else None for a, p, q in zip(aucs, n_pos, n_neg)]


def log_loss(y: Any, P: Any) -> float:
    y, P = _arrays(y, P)
    if len(y) == 0:
        return float("nan")
    eps = np.finfo(np.float64).eps
    return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y], eps, 1.0))))


def top_label_ece(y: Any, P: Any) -> float:
    """The top-label expected calibration error: the binary ECE (:func:`metrics.expected_calibration_error`) of "the
    predicted class is right" against the predicted class's probability; NaN on no rows."""
    y, P = _arrays(y, P)
    if not len(y):
        return float("nan")
    return expected_calibration_error((P.argmax(axis=1) == y).astype(np.float64), P.max(axis=1))


def confusion(y: Any, P: Any) -> np.ndarray:
    """K x K counts, rows actual class, columns predicted class."""
    y, P = _arrays(y, P)
    k = P.shape[1]
    predicted = P.argmax(axis=1) if len(y) else np.zeros(0, dtype=np.int64)
    return np.bincount(y * k + predicted, minlength=k * k)[: k * k].reshape(k, k)


def headline(y: Any, P: Any, classes: Sequence[str], *, with_auc: bool = True) -> Dict[str, Any]:
    """Every headline metric of one set of predictions (see the module docstring). ``with_auc=False``: ``auc`` None,
    not computed (one ranking per class; a bootstrap of another metric draws the rest a hundred times)."""
    y, P = _arrays(y, P)
    k = len(classes)
    matrix = confusion(y, P)
    actual, predicted, correct = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    per_class: Dict[str, Any] = {}
    precisions, recalls, f1s = [], [], []
    for i, name in enumerate(classes):
        precision, recall = ratio(correct[i], predicted[i]), ratio(correct[i], actual[i])
        f1 = ratio(2 * precision * recall, precision + recall)
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(f1)
        per_class[str(name)] = {"rows": int(actual[i]), "precision": precision, "recall": recall, "f1": f1,
                                "predicted_share": ratio(predicted[i], len(y)), "actual_share": ratio(actual[i], len(y))}
    onehot = np.zeros_like(P)
    if len(y):
        onehot[np.arange(len(y)), y] = 1.0
    return {
        "rows": int(len(y)),
        "classes": [str(c) for c in classes],
        "class_counts": {str(c): int(actual[i]) for i, c in enumerate(classes)},
        "auc": macro_auc(y, P) if with_auc else None,
        "log_loss": log_loss(y, P),
        "brier": float(np.mean(((P - onehot) ** 2).sum(axis=1))) if len(y) else float("nan"),
        "ece": top_label_ece(y, P),
        "accuracy": ratio(correct.sum(), len(y)),
        "macro_precision": float(np.mean(precisions)) if k else 0.0,
        "macro_recall": float(np.mean(recalls)) if k else 0.0,
        "macro_f1": float(np.mean(f1s)) if k else 0.0,
        "per_class": per_class,
        "confusion": {"classes": [str(c) for c in classes], "matrix": matrix.tolist()},
    }


def metric_alone(y: Any, P: Any, classes: Sequence[str], metric: str) -> Any:
    """``headline(y, P, classes).get(metric)`` without ranking every class when ``metric`` is not the AUC (and only
    ranking them when it is): what a bootstrap of one metric computes per resample."""
    if metric == "auc":
        return macro_auc(y, P)
    return headline(y, P, classes, with_auc=False).get(metric)


# The most confusion-matrix cells :func:`metric_over_draws` counts at once (draws x K x K); beyond, a draw at a time.
MAX_DRAW_CELLS = 4_000_000


def metric_over_draws(y: Any, P: Any, draws: np.ndarray, k: int, metric: str,
                      over: Optional[Sequence[int]] = None) -> Optional[np.ndarray]:
    """The ``metric`` of every row of ``draws`` (a matrix of row indexes into ``y`` and ``P``, one resample a row) at
    once, each the float ``headline(y[rows], P[rows], classes, with_auc=False)`` gives to the bit (numpy reduces each
    row of a C-ordered matrix as it reduces the row alone): ``accuracy``, ``log_loss`` and the macro averages
    (``macro_precision``, ``macro_recall``, ``macro_f1``) over the class codes ``over`` (default None: all ``k``; an
    empty list: 0.0), as ``monitoring.quality`` averages them over the classes a window holds. None for another
    metric, class codes outside 0..k-1, or more than :data:`MAX_DRAW_CELLS` counts (the caller draws one at a time)."""
    y, P = _arrays(y, P)
    draws = np.ascontiguousarray(draws)
    if draws.ndim != 2 or draws.shape[1] < 1 or P.shape[1] != k:
        return None
    m = draws.shape[0]
    if len(y) and (y.min() < 0 or y.max() >= k):
        return None
    if metric == "log_loss":
        eps = np.finfo(np.float64).eps
        rows_log = np.log(np.clip(P[np.arange(len(y)), y], eps, 1.0)) if len(y) else np.zeros(0)
        return -np.mean(rows_log[draws], axis=1)
    if metric not in ("accuracy", "macro_precision", "macro_recall", "macro_f1") or m * k * k > MAX_DRAW_CELLS:
        return None
    predicted_class = P.argmax(axis=1)
    cells = (np.arange(m, dtype=np.int64)[:, None] * (k * k) + y[draws] * k + predicted_class[draws]).ravel()
    matrix = np.bincount(cells, minlength=m * k * k).reshape(m, k, k)
    actual, predicted, correct = matrix.sum(axis=2), matrix.sum(axis=1), np.diagonal(matrix, axis1=1, axis2=2)
    if metric == "accuracy":
        return correct.sum(axis=1) / draws.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):  # metrics.ratio: 0 where the denominator is 0
        precision = np.where(predicted > 0, correct / np.where(predicted > 0, predicted, 1), 0.0)
        recall = np.where(actual > 0, correct / np.where(actual > 0, actual, 1), 0.0)
        both = precision + recall
        f1 = np.where(both != 0, 2 * precision * recall / np.where(both != 0, both, 1.0), 0.0)
    values = {"macro_precision": precision, "macro_recall": recall, "macro_f1": f1}[metric]
    index = list(range(k)) if over is None else list(over)
    if not index:
        return np.zeros(m)
    return np.ascontiguousarray(values[:, index]).mean(axis=1)


# Multiclass primary metrics a long tail's out-of-time comparison restricts to the classes the rows hold often enough:
# the macro ones, a mean over classes in which a class seen a handful of times weighs as much as one seen thousands of
# times. Accuracy and log loss are means over rows (a rare class weighs by its few rows, adding no noise beyond the row
# count), so they are compared on every row.
RESTRICTED_METRICS = ("macro_f1", "auc")


def compared_metric(y: Any, P: Any, classes: Sequence[str], metric: str, compared: Sequence[str]) -> Optional[float]:
    """``metric`` (a :data:`RESTRICTED_METRICS` one) over the classes ``compared`` only: the mean F1 of those classes
    (each counting every row predicted as it, whatever its class), or the mean of their one-vs-rest AUCs (each class's
    rows ranked against all the other rows); None when fewer than two of them can be computed."""
    y, P = _arrays(y, P)
    index = [list(map(str, classes)).index(str(c)) for c in compared]
    if metric == "macro_f1":
        per_class = headline(y, P, classes)["per_class"]
        values = [per_class[str(classes[i])]["f1"] for i in index]
    elif metric == "auc":
        values = [roc_auc(y == i, P[:, i]) for i in index]
    else:
        raise ValueError(f"{metric} is compared over every row, not restricted to classes")
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if len(values) >= 2 else None


def slice_metrics(columns: Dict[str, Any], y: Any, P: Any, classes: Sequence[str], *, min_rows: int,
                  min_positives: int = 1, primary_metric: str = "auc") -> Dict[str, Any]:
    """``{column: {"min_rows", "min_positives", "values": {value: headline + gated}}}``: a slice is gated when it
    has ``min_rows`` rows, every class at least ``min_positives`` times, and a defined primary metric; each value also
    has ``compared_classes`` (those it holds ``min_positives`` times) and ``compared_macro_f1`` (their mean F1); judged
    on macro F1, a slice lacking a class that often is gated on ``compared_macro_f1`` (``gated_on``) when it has
    ``min_rows`` rows and two classes that often."""
    y, P = _arrays(y, P)

    def gated(metrics: Dict[str, Any]) -> bool:
        rarest = min(metrics["class_counts"].values()) if classes else 0
        return metrics["rows"] >= min_rows and (rarest >= min_positives and metrics.get(primary_metric) is not None
                                                or "gated_on" in metrics)

    def score(mask: np.ndarray) -> Dict[str, Any]:
        # A long tail puts no slice at every class min_positives times: a model judged on macro F1 is compared there on
        # the macro F1 over the classes the slice holds that often (two or more; the same classes for both models).
        metrics = headline(y[mask], P[mask], classes)
        enough = [c for c, v in metrics["per_class"].items() if v["rows"] >= min_positives]
        metrics["compared_classes"] = enough
        metrics["compared_macro_f1"] = float(np.mean([metrics["per_class"][c]["f1"] for c in enough])) if enough else None
        if primary_metric == "macro_f1" and 2 <= len(enough) < len(classes):
            metrics["gated_on"] = "compared_macro_f1"
        return metrics

    return slice_table(columns, score, gated, min_rows=min_rows, min_positives=min_positives)


def fairness(groups: Any, y: Any, P: Any, classes: Sequence[str], *, attribute: str, min_group_rows: int) -> Dict[str, Any]:
    """Per-class parity of the predicted classes across the values of the sensitive attribute."""
    y, P = _arrays(y, P)
    codes, labels = group_codes(groups)
    predicted = P.argmax(axis=1) if len(y) else np.zeros(0, dtype=np.int64)
    per_group: Dict[str, Any] = {}
    for code, label in enumerate(labels):
        mask = codes == code
        rows = int(mask.sum())
        counts = np.bincount(predicted[mask], minlength=len(classes))[: len(classes)]
        recalls = {}
        for i, name in enumerate(classes):
            actual = mask & (y == i)
            recalls[str(name)] = float((predicted[actual] == i).mean()) if actual.any() else None
        per_group[label] = {
            "rows": rows,
            "predicted_counts": {str(c): int(counts[i]) for i, c in enumerate(classes)},
            "predicted_shares": {str(c): ratio(counts[i], rows) for i, c in enumerate(classes)},
            "recall": recalls,
            "eligible": eligible_group(label, rows, min_group_rows),
        }
    report = fairness_frame(attribute, min_group_rows, per_group, per_class={}, demographic_parity_difference=None,
                            disparate_impact=None, equal_opportunity_difference=None)
    eligible = report["eligible_groups"]
    if len(eligible) < 2:
        return report
    for name in (str(c) for c in classes):
        shares = [per_group[g]["predicted_shares"][name] for g in eligible]
        high, low = max(shares), min(shares)
        recalls = [per_group[g]["recall"][name] for g in eligible if per_group[g]["recall"][name] is not None]
        report["per_class"][name] = {
            "demographic_parity_difference": high - low,
            "disparate_impact": (low / high) if high > 0 else 1.0,
            "equal_opportunity_difference": (max(recalls) - min(recalls)) if len(recalls) >= 2 else None,
            "predicted": int(sum(per_group[g]["predicted_counts"][name] for g in eligible)),
        }
    worst_gap = max(report["per_class"], key=lambda c: report["per_class"][c]["demographic_parity_difference"])
    worst_ratio = min(report["per_class"], key=lambda c: report["per_class"][c]["disparate_impact"])
    gaps = [v["equal_opportunity_difference"] for v in report["per_class"].values() if v["equal_opportunity_difference"] is not None]
    report.update({
        "demographic_parity_difference": report["per_class"][worst_gap]["demographic_parity_difference"],
        "demographic_parity_class": worst_gap,
        "disparate_impact": report["per_class"][worst_ratio]["disparate_impact"],
        "disparate_impact_class": worst_ratio,
        "equal_opportunity_difference": max(gaps) if gaps else None,
    })
    return report


def model_quality(y: Any, P: Any, classes: Sequence[str]) -> Dict[str, Any]:
    """The SageMaker Model Registry ModelQuality block (``multiclass_classification_metrics``)."""
    y, P = _arrays(y, P)
    h = headline(y, P, classes)
    weights = np.asarray([h["per_class"][str(c)]["rows"] for c in classes], dtype=np.float64)
    weights = weights / weights.sum() if weights.sum() else weights

    def value(x: Optional[float]) -> Dict[str, Any]:
        return {"value": None if x is None else float(x), "standard_deviation": "NaN"}

    def weighted(key: str) -> float:
        return float(sum(w * h["per_class"][str(c)][key] for w, c in zip(weights, classes)))

    def weighted_f(beta: float) -> float:
        total = 0.0
        for w, c in zip(weights, classes):
            pr, rc = h["per_class"][str(c)]["precision"], h["per_class"][str(c)]["recall"]
            denominator = beta * beta * pr + rc
            total += w * ((1 + beta * beta) * pr * rc / denominator if denominator else 0.0)
        return float(total)

    matrix = h["confusion"]["matrix"]
    return {
        "confusion_matrix": {str(a): {str(p): int(matrix[i][j]) for j, p in enumerate(classes)} for i, a in enumerate(classes)},
        "accuracy": value(h["accuracy"]),
        "weighted_recall": value(weighted("recall")),
        "weighted_precision": value(weighted("precision")),
        "weighted_f0_5": value(weighted_f(0.5)),
        "weighted_f1": value(weighted_f(1.0)),
        "weighted_f2": value(weighted_f(2.0)),
        "accuracy_best_constant_classifier": value(float(weights.max()) if len(weights) else None),
    }
