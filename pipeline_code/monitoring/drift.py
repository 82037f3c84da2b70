"""Data drift, prediction drift and data quality of a traffic window against the baselines.

Per feature (the baseline's ``statistics.json`` / ``constraints.json``):

* **PSI** - the drift decision. Numbers: the window is binned on the baseline's histogram
  cut points with the same :func:`pipeline_code.training.baseline.bin_counts`; categories:
  the baseline's levels plus one ``__other__`` bucket that holds every level the baseline
  did not know (the *unseen* bucket); a categorical of more than ``MAX_DRIFT_LEVELS`` levels on its most frequent
  ones with its rarer levels pooled (:func:`drift_levels`). Both distributions are epsilon-smoothed (fractions
  clipped at ``1e-4``) so empty bins do not make PSI infinite. A feature is *drifted*
  (status ``fail``) when its PSI exceeds its calibrated threshold (:mod:`calibration`): the
  larger of the material PSI (``--psi-threshold`` or a per-feature override) and the PSI a
  window of this size with no drift exceeds only with probability ``--false-alarm-rate``
  divided among the window's drift tests. ``drift_score`` = PSI / threshold (>= 1: drifted);
  the summary's ``data_drift_score`` is the largest, the metric the retrain alarm watches.
* **KS** (numbers) - two modes, reported in ``ks.mode``:
  ``sample``: exact two-sample KS statistic against a baseline *sample* of raw values when
  one is given (``--baseline-sample-dir``); ``binned``: otherwise, the KS statistic
  evaluated at the baseline's histogram cut points, where the baseline CDF is known exactly
  from the stored counts (no interpolation from quantiles). The binned D is a lower bound of
  the continuous D, so its test is conservative. p-value: asymptotic Kolmogorov
  distribution with Stephens' small-sample correction, ``n_eff = n1 n2 / (n1 + n2)``.
* **chi-square** (categories) - test of homogeneity of the 2 x k table (baseline counts,
  window counts) over the baseline levels + ``__other__``; levels empty in both dropped.

A statistical test below ``--ks-p-value`` alone gives status ``warn`` (on thousands of rows
the tests reject for effects far too small to matter; PSI carries the decision).

Prediction drift, per problem type, always reported as ``psi`` and decided like a feature's (summary
``prediction_psi`` and ``prediction_drift_score``, one metric and alarm for every model): binary - PSI of the captured scores on the baseline's score bins (quantiles of the validation scores,
so a rare-event model whose scores crowd near 0 still has ten bins to move across);
multiclass - PSI of the predicted-class shares against the validation split's (plus a chi-square test of
homogeneity, reported); regression - PSI of the predicted values on the baseline's quantile bins.
Data quality: missing rate vs the baseline's completeness, type violations (non-numbers in
numeric features), range violations vs ``constraints.json`` min/max (and non-integers in
integral features), unseen categories.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
# SciPy ships with xgboost (a dependency of it), so the XGBoost image the monitor runs in has it.
from scipy import special, stats

from pipeline_code.core.problem import BINARY, MULTICLASS, PROBLEM_TYPES, REGRESSION
from pipeline_code.monitoring import calibration
from pipeline_code.monitoring.window_stats import DRIFT, QUALITY, ColumnCounts, PredictionCounts, WindowStats, as_numbers
from pipeline_code.training.baseline import OTHER_LEVEL, PSI_EPSILON, psi

PASS, WARN, FAIL, SKIPPED, ERROR = "pass", "warn", "fail", "skipped", "error"
# A drift test reported but never judged (a feature of models.<name>.monitoring.drift_exempt_features, or the predictions
# of a model whose monitoring.prediction_drift is report_only): its PSI is shown, it drifts nothing and alarms nothing.
EXEMPT = "exempt"
EXEMPT_FEATURE = "exempt (monitoring.drift_exempt_features): reported, never judged"
REPORT_ONLY_PREDICTIONS = "report only (monitoring.prediction_drift: report_only): reported, never judged"
DEFAULT_MIN_ROWS = 100
DEFAULT_FALSE_ALARM_RATE = 0.01


def check(name: str, category: str, value: Any, threshold: Any, status: str, *, feature: Optional[str] = None,
          op: str = ">", detail: str = "") -> Dict[str, Any]:
    """One row of the report: ``status`` is ``fail``/``warn`` when ``value op threshold``."""
    out: Dict[str, Any] = {"check": name, "category": category, "value": _num(value), "threshold": _num(threshold),
                           "op": op, "status": status}
    if feature is not None:
        out["feature"] = feature
    if detail:
        out["detail"] = detail
    return out


def _num(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def kolmogorov_sf(d: float, n_eff: float) -> float:
    """P(D > d) of the KS statistic: the asymptotic Kolmogorov distribution (SciPy's) at Stephens'
    small-sample corrected ``lambda = (sqrt(n) + 0.12 + 0.11 / sqrt(n)) * d``."""
    if n_eff <= 0:
        return 1.0
    root = math.sqrt(n_eff)
    return float(special.kolmogorov((root + 0.12 + 0.11 / root) * d))


def ks_two_sample(a: Any, b: Any) -> Dict[str, float]:
    """Two-sample KS (two-sided) of the non-missing values of ``a`` and ``b``."""
    x = np.sort(_present(a))
    y = np.sort(_present(b))
    if len(x) == 0 or len(y) == 0:
        return {"statistic": float("nan"), "p_value": float("nan"), "n_baseline": len(x), "n_window": len(y)}
    grid = np.concatenate([x, y])
    cdf_x = np.searchsorted(x, grid, side="right") / len(x)
    cdf_y = np.searchsorted(y, grid, side="right") / len(y)
    d = float(np.max(np.abs(cdf_x - cdf_y)))
    n_eff = len(x) * len(y) / (len(x) + len(y))
    return {"statistic": d, "p_value": kolmogorov_sf(d, n_eff), "n_baseline": len(x), "n_window": len(y)}


def ks_binned(baseline_counts: Sequence[float], window_counts: Sequence[float]) -> Dict[str, float]:
    """KS statistic at the bin cut points: max |F_base(e_i-) - F_window(e_i-)| from the counts."""
    e = np.asarray(baseline_counts, dtype=np.float64)
    a = np.asarray(window_counts, dtype=np.float64)
    n1, n2 = e.sum(), a.sum()
    if n1 == 0 or n2 == 0:
        return {"statistic": float("nan"), "p_value": float("nan"), "n_baseline": int(n1), "n_window": int(n2)}
    d = float(np.max(np.abs(np.cumsum(e)[:-1] / n1 - np.cumsum(a)[:-1] / n2))) if len(e) > 1 else 0.0
    return {"statistic": d, "p_value": kolmogorov_sf(d, n1 * n2 / (n1 + n2)), "n_baseline": int(n1), "n_window": int(n2)}


def chi_square_homogeneity(baseline_counts: Sequence[float], window_counts: Sequence[float]) -> Dict[str, float]:
    """Pearson chi-square test of homogeneity of the 2 x k table (no continuity correction)."""
    table = np.array([baseline_counts, window_counts], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return {"statistic": 0.0, "p_value": 1.0, "dof": 0}
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return {"statistic": stat, "p_value": float(stats.chi2.sf(stat, dof)), "dof": dof}


def _alpha_per_test(statistics: Mapping[str, Any], false_alarm_rate: float, tests: Optional[int]) -> float:
    """The window's false-alarm budget shared among its drift tests (default: every feature + the prediction)."""
    return false_alarm_rate / (tests or len(statistics.get("features", {})) + 1)


# A categorical of more levels than this is judged on its most frequent levels (drift_levels): simulating its null over
# every level took hours per feature and window (draws x levels), past the monitor job's time limit.
MAX_DRIFT_LEVELS = 100
# The bin that pools a many-level categorical's rarer levels (the levels it knows; unseen values stay in __other__).
RARE_LEVELS = "__rare_levels__"


def drift_levels(levels: Sequence[str], baseline: Sequence[int], window: Sequence[int], window_rows: int,
                 alpha: float = 0.0, unseen: Optional[Mapping[str, int]] = None
                 ) -> Tuple[List[str], List[int], List[int], Optional[int], List[str]]:
    """The bins a categorical's drift is judged on: ``levels`` (its known levels, then ``__other__``) with their
    ``baseline`` and ``window`` counts as they are, or, past :data:`MAX_DRIFT_LEVELS`
    levels training saw (declared levels of count 0 aside: 250 declared countries of which training saw 60 are judged
    as before), its most frequent
    levels (at most ``MAX_DRIFT_LEVELS - 2``), each expecting at least ``calibration.MIN_EXPECTED`` of the window's
    ``window_rows`` values (:data:`MIN_EXPECTED_SMALL_WINDOW` when fewer than two levels would), then :data:`RARE_LEVELS` pooling every other known level (itself expecting as many: the
    least frequent kept levels join it until it does) and ``__other__``. The fourth item is the number of levels pooled
    (None: none). With every bin expecting enough values the threshold's null is the chi-square's, not a simulation
    over every level (hours per feature at 10,000 levels or more); a shift among the rare levels alone is not seen
    (docs/monitoring.md, Scale limits). A rare level that *surges* - more of the window's values than its baseline
    count explains at ``alpha`` shared out over the pooled levels (conditional binomial test: given the level's
    baseline + window count, its window count is binomial at ``window_rows / (window_rows + baseline total)`` under
    no drift) - keeps a bin of its own (the last item lists them), so a merchant training saw once that takes 3 % of
    the window is drift, not 0.3 % more in the pooled bin. Under no drift a level surges with probability at most
    ``alpha`` in all; the null of a carved bin (expecting few values) is then simulated over at most 100 bins.

    A long tail training did not see whole: a window drawn from the training distribution brings values training
    never saw (a merchant id of 20,000 levels, 200,000 training values: about 2.7 % of every window), so the unseen
    bin's baseline count is the number of pooled levels training saw once, taken from the pooled bin (Good-Turing's
    estimate of that share, which the counts of the levels training saw overstate by as much; not when the baseline
    has unseen values of its own). When it expects fewer than ``calibration.MIN_EXPECTED`` of the window's values the
    null is simulated, over these few bins. A value of ``unseen`` (the window's most frequent unseen values
    and their counts) whose count no baseline count of 0 explains (the same test) keeps a bin of its own too."""
    known = len(levels) - 1
    if sum(1 for count in baseline[:known] if count > 0) <= MAX_DRIFT_LEVELS:  # levels training saw, not declared ones
        return list(levels), list(baseline), list(window), None, []
    total = float(sum(baseline))
    order = sorted(range(known), key=lambda i: (-baseline[i], levels[i]))
    for minimum in (calibration.MIN_EXPECTED, MIN_EXPECTED_SMALL_WINDOW):
        needed = minimum * total / max(window_rows, 1)  # a bin's baseline count to expect enough
        kept = [i for i in order[:MAX_DRIFT_LEVELS - 2] if baseline[i] >= needed]
        pooled = total - baseline[-1] - sum(baseline[i] for i in kept)
        while kept and pooled < needed:
            pooled += baseline[kept.pop()]
        if len(kept) >= 2:  # else a window too small for any level to expect 25 values: bins expecting a few
            break
    rest = set(range(known)) - set(kept)
    new = sorted(((str(v), int(c)) for v, c in (unseen or {}).items()), key=lambda vc: (-vc[1], vc[0]))
    tests = len(rest) + int(window[-1])  # the pooled levels and at most one distinct value per unseen value
    surging = _surging(sorted(rest, key=lambda i: (-window[i], levels[i])), baseline, window, total, alpha, tests)
    rows = float(sum(window))
    new = [(v, c) for v, c in new if alpha > 0 and (rows / (rows + total)) ** c < alpha / max(tests, 1)]
    new = new[:MAX_SURGING_LEVELS - len(surging)]
    kept += surging
    rest -= set(surging)
    # Good-Turing: training's levels seen once stand for the share of values it never saw (moved from the pooled bin,
    # whose counts overstate its rare levels' share by as much); not when the baseline has unseen values of its own.
    # However few window values that share expects, it is not negligible: 2.7 % unseen against none is PSI 0.15.
    singletons = sum(1 for i in rest if baseline[i] == 1) if baseline[-1] == 0 else 0
    return ([levels[i] for i in kept] + [v for v, _ in new] + [RARE_LEVELS, levels[-1]],
            [int(baseline[i]) for i in kept] + [0] * len(new)
            + [int(sum(baseline[i] for i in rest)) - singletons, int(baseline[-1]) + singletons],
            [int(window[i]) for i in kept] + [c for _, c in new]
            + [int(sum(window[i] for i in rest)), int(window[-1]) - sum(c for _, c in new)],
            len(rest), [levels[i] for i in surging] + [v for v, _ in new])


# A window too small for two of a many-level categorical's levels to expect calibration.MIN_EXPECTED values each (120
# values of 1,000 Zipf-like levels) keeps the levels expecting this many, its null simulated over these few bins: with
# every level pooled it was judged on one bin, PSI 0 whatever the window held.
MIN_EXPECTED_SMALL_WINDOW = 5.0

# At most this many surging rare levels get bins of their own (the report lists them; the bins stay few).
MAX_SURGING_LEVELS = 20


def _surging(rest: Sequence[int], baseline: Sequence[int], window: Sequence[int], total: float,
             alpha: float, tests: int) -> List[int]:
    """The pooled levels ``rest`` (most frequent in the window first) whose window counts their baseline counts do not
    explain at ``alpha / tests`` (see :func:`drift_levels`), at most :data:`MAX_SURGING_LEVELS`."""
    present = [i for i in rest if window[i] > 0]
    if alpha <= 0 or not present:
        return []
    rows = float(sum(window))
    w = np.array([window[i] for i in present], dtype=np.float64)
    b = np.array([baseline[i] for i in present], dtype=np.float64)
    p = stats.binom.sf(w - 1, w + b, rows / (rows + total))
    return [i for i, p_i in zip(present, p) if p_i < alpha / max(tests, 1)][:MAX_SURGING_LEVELS]


def _calibration_detail(calibrated: calibration.Threshold) -> str:
    return (f"larger of noise {calibrated.noise:.4g} ({calibrated.method} null, p={calibrated.p_value:.3g}) "
            f"and material {calibrated.material:.4g}")


def _present(values: Any) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[~np.isnan(v)]


def category_counts(counts: ColumnCounts, levels: Sequence[str]) -> Dict[str, Any]:
    """Counts of the window on ``levels`` + ``__other__``, and the unseen values themselves."""
    known = [lvl for lvl in levels if lvl != OTHER_LEVEL]
    unseen = counts.unseen(known)
    return {
        "levels": known + [OTHER_LEVEL],
        "counts": [int(counts.values.get(lvl, 0)) for lvl in known] + [unseen["count"]],
        "unseen": unseen["top"],
        "unseen_count": unseen["count"],
        "present": counts.present,
    }


# --------------------------------------------------------------------------------------
# Drift and quality of one window
# --------------------------------------------------------------------------------------
def data_drift(
    window: Union[pd.DataFrame, WindowStats],
    statistics: Mapping[str, Any],
    *,
    psi_threshold: float = 0.1,
    ks_p_value: float = 0.01,
    feature_thresholds: Optional[Mapping[str, float]] = None,
    baseline_sample: Optional[pd.DataFrame] = None,
    window_sample: Optional[pd.DataFrame] = None,
    min_rows: int = DEFAULT_MIN_ROWS,
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
    tests: Optional[int] = None,
    exempt: Sequence[str] = (),
) -> Dict[str, Any]:
    """Per-feature PSI + KS / chi-square; ``{"features": {...}, "checks": [...], ...}``.

    ``exempt``: features reported but never judged (a calendar feature, which drifts by construction): their PSI and
    calibrated threshold are computed and shown (``exempt: true``, status ``exempt``), but they have no
    ``drift_score``, never drift, and are left out of ``drifted_features``, ``max_psi`` and ``drift_score`` (the retrain
    alarm's metric); ``exempt_features`` lists their PSI.

    ``window``: the window's records, or their counts (:class:`WindowStats` of ``statistics``). A feature drifts
    when its PSI exceeds its calibrated threshold (:mod:`calibration`): the larger of the material PSI
    (``psi_threshold`` or the feature's override) and the PSI that no-drift windows of this size exceed with
    probability ``false_alarm_rate / tests``. ``tests`` (default: the features + the prediction) shares the
    window's false-alarm budget among all its drift tests. With ``baseline_sample``, the exact KS test compares it
    with ``window_sample`` (default: the window's records when given as a frame; given counts and no sample, the
    binned KS).
    """
    if isinstance(window, pd.DataFrame):
        window_sample = window if window_sample is None else window_sample
        window = WindowStats.of(window, statistics)
    window.problem(DRIFT)
    overrides = dict(feature_thresholds or {})
    features: Dict[str, Any] = {}
    checks: List[Dict[str, Any]] = []
    alpha = _alpha_per_test(statistics, false_alarm_rate, tests)
    for name, baseline in statistics.get("features", {}).items():
        threshold = float(overrides.get(name, psi_threshold))
        entry: Dict[str, Any] = {"kind": baseline.get("kind"), "role": baseline.get("role"), "psi_threshold": threshold}
        column = window.column(name)
        n_present = column.present if column is not None else 0
        if column is None or n_present == 0:
            entry["status"] = SKIPPED
            entry["detail"] = "no values in the window"
            features[name] = entry
            checks.append(check("feature_psi", "data_drift", None, threshold, SKIPPED, feature=name, detail=entry["detail"]))
            continue
        if n_present < min_rows:
            entry["status"] = SKIPPED
            entry["detail"] = f"{n_present} values < min_rows {min_rows}"
            features[name] = entry
            checks.append(check("feature_psi", "data_drift", None, threshold, SKIPPED, feature=name, detail=entry["detail"]))
            continue
        if baseline.get("kind") == "numeric":
            hist = baseline.get("histogram") or {}
            edges, base_counts = hist.get("bin_edges", []), hist.get("counts", [])
            window_counts = column.bins.astype(int).tolist()
            entry["psi"] = psi(base_counts, window_counts, PSI_EPSILON)
            entry["bins"] = {"bin_edges": list(edges), "baseline": list(base_counts), "window": window_counts}
            if (baseline_sample is not None and name in baseline_sample.columns and window_sample is not None
                    and name in window_sample.columns):
                ks = ks_two_sample(as_numbers(baseline_sample[name]), as_numbers(window_sample[name]))
                ks["mode"] = "sample"
            else:
                ks = ks_binned(base_counts, window_counts)
                ks["mode"] = "binned"
            entry["ks"] = ks
            entry["window_mean"] = column.mean()
            entry["baseline_mean"] = baseline.get("mean")
            test_name, p = "ks", ks["p_value"]
        else:
            levels = list((baseline.get("levels") or {}).keys())
            base_counts = [int(baseline["levels"][lvl]["count"]) for lvl in levels if lvl != OTHER_LEVEL]
            base_counts.append(int((baseline["levels"].get(OTHER_LEVEL) or {}).get("count", 0)))
            cc = category_counts(column, levels)
            bin_levels, base_counts, window_counts, pooled, surging = drift_levels(
                cc["levels"], base_counts, cc["counts"], n_present, alpha=alpha, unseen=cc["unseen"])
            if pooled is not None:
                entry["pooled_levels"] = pooled
            if surging:
                entry["surging_levels"] = surging
            entry["psi"] = psi(base_counts, window_counts, PSI_EPSILON)
            entry["bins"] = {"levels": bin_levels, "baseline": base_counts, "window": window_counts}
            entry["chi_square"] = chi_square_homogeneity(base_counts, window_counts)
            entry["unseen"] = cc["unseen"]
            test_name, p = "chi_square", entry["chi_square"]["p_value"]
        calibrated = calibration.threshold(entry["bins"]["baseline"], n_present, entry["psi"], alpha=alpha, material=threshold)
        entry["psi_threshold"] = calibrated.value
        entry["calibration"] = calibrated.as_dict()
        if name in exempt:
            entry.update({"exempt": True, "drifted": False, "status": EXEMPT})
            features[name] = entry
            checks.append(check("feature_psi", "data_drift", entry["psi"], calibrated.value, EXEMPT, feature=name,
                                detail=f"{EXEMPT_FEATURE}; {_calibration_detail(calibrated)}"))
            continue
        entry["drift_score"] = entry["psi"] / calibrated.value
        drifted = entry["psi"] > calibrated.value
        test_alert = p is not None and math.isfinite(p) and p < ks_p_value
        entry["drifted"] = bool(drifted)
        entry["status"] = FAIL if drifted else (WARN if test_alert else PASS)
        features[name] = entry
        checks.append(check("feature_psi", "data_drift", entry["psi"], calibrated.value, FAIL if drifted else PASS, feature=name,
                            detail=_calibration_detail(calibrated)))
        checks.append(
            check(f"{test_name}_p_value", "data_drift", p, ks_p_value, WARN if test_alert else PASS, feature=name, op="<",
                  detail=f"mode={entry['ks']['mode']}" if test_name == "ks" else "")
        )
    scored = [v for v in features.values() if "psi" in v and not v.get("exempt")]
    drifted_names = sorted(k for k, v in features.items() if v.get("drifted"))
    max_psi = max((v["psi"] for v in scored), default=None)
    checks.append(check("drifted_feature_count", "data_drift", len(drifted_names), 0, FAIL if drifted_names else PASS,
                        detail=", ".join(drifted_names)))
    return {
        "psi_threshold": psi_threshold,
        "feature_thresholds": overrides,
        "false_alarm_rate": false_alarm_rate,
        "alpha_per_test": alpha,
        "ks_p_value": ks_p_value,
        "features": features,
        "drifted_features": drifted_names,
        "max_psi": max_psi,
        "drift_score": max((v["drift_score"] for v in scored), default=None),
        "max_psi_feature": max(((v["psi"], k) for k, v in features.items() if "psi" in v and not v.get("exempt")),
                               default=(None, None))[1],
        "exempt_features": {k: v.get("psi") for k, v in features.items() if k in exempt},
        "checks": checks,
    }


def prediction_drift(scores: Any, statistics: Mapping[str, Any], *, psi_threshold: float = 0.1,
                     min_rows: int = DEFAULT_MIN_ROWS, problem_type: Optional[str] = None, classes: Sequence[str] = (),
                     probabilities: Optional[pd.DataFrame] = None, false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
                     tests: Optional[int] = None, report_only: bool = False) -> Dict[str, Any]:
    """PSI of the window's predictions against the baseline's (see the module docstring).

    ``scores``: the capture frame's ``score`` (binary P(target = 1), multiclass class code, regression
    value), or their counts (:class:`PredictionCounts` of ``statistics``); ``problem_type`` defaults to the
    baseline's; a baseline of another type is an error. ``probabilities`` (multiclass, optional, with scores):
    the class-probability columns, for the mean probabilities. The threshold is calibrated like a feature's
    (:func:`data_drift`; ``tests`` default: the features + 1). ``report_only`` (a seasonal model's predictions, which
    follow the season): the PSI is reported (``exempt: true``, status ``exempt``) with no ``drift_score``, so it starts
    no retrain.
    """
    section = _prediction_drift(scores, statistics, psi_threshold=psi_threshold, min_rows=min_rows,
                                problem_type=problem_type, classes=classes, probabilities=probabilities,
                                false_alarm_rate=false_alarm_rate, tests=tests)
    if not report_only or section.get("status") == SKIPPED:
        return section
    section.pop("drift_score", None)
    for item in section["checks"]:
        if item["check"] == "prediction_psi":
            item.update(status=EXEMPT, detail=f"{REPORT_ONLY_PREDICTIONS}; {item.get('detail', '')}")
    return {**section, "status": EXEMPT, "exempt": True}


def _prediction_drift(scores: Any, statistics: Mapping[str, Any], *, psi_threshold: float, min_rows: int,
                      problem_type: Optional[str], classes: Sequence[str], probabilities: Optional[pd.DataFrame],
                      false_alarm_rate: float, tests: Optional[int]) -> Dict[str, Any]:
    alpha = _alpha_per_test(statistics, false_alarm_rate, tests)
    baseline_type = statistics.get("problem_type", BINARY)
    problem_type = problem_type or baseline_type
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"unknown problem type {problem_type!r}")
    if baseline_type != problem_type:
        raise ValueError(f"the baseline statistics are a {baseline_type} model's, the model is {problem_type}")
    counts = scores
    if not isinstance(counts, PredictionCounts):
        counts = PredictionCounts(statistics, problem_type, list(probabilities.columns) if probabilities is not None else [])
        counts.add(scores, probabilities)
    if problem_type == MULTICLASS:
        return _class_drift(counts, statistics, psi_threshold=psi_threshold, min_rows=min_rows, classes=classes, alpha=alpha)
    if problem_type == REGRESSION:
        return _value_drift(counts, statistics, psi_threshold=psi_threshold, min_rows=min_rows, alpha=alpha)
    prediction = statistics.get("prediction") or {}
    hist = prediction.get("histogram") or {}
    n = counts.rows
    if not hist or n < max(1, min_rows):
        detail = "no baseline score histogram" if not hist else f"{n} scores < min_rows {min_rows}"
        return {"status": SKIPPED, "detail": detail, "checks": [check("prediction_psi", "prediction_drift", None, psi_threshold, SKIPPED, detail=detail)]}
    window_counts = counts.bins.astype(int).tolist()
    decision = _prediction_decision(hist["counts"], window_counts, psi_threshold, alpha, "scores")
    return {
        **decision,
        "rows": n,
        "window_mean_score": counts.mean(),
        "baseline_mean_score": prediction.get("mean"),
        "window_positive_rate": counts.positives / n,
        "baseline_positive_rate": prediction.get("positive_rate_at_threshold"),
        "bins": {"bin_edges": hist["bin_edges"], "baseline": hist["counts"], "window": window_counts},
    }


def _prediction_decision(base_counts: Sequence[float], window_counts: Sequence[int], psi_threshold: float, alpha: float,
                         detail: str) -> Dict[str, Any]:
    """PSI, calibrated threshold, status and check of a prediction distribution (see :func:`data_drift`)."""
    value = psi(base_counts, window_counts, PSI_EPSILON)
    calibrated = calibration.threshold(base_counts, int(sum(window_counts)), value, alpha=alpha, material=psi_threshold)
    status = FAIL if value > calibrated.value else PASS
    return {"psi": value, "status": status, "psi_threshold": calibrated.value, "calibration": calibrated.as_dict(),
            "drift_score": value / calibrated.value,
            "checks": [check("prediction_psi", "prediction_drift", value, calibrated.value, status,
                             detail=f"{detail}; {_calibration_detail(calibrated)}")]}


def _skipped_prediction(detail: str, psi_threshold: float) -> Dict[str, Any]:
    return {"status": SKIPPED, "detail": detail,
            "checks": [check("prediction_psi", "prediction_drift", None, psi_threshold, SKIPPED, detail=detail)]}


def _class_drift(counts: PredictionCounts, statistics: Mapping[str, Any], *, psi_threshold: float, min_rows: int,
                 classes: Sequence[str], alpha: float) -> Dict[str, Any]:
    """Multiclass: PSI (and chi-square) of the predicted-class counts vs the training data's."""
    prediction = statistics.get("prediction") or {}
    hist = prediction.get("histogram") or {}
    levels = [str(c) for c in hist.get("levels") or []]
    classes = [str(c) for c in classes] or levels
    if levels and levels != classes:
        raise ValueError(f"the baseline's classes {levels} are not the model's {classes}")
    if not levels or counts.rows < max(1, min_rows):
        return _skipped_prediction("no baseline class shares" if not levels else f"{counts.rows} predictions < min_rows {min_rows}",
                                   psi_threshold)
    k = len(levels)
    window_counts = counts.class_counts(k)
    rows = sum(window_counts)
    base_counts = [int(x) for x in hist["counts"]]
    decision = _prediction_decision(base_counts, window_counts, psi_threshold, alpha, "predicted-class shares")
    n_base = sum(base_counts)
    out: Dict[str, Any] = {
        **decision,
        "rows": rows,
        "measure": "predicted-class shares",
        "window_class_shares": {name: (window_counts[i] / rows if rows else None) for i, name in enumerate(levels)},
        "baseline_class_shares": {name: (base_counts[i] / n_base if n_base else None) for i, name in enumerate(levels)},
        "chi_square": chi_square_homogeneity(base_counts, window_counts),
        "bins": {"levels": levels, "baseline": base_counts, "window": window_counts},
    }
    if len(counts.probability_columns) == k and counts.complete:
        out["window_mean_probabilities"] = {name: float(counts.probability_sums[i] / counts.complete)
                                            for i, name in enumerate(levels)}
        out["baseline_mean_probabilities"] = prediction.get("mean_probabilities")
    return out


def _value_drift(counts: PredictionCounts, statistics: Mapping[str, Any], *, psi_threshold: float, min_rows: int,
                 alpha: float) -> Dict[str, Any]:
    """Regression: PSI of the predicted values on the baseline's quantile bins."""
    prediction = statistics.get("prediction") or {}
    hist = prediction.get("histogram") or {}
    if not hist or counts.rows < max(1, min_rows):
        return _skipped_prediction("no baseline prediction histogram" if not hist else f"{counts.rows} predictions < min_rows {min_rows}",
                                   psi_threshold)
    window_counts = counts.bins.astype(int).tolist()
    decision = _prediction_decision(hist["counts"], window_counts, psi_threshold, alpha, "predicted values")
    return {
        **decision,
        "rows": counts.rows,
        "measure": "predicted values on the baseline's quantile bins",
        "window_mean_prediction": counts.mean(),
        "baseline_mean_prediction": prediction.get("mean"),
        "window_std_prediction": counts.std(),
        "baseline_std_prediction": prediction.get("std"),
        "bins": {"bin_edges": hist["bin_edges"], "baseline": hist["counts"], "window": window_counts},
    }


def binomial_tail(count: int, n: int, rate: float, *, measured_on: Optional[int] = None) -> float:
    """P(X >= ``count``) for X ~ Binomial(``n``, ``rate``): the chance that a window of ``n`` values shows ``count`` or
    more of them (missing, out of range, unseen) when each is so with probability ``rate``; 1 for a count of 0.

    ``measured_on``: ``rate`` is itself a share measured on that many rows (training's missing rate), so the true rate
    is uncertain too: the tail is then the beta-binomial one at its Jeffreys posterior, Beta(x + 1/2, m - x + 1/2) for
    x of m rows, which an unchanged source exceeds as rarely as said where the binomial at the measured share does not
    (a share measured a little low, or a rate of 0 that training's rows did not show: one missing value then had
    p = 0)."""
    if count <= 0 or n <= 0:
        return 1.0
    rate = min(max(float(rate), 0.0), 1.0)
    if measured_on:
        hits = rate * measured_on
        return float(stats.betabinom.sf(count - 1, n, hits + 0.5, measured_on - hits + 0.5))
    return float(stats.binom.sf(count - 1, n, rate))


def _noise_rule(p_value: float, count: int, n: int, what: str, at: str, alpha: float) -> str:
    """The data-quality detail that says why a rate over its limit fails or not: its binomial tail and the bound."""
    return (f"p={p_value:.3g} of {count}/{n} {what} or more at {at} (fails under {alpha:.3g}: "
            "monitoring.false_alarm_rate shared among the features)")


def data_quality(
    window: Union[pd.DataFrame, WindowStats],
    constraints: Mapping[str, Any],
    *,
    type_violations: Optional[Mapping[str, int]] = None,
    max_missing_increase: float = 0.05,
    max_range_violation_rate: float = 0.01,
    max_unseen_rate: float = 0.01,
    absent_columns: Sequence[str] = (),
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
) -> Dict[str, Any]:
    """Missing rates, type/range violations and unseen categories vs ``constraints.json``; ``window``: the
    window's records, or their counts (:class:`WindowStats` of ``constraints``).

    A feature's missing rate fails when it exceeds the baseline's by more than ``max_missing_increase`` and is more
    than sampling noise: a window of this size with the baseline's missing rate has that many missing values or more
    with probability under ``false_alarm_rate`` shared among the features (binomial tail; Bonferroni), so a small
    window of an intermittent model does not fail on chance alone; with the training rows the baseline measured it on
    (``constraints["rows"]``), the tail counts that measurement's own noise too (:func:`binomial_tail`). The range and unseen-category checks use the same
    rule at their limit: a rate over ``max_range_violation_rate`` (``max_unseen_rate``) fails only when a window of this
    size whose true rate *is* that limit would show that many values out of range (unseen) or more with probability
    under the same share, so one value past training's min/max or one rare level training never saw in a window of a
    hundred requests does not fail; an unseen level that does not fail is a ``warn``."""
    if isinstance(window, pd.DataFrame):
        window = WindowStats.of(window, constraints=constraints)
    window.problem(QUALITY)
    n = window.rows
    features: Dict[str, Any] = {}
    checks: List[Dict[str, Any]] = []
    type_violations = dict(type_violations or {})
    alpha = false_alarm_rate / max(1, len(constraints.get("features", {})))
    # The rows training's missing rates were measured on (constraints.json's header; a baseline without it: none).
    training_rows = constraints.get("rows") if isinstance(constraints.get("rows"), int) and constraints["rows"] > 0 else None
    for name, c in constraints.get("features", {}).items():
        column = window.column(name)
        if name in absent_columns or column is None:
            features[name] = {"status": SKIPPED, "detail": "not sent in the requests"}
            continue
        missing = column.missing
        rate = missing / n if n else 0.0
        baseline_missing = 1.0 - float(c.get("completeness", 1.0))
        allowed_missing = baseline_missing + max_missing_increase
        # P(this many missing or more | the baseline's rate): the chance a window this size shows it with no change.
        p_value = binomial_tail(missing, n, baseline_missing, measured_on=training_rows)
        entry: Dict[str, Any] = {"missing_rate": rate, "baseline_missing_rate": baseline_missing, "missing_p_value": p_value}
        status = FAIL if rate > allowed_missing and p_value < alpha else PASS
        checks.append(check("missing_rate", "data_quality", rate, allowed_missing, status, feature=name,
                            detail=f"baseline {baseline_missing:.4f} + {max_missing_increase}; "
                                   + _noise_rule(p_value, missing, n, "missing", "the baseline's rate" + (
                                       f" of {training_rows} training rows" if training_rows else ""), alpha)))
        present = n - missing
        if c.get("kind") == "numeric":
            bad_type = int(type_violations.get(name, 0))
            lo, hi = c.get("min"), c.get("max")
            out_of_range, non_integer = column.out_of_range, column.non_integer
            denominator = present + bad_type
            range_rate = out_of_range / denominator if denominator else 0.0
            type_rate = (bad_type + non_integer) / denominator if denominator else 0.0
            # P(this many out of range or more | a true rate at the limit): over the limit and more than noise.
            range_p = binomial_tail(out_of_range, denominator, max_range_violation_rate)
            entry.update({"out_of_range": out_of_range, "range_violation_rate": range_rate, "range_p_value": range_p,
                          "min": lo, "max": hi, "type_violations": bad_type, "non_integer": non_integer,
                          "type_violation_rate": type_rate})
            range_failed = range_rate > max_range_violation_rate and range_p < alpha
            checks.append(check("range_violation_rate", "data_quality", range_rate, max_range_violation_rate,
                                FAIL if range_failed else PASS, feature=name,
                                detail=f"[{lo}, {hi}]; " + _noise_rule(range_p, out_of_range, denominator, "out of range",
                                                                       "the limit's rate", alpha)))
            checks.append(check("type_violation_rate", "data_quality", type_rate, 0.0, FAIL if type_rate > 0 else PASS, feature=name))
        else:
            unseen = column.unseen(c.get("allowed") or [])
            unseen_rate = unseen["count"] / column.present if column.present else 0.0
            # A long tail training did not see whole: the share of unseen values a window brings with no change
            # (Good-Turing, baseline.categorical_constraint) is not a violation; the limit counts over it.
            unseen_limit = min(1.0, max_unseen_rate + float(c.get("expected_unseen_rate") or 0.0))
            # P(this many unseen or more | a true rate at the limit), as for the range above.
            unseen_p = binomial_tail(unseen["count"], column.present, unseen_limit)
            entry.update({"unseen_rate": unseen_rate, "unseen": unseen["top"], "unseen_p_value": unseen_p})
            unseen_failed = unseen_rate > unseen_limit and unseen_p < alpha
            status_u = FAIL if unseen_failed else (WARN if unseen_rate > 0 else PASS)
            levels = ", ".join(f"{k} ({v})" for k, v in entry["unseen"].items())
            checks.append(check("unseen_category_rate", "data_quality", unseen_rate, unseen_limit, status_u, feature=name,
                                detail=(f"{levels}; " if levels else "") + _noise_rule(
                                    unseen_p, unseen["count"], column.present, "unseen", "the limit's rate", alpha)))
        entry["status"] = FAIL if any(ch["status"] == FAIL for ch in checks if ch.get("feature") == name) else PASS
        features[name] = entry
    rates = [v["missing_rate"] for v in features.values() if "missing_rate" in v]
    return {
        "features": features,
        # Each feature's share of the false-alarm budget (the bound its checks' binomial tails are held to).
        "alpha_per_feature": alpha,
        "max_missing_rate": max(rates, default=None),
        "failed_features": sorted(k for k, v in features.items() if v.get("status") == FAIL),
        "checks": checks,
    }
