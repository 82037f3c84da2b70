"""Monitoring baselines: what the drift monitors compare traffic against.

The features' baselines are of the training rows; the predictions' are of the model's scores on the
**validation** split (``--validation-dir``): rows the model did not fit, and the latest in time
(Prepare splits by event time), as live traffic is scored. Scores on the training rows themselves are
in-sample - a deep or long-trained model is surer of them than of any new row - so a baseline of them would
make the prediction-drift monitor see drift where traffic is only unseen. ``statistics.json`` records which
split the prediction baseline came from (``prediction.split``, ``prediction.rows``).

Outputs in ``--output-dir`` (default ``/opt/ml/processing/output/baseline``):

``statistics.json``  per feature (model inputs, the sensitive attribute, slice columns):
                     kind, count, missing rate; numbers: mean/std/min/max, quantiles and a
                     histogram on the training deciles (``bin_edges`` are interior cut
                     points: bin ``i`` holds ``edges[i-1] <= x < edges[i]``, see
                     :func:`bin_counts`) for PSI; categories: level counts/fractions (values
                     outside the model's levels count as ``__other__``). Plus the
                     distribution of the model's predictions on the validation split and the
                     training target's, per problem type (``problem_type`` is written for the
                     non-binary ones; absent = binary):

                     * binary: ``prediction`` = score histogram on the validation scores'
                       quantile cut points (:func:`quantile_edges`: a rare-event model's scores
                       crowd near 0, where fixed 0.1-wide bins would hold nearly all of them in
                       one bin and a drift there would not move PSI), mean, quantiles, positive
                       rate at the model's threshold; ``target`` = positive rate.
                     * multiclass: ``prediction`` = predicted-class counts and shares
                       (``histogram.levels`` = the classes in label-code order) and the mean
                       probability per class; ``target`` = class counts and shares.
                     * regression: ``prediction`` = mean/std/min/max, quantiles and a
                       histogram on the validation predictions' quantile cut points
                       (:func:`quantile_edges`: a value that holds a whole quantile - tree
                       models predict few distinct values - gets a bin of its own, so a
                       concentrated distribution still splits); ``target`` = the same
                       summary statistics of the true values.
``constraints.json`` per feature: kind, Feature Store type, allowed categories, min/max,
                     completeness (share of non-missing values in training).
``attributions.json`` mean |SHAP| per feature and the ranking (TreeSHAP on a training sample).
``digests.json``     ``sha256:<hex>`` of each of the three above (``core.integrity.write_digests``): the register
                     step records those of the first two in the model package (ModelMetrics ContentDigest).

The same :func:`bin_counts` / :func:`psi` helpers are meant to be used by the monitors on
traffic, so baseline and traffic are binned identically.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from pipeline_code import catalog
from pipeline_code.core import integrity, problem
from pipeline_code.training import data_io, explain
from pipeline_code.training.data_io import InputError
from pipeline_code.training.spec import ModelSpec, add_model_spec_argument
from pipeline_code.training.model_io import CATEGORICAL, TrainedModel, load_model, predict, read_split

PROG = "python -m pipeline_code.training.baseline"
OTHER_LEVEL = "__other__"
# Shares below this are clipped in PSI (:func:`psi`), so an empty bin does not make it infinite.
PSI_EPSILON = 1e-4
# Counts per block of psi_rows (2 MB of float64 a buffer: no fresh memory per temporary, see there).
PSI_BLOCK_CELLS = 1 << 18
# The prepared split the model's predictions are baselined on (statistics.json prediction.split).
PREDICTION_SPLIT = "validation"
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


def bin_counts(values: Any, edges: Sequence[float]) -> List[int]:
    """Counts of non-missing ``values`` in the ``len(edges) + 1`` bins cut at ``edges`` (ascending; a value equal
    to an edge belongs to the bin above it)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    e = np.asarray(edges, dtype=np.float64)
    if np.isnan(e).any() or (np.diff(e) < 0).any():
        raise ValueError(f"bin edges must be ascending numbers, not {e.tolist()[:12]}")
    # How many values reach each edge, one comparison per edge: a few edges against many values, this is several
    # times faster than a binary search per value (numpy.searchsorted), with the same bins.
    reach = np.array([np.count_nonzero(v >= edge) for edge in e], dtype=np.int64)
    below = np.concatenate([[len(v)], reach])
    return (below - np.concatenate([reach, [0]])).astype(int).tolist()


def psi(expected: Sequence[float], actual: Sequence[float], eps: float = PSI_EPSILON) -> float:
    """Population stability index of two binned distributions (counts or fractions)."""
    return float(psi_rows(np.asarray(expected, dtype=np.float64)[None, :], np.asarray(actual, dtype=np.float64)[None, :], eps)[0])


def psi_rows(expected: np.ndarray, actual: np.ndarray, eps: float = PSI_EPSILON) -> np.ndarray:
    """:func:`psi` of each row pair of two count matrices (rows = pairs, columns = bins): shares clipped at
    ``eps`` so an empty bin does not make PSI infinite (an all-zero row stays all ``eps``). Integer counts are
    divided as they are (no float copy first: the same shares)."""
    expected_totals, actual_totals = _row_totals(expected), _row_totals(actual)
    # A calibration simulation's matrices hold millions of counts: each temporary of that size (shares, a clip, a
    # ratio, a log, a product) cost more than the arithmetic on it (fresh memory for every one). So the rows go a
    # block of PSI_BLOCK_CELLS counts at a time through three buffers reused in place: the same operations on the
    # same values in the same order, each row's sum its own, so every PSI is the same float.
    step = max(1, PSI_BLOCK_CELLS // max(1, expected.shape[1]))
    e = a = difference = None
    parts = []
    for start in range(0, max(len(expected), 1), step):  # an empty matrix: one empty block
        rows = slice(start, start + step)
        size = len(expected[rows])
        e = np.divide(expected[rows], expected_totals[rows], out=None if e is None else e[:size])
        a = np.divide(actual[rows], actual_totals[rows], out=None if a is None else a[:size])
        np.maximum(e, eps, out=e)
        np.maximum(a, eps, out=a)
        difference = np.subtract(a, e, out=None if difference is None else difference[:size])
        np.divide(a, e, out=a)
        np.log(a, out=a)
        difference *= a
        parts.append(np.sum(difference, axis=1))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _row_totals(counts: np.ndarray) -> np.ndarray:
    """Each row's total as a column, 1 for an all-zero row (its shares stay 0)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.where(totals > 0, totals, 1)


def quantile_edges(values: Any, bins: int = 10) -> List[float]:
    """Interior cut points of ``bins`` quantile bins of ``values`` (for :func:`bin_counts`).

    Quantiles that coincide (a point mass holding a whole quantile, common in tree models'
    predictions) would merge bins; such a value gets its own bin instead - a cut point at it and
    one halfway to the next larger value - so a shift of the mass still moves counts across a cut.
    """
    v = np.asarray(values, dtype=np.float64)
    present = np.sort(v[~np.isnan(v)])
    if len(present) == 0:
        return []
    cuts = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
    distinct = np.unique(present)
    edges = set(float(e) for e in cuts)
    values_, repeats = np.unique(cuts, return_counts=True)
    for value, count in zip(values_, repeats):
        at = np.searchsorted(distinct, value, side="right")
        if count > 1 and at < len(distinct):
            edges.add(float(value + (distinct[at] - value) / 2))
    return sorted(edges)


def _summary(values: np.ndarray) -> Dict[str, Any]:
    """Mean, std, min, max and quantiles of finite ``values`` (None for an empty set)."""
    if len(values) == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "quantiles": {}}
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "quantiles": {f"p{int(round(q * 100)):02d}": float(x) for q, x in zip(QUANTILES, np.quantile(values, QUANTILES))},
    }


def numeric_statistics(values: Any, bins: int = 10) -> Dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    present = v[~np.isnan(v)]
    n, missing = len(v), int(np.isnan(v).sum())
    out: Dict[str, Any] = {"kind": "numeric", "count": n, "missing": missing, "missing_rate": missing / n if n else None}
    if len(present) == 0:
        out.update({"mean": None, "std": None, "min": None, "max": None, "quantiles": {}, "histogram": None})
        return out
    qs = np.quantile(present, QUANTILES)
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = bin_counts(present, edges)
    out.update(
        {
            "mean": float(present.mean()),
            "std": float(present.std()),
            "min": float(present.min()),
            "max": float(present.max()),
            "quantiles": {f"p{int(round(q * 100)):02d}": float(x) for q, x in zip(QUANTILES, qs)},
            "histogram": {
                "bin_edges": [float(e) for e in edges],
                "counts": counts,
                "fractions": [c / len(present) for c in counts],
            },
        }
    )
    return out


def categorical_statistics(values: Any, levels: Optional[Sequence[str]]) -> Dict[str, Any]:
    series = pd.Series(values)
    n = len(series)
    missing = int(series.isna().sum())
    counts = series.dropna().astype(str).value_counts()
    if levels is None:
        levels = sorted(counts.index.tolist())
    level_counts = {str(level): int(counts.get(level, 0)) for level in levels}
    other = int(counts[~counts.index.isin(list(levels))].sum())
    present = n - missing
    entries = {k: {"count": c, "fraction": c / present if present else 0.0} for k, c in level_counts.items()}
    entries[OTHER_LEVEL] = {"count": other, "fraction": other / present if present else 0.0}
    return {
        "kind": "categorical",
        "count": n,
        "missing": missing,
        "missing_rate": missing / n if n else None,
        "distinct": int(len(counts)),
        "levels": entries,
    }


def categorical_constraint(entry: Dict[str, Any], *, declared: bool) -> Dict[str, Any]:
    """The constraint of a categorical whose :func:`categorical_statistics` are ``entry``: its ``allowed`` levels and,
    when they are the levels training saw (``declared`` False) and some were seen once, ``expected_unseen_rate``: the
    share of a same-distribution window's values training never saw (Good-Turing: the levels seen once over the
    values present; a merchant id of 20,000 Zipf-like levels on 200,000 training values: about 2.7 %), which the
    data-quality check adds to ``--max-unseen-rate`` (docs/monitoring.md, Scale limits)."""
    allowed = [k for k in entry["levels"] if k != OTHER_LEVEL]
    constraint: Dict[str, Any] = {"kind": "categorical", "allowed": allowed}
    present = entry["count"] - entry["missing"]
    once = sum(1 for k in allowed if entry["levels"][k]["count"] == 1)
    if not declared and once and present > 0:
        constraint["expected_unseen_rate"] = once / present
    return constraint


def compute_baseline(
    spec: ModelSpec, model: TrainedModel, train: pd.DataFrame, validation: pd.DataFrame, *, bins: int = 10,
    shap_sample_rows: int = explain.DEFAULT_MAX_ROWS
) -> Dict[str, Dict[str, Any]]:
    """``{"statistics": ..., "constraints": ..., "attributions": ...}``: features, constraints, attributions and the
    target of the training frame; the predictions of the model on the ``validation`` frame (out of sample)."""
    model_levels = {f["name"]: f.get("categories") for f in model.metadata["features"] if f["kind"] == CATEGORICAL}
    created = dt.datetime.now(dt.timezone.utc).isoformat()
    stats: Dict[str, Any] = {}
    constraints: Dict[str, Any] = {}
    for name in spec.frame_features:
        feature_type = spec.feature_type(name)
        role = "input" if name in spec.features else ("sensitive_attribute" if name == spec.sensitive_attribute else "slice")
        if spec.is_categorical(name):
            entry = categorical_statistics(train[name].astype(object), model_levels.get(name))
            constraint = categorical_constraint(entry, declared=model_levels.get(name) is not None)
        else:
            entry = numeric_statistics(pd.to_numeric(train[name]).to_numpy(dtype=np.float64, na_value=np.nan), bins)
            constraint = {"kind": "numeric", "min": entry["min"], "max": entry["max"], "integral": feature_type == catalog.INTEGRAL}
        entry.update({"feature_type": feature_type, "role": role})
        stats[name] = entry
        constraint.update(
            {
                "feature_type": feature_type,
                "role": role,
                "completeness": 1.0 - (entry["missing_rate"] or 0.0),
                "nullable": entry["missing"] > 0,
            }
        )
        constraints[name] = constraint

    y = train[spec.target].to_numpy(dtype=np.float64)
    header = {"model": spec.name, "dataset": spec.dataset, "created_at": created, "rows": int(len(train))}
    if spec.problem_type != problem.BINARY:
        documents = prediction_statistics(spec, model, validation, y, bins=bins)
        statistics = {**header, "problem_type": spec.problem_type, "features": stats, **documents}
    else:
        statistics = {**header, "features": stats, **_binary_prediction_statistics(spec, model, validation, y)}
    # Which rows the model scored for the prediction baseline: out of sample, as traffic is.
    statistics["prediction"].update({"split": PREDICTION_SPLIT, "rows": int(len(validation))})
    constraints_doc = {**header, "feature_order": list(spec.features), "features": constraints}
    attributions = {**header, **explain.attributions(model, train, max_rows=shap_sample_rows)}
    return {"statistics": statistics, "constraints": constraints_doc, "attributions": attributions}


def _binary_prediction_statistics(spec: ModelSpec, model: TrainedModel, scored: pd.DataFrame, y: np.ndarray) -> Dict[str, Any]:
    """The score distribution of the model on ``scored`` and the positive rate of ``y``."""
    scores = predict(model, scored)
    edges = quantile_edges(scores)
    score_counts = bin_counts(scores, edges)
    return {
        "prediction": {
            "mean": float(scores.mean()) if len(scores) else None,
            "quantiles": {f"p{int(round(q * 100)):02d}": float(x) for q, x in zip(QUANTILES, np.quantile(scores, QUANTILES))},
            "histogram": {
                "bin_edges": edges,
                "counts": score_counts,
                "fractions": [c / len(scores) for c in score_counts],
            },
            "positive_rate_at_threshold": float((scores >= model.threshold).mean()),
            "threshold": model.threshold,
        },
        "target": {"name": spec.target, "positive_rate": float(y.mean()) if len(y) else None},
    }


def prediction_statistics(spec: ModelSpec, model: TrainedModel, scored: pd.DataFrame, y: np.ndarray, *,
                          bins: int = 10) -> Dict[str, Any]:
    """``{"prediction": ..., "target": ...}`` of a multiclass or regression model (see the module docstring): its
    predictions on ``scored``, the target's statistics of ``y``."""
    out = predict(model, scored)
    if spec.problem_type == problem.MULTICLASS:
        classes = [str(c) for c in spec.classes]
        k = len(classes)
        probabilities = np.asarray(out, dtype=np.float64).reshape(len(scored), k)
        predicted = probabilities.argmax(axis=1) if len(scored) else np.zeros(0, dtype=np.int64)
        counts = np.bincount(predicted, minlength=k)[:k].astype(int).tolist()
        actual = np.bincount(y.astype(np.int64), minlength=k)[:k].astype(int).tolist() if len(y) else [0] * k
        n, n_true = len(scored), len(y)
        return {
            "prediction": {
                "classes": classes,
                "histogram": {"levels": classes, "counts": counts, "fractions": [c / n if n else 0.0 for c in counts]},
                "predicted_shares": {c: (counts[i] / n if n else 0.0) for i, c in enumerate(classes)},
                "mean_probabilities": {c: (float(probabilities[:, i].mean()) if n else None) for i, c in enumerate(classes)},
            },
            "target": {
                "name": spec.target,
                "classes": classes,
                "class_counts": {c: actual[i] for i, c in enumerate(classes)},
                "class_shares": {c: (actual[i] / n_true if n_true else 0.0) for i, c in enumerate(classes)},
            },
        }
    values = np.asarray(out, dtype=np.float64)
    values = values[np.isfinite(values)]
    edges = quantile_edges(values, bins)
    counts = bin_counts(values, edges)
    truth = y[np.isfinite(y)]
    return {
        "prediction": {
            **_summary(values),
            "histogram": {
                "binning": "quantile",
                "bin_edges": edges,
                "counts": counts,
                "fractions": [c / len(values) if len(values) else 0.0 for c in counts],
            },
        },
        "target": {"name": spec.target, **_summary(truth)},
    }


def run(
    spec: ModelSpec, model_dir: str, train_dir: str, validation_dir: str, output_dir: str, *, bins: int = 10,
    shap_sample_rows: int = explain.DEFAULT_MAX_ROWS
) -> Dict[str, Dict[str, Any]]:
    model = load_model(model_dir)
    if model.metadata.get("model") != spec.name:
        raise InputError(f"model at {model_dir!r} belongs to {model.metadata.get('model')!r}, not {spec.name!r}")
    train = read_split(train_dir, spec, what="train", columns=[*spec.frame_features, spec.target])
    if len(train) == 0:
        raise InputError(f"train split at {train_dir!r} is empty")
    validation = read_split(validation_dir, spec, what="validation", columns=[*spec.features, spec.target])
    if len(validation) == 0:
        raise InputError(f"validation split at {validation_dir!r} is empty: the prediction baseline is of the model's "
                         "scores on it (out of sample, as traffic is)")
    documents = compute_baseline(spec, model, train, validation, bins=bins, shap_sample_rows=shap_sample_rows)
    for name, document in documents.items():
        data_io.write_json(os.path.join(output_dir, f"{name}.json"), document)
    # Their digests, which the register step records in the model package (ModelMetrics ContentDigest).
    integrity.write_digests(output_dir, [f"{name}.json" for name in documents])
    return documents


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_spec_argument(parser)
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir", default="/opt/ml/processing/input/model")
    parser.add_argument("--train-dir", "--train_dir", dest="train_dir", default="/opt/ml/processing/input/train",
                        help="the prepared training split: the features' baselines (default: the processing input)")
    parser.add_argument("--validation-dir", "--validation_dir", dest="validation_dir",
                        default="/opt/ml/processing/input/validation",
                        help="the prepared validation split: the predictions' baseline, out of sample (default: the "
                             "processing input)")
    parser.add_argument("--output-dir", "--output_dir", dest="output_dir", default="/opt/ml/processing/output/baseline")
    parser.add_argument("--bins", type=int, default=10, help="histogram bins per numeric feature (default 10)")
    parser.add_argument("--shap-sample-rows", "--shap_sample_rows", dest="shap_sample_rows", type=int, default=explain.DEFAULT_MAX_ROWS)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.bins < 2 or args.shap_sample_rows < 1:
        parser.error("--bins must be >= 2 and --shap-sample-rows >= 1")
    try:
        docs = run(args.model_spec, args.model_dir, args.train_dir, args.validation_dir, args.output_dir, bins=args.bins,
                   shap_sample_rows=args.shap_sample_rows)
    except InputError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(
        f"baseline for {args.model_spec.name}: {docs['statistics']['rows']} training rows, "
        f"predictions on {docs['statistics']['prediction']['rows']} {PREDICTION_SPLIT} rows, "
        f"{len(docs['statistics']['features'])} features; top attributions: {', '.join(docs['attributions']['ranking'][:3])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
