"""Model quality with delayed ground truth, bias drift and attribution drift.

Labels: files (parquet, CSV, JSON Lines) under ``--labels-dir`` with columns
``inference_id, label, label_time`` (extra columns such as the sensitive attribute are
kept); the latest label per ``inference_id`` wins: by ``label_time`` (ISO-8601, any offset; one that cannot be read
is never the latest), else the file read last. Labels are joined to the captured predictions by ``inference_id``.

Delayed labels: the window is split into daily sub-windows by ``inference_time``; a day is
*scored* only when its label coverage reaches ``min_label_coverage`` (labels for later
days are still arriving). Quality metrics pool the labelled rows of the scored days; with
fewer than ``min_labeled_rows`` of them the quality checks are ``skipped`` (pending
labels), which is not an error. Metrics reuse :mod:`pipeline_code.training.metrics` and
are compared with the baseline evaluation (``evaluation.json``: challenger metrics and
fairness on the frozen test set).

Per problem type (``label`` values: binary 0/1; multiclass the class *names*, e.g. ``gold`` or ``3``,
turned into class codes; regression numbers; anything else is dropped):

* binary: AUC, log loss, F1 ... at the model's threshold; the ``auc_drop`` check, and ``quality_drop`` on the
  primary metric when it is not AUC (PR-AUC, F1, log loss: a collapse in one of them can leave the AUC stable).
* multiclass: accuracy, macro F1, log loss and macro one-vs-rest AUC (``auc``); log loss and AUC need the
  class probabilities (captured, or re-scored by the monitor), accuracy and F1 only the predicted class.
  ``auc_drop`` as for binary (macro AUC), and ``quality_drop`` on the primary metric when it is not AUC.
* regression: RMSE, MAE, R², bias; no AUC. ``quality_drop`` on the primary metric, and ``bias_shift`` (the mean
  error's move from the evaluation's, in evaluation RMSEs: :func:`_bias_shift`).

``quality_drop`` is how much worse the window is than the baseline in the primary metric's direction
(:func:`pipeline_code.core.problem.higher_is_better`): an absolute difference for the bounded metrics
(AUC, PR-AUC, accuracy, F1, R²), a relative one for the losses and errors (log loss, RMSE, MAE: 0.1 = 10 % higher);
it fails above ``max_quality_drop`` when that is also more than the noise of the window's labels (:func:`model_quality`).

Bias drift: positive rate per group of the sensitive attribute (needs no labels) and the
demographic parity difference, plus TPR per group on the labelled rows, against the
baseline fairness block. Multiclass: the predicted-class shares per group (largest change of a class's
share, per group) and the demographic parity difference of the worst class. Regression: MAE per group on
the labelled rows vs the baseline's (relative change, a warning) and the error parity ratio (min / max
group MAE relative to its mean |target|, :mod:`..training.metrics_regression`) against the baseline's of the same
measure, and the bias gap (the most over- minus the most under-estimated group's mean error over its mean |target|,
the gate's ``bias_parity`` measure) against ``max_dpd`` as the demographic parity difference is: equal relative
errors can hide one group over- and another under-estimated. Attribution drift: TreeSHAP mean |SHAP| on a window
sample vs ``attributions.json``: Spearman rank correlation of the mean |SHAP| and NDCG of the window
ranking with the baseline mean |SHAP| as relevance (the measure Clarify uses).
"""

from __future__ import annotations

import glob
import math
import os
from statistics import NormalDist
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pipeline_code import catalog
from pipeline_code.core.problem import BINARY, MULTICLASS, REGRESSION, higher_is_better
from pipeline_code.monitoring.capture import INFERENCE_ID, INFERENCE_TIME, SCORE, probability_column, request_times
from pipeline_code.monitoring.drift import DEFAULT_FALSE_ALARM_RATE, FAIL, PASS, SKIPPED, WARN, check
from pipeline_code.training import metrics, metrics_multiclass, metrics_regression

LABEL, LABEL_TIME = "label", "label_time"


class LabelError(ValueError):
    """The labels cannot be read (reported; monitoring continues without quality checks)."""


def label_files(labels_dir: str) -> List[str]:
    """Every file under ``labels_dir`` (any depth), in the order their labels count (a later file's label wins a tie)."""
    return sorted(p for p in glob.glob(os.path.join(labels_dir, "**", "*"), recursive=True) if os.path.isfile(p))


def _read_label_file(path: str) -> Optional[pd.DataFrame]:
    """One label file whole (None: not a label file - parquet, CSV, JSON Lines - and not read)."""
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    if path.endswith(".csv"):
        return pd.read_csv(path, dtype={INFERENCE_ID: str})
    if path.endswith((".jsonl", ".json")):
        return pd.read_json(path, lines=True, dtype={INFERENCE_ID: str})
    return None


def read_label_chunks(path: str, columns: Sequence[str], rows: int) -> Iterator[pd.DataFrame]:
    """One label file a chunk of at most ``rows`` rows at a time, only those of ``columns`` it has, read as
    :func:`read_labels` reads the whole file (nothing for a file that is no label file). Raises what the reader
    raises (a file that cannot be read)."""
    wanted = set(columns)
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        present = [c for c in parquet.schema_arrow.names if c in wanted]
        empty = True
        for batch in parquet.iter_batches(batch_size=rows, columns=present):
            empty = False
            yield batch.to_pandas()
        if empty:  # no rows, but its columns count (read_labels' concat keeps them)
            yield parquet.schema_arrow.empty_table().select(present).to_pandas()
    elif path.endswith(".csv"):
        empty = True
        with pd.read_csv(path, dtype={INFERENCE_ID: str}, usecols=lambda c: c in wanted, chunksize=rows) as reader:
            for chunk in reader:
                empty = False
                yield chunk
        if empty:  # a header alone: its columns count
            yield pd.read_csv(path, dtype={INFERENCE_ID: str}, usecols=lambda c: c in wanted, nrows=0)
    elif path.endswith((".jsonl", ".json")):
        with pd.read_json(path, lines=True, dtype={INFERENCE_ID: str}, chunksize=rows) as reader:
            for chunk in reader:
                yield chunk[[c for c in chunk.columns if c in wanted]]


def usable_labels(labels: pd.DataFrame, problem_type: str = BINARY, classes: Sequence[str] = (),
                  deviance_power: Optional[float] = None):
    """``(usable, unusable)``: the rows of ``labels`` that carry a label, ``label`` as the metrics read it (see
    :func:`read_labels`), and the raw values of the rows that carry one this model does not take. A blank label is
    one not known yet (as training reads it): in neither. ``deviance_power``: a regression model trained on a count or
    amount loss (``ModelSpec.deviance``) takes no label its deviance is undefined on (negative; gamma: 0 or less), as
    the ETL quarantines such a training label: one would leave the whole window's deviance undefined."""
    labels = labels[labels[LABEL].notna() & (labels[LABEL].astype(str).str.strip() != "")].copy()
    raw = labels[LABEL].copy()
    if problem_type == MULTICLASS:
        labels[LABEL] = class_codes(labels[LABEL], classes)
        labels = labels[labels[LABEL].notna()]
    elif problem_type == REGRESSION:
        labels[LABEL] = pd.to_numeric(labels[LABEL], errors="coerce").astype(np.float64)
        values = labels[LABEL].to_numpy(dtype=np.float64)
        keep = np.isfinite(values)
        if deviance_power is not None:
            keep &= ~metrics_regression.outside_deviance_domain(np.where(keep, values, 1.0), deviance_power)
        labels = labels[keep]
    else:
        labels[LABEL] = pd.to_numeric(labels[LABEL], errors="coerce")
        labels = labels[labels[LABEL].isin([0, 1])]
    return labels, raw.drop(labels.index)


def no_usable_label(rows: int, labels_dir: str, examples: Sequence[str], problem_type: str,
                    deviance_power: Optional[float] = None) -> LabelError:
    """The error of label rows none of which this model takes (a silent "no labelled traffic" would hide a broken feed)."""
    kind = _LABEL_KINDS[problem_type]
    if problem_type == REGRESSION and deviance_power is not None:
        kind += (" above 0" if deviance_power >= 2 else ", 0 or more") + " (its loss's deviance is undefined on others)"
    return LabelError(f"none of the {rows} label rows under {labels_dir!r} is a label this model takes "
                      f"(e.g. {', '.join(repr(v) for v in examples)}); it takes {kind}")


def latest_label_order(labels: pd.DataFrame) -> pd.DataFrame:
    """``labels`` ordered so that the last row of an id is its latest label: by the time each ``label_time`` names, read
    on its own (:func:`request_times`: the files' readers leave the column text - parquet, CSV - or datetimes - JSON
    Lines parses a "*_time" column -, and neither text nor a mix of the two orders by time); a time that cannot be read
    is never the latest, equal times keep their order. Without the column, as they are."""
    if LABEL_TIME not in labels.columns:
        return labels
    order = request_times(labels[LABEL_TIME])
    return labels.loc[order.sort_values(kind="mergesort", na_position="first").index]


def read_labels(labels_dir: str, problem_type: str = BINARY, classes: Sequence[str] = (),
                deviance_power: Optional[float] = None) -> pd.DataFrame:
    """Every label file under ``labels_dir`` as one frame (latest label per inference_id); ``label`` as the
    metrics read it: 0/1 (binary), the class code (multiclass: names looked up in ``classes``), the value
    (regression). Labels that are none of these are dropped and counted (``attrs["unusable_labels"]``: rows and a
    few of the values); when label rows exist but none is usable, :class:`LabelError` names the values and what the
    model takes - a silent "no labelled traffic yet" would hide a broken label feed."""
    parts = []
    for path in label_files(labels_dir):
        try:
            frame = _read_label_file(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, not fatal
            raise LabelError(f"{path}: {exc}") from None
        if frame is not None:
            parts.append(frame)
    if not parts:
        return pd.DataFrame({INFERENCE_ID: pd.Series([], dtype=object), LABEL: pd.Series([], dtype=float)})
    labels = pd.concat(parts, ignore_index=True)
    missing = [c for c in (INFERENCE_ID, LABEL) if c not in labels.columns]
    if missing:
        raise LabelError(f"label files under {labels_dir!r} lack columns {missing}")
    labels[INFERENCE_ID] = labels[INFERENCE_ID].astype(str)
    labels, unusable = usable_labels(labels, problem_type, classes, deviance_power)
    if len(unusable):
        examples = sorted(set(unusable.astype(str)))[:3]
        if labels.empty:
            raise no_usable_label(len(unusable), labels_dir, examples, problem_type, deviance_power)
    out = latest_label_order(labels).drop_duplicates(INFERENCE_ID, keep="last").reset_index(drop=True)
    if len(unusable):
        out.attrs["unusable_labels"] = {"rows": int(len(unusable)), "examples": examples}
    return out


_LABEL_KINDS = {BINARY: "0 or 1 (a boolean column too)", MULTICLASS: "one of its class names", REGRESSION: "a finite number"}


def class_codes(values: pd.Series, classes: Sequence[str]) -> pd.Series:
    """Class names -> codes 0..K-1 (float; NaN when not a class), by :class:`catalog.ClassCoder`."""
    coder = catalog.ClassCoder(tuple(classes))

    def code(value: Any) -> float:
        found = coder.code(value)
        return math.nan if found is None else float(found)

    return values.astype(object).map(code).astype(np.float64)


def join_labels(frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus ``label`` (NaN where no label arrived); label-side columns fill gaps in traffic columns."""
    ids = frame[INFERENCE_ID].astype(str)
    joined = _left_join(frame, ids, labels)
    if joined is None:
        left = frame.copy()
        left[INFERENCE_ID] = ids
        joined = left.merge(labels, on=INFERENCE_ID, how="left", suffixes=("", "__label"), validate="many_to_one")
    for c in [c for c in joined.columns if c.endswith("__label")]:
        base = c[: -len("__label")]
        joined[base] = joined[base].where(joined[base].notna(), joined[c])
        joined = joined.drop(columns=c)
    return joined


def _left_join(frame: pd.DataFrame, ids: pd.Series, labels: pd.DataFrame) -> Optional[pd.DataFrame]:
    """What ``frame.merge(labels, on=INFERENCE_ID, how="left", suffixes=("", "__label"))`` gives, ``frame``'s ids
    as ``ids``, by one index lookup and one reindex of the label columns (None: labels whose ids are missing, not
    unique - which the merge refuses - or not objects). The monitor joins every chunk of its window: a merge costs ~10 ms
    a chunk whatever its size, this a tenth of that; the frame is the same (a test compares the two)."""
    keys = labels[INFERENCE_ID]
    index = pd.Index(keys)
    # A missing id (None, NaN, NA, NaT: one key to the merge, several to an index) goes to the merge too.
    if keys.dtype != object or keys.isna().any() or not index.is_unique:
        return None
    positions = index.get_indexer(ids)
    # Rows no label matched are -1: reindexing on them fills (and widens the dtype) as the merge does.
    right = labels.drop(columns=[INFERENCE_ID]).reset_index(drop=True).reindex(positions)
    columns: Dict[str, Any] = {name: frame[name].array for name in frame.columns}
    columns[INFERENCE_ID] = ids.array
    for name in right.columns:
        columns[f"{name}__label" if name in columns else name] = right[name].array
    return pd.DataFrame(columns, copy=False)


def inference_days(frame: pd.DataFrame) -> pd.Series:
    """The UTC day of each record's inference time (``(unknown)`` when it has none). Each distinct day is formatted
    once (pandas' strftime formats every value in Python: ~3 CPU-s a million records, for a window of a few days)."""
    times = request_times(frame[INFERENCE_TIME])
    codes, days = utc_days(times)
    names = np.array(days + ["(unknown)"], dtype=object)
    return pd.Series(names[codes], index=frame.index, name=times.name)  # code -1 (no time) takes the last entry


def utc_days(times: pd.Series) -> Tuple[np.ndarray, List[str]]:
    """``(codes, days)``: each UTC time's day as its index in ``days`` (``YYYY-MM-DD``, in order of appearance; -1 for
    a missing time). Floored and factorized as numpy days: ``.dt.floor("D")`` on a UTC series costs ~7x as much. In
    the series' own unit: a records file's microseconds past 2262 would overflow as nanoseconds into another day."""
    codes, days = pd.factorize(times.to_numpy(dtype=f"datetime64[{times.dt.unit}]").astype("datetime64[D]"))
    return codes, [str(day) for day in np.datetime_as_string(days, unit="D")]


def day_counts(frame: pd.DataFrame) -> Dict[str, int]:
    """Records per inference day (:func:`inference_days`)."""
    return _per_day(inference_days(frame))


def _per_day(days: pd.Series) -> Dict[str, int]:
    return {str(day): int(count) for day, count in days.value_counts().items()}


def model_quality(
    joined: pd.DataFrame,
    baseline_metrics: Optional[Mapping[str, Any]],
    *,
    threshold: float = 0.5,
    min_label_coverage: float = 0.5,
    min_labeled_rows: int = 200,
    max_auc_drop: float = 0.05,
    problem_type: str = BINARY,
    classes: Sequence[str] = (),
    primary_metric: Optional[str] = None,
    max_quality_drop: float = 0.10,
    rows_per_day: Optional[Mapping[str, int]] = None,
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
    deviance: Optional[Tuple[str, float]] = None,
) -> Dict[str, Any]:
    """Quality on the days whose labels have arrived, vs the baseline evaluation metrics.

    A drop fails when it exceeds the larger of its limit (``max_auc_drop`` / ``max_quality_drop``) and the drop that
    a window of this many labels shows with no change at all with probability ``false_alarm_rate`` (its noise:
    :func:`auc_drop_noise`, :func:`quality_drop_noise`); a drop over the limit but within the noise is reported as
    ``*_within_noise``, not as ``auc_drop`` / ``quality_drop``, whose published metrics the retrain alarm reads.

    ``joined``: the window's records with their labels (:func:`join_labels`), or only the labelled ones when
    ``rows_per_day`` (:func:`day_counts` of the whole window) says how many records each day had.
    ``classes`` matters for multiclass models only; ``primary_metric`` (default: the type's, AUC for classifiers) and
    ``max_quality_drop`` for every type (see the module docstring): a binary model judged on AUC has the AUC drop alone.
    ``deviance``: a regression model's loss deviance (``ModelSpec.deviance``), measured and compared like RMSE.
    """
    labeled_mask = joined[LABEL].notna() & joined[SCORE].notna()
    days = inference_days(joined)
    if rows_per_day is None:  # day_counts(joined), from the days just read (reading the times again cost as much)
        rows_per_day = _per_day(days)
    labeled_per_day = days[labeled_mask].value_counts()
    n = sum(rows_per_day.values())
    windows = []
    scored_days = []
    for day in sorted(rows_per_day):
        rows = int(rows_per_day[day])
        labeled = int(labeled_per_day.get(day, 0))
        coverage = labeled / rows if rows else 0.0
        scored = coverage >= min_label_coverage
        windows.append({"day": day, "rows": rows, "labeled": labeled, "coverage": coverage, "scored": bool(scored)})
        if scored:
            scored_days.append(day)
    coverage_total = float(labeled_mask.sum() / n) if n else 0.0
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
    if problem_type != BINARY:
        typed = _typed_quality(joined, use, baseline_metrics, problem_type=problem_type, classes=classes,
                               primary_metric=primary_metric, min_labeled_rows=min_labeled_rows,
                               min_label_coverage=min_label_coverage, max_auc_drop=max_auc_drop,
                               max_quality_drop=max_quality_drop, false_alarm_rate=false_alarm_rate, deviance=deviance)
        checks.extend(typed.pop("checks"))
        out.update(typed)
        out["checks"] = checks
        return out
    base_auc = (baseline_metrics or {}).get("auc")
    # A binary model judged on another metric (PR-AUC, F1, log loss) is failed on that metric's drop too, as a
    # multiclass one is: a collapse in it can leave the AUC stable. Judged on AUC, the section is the AUC drop alone.
    metric = primary_metric or "auc"
    judged = metric != "auc"
    if judged:
        out.update({"primary_metric": metric, "max_quality_drop": max_quality_drop})
    if len(y) < min_labeled_rows or len(np.unique(y)) < 2:
        detail = f"{len(y)} labelled rows on days with coverage >= {min_label_coverage} (need {min_labeled_rows}, both classes)"
        out.update({"status": SKIPPED, "detail": detail})
        checks.append(check("auc_drop", "model_quality", None, max_auc_drop, SKIPPED, detail=detail))
        if judged:
            checks.append(check("quality_drop", "model_quality", None, max_quality_drop, SKIPPED, feature=metric, detail=detail))
        out["checks"] = checks
        return out
    window_metrics = metrics.headline(y, p, threshold)
    shown = ("rows", "prevalence", "auc", "log_loss", "brier", "accuracy", "precision", "recall", "f1", "positive_rate")
    out["metrics"] = {k: window_metrics[k] for k in shown + ((metric,) if metric not in shown else ())}
    out["baseline_metrics"] = {k: (baseline_metrics or {}).get(k) for k in ("auc", "log_loss", "brier", "f1") + (
        (metric,) if metric not in ("auc", "log_loss", "brier", "f1") else ())}
    auc = window_metrics["auc"]
    if base_auc is None:
        checks.append(check("auc_drop", "model_quality", None, max_auc_drop, SKIPPED, detail="no baseline evaluation metrics"))
    else:
        drop = float(base_auc) - float(auc)
        noise = auc_drop_noise(float(base_auc), y, alpha=false_alarm_rate)
        failed = _judge_drop(out, "auc_drop", drop, max_auc_drop, noise)
        checks.append(check("auc_drop", "model_quality", drop, max(max_auc_drop, noise), FAIL if failed else PASS,
                            detail=f"window AUC {auc:.4f} vs baseline {float(base_auc):.4f}; "
                                   + _noise_detail(max_auc_drop, noise, false_alarm_rate, int((y == 1).sum()), len(y))))
        positives = int((y == 1).sum())
        detectable = detectable_auc_drop(y, p)
        out["detectable_auc_drop"] = detectable
        checks.append(check(
            "auc_drop_power", "model_quality", detectable, max_auc_drop, WARN if detectable > max_auc_drop else PASS,
            detail=f"{len(y)} labelled rows ({positives} positives): an AUC drop under {detectable:.3f} is within the noise "
                   f"of this many labels (80 % power, 5 % one-sided)"
                   + ("; the limit is below that, so a real drop to it can pass unseen: label more traffic or widen the "
                      "label window" if detectable > max_auc_drop else "")))
        base_ll = (baseline_metrics or {}).get("log_loss")
        if base_ll is not None:
            increase = window_metrics["log_loss"] - float(base_ll)
            out["log_loss_increase"] = increase
            checks.append(check("log_loss_increase", "model_quality", increase, 0.1, WARN if increase > 0.1 else PASS))
    if judged:
        _primary_metric_drop(out, checks, metric, window_metrics.get(metric), (baseline_metrics or {}).get(metric),
                             lambda rows: metrics.metric_alone(y[rows], p[rows], metric, threshold), len(y), len(y),
                             power_limit=max_quality_drop, max_quality_drop=max_quality_drop,
                             false_alarm_rate=false_alarm_rate)
    out["status"] = _section_status(checks)
    out["checks"] = checks
    return out


def _judge_drop(out: Dict[str, Any], key: str, drop: float, limit: float, noise: float) -> bool:
    """Whether ``drop`` fails: over the larger of ``limit`` and ``noise``. Records it under ``key`` (the summary
    publishes that key, whose retrain alarm fires at ``limit``) only when that agrees with the decision: a drop over
    the limit but within the noise goes to ``<key>_within_noise`` instead, so the alarm does not retrain on it."""
    failed = drop > max(limit, noise)
    out[f"{key}_noise"] = noise
    out[key if failed or drop <= limit else f"{key}_within_noise"] = drop
    return failed


def _noise_detail(limit: float, noise: float, alpha: float, positives: Optional[int], rows: int) -> str:
    evidence = f"{rows} labelled rows" + (f" ({positives} positives)" if positives is not None else "")
    if noise <= limit:
        return f"limit {limit:g}; {evidence} show a drop over {noise:.3g} with no change with probability {alpha:g}"
    return (f"limit {limit:g} raised to the noise {noise:.3g} of {evidence}: a window without any change drops that much "
            f"with probability {alpha:g} (monitoring.false_alarm_rate); label more traffic to judge smaller drops")


def auc_drop_noise(baseline_auc: float, y: Any, *, alpha: float = DEFAULT_FALSE_ALARM_RATE) -> float:
    """The AUC drop that labels ``y`` of a model whose AUC is still ``baseline_auc`` exceed with probability
    ``alpha``: ``z_{1-alpha}`` times the AUC's standard error at the baseline AUC with this window's positives and
    negatives (Hanley & McNeil, 1982). The null's own error, not the window's estimate: a window's few positives can
    rank alike by chance and make its estimated error small. Infinite without two of each class."""
    y = np.asarray(y, dtype=np.float64)
    m, n = int((y == 1).sum()), int((y == 0).sum())
    if m < 2 or n < 2:
        return math.inf
    a = min(max(float(baseline_auc), 1e-6), 1.0 - 1e-6)
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    variance = (a * (1.0 - a) + (m - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (m * n)
    return NormalDist().inv_cdf(1.0 - alpha) * math.sqrt(max(variance, 0.0))


def detectable_auc_drop(y: Any, p: Any, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest AUC drop that labels ``y`` with scores ``p`` detect with ``power`` (one-sided test at
    ``alpha``): ``(z_{1-alpha} + z_power) * SE``, the AUC's standard error by DeLong et al. (1988) from the
    window's own scores. A rare-event model's few positives make it large: what its quality check can promise."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        return math.inf
    combined = rankdata(np.concatenate([pos, neg]))
    v10 = (combined[:m] - rankdata(pos)) / n  # per positive: the share of negatives it outranks
    v01 = 1.0 - (combined[m:] - rankdata(neg)) / m  # per negative: the share of positives that outrank it
    se = math.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n)
    z = NormalDist()
    return (z.inv_cdf(1 - alpha) + z.inv_cdf(power)) * se


def _bootstrap_se(compute: Any, rows: int, *, draws: int = 100, cap: int = 1_000,
                  compute_draws: Any = None) -> Optional[float]:
    """The standard error of ``compute(row_indexes)`` over ``rows`` rows, bootstrapped on at most ``cap`` rows per
    draw and scaled by ``sqrt(cap / rows)`` (a large window costs no more than a small one); None when undefined on
    half the draws or more. Seeded by ``rows``: a report is reproducible.

    ``compute_draws(index_matrix)`` (default None: not used), when given, computes every draw at once from the matrix
    of the draws' row indexes (one draw a row; NaN where undefined) and returns None for what it cannot compute so:
    the same draws (the same generator calls, in the same order) and the same values as ``compute``'s, in one pass."""
    if rows < 2:
        return None
    rng = np.random.default_rng(rows)
    size = min(rows, cap)
    indexes = [rng.integers(0, rows, size) for _ in range(draws)]
    at_once = compute_draws(np.stack(indexes)) if compute_draws is not None else None
    values = list(at_once) if at_once is not None else [compute(drawn) for drawn in indexes]
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if len(values) < draws // 2:
        return None
    return float(np.std(values, ddof=1)) * math.sqrt(size / rows)


def quality_se(metric: str, compute: Any, rows: int, baseline: Optional[float], *,
               compute_draws: Any = None) -> Optional[float]:
    """The standard error of ``metric`` over ``rows`` labelled rows in :func:`quality_drop`'s units (absolute, or
    relative to ``baseline`` for a loss or error), bootstrapped (:func:`_bootstrap_se`; ``compute(row_indexes)`` gives
    the metric on those rows, ``compute_draws``, default None, every draw's at once): what both the drop a window can
    detect and the drop its noise shows scale with. None when undefined (no baseline, a loss whose baseline is 0, a
    metric undefined on most draws)."""
    if baseline is None or (not higher_is_better(metric) and not float(baseline)):
        return None
    se = _bootstrap_se(compute, rows, compute_draws=compute_draws)
    if se is None:
        return None
    return se if higher_is_better(metric) else se / abs(float(baseline))


def detectable_quality_drop(metric: str, compute: Any, rows: int, baseline: Optional[float], *, alpha: float = 0.05,
                            power: float = 0.8) -> Optional[float]:
    """The smallest worsening of ``metric`` (:func:`quality_drop`'s units) that ``rows`` labelled rows detect with
    ``power`` (one-sided test at ``alpha``), from its bootstrapped standard error (:func:`quality_se`); None when
    undefined."""
    return _detectable(quality_se(metric, compute, rows, baseline), alpha=alpha, power=power)


def quality_drop_noise(metric: str, compute: Any, rows: int, baseline: Optional[float], *,
                       alpha: float = DEFAULT_FALSE_ALARM_RATE) -> float:
    """The worsening of ``metric`` (:func:`quality_drop`'s units) that ``rows`` labelled rows without any change show
    with probability ``alpha``: ``z_{1-alpha}`` times its bootstrapped standard error (:func:`quality_se`). 0 when it
    cannot be estimated (the limit alone decides, as before)."""
    return _noise(quality_se(metric, compute, rows, baseline), alpha=alpha)


def _detectable(se: Optional[float], *, alpha: float = 0.05, power: float = 0.8) -> Optional[float]:
    if se is None:
        return None
    z = NormalDist()
    return (z.inv_cdf(1 - alpha) + z.inv_cdf(power)) * se


def _noise(se: Optional[float], *, alpha: float) -> float:
    return 0.0 if se is None else NormalDist().inv_cdf(1.0 - alpha) * se


def quality_drop(metric: str, window: Optional[float], baseline: Optional[float]) -> Optional[float]:
    """How much worse ``window`` is than ``baseline`` in ``metric``'s direction (positive: worse; None when
    either is unknown): absolute for a metric where higher is better (AUC, accuracy, F1, R²), relative to the
    baseline for a loss or error (log loss, RMSE, MAE)."""
    if window is None or baseline is None or not math.isfinite(float(window)) or not math.isfinite(float(baseline)):
        return None
    window, baseline = float(window), float(baseline)
    if higher_is_better(metric):
        return baseline - window
    worse = window - baseline
    if baseline == 0:
        return 0.0 if worse <= 0 else math.inf
    return worse / abs(baseline)


_MACRO_KEYS = ("macro_precision", "macro_recall", "macro_f1")
_NOT_DRAWN = object()  # a multiclass window's AUC noise not bootstrapped (no AUC or no baseline AUC)


def _window_classes(predicted: np.ndarray, y: np.ndarray, k: int) -> List[int]:
    """The class codes a multiclass window labels or predicts (the classes its macro averages can judge)."""
    seen = set(np.unique(y.astype(np.int64)).tolist()) | set(np.unique(predicted.astype(np.int64)).tolist())
    return [i for i in range(k) if i in seen]


def _macro_over(per_class: Mapping[str, Any], names: Sequence[str]) -> Dict[str, float]:
    """Macro precision, recall and F1 over ``names`` only, from :func:`metrics_multiclass.headline`'s ``per_class``."""
    return {key: float(np.mean([float(per_class[name][key.split("_", 1)[1]]) for name in names])) if names else 0.0
            for key in _MACRO_KEYS}


def _class_scope(not_judged: Sequence[str], k: int) -> str:
    """The quality_drop detail's note of the classes a macro average left out (none: no note)."""
    if not not_judged:
        return ""
    shown = ", ".join(not_judged[:10]) + (", ..." if len(not_judged) > 10 else "")
    return (f"; macro averages over the {k - len(not_judged)} classes the window labels or predicts, the baseline's "
            f"over the same classes: {len(not_judged)} class(es) neither labelled nor predicted in the window ({shown}) "
            "have no window evidence and are not judged")


_MULTICLASS_KEYS = ("rows", "accuracy", "macro_precision", "macro_recall", "macro_f1", "auc", "log_loss", "brier", "class_counts")
_MULTICLASS_BASELINE_KEYS = ("auc", "log_loss", "accuracy", "macro_f1", "brier")
_REGRESSION_KEYS = ("rows", "rmse", "mae", "r2", "bias", "mean_target", "mean_prediction", "abs_error_quantiles")
_REGRESSION_BASELINE_KEYS = ("rmse", "mae", "r2", "bias", "mean_target")


def _typed_quality(joined: pd.DataFrame, use: pd.Series, baseline_metrics: Optional[Mapping[str, Any]], *,
                   problem_type: str, classes: Sequence[str], primary_metric: Optional[str], min_labeled_rows: int,
                   min_label_coverage: float, max_auc_drop: float, max_quality_drop: float,
                   false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
                   deviance: Optional[Tuple[str, float]] = None) -> Dict[str, Any]:
    """The metrics, comparisons and checks of a multiclass or regression model's scored rows."""
    from pipeline_code.core.problem import default_primary_metric

    metric = primary_metric or default_primary_metric(problem_type)
    base = dict(baseline_metrics or {})
    y = joined.loc[use, LABEL].to_numpy(dtype=np.float64)
    predicted = joined.loc[use, SCORE].to_numpy(dtype=np.float64)
    out: Dict[str, Any] = {"problem_type": problem_type, "primary_metric": metric, "max_quality_drop": max_quality_drop}
    checks: List[Dict[str, Any]] = []
    multiclass = problem_type == MULTICLASS
    enough = len(y) >= min_labeled_rows and (len(np.unique(y)) >= 2 if multiclass else True)
    if not enough:
        need = f"need {min_labeled_rows}" + (", two classes or more" if multiclass else "")
        detail = f"{len(y)} labelled rows on days with coverage >= {min_label_coverage} ({need})"
        out.update({"status": SKIPPED, "detail": detail})
        if multiclass:
            checks.append(check("auc_drop", "model_quality", None, max_auc_drop, SKIPPED, detail=detail))
        if not multiclass or metric != "auc":
            checks.append(check("quality_drop", "model_quality", None, max_quality_drop, SKIPPED, feature=metric, detail=detail))
        out["checks"] = checks
        return out

    auc_se: Any = _NOT_DRAWN
    if multiclass:
        k = len(classes)
        codes = predicted.astype(np.int64)
        columns = [probability_column(str(c)) for c in classes]
        if all(c in joined.columns for c in columns):
            captured = joined.loc[use, columns].to_numpy(dtype=np.float64)
        else:
            captured = np.full((len(y), k), np.nan)
        has_p = ~np.isnan(captured).any(axis=1)
        # Accuracy and F1 need only the predicted class: rows without probabilities count as one-hot.
        P = np.where(has_p[:, None], np.nan_to_num(captured), np.eye(k)[codes])
        headline = metrics_multiclass.headline(y, P, classes)
        if not has_p.all():
            sub = metrics_multiclass.headline(y[has_p], P[has_p], classes) if has_p.any() else {}
            for key in ("auc", "log_loss", "brier"):
                headline[key] = sub.get(key)
        # A macro average over all K classes counts a class the window neither holds nor predicts as F1 0, where the
        # baseline (a test set holding it) counted its real F1: a long tail's rare classes are missing from most
        # windows of a few hundred labels, which then read as a drop with nothing changed. The macro metrics are
        # compared on the classes the window labels or predicts, the baseline's restricted to the same classes.
        judged = _window_classes(codes, y, k)
        not_judged = [str(classes[i]) for i in range(k) if i not in set(judged)]
        out["classes_not_judged"] = not_judged
        if not_judged:
            headline.update(_macro_over(headline["per_class"], [str(classes[i]) for i in judged]))
            per_class = base.get("per_class")
            if isinstance(per_class, Mapping) and all(str(classes[i]) in per_class for i in judged):
                base.update(_macro_over(per_class, [str(classes[i]) for i in judged]))
            else:  # a baseline without per-class metrics: its all-class macro averages are not comparable
                for key in _MACRO_KEYS:
                    base.pop(key, None)
        out["metrics"] = {key: headline[key] for key in _MULTICLASS_KEYS}
        out["metrics"]["probability_rows"] = int(has_p.sum())
        out["baseline_metrics"] = {key: base.get(key) for key in _MULTICLASS_BASELINE_KEYS}
        auc, base_auc = headline["auc"], base.get("auc")
        if auc is None or base_auc is None:
            why = "no baseline evaluation metrics" if base_auc is None else "no class probabilities in the window"
            checks.append(check("auc_drop", "model_quality", None, max_auc_drop, SKIPPED, detail=why))
        else:
            drop = float(base_auc) - float(auc)
            yp, Pp = y[has_p], P[has_p]
            # The headline's AUC of the drawn rows (macro_auc alone). Judged on AUC, the primary metric's bootstrap
            # would draw the same rows again (seeded by their count) for the same values: it takes this one's.
            auc_se = quality_se("auc", lambda rows: metrics_multiclass.macro_auc(yp[rows], Pp[rows]), len(yp), base_auc)
            noise = _noise(auc_se, alpha=false_alarm_rate)
            failed = _judge_drop(out, "auc_drop", drop, max_auc_drop, noise)
            checks.append(check("auc_drop", "model_quality", drop, max(max_auc_drop, noise), FAIL if failed else PASS,
                                detail=f"window macro AUC {auc:.4f} vs baseline {float(base_auc):.4f}; "
                                       + _noise_detail(max_auc_drop, noise, false_alarm_rate, None, len(yp))))
        if headline["log_loss"] is not None and base.get("log_loss") is not None:
            out["log_loss_increase"] = float(headline["log_loss"]) - float(base["log_loss"])
    else:
        headline = metrics_regression.headline(y, predicted, deviance)
        own = (deviance[0],) if deviance else ()
        out["metrics"] = {key: headline[key] for key in (*_REGRESSION_KEYS, *own)}
        out["baseline_metrics"] = {key: base.get(key) for key in (*_REGRESSION_BASELINE_KEYS, *own)}
        out["changes"] = {f"{key}_{'drop' if higher_is_better(key) else 'increase'}": quality_drop(key, headline[key], base.get(key))
                          for key in ("r2", "rmse", "mae", *own)}
        _bias_shift(out, checks, y, predicted, headline, base, false_alarm_rate=false_alarm_rate)

    if multiclass:
        # The probability metrics are measured on the rows that have probabilities (as above).
        ym, Pm = (y[has_p], P[has_p]) if metric in ("auc", "log_loss", "brier") else (y, P)
        names = [str(classes[i]) for i in judged]

        def compute(rows: Any) -> Optional[float]:
            if metric not in _MACRO_KEYS:
                return metrics_multiclass.metric_alone(ym[rows], Pm[rows], classes, metric)
            return _macro_over(metrics_multiclass.headline(ym[rows], Pm[rows], classes, with_auc=False)["per_class"], names)[metric]

        def compute_draws(draws: np.ndarray) -> Optional[np.ndarray]:  # compute's values, every draw at once
            return metrics_multiclass.metric_over_draws(ym, Pm, draws, len(classes), metric, over=judged)
        measured = len(ym)
    else:
        compute = lambda rows: metrics_regression.metric_alone(y[rows], predicted[rows], metric, deviance)  # noqa: E731
        # The error metrics' 100 draws in one pass over their index matrix (the same values: metric_over_draws).
        compute_draws = lambda draws: metrics_regression.metric_over_draws(y, predicted, draws, metric, deviance)  # noqa: E731
        measured = len(y)
    bootstrap: Dict[str, Any] = {"compute_draws": compute_draws}  # how _primary_metric_drop draws its noise
    if multiclass and metric == "auc" and auc_se is not _NOT_DRAWN:
        bootstrap["se"] = auc_se
    _primary_metric_drop(out, checks, metric, headline.get(metric), base.get(metric), compute, measured, len(y),
                         power_limit=max_auc_drop if multiclass and metric == "auc" else max_quality_drop,
                         max_quality_drop=max_quality_drop, false_alarm_rate=false_alarm_rate,
                         judged_as_auc_drop=multiclass and metric == "auc",
                         scope=_class_scope(out["classes_not_judged"], len(classes)) if multiclass and metric in _MACRO_KEYS else "",
                         **bootstrap)
    out["status"] = _section_status(checks)
    out["checks"] = checks
    return out


# The largest move of a regression model's mean error, in evaluation RMSEs, that a window may show (either way).
MAX_BIAS_SHIFT = 0.25


def _bias_shift(out: Dict[str, Any], checks: List[Dict[str, Any]], y: np.ndarray, predicted: np.ndarray,
                headline: Mapping[str, Any], base: Mapping[str, Any], *, false_alarm_rate: float) -> None:
    """A regression window's ``bias_shift``: its mean error (prediction - target) minus the evaluation's, over the
    evaluation's RMSE. RMSE and MAE are in the target's units, so a window whose targets moved is not comparable with
    the evaluation by them (a week with no sales anywhere has a lower RMSE than the evaluation's long tail, while every
    prediction in it is wrong); a systematic error shows here either way. It fails when ``|shift|`` is over the larger
    of :data:`MAX_BIAS_SHIFT` and the shift a window of these rows shows with no change with probability
    ``false_alarm_rate`` (two-sided: the mean error's standard error). Like the bias checks it makes the report an
    alert, with no alarm of its own; skipped without the evaluation's bias and RMSE (a report from before them)."""
    base_bias, base_rmse = base.get("bias"), base.get("rmse")
    if base_bias is None or base_rmse is None or not math.isfinite(float(base_rmse)):
        skipped = "no evaluation bias and RMSE to compare with"
    elif float(base_rmse) == 0.0:  # no division by it: an exact evaluation gives a shift no scale
        skipped = "the evaluation's RMSE is 0 (every test prediction exact): a shift has no scale to be measured in"
    elif len(y) < 2:
        skipped = f"{len(y)} labelled row(s): a mean error's shift needs 2 or more"
    else:
        skipped = None
    if skipped:
        checks.append(check("bias_shift", "model_quality", None, MAX_BIAS_SHIFT, SKIPPED, op="|value| >", detail=skipped))
        return
    scale = float(base_rmse)
    error = predicted - y
    shift = (float(headline["bias"]) - float(base_bias)) / scale
    noise = NormalDist().inv_cdf(1.0 - false_alarm_rate / 2.0) * float(np.std(error, ddof=1)) / math.sqrt(len(error)) / scale
    limit = max(MAX_BIAS_SHIFT, noise)
    out.update({"bias_shift": shift, "bias_shift_noise": noise})
    checks.append(check(
        "bias_shift", "model_quality", shift, limit, FAIL if abs(shift) > limit else PASS, op="|value| >",
        detail=f"window mean error (prediction - target) {float(headline['bias']):+.4g} vs the evaluation's "
               f"{float(base_bias):+.4g}: a shift of {shift:+.3f} of the evaluation's RMSE {scale:.4g} (window mean target "
               f"{float(headline['mean_target']):.4g}, evaluation's {float(base.get('mean_target') or 0.0):.4g}); limit "
               f"{MAX_BIAS_SHIFT:g}; " + (f"{len(y)} labelled rows show a shift over {noise:.3g} with no change with "
                                          f"probability {false_alarm_rate:g}" if noise <= MAX_BIAS_SHIFT else
                                          f"raised to the noise {noise:.3g} of {len(y)} labelled rows")))


def _section_status(checks: Sequence[Mapping[str, Any]]) -> str:
    """The quality section's status from its drop checks alone (``auc_drop``, ``quality_drop``): label coverage and
    power only warn and judge nothing, so with every drop skipped (no baseline metrics, no probabilities) the section
    is skipped and its due days are not counted as judged (late_labels reads the status)."""
    statuses = {c["status"] for c in checks if c["check"] in ("auc_drop", "quality_drop")}
    return FAIL if FAIL in statuses else (PASS if PASS in statuses else SKIPPED)


def _primary_metric_drop(out: Dict[str, Any], checks: List[Dict[str, Any]], metric: str, window_value: Optional[float],
                         base_value: Optional[float], compute: Any, measured: int, labelled: int, *, power_limit: float,
                         max_quality_drop: float, false_alarm_rate: float, judged_as_auc_drop: bool = False,
                         scope: str = "", se: Any = None, compute_draws: Any = None) -> None:
    """The primary metric's drop (``quality_drop``) of a window, into ``out`` and ``checks``: the drop its labels can
    detect (``quality_drop_power``, against ``power_limit``) and the ``quality_drop`` check, failing over the larger of
    ``max_quality_drop`` and the bootstrapped noise of ``measured`` rows (``compute(row_indexes)``: the metric on those
    rows). ``judged_as_auc_drop`` (a classifier judged on AUC, whose ``auc_drop`` check is this one): the drop is
    recorded, no check added. ``scope``: which rows or classes the values are measured on, added to the check's
    detail. ``compute_draws`` (default None): every draw's metric at once (:func:`_bootstrap_se`)."""
    drop = quality_drop(metric, window_value, base_value)
    out["primary_metric_value"] = window_value
    out["baseline_primary_metric_value"] = base_value
    # One bootstrap for both: the drop these labels can detect and the drop their noise shows (``se``: given, the
    # standard error such a bootstrap gave already).
    if se is None:
        se = quality_se(metric, compute, measured, base_value, compute_draws=compute_draws)
    detectable = _detectable(se)
    if detectable is not None:
        out["detectable_quality_drop"] = detectable
        checks.append(check(
            "quality_drop_power", "model_quality", detectable, power_limit, WARN if detectable > power_limit else PASS,
            feature=metric,
            detail=f"{labelled} labelled rows: a {metric} drop under {detectable:.3g} is within the noise of this many labels "
                   "(80 % power, 5 % one-sided; bootstrap)" + ("; the limit is below that, so a real drop to it can pass "
                                                                "unseen: label more traffic or widen the label window"
                                                                if detectable > power_limit else "")))
    if drop is None:
        why = "no baseline evaluation metrics" if base_value is None else f"{metric} undefined on the window"
        if not judged_as_auc_drop:
            checks.append(check("quality_drop", "model_quality", None, max_quality_drop, SKIPPED, feature=metric, detail=why))
    elif judged_as_auc_drop:  # its AUC drop is the auc_drop check (its alarm's)
        out["quality_drop"] = drop
    else:
        noise = _noise(se, alpha=false_alarm_rate)
        failed = _judge_drop(out, "quality_drop", drop, max_quality_drop, noise)
        how = "absolute" if higher_is_better(metric) else "relative"
        checks.append(check("quality_drop", "model_quality", drop, max(max_quality_drop, noise), FAIL if failed else PASS,
                            feature=metric, detail=f"window {metric} {float(window_value):.4g} vs baseline "
                            f"{float(base_value):.4g} ({how} change, worse is positive){scope}; "
                            + _noise_detail(max_quality_drop, noise, false_alarm_rate, None, measured)))


def bias_drift(
    joined: pd.DataFrame,
    attribute: str,
    baseline_fairness: Optional[Mapping[str, Any]],
    *,
    threshold: float = 0.5,
    min_group_rows: int = 100,
    max_dpd: float = 0.10,
    max_group_rate_change: float = 0.10,
    problem_type: str = BINARY,
    classes: Sequence[str] = (),
    min_di: Optional[float] = None,
) -> Dict[str, Any]:
    """Positive rate / TPR per group of ``attribute`` vs the baseline fairness block (multiclass: predicted-class
    shares; regression: MAE, error parity and the bias gap on the labelled rows, see the module docstring)."""
    if attribute not in joined.columns or joined[attribute].notna().sum() == 0:
        detail = f"sensitive attribute {attribute!r} not in traffic or labels"
        if problem_type == REGRESSION:
            checks = [check("error_parity_ratio", "bias", None, None, SKIPPED, op="<", detail=detail),
                      check("bias_gap", "bias", None, max_dpd, SKIPPED, detail=detail)]
        else:
            checks = [check("demographic_parity_difference", "bias", None, max_dpd, SKIPPED, detail=detail)]
        return {"status": SKIPPED, "detail": detail, "checks": checks}
    if problem_type == MULTICLASS:
        return _class_bias(joined, attribute, baseline_fairness, classes=classes, min_group_rows=min_group_rows,
                           max_dpd=max_dpd, max_group_rate_change=max_group_rate_change)
    if problem_type == REGRESSION:
        return _error_bias(joined, attribute, baseline_fairness, min_group_rows=min_group_rows, max_dpd=max_dpd,
                           max_group_rate_change=max_group_rate_change, min_di=min_di)
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


def _class_bias(joined: pd.DataFrame, attribute: str, baseline_fairness: Optional[Mapping[str, Any]], *,
                classes: Sequence[str], min_group_rows: int, max_dpd: float, max_group_rate_change: float) -> Dict[str, Any]:
    """Multiclass: predicted-class shares per group (no labels needed) vs the baseline's, and the worst class's
    demographic parity difference."""
    classes = [str(c) for c in classes]
    k = len(classes)
    scored = joined[joined[SCORE].notna()]
    codes = scored[SCORE].to_numpy(dtype=np.float64).astype(np.int64)
    P = np.eye(k)[codes] if len(codes) else np.zeros((0, k))
    rates = metrics_multiclass.fairness(scored[attribute], np.zeros(len(codes)), P, classes, attribute=attribute,
                                        min_group_rows=min_group_rows)
    base_groups = (baseline_fairness or {}).get("groups") or {}
    base_dpd = (baseline_fairness or {}).get("demographic_parity_difference")
    checks: List[Dict[str, Any]] = []
    groups: Dict[str, Any] = {}
    for g, v in rates["groups"].items():
        base_shares = (base_groups.get(g) or {}).get("predicted_shares")
        entry = {"rows": v["rows"], "predicted_shares": v["predicted_shares"], "eligible": v["eligible"],
                 "baseline_predicted_shares": base_shares}
        groups[g] = entry
        if not v["eligible"] or not base_shares:
            continue
        changes = {c: v["predicted_shares"][c] - float(base_shares[c]) for c in classes if base_shares.get(c) is not None}
        if not changes:
            continue
        worst = max(changes, key=lambda c: abs(changes[c]))
        entry["largest_share_change"] = {"class": worst, "change": changes[worst]}
        checks.append(check("group_class_share_change", "bias", abs(changes[worst]), max_group_rate_change,
                            FAIL if abs(changes[worst]) > max_group_rate_change else PASS, feature=f"{attribute}={g}",
                            detail=f"class {worst}: {v['predicted_shares'][worst]:.4f} vs baseline {float(base_shares[worst]):.4f}"))
    dpd = rates["demographic_parity_difference"]
    limit = max_dpd if base_dpd is None else max(max_dpd, float(base_dpd) + max_group_rate_change / 2)
    status = SKIPPED if dpd is None else (FAIL if dpd > limit else PASS)
    checks.insert(0, check("demographic_parity_difference", "bias", dpd, limit, status,
                           detail=f"class {rates.get('demographic_parity_class')}; baseline "
                           f"{base_dpd if base_dpd is None else round(float(base_dpd), 4)}"))
    return {
        "attribute": attribute,
        "status": FAIL if any(c["status"] == FAIL for c in checks) else status,
        "demographic_parity_difference": dpd,
        "demographic_parity_class": rates.get("demographic_parity_class"),
        "baseline_demographic_parity_difference": base_dpd,
        "disparate_impact": rates["disparate_impact"],
        "groups": groups,
        "checks": checks,
    }


def _error_bias(joined: pd.DataFrame, attribute: str, baseline_fairness: Optional[Mapping[str, Any]], *,
                min_group_rows: int, max_group_rate_change: float, max_dpd: float = 0.10,
                min_di: Optional[float] = None) -> Dict[str, Any]:
    """Regression: MAE per group on the labelled rows vs the baseline's, the error parity ratio and the bias gap (see
    :func:`_bias_gap_check`; ``max_dpd``, default 0.10, is its maximum).

    The error parity ratio fails below the baseline's ratio - ``max_group_rate_change`` (how far it moved) and, given
    ``min_di`` (the gate's minimum; default None: not held to one), below that minimum too - or, for a version the
    gate accepted near it, below its baseline ratio - half ``max_group_rate_change``, as the bias gap is held to the
    gate's maximum; without a baseline of the same measure, below ``min_di`` alone."""
    labeled = joined[joined[SCORE].notna() & joined[LABEL].notna()] if LABEL in joined.columns else joined.iloc[:0]
    if len(labeled) == 0:
        detail = "no labelled rows: error parity and the bias gap need ground truth"
        return {"attribute": attribute, "status": SKIPPED, "detail": detail,
                "checks": [check("error_parity_ratio", "bias", None, None, SKIPPED, op="<", detail=detail),
                           check("bias_gap", "bias", None, max_dpd, SKIPPED, detail=detail)]}
    fair = metrics_regression.fairness(labeled[attribute], labeled[LABEL].to_numpy(dtype=np.float64),
                                       labeled[SCORE].to_numpy(dtype=np.float64), attribute=attribute, min_group_rows=min_group_rows)
    base_groups = (baseline_fairness or {}).get("groups") or {}
    base_ratio = (baseline_fairness or {}).get("error_parity_ratio")
    # A baseline from before relative errors compared absolute MAE: a ratio of another measure is no baseline, and its
    # version was never held to the gate's minimum on this one (a shortfall is a warning).
    other_measure = base_ratio is not None and (baseline_fairness or {}).get("error_measure", "absolute") != fair.get("error_measure")
    if other_measure:
        base_ratio = None
    checks: List[Dict[str, Any]] = []
    groups: Dict[str, Any] = {}
    for g, v in fair["groups"].items():
        base_mae = (base_groups.get(g) or {}).get("mae")
        entry = {"labeled_rows": v["rows"], "mae": v["mae"], "bias": v["bias"], "mean_prediction": v["mean_prediction"],
                 "eligible": v["eligible"], "baseline_mae": base_mae}
        groups[g] = entry
        if not v["eligible"] or base_mae is None or float(base_mae) <= 0 or v["mae"] is None:
            continue
        change = v["mae"] / float(base_mae) - 1.0
        entry["mae_change"] = change
        checks.append(check("group_mae_change", "bias", change, max_group_rate_change,
                            WARN if change > max_group_rate_change else PASS, feature=f"{attribute}={g}",
                            detail=f"MAE {v['mae']:.4g} vs baseline {float(base_mae):.4g} (relative)"))
    ratio = fair["error_parity_ratio"]
    limit = None if base_ratio is None else float(base_ratio) - max_group_rate_change
    detail = "" if base_ratio is None else f"baseline {float(base_ratio):.4f} - {max_group_rate_change}"
    if min_di is not None:
        floor = min_di if base_ratio is None else min(min_di, float(base_ratio) - max_group_rate_change / 2)
        if limit is None or floor > limit:
            limit, detail = floor, (f"the gate's minimum {min_di}" if floor == min_di else
                                    f"baseline {float(base_ratio):.4f} - {max_group_rate_change / 2}, under the gate's "
                                    f"minimum {min_di}")
    if ratio is None:
        status, detail = SKIPPED, fair.get("note", "")
    elif limit is None:
        status, detail = PASS, "no baseline error parity ratio of the same measure: reported only"
    elif other_measure:
        status = WARN if ratio < limit else PASS
        detail += ("; the serving version's baseline compared another error measure, so it was never held to this one: a "
                   "warning, not a failure")
    else:
        status = FAIL if ratio < limit else PASS
    checks.insert(0, check("error_parity_ratio", "bias", ratio, limit, status, op="<", detail=detail))
    base_gap = (baseline_fairness or {}).get("bias_gap")
    # A version evaluated before its gate judged the bias gap over absolute errors has none: it was never held to one.
    ungated = baseline_fairness is not None and base_gap is None
    if (baseline_fairness or {}).get("error_measure", "absolute") != fair.get("error_measure"):
        base_gap = None  # a gap over another scale (each group's own, or the groups' shared one) is no baseline
    checks.insert(1, _bias_gap_check(fair, base_gap, max_dpd=max_dpd, max_group_rate_change=max_group_rate_change,
                                     ungated=ungated))
    return {
        "attribute": attribute,
        "status": FAIL if any(c["status"] == FAIL for c in checks) else status,
        "error_parity_ratio": ratio,
        "baseline_error_parity_ratio": base_ratio,
        "mae_difference": fair["mae_difference"],
        "bias_gap": fair["bias_gap"],
        "bias_measure": metrics_regression.bias_measure_text(fair) if fair["bias_gap"] is not None else None,
        "most_over_estimated_group": fair.get("most_over_estimated_group"),
        "most_under_estimated_group": fair.get("most_under_estimated_group"),
        "baseline_bias_gap": base_gap,
        "demographic_parity_difference": None,
        "groups": groups,
        "checks": checks,
    }


def _bias_gap_check(fair: Mapping[str, Any], base_gap: Optional[float], *, max_dpd: float,
                    max_group_rate_change: float, ungated: bool = False) -> Dict[str, Any]:
    """The window's bias gap (:func:`..training.metrics_regression.fairness`: the most over- minus the most
    under-estimated group's mean error over its mean |target|, over the groups' mean |target| where one is near 0),
    the regression counterpart of the demographic parity difference: FAIL above ``max_dpd``, or, as for that
    difference, above the baseline's gap + half ``max_group_rate_change`` when that is larger (a model the gate
    accepted with a larger gap is judged on how far it moved, not failed every day). Judged on the groups the gate
    compares (``min_group_rows`` labelled rows, not the missing group); fewer than two are SKIPPED, never a pass.
    ``ungated`` (the serving version's evaluation has no bias gap: it was registered before the gate judged one over
    absolute errors) makes a gap above the limit a WARN: that version was never held to it."""
    gap, eligible = fair.get("bias_gap"), fair.get("eligible_groups") or []
    limit = max_dpd if base_gap is None else max(max_dpd, float(base_gap) + max_group_rate_change / 2)
    if len(eligible) < 2:
        rows = ", ".join(f"{g}: {v['rows']}" for g, v in fair["groups"].items())
        return check("bias_gap", "bias", None, limit, SKIPPED, detail=(
            f"{len(eligible)} group{'' if len(eligible) == 1 else 's'} of {fair['attribute']} with a value and >= "
            f"{fair['min_group_rows']} labelled rows ({rows}), and a gap takes two: not judged (insufficient evidence, "
            "not a pass)"))
    if gap is None:
        return check("bias_gap", "bias", None, limit, SKIPPED, detail=(
            "every compared group's target is 0 in the window: no scale makes its mean error a share, not judged"))
    baseline = "no baseline bias gap of the same measure" if base_gap is None else f"baseline {float(base_gap):.4f}"
    if ungated:
        baseline = ("the serving version's evaluation has no bias gap (registered before the gate judged one): a warning, "
                    "not a failure")
    status = (WARN if ungated else FAIL) if gap > limit else PASS
    return check("bias_gap", "bias", gap, limit, status, detail=(
        f"most over-estimated group {fair['most_over_estimated_group']}, most under-estimated "
        f"{fair['most_under_estimated_group']} ({metrics_regression.bias_measure_text(fair)}); {baseline}"))


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
