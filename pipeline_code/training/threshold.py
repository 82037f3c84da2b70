"""Choose a binary model's decision threshold on validation data, by the model's policy.

:func:`choose` evaluates every distinct validation score as a candidate threshold (a record is positive
when ``score >= threshold``) in one sorted pass, and returns the threshold the policy picks with what it
achieves on the validation set, for the artefact and the reports. numpy only, like :mod:`metrics`.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from pipeline_code.core.decision import DecisionPolicy


def choose(y: Any, p: Any, policy: DecisionPolicy) -> Dict[str, Any]:
    """``{"policy", "threshold", "validation": {...}, "note"?}`` for labels ``y`` and scores ``p``.

    ``fixed`` keeps its threshold. The others need both classes in the validation set; without them
    the fixed threshold is kept and ``note`` says why. ``target_precision`` that no threshold reaches
    takes the most precise one and says so in ``note``.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    out: Dict[str, Any] = {"policy": policy.to_dict(), "description": policy.describe()}
    positives = float(y.sum())
    if policy.policy == "fixed" or positives == 0 or positives == len(y):
        threshold = policy.fixed_threshold
        if policy.policy != "fixed":
            out["note"] = (f"the validation set has {'no' if positives == 0 else 'only'} positives: "
                           f"kept the fixed threshold {threshold:g}")
        return {**out, "threshold": threshold, "validation": _at(y, p, threshold)}

    order = np.argsort(-p, kind="mergesort")
    scores, labels = p[order], y[order]
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]  # a threshold admits every tied score at once
    tp = np.cumsum(labels)[last_of_tie]
    fp = np.cumsum(1.0 - labels)[last_of_tie]
    candidates = scores[last_of_tie]
    precision = tp / (tp + fp)
    recall = tp / positives

    if policy.policy == "max_f_beta":
        b2 = float(policy.beta) ** 2
        f = np.where(tp > 0, (1 + b2) * precision * recall / np.maximum(b2 * precision + recall, 1e-300), 0.0)
        index = int(np.argmax(f))  # the first maximum: the highest threshold among equals
    elif policy.policy == "target_recall":
        index = int(np.argmax(recall >= float(policy.target) - 1e-12))
    elif policy.policy == "target_precision":
        reached = np.nonzero(precision >= float(policy.target) - 1e-12)[0]
        if len(reached):
            index = int(reached[-1])  # the lowest threshold that is still precise enough
        else:
            # The most precise cut; among equally precise ones the lowest, which catches the most positives.
            index = int(len(precision) - 1 - np.argmax(precision[::-1]))
            out["note"] = (f"no threshold reaches precision {policy.target:g} on the validation set; took the most "
                           f"precise one ({precision[index]:.4f})")
    else:
        false_negatives = positives - tp
        cost = float(policy.false_positive_cost) * fp + float(policy.false_negative_cost) * false_negatives
        index = int(np.argmin(cost))
        if float(policy.false_negative_cost) * positives < cost[index]:
            # Flagging nothing is cheaper than any threshold: say so instead of picking a costly one.
            out["note"] = "flagging nothing costs less than any threshold on the validation set"
            threshold = float(np.nextafter(scores[0], np.inf))
            return {**out, "threshold": threshold, "validation": _at(y, p, threshold)}
    threshold = float(candidates[index])
    return {**out, "threshold": threshold, "validation": _at(y, p, threshold)}


def _at(y: np.ndarray, p: np.ndarray, threshold: float) -> Dict[str, Any]:
    predicted = p >= threshold
    tp = float((predicted & (y == 1)).sum())
    flagged = float(predicted.sum())
    positives = float((y == 1).sum())
    return {
        "rows": int(len(y)),
        "positives": int(positives),
        "predicted_positives": int(flagged),
        "precision": tp / flagged if flagged else 0.0,
        "recall": tp / positives if positives else 0.0,
    }
