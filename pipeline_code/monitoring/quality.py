"""Model quality with delayed ground truth, bias drift and attribution drift.

Labels: files (parquet, CSV, JSON Lines) under ``--labels-dir`` with columns
``inference_id, label, label_time`` (extra columns such as the sensitive attribute are
kept); the latest label per ``inference_id`` wins. Labels are joined to the captured
predictions by ``inference_id``.

Delayed labels: the window is split into daily sub-windows by ``inference_time``; a day is
*scored* only when its label coverage reaches ``min_label_coverage`` (labels for later
days are still arriving). Quality metrics pool the labelled rows of the scored days; with
fewer than ``min_labeled_rows`` of them the quality checks are ``skipped`` (pending
labels), which is not an error. Metrics reuse :mod:`pipeline_code.training.metrics` and
are compared with the baseline evaluation (``evaluation.json``: challenger metrics and
fairness on the frozen test set).

Bias drift: positive rate per group of the sensitive attribute (needs no labels) and the
demographic parity difference, plus TPR per group on the labelled rows, against the
baseline fairness block. Attribution drift: TreeSHAP mean |SHAP| on a window sample vs
``attributions.json``: Spearman rank correlation of the mean |SHAP| and NDCG of the window
ranking with the baseline mean |SHAP| as relevance (the measure Clarify uses).
"""

from __future__ import annotations

import glob
import math
import os
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import pandas as pd

from pipeline_code.monitoring.capture import INFERENCE_ID, INFERENCE_TIME, SCORE
from pipeline_code.monitoring.drift import FAIL, PASS, SKIPPED, WARN, check
from pipeline_code.training import metrics

LABEL, LABEL_TIME = "label", "label_time"


class LabelError(ValueError):
    """The labels cannot be read (reported; monitoring continues without quality checks)."""


def read_labels(labels_dir: str) -> pd.DataFrame:
    """Every label file under ``labels_dir`` as one frame (latest label per inference_id)."""
    paths = sorted(p for p in glob.glob(os.path.join(labels_dir, "**", "*"), recursive=True) if os.path.isfile(p))
    parts = []
    for path in paths:
        try:
            if path.endswith(".parquet"):
                parts.append(pd.read_parquet(path))
            elif path.endswith(".csv"):
                parts.append(pd.read_csv(path, dtype={INFERENCE_ID: str}))
            elif path.endswith((".jsonl", ".json")):
                parts.append(pd.read_json(path, lines=True, dtype={INFERENCE_ID: str}))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, not fatal
            raise LabelError(f"{path}: {exc}") from None
    if not parts:
        return pd.DataFrame({INFERENCE_ID: pd.Series([], dtype=object), LABEL: pd.Series([], dtype=float)})
    labels = pd.concat(parts, ignore_index=True)
    missing = [c for c in (INFERENCE_ID, LABEL) if c not in labels.columns]
    if missing:
        raise LabelError(f"label files under {labels_dir!r} lack columns {missing}")
    labels[INFERENCE_ID] = labels[INFERENCE_ID].astype(str)
    labels[LABEL] = pd.to_numeric(labels[LABEL], errors="coerce")
    labels = labels[labels[LABEL].isin([0, 1])]
    if LABEL_TIME in labels.columns:
        labels = labels.sort_values(LABEL_TIME, kind="mergesort")
    return labels.drop_duplicates(INFERENCE_ID, keep="last").reset_index(drop=True)


def join_labels(frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus ``label`` (NaN where no label arrived); label-side columns fill gaps in traffic columns."""
    left = frame.copy()
    left[INFERENCE_ID] = left[INFERENCE_ID].astype(str)
    joined = left.merge(labels, on=INFERENCE_ID, how="left", suffixes=("", "__label"), validate="many_to_one")
    for c in [c for c in joined.columns if c.endswith("__label")]:
        base = c[: -len("__label")]
        joined[base] = joined[base].where(joined[base].notna(), joined[c])
        joined = joined.drop(columns=c)
    return joined


def model_quality(
    joined: pd.DataFrame,
    baseline_metrics: Optional[Mapping[str, Any]],
    *,
    threshold: float = 0.5,
    min_label_coverage: float = 0.5,
    min_labeled_rows: int = 200,
    max_auc_drop: float = 0.05,
) -> Dict[str, Any]:
    """Quality on the days whose labels have arrived, vs the baseline evaluation metrics."""
    n = len(joined)
    labeled_mask = joined[LABEL].notna() & joined[SCORE].notna()
    days = pd.to_datetime(joined[INFERENCE_TIME], utc=True, errors="coerce").dt.strftime("%Y-%m-%d").fillna("(unknown)")
    windows = []
    scored_days = []
    for day, idx in joined.groupby(days, sort=True).groups.items():
        rows = len(idx)
        labeled = int(labeled_mask.loc[idx].sum())
        coverage = labeled / rows if rows else 0.0
        scored = coverage >= min_label_coverage
        windows.append({"day": day, "rows": rows, "labeled": labeled, "coverage": coverage, "scored": bool(scored)})
        if scored:
            scored_days.append(day)
    coverage_total = float(labeled_mask.mean()) if n else 0.0
    use = labeled_mask & days.isin(scored_days)
    y = joined.loc[use, LABEL].to_numpy(dtype=np.float64)
    p = joined.loc[use, SCORE].to_numpy(dtype=np.float64)
    out: Dict[str, Any] = {
        "label_coverage": coverage_total,
        "labeled_rows": int(labeled_mask.sum()),
        "scored_rows": int(use.sum()),
        "windows": windows,
        "min_label_coverage": min_label_coverage,
        "min_labeled_rows": min_labeled_rows,
    }
    checks = [check("label_coverage", "model_quality", coverage_total, min_label_coverage,
                    PASS if coverage_total >= min_label_coverage else WARN, op="<",
                    detail=f"{len(scored_days)}/{len(windows)} days scored")]
    base_auc = (baseline_metrics or {}).get("auc")
    if len(y) < min_labeled_rows or len(np.unique(y)) < 2:
        detail = f"{len(y)} labelled rows on days with coverage >= {min_label_coverage} (need {min_labeled_rows}, both classes)"
        out.update({"status": SKIPPED, "detail": detail})
        checks.append(check("auc_drop", "model_quality", None, max_auc_drop, SKIPPED, detail=detail))
        out["checks"] = checks
        return out
    window_metrics = metrics.headline(y, p, threshold)
    out["metrics"] = {k: window_metrics[k] for k in ("rows", "prevalence", "auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1", "positive_rate")}
    out["baseline_metrics"] = {k: (baseline_metrics or {}).get(k) for k in ("auc", "log_loss", "brier", "f1")}
    auc = window_metrics["auc"]
    if base_auc is None:
        out["status"] = SKIPPED
        checks.append(check("auc_drop", "model_quality", None, max_auc_drop, SKIPPED, detail="no baseline evaluation metrics"))
    else:
        drop = float(base_auc) - float(auc)
        out["auc_drop"] = drop
        out["status"] = FAIL if drop > max_auc_drop else PASS
        checks.append(check("auc_drop", "model_quality", drop, max_auc_drop, out["status"],
                            detail=f"window AUC {auc:.4f} vs baseline {float(base_auc):.4f}"))
        base_ll = (baseline_metrics or {}).get("log_loss")
        if base_ll is not None:
            increase = window_metrics["log_loss"] - float(base_ll)
            out["log_loss_increase"] = increase
            checks.append(check("log_loss_increase", "model_quality", increase, 0.1, WARN if increase > 0.1 else PASS))
    out["checks"] = checks
    return out


def bias_drift(
    joined: pd.DataFrame,
    attribute: str,
    baseline_fairness: Optional[Mapping[str, Any]],
    *,
    threshold: float = 0.5,
    min_group_rows: int = 100,
    max_dpd: float = 0.10,
    max_group_rate_change: float = 0.10,
) -> Dict[str, Any]:
    """Positive rate / TPR per group of ``attribute`` vs the baseline fairness block."""
    if attribute not in joined.columns or joined[attribute].notna().sum() == 0:
        detail = f"sensitive attribute {attribute!r} not in traffic or labels"
        return {"status": SKIPPED, "detail": detail, "checks": [check("demographic_parity_difference", "bias", None, max_dpd, SKIPPED, detail=detail)]}
    scored = joined[joined[SCORE].notna()]
    p = scored[SCORE].to_numpy(dtype=np.float64)
    rates = metrics.fairness(scored[attribute], np.zeros(len(p)), p, attribute=attribute, min_group_rows=min_group_rows, threshold=threshold)
    labeled = scored[scored[LABEL].notna()] if LABEL in scored.columns else scored.iloc[:0]
    tpr = (metrics.fairness(labeled[attribute], labeled[LABEL].to_numpy(dtype=np.float64), labeled[SCORE].to_numpy(dtype=np.float64),
                            attribute=attribute, min_group_rows=min_group_rows, threshold=threshold) if len(labeled) else None)
    base_groups = (baseline_fairness or {}).get("groups") or {}
    base_dpd = (baseline_fairness or {}).get("demographic_parity_difference")
    checks: List[Dict[str, Any]] = []
    groups: Dict[str, Any] = {}
    for g, v in rates["groups"].items():
        entry = {"rows": v["rows"], "positive_rate": v["positive_rate"], "eligible": v["eligible"],
                 "baseline_positive_rate": (base_groups.get(g) or {}).get("positive_rate"),
                 "baseline_true_positive_rate": (base_groups.get(g) or {}).get("true_positive_rate")}
        if tpr is not None and g in tpr["groups"]:
            entry["true_positive_rate"] = tpr["groups"][g]["true_positive_rate"]
            entry["labeled_positives"] = tpr["groups"][g]["positives"]
        groups[g] = entry
        if not v["eligible"] or entry["baseline_positive_rate"] is None:
            continue
        change = v["positive_rate"] - entry["baseline_positive_rate"]
        checks.append(check("group_positive_rate_change", "bias", abs(change), max_group_rate_change,
                            FAIL if abs(change) > max_group_rate_change else PASS, feature=f"{attribute}={g}",
                            detail=f"{v['positive_rate']:.4f} vs baseline {entry['baseline_positive_rate']:.4f}"))
        if entry.get("true_positive_rate") is not None and entry["baseline_true_positive_rate"] is not None and entry.get("labeled_positives", 0) >= 30:
            d = entry["true_positive_rate"] - entry["baseline_true_positive_rate"]
            checks.append(check("group_tpr_change", "bias", abs(d), max_group_rate_change,
                                WARN if abs(d) > max_group_rate_change else PASS, feature=f"{attribute}={g}"))
    dpd = rates["demographic_parity_difference"]
    limit = max_dpd if base_dpd is None else max(max_dpd, float(base_dpd) + max_group_rate_change / 2)
    status = SKIPPED if dpd is None else (FAIL if dpd > limit else PASS)
    checks.insert(0, check("demographic_parity_difference", "bias", dpd, limit, status,
                           detail=f"baseline {base_dpd if base_dpd is None else round(float(base_dpd), 4)}"))
    return {
        "attribute": attribute,
        "status": FAIL if any(c["status"] == FAIL for c in checks) else status,
        "demographic_parity_difference": dpd,
        "baseline_demographic_parity_difference": base_dpd,
        "disparate_impact": rates["disparate_impact"],
        "equal_opportunity_difference": tpr["equal_opportunity_difference"] if tpr else None,
        "groups": groups,
        "checks": checks,
    }


def spearman(a: List[float], b: List[float]) -> Optional[float]:
    """Spearman rank correlation (average ranks for ties)."""
    if len(a) < 2:
        return None
    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def ndcg(window_ranking: List[str], relevance: Mapping[str, float], k: Optional[int] = None) -> Optional[float]:
    """NDCG@k of ``window_ranking`` with ``relevance`` (baseline mean |SHAP|) as gains."""
    k = k or len(window_ranking)
    ideal = sorted(relevance.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    if idcg <= 0:
        return None
    dcg = sum(relevance.get(f, 0.0) / math.log2(i + 2) for i, f in enumerate(window_ranking[:k]))
    return float(dcg / idcg)


def attribution_drift(model: Any, frame: pd.DataFrame, baseline: Mapping[str, Any], *, max_rows: int = 2000,
                      min_ndcg: float = 0.90, min_rows: int = 100) -> Dict[str, Any]:
    """Window TreeSHAP ranking vs ``attributions.json``."""
    from pipeline_code.training import explain

    if len(frame) < min_rows:
        detail = f"{len(frame)} rows < min_rows {min_rows}"
        return {"status": SKIPPED, "detail": detail, "checks": [check("attribution_ndcg", "attribution", None, min_ndcg, SKIPPED, op="<", detail=detail)]}
    window = explain.attributions(model, frame, max_rows=max_rows)
    base_features = baseline.get("features") or {}
    names = [f for f in window["ranking"] if f in base_features]
    relevance = {f: float(base_features[f]["mean_abs_shap"]) for f in names}
    rho = spearman([relevance[f] for f in names], [window["features"][f]["mean_abs_shap"] for f in names])
    score = ndcg(names, relevance)
    status = SKIPPED if score is None else (FAIL if score < min_ndcg else PASS)
    return {
        "status": status,
        "ndcg": score,
        "spearman": rho,
        "window_ranking": window["ranking"],
        "baseline_ranking": list(baseline.get("ranking") or []),
        "window_mean_abs_shap": {f: window["features"][f]["mean_abs_shap"] for f in window["ranking"]},
        "rows": window["rows"],
        "checks": [
            check("attribution_ndcg", "attribution", score, min_ndcg, status, op="<"),
            check("attribution_rank_correlation", "attribution", rho, None, PASS if rho is not None else SKIPPED, op="info"),
        ],
    }
