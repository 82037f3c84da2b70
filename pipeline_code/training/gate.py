"""The promotion gate as code: may this challenger be registered as a candidate champion?

:func:`decide` reads an evaluation report (the ``evaluation.json`` written by
:mod:`pipeline_code.training.evaluate`) and the run's thresholds (the pipeline's parameters, whose defaults are the
environment's configured gate). The report names the model's
``problem_type`` and ``primary_metric`` (binary and ``auc`` when absent) and its ``quality_floor``
(:mod:`pipeline_code.core.problem`); "better" below is in the primary metric's direction.

1. ``min_auc`` (classifiers): challenger AUC >= ``min_auc`` (multiclass: macro one-vs-rest AUC);
2. ``min_quality`` (when the report has a floor): challenger primary metric at least as good as the floor; a
   regression model judged on RMSE or MAE without one gets ``min_r2`` instead: R² >= 0, no worse than the test set's
   mean (the default floor of one judged on R², which ``min_quality`` replaces there too); not judged, with a note,
   when R² is undefined (one target value);
3. ``challenger_margin`` (only with a champion): challenger primary metric better than the champion's by
   at least the margin (a binary model with AUC: challenger AUC >= champion AUC + margin);
4. ``slice_regression`` (only with a champion): for every slice value with enough evidence for both
   models (binary: ``min_slice_rows`` test rows, ``min_slice_positives`` positives and as many negatives;
   multiclass: every class ``min_slice_positives`` times, or - judged on macro F1 - two classes that often, compared
   on the macro F1 over those classes, the slice's ``gated_on``; regression: the rows), the challenger's primary
   metric is worse than the champion's by at most ``max_slice_regression``; other slices are reported,
   not gated (noted);
   ``class_recall`` (multiclass, only with a champion, on the same rows as check 4): no class with
   ``min_slice_positives`` test rows or more loses recall against the champion by more than ``max_class_recall_drop``
   (its own threshold: loosening the slices does not loosen it) plus the noise of its rows (:func:`class_recall_check`: two equally good models fail it with probability
   :data:`CLASS_RECALL_FALSE_FAILURE` over all the classes tested); a class whose F1 is no lower than the champion's
   traded recall for precision and passes. The margin on macro F1 moves by about 1/K of a lost class's F1;
5. ``fairness_evidence``: the test set has two groups of the sensitive attribute with ``min_group_rows`` rows
   each (else nothing can be compared: insufficient evidence, never a pass, and the parity checks are skipped);
   classifiers: the challenger flags at least ``min_predicted_positives`` test rows
   in the compared groups of the sensitive attribute (multiclass: predicts every class that often; a class with fewer
   test rows than that is named as not enough evidence, not judged, unless no class has that many). With
   (almost) nothing flagged every group's rate is 0 and the parity metrics read as perfect; that is
   insufficient evidence, never a pass;
6. ``demographic_parity``: challenger demographic parity difference <= maximum (multiclass: the worst class); a
   regression model's ``bias_parity`` instead: its bias gap, how much more the most over-estimated group is
   over-estimated than the most under-estimated one (mean error over the group's mean |target|, max - min),
   <= ``max_demographic_parity_difference``: equal error sizes with one group over- and another under-estimated
   are no parity;
7. ``disparate_impact``: challenger disparate impact >= minimum (multiclass: per class, a class under the minimum failing
   only when it is also under the ratio a model predicting it at one rate for every group shows by chance,
   :data:`FAIR_REFUSAL_RATE` over the classes: :func:`disparate_impact_noise`); a regression
   model's ``error_parity`` instead: lowest / highest group relative MAE (MAE over the group's mean |target|)
   >= ``min_disparate_impact``. Both regression checks compare the groups :mod:`.metrics_regression` compares
   (``min_group_rows`` rows, not ``(missing)``); where a group's mean |target| is near 0 both compare absolute
   errors (the bias gap over the compared groups' mean |target|).

8. ``suspected_leakage`` (only when suspected): a classifier's AUC (test, or validation when the artefact records
   it; multiclass: its macro one-vs-rest AUC with the accuracy at the same place, both at or above it, as many easy
   negatives lift that AUC alone) or a regression model's R² at or above :data:`NEAR_PERFECT` (0.995), or one of two or more inputs holding
   :data:`DOMINANT_SHARE` (90 %) of the mean |SHAP| attribution, suggests a column that holds the label or is
   recorded after it (a cancellation reason for churn): the gate refuses it unless the report carries
   ``leakage_acknowledged`` (the model's config says why the score is genuine), which passes the check and adds
   the reason to the decision's notes. AUC for every classifier whatever its primary metric (a near-perfect F1 or
   accuracy implies it, and it is scale-free), R² for regression (RMSE and MAE have no scale-free "perfect").
9. ``calibration`` (classifiers, only with a limit: ``max_calibration_error`` below
   :data:`~pipeline_code.core.thresholds.NO_CALIBRATION_LIMIT`): the challenger's expected calibration error on the frozen
   test set (``challenger.metrics.ece``: :func:`pipeline_code.training.metrics.expected_calibration_error`; multiclass: the
   top-label ECE) <= ``max_calibration_error``. A model whose scores rank well but whose probabilities are off (a
   ``class_weight: balanced`` model's, say) fails it where a consumer reads the score as a probability.

0. ``gate_policy`` (with ``policy``, the environment's configured thresholds): no threshold of the run is looser than
   the configured one - whoever may start a run may tighten the gate, never loosen it (the configuration is the
   reviewed policy);

Not a check: when the report's ``out_of_time`` block has a ``note`` (a model's training data reaches the frozen test
set's window, :func:`pipeline_code.training.evaluate.out_of_time`), the note is added to the decision's reasons.
Then the block's ``comparison`` says what checks 3 and 4 compare (:func:`comparison_shortfall`): basis
:data:`COMPARED_OUT_OF_TIME`, the challenger's and the champion's metrics and slices on the test rows after both
models' training data (``comparison.challenger`` / ``comparison.champion``; the messages name the rows; multiclass:
``comparison.compared`` names the key the margin reads - macro F1 or macro AUC over the classes seen
``min_slice_positives`` times there when a long tail's rarer classes are not, :func:`comparison_metric`), not on the
whole set, where the model that learnt from the window would be judged in-sample; basis
:data:`COMPARED_WHOLE_SET_FAVOURS_CHAMPION` or :data:`COMPARED_WHOLE_SET_FAVOURS_CHALLENGER`, too few such rows to
judge on: checks 3 and 4 are made on the whole set as without the block (never skipped: a challenger clearly worse
than the champion is not promoted for want of rows), their messages say which model the whole set favours, and the note says
why. Where the champion's training data reaches the set it is scored partly in-sample, so the whole set favours it:
an error on the side of keeping the champion. The challenger's own checks (1, 2, 5-9) are always on the whole frozen
set.

A required metric that is missing, null or NaN raises :class:`GateInputError` naming it:
an incomplete report is never a pass.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from pipeline_code.core import problem
from pipeline_code.core.thresholds import NO_CALIBRATION_LIMIT, fairness_shortfall, loosened
from pipeline_code.training.metrics import CALIBRATION_BINS
from pipeline_code.training.metrics_multiclass import RESTRICTED_METRICS
from pipeline_code.training.metrics_regression import bias_measure_text, error_measure_text
from pipeline_code.training.spec import GateThresholds


# A held-out score this close to perfect is rarer in real tabular data than a leaked label: AUC (classifiers: every
# positive ranked above every negative at 1.0) and R² (regression: the variance explained) are scale-free, so one level
# serves every model.
NEAR_PERFECT = 0.995
# One input carrying this share of the attribution is the model (other inputs add nothing): a leak, or a question
# one column answers.
DOMINANT_SHARE = 0.9


# How the challenger is compared with the champion when either's training data reaches the frozen test set (the
# report's out_of_time.comparison.basis, which evaluate writes): on the rows after both models' training data, where
# neither is judged on rows it learnt from; or - too few of those to judge on - on the whole set, as without the block,
# naming the model it favours: a check on biased rows still stops a clearly worse challenger, none stops nothing. The
# champion is favoured where its training data reaches the set (scored partly in-sample); else the challenger, whose
# data then reaches it (it learnt from the set's period, not from its rows).
COMPARED_OUT_OF_TIME = "out_of_time_rows"
COMPARED_WHOLE_SET_FAVOURS_CHAMPION = "whole_set_favours_champion"
COMPARED_WHOLE_SET_FAVOURS_CHALLENGER = "whole_set_favours_challenger"
COMPARED_WHOLE_SET = {COMPARED_WHOLE_SET_FAVOURS_CHAMPION: "champion", COMPARED_WHOLE_SET_FAVOURS_CHALLENGER: "challenger"}
COMPARISON_BASES = (COMPARED_OUT_OF_TIME, *COMPARED_WHOLE_SET)
# Reports written before the whole-set bases: too few rows after both models' data, and no margin or slice check was
# made. Only read back (the model card); evaluate no longer writes it.
COMPARED_ADVISORY = "advisory"
COMPARISON_KEY = "out_of_time.comparison"


class GateInputError(ValueError):
    """The report lacks a metric the gate needs (the message names its key path)."""


@dataclass
class GateDecision:
    passed: bool
    reasons: List[str]
    checks: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons), "checks": list(self.checks)}


def _lookup(report: Mapping[str, Any], path: str, *, allow_null: bool = False) -> Any:
    node: Any = report
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            raise GateInputError(f"evaluation report lacks required metric {path!r} (no key {key!r})")
        node = node[key]
    if node is None and allow_null:
        return None
    if node is None:
        raise GateInputError(f"evaluation report metric {path!r} is null (not computable on this test set)")
    return node


def _number(report: Mapping[str, Any], path: str) -> float:
    value = _lookup(report, path)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GateInputError(f"evaluation report metric {path!r} must be a number, got {value!r}")
    if math.isnan(float(value)):
        raise GateInputError(f"evaluation report metric {path!r} is NaN")
    return float(value)


def _check(name: str, passed: bool, value: float, threshold: float, message: str, **extra: Any) -> Dict[str, Any]:
    entry = {"name": name, "passed": bool(passed), "value": value, "threshold": threshold, "message": message}
    entry.update(extra)
    return entry


def decide(report: Mapping[str, Any], thresholds: GateThresholds, policy: Optional[Mapping[str, float]] = None) -> GateDecision:
    """Apply the gate to ``report``; see the module docstring for the rules. ``policy`` (default None: not checked):
    the environment's configured thresholds, which the run's may not loosen.

    Raises:
        GateInputError: a required metric is missing/null/NaN (never a silent pass).
    """
    t = thresholds
    checks: List[Dict[str, Any]] = []
    notes: List[str] = []
    kind = str(report.get("problem_type", problem.BINARY))
    metric = str(report.get("primary_metric", problem.default_primary_metric(kind)))
    champion = _lookup(report, "champion", allow_null=True)
    if policy is not None:
        looser = loosened(t, policy)
        checks.append(_check(
            "gate_policy", not looser, float(len(looser)), 0.0,
            ("the run's thresholds are the environment's or stricter" if not looser else
             "the run's thresholds loosen the environment's gate: " + "; ".join(looser) + ". A run may tighten the gate, "
             "never loosen it: change gate.<threshold> in the configuration (a reviewed change) instead")))

    if problem.is_classification(kind):
        auc = _number(report, "challenger.metrics.auc")
        which = "macro one-vs-rest AUC" if kind == problem.MULTICLASS else "AUC"  # whatever the primary metric
        checks.append(_check("min_auc", auc >= t.min_auc, auc, t.min_auc,
                             f"challenger {which} {auc:.4f} {'>=' if auc >= t.min_auc else '<'} minimum {t.min_auc:.4f}"))
    if kind == problem.REGRESSION and metric != "r2" and report.get("quality_floor") is None:
        # RMSE and MAE have no floor in the target's units a config could default to: R² >= 0 (no worse than the test
        # set's mean) is the floor of one without min_quality, as it is one judged on R²'s. min_quality replaces it, as it
        # replaces an R²-judged model's: on an out-of-time test set whose level moved, the set's own mean is an oracle
        # a good forecaster may not beat, and a floor nothing could lift would refuse every challenger.
        if _lookup(report, "challenger.metrics.r2", allow_null=True) is None:
            # R² is undefined (None) on a test set whose target has one value throughout: the mean predicts it exactly,
            # so no floor relative to it can be judged; the metric the model is judged on still decides.
            notes.append("min_r2 not judged: R² is undefined on a test set whose target has one value throughout (every "
                         f"prediction of its mean would be exact); the model is judged on {metric} alone")
        else:
            r2 = _number(report, "challenger.metrics.r2")
            ok = r2 >= problem.DEFAULT_REGRESSION_FLOOR
            checks.append(_check("min_r2", ok, r2, problem.DEFAULT_REGRESSION_FLOOR,
                                 f"challenger R² {r2:.4f} {'>=' if ok else '<'} {problem.DEFAULT_REGRESSION_FLOOR:.4f}: "
                                 f"{'no worse' if ok else 'worse'} than predicting the test set's mean for every record; a "
                                 f"regression model judged on {metric} without min_quality keeps this floor (min_quality sets one on "
                                 f"{metric} itself instead)"))
    floor = report.get("quality_floor")
    value = _number(report, f"challenger.metrics.{metric}")
    if floor is not None:
        ok = problem.reaches(metric, value, float(floor))
        relation = (">=" if ok else "<") if problem.higher_is_better(metric) else ("<=" if ok else ">")
        checks.append(_check("min_quality", ok, value, float(floor),
                             f"challenger {problem.label(metric)} {value:.4f} {relation} floor {float(floor):.4f}"))
    basis = _comparison_basis(report) if champion is not None else None
    if champion is not None:
        base = f"{COMPARISON_KEY}." if basis == COMPARED_OUT_OF_TIME else ""
        # A multiclass comparison's classes (evaluate's compared block; absent: binary, regression, older reports).
        compared = (report["out_of_time"]["comparison"].get("compared") or {}) if base else {}
        key = str(compared.get("metric") or metric)
        mine, theirs = _number(report, f"{base}challenger.metrics.{key}"), _number(report, f"{base}champion.metrics.{key}")
        where, extra, what, named = "", {}, problem.label(metric), f"{problem.label(metric)} "
        if base:
            rows, after = int(_number(report, f"{base}rows")), _lookup(report, f"{base}after")
            where, extra = f" on the {rows} test rows after {after}", {"rows": rows, "after": after}
            if key != metric:
                # A long tail's rows after the cut lack its rare classes: the macro metric over those seen often enough.
                classes = list(compared.get("classes") or [])
                what = f"{what} over the {len(classes)} classes with >= {t.min_slice_positives} rows there"
                extra["classes"], named = classes, ""
        elif basis in COMPARED_WHOLE_SET:
            # Too few rows after both models' data: the whole set, as without the block; the message says whom it favours.
            where, extra = f" on the whole test set, which favours the {COMPARED_WHOLE_SET[basis]}", {"basis": basis}
        if problem.higher_is_better(metric):
            required = theirs + t.challenger_margin
            ok = mine >= required
            message = (f"challenger {what} {mine:.4f} {'>=' if ok else '<'} champion {named}{theirs:.4f} + "
                       f"margin {t.challenger_margin:.4f} = {required:.4f}{where}")
        else:
            required = theirs - t.challenger_margin
            ok = mine <= required
            message = (f"challenger {what} {mine:.4f} {'<=' if ok else '>'} champion {named}{theirs:.4f} - "
                       f"margin {t.challenger_margin:.4f} = {required:.4f}{where}")
        checks.append(_check("challenger_margin", ok, mine, required, message, champion_value=theirs, **extra))
        noise = _margin_noise(report, metric, mine, theirs, t.challenger_margin, ok) if not base else None
        if noise:
            notes.append(noise)
        checks.extend(_slice_checks(report, t, notes, kind, metric, base))
        if kind == problem.MULTICLASS:
            later = f" after {_lookup(report, f'{base}after')}" if base else ""
            check, class_notes = class_recall_check(_per_class(report, f"{base}challenger"),
                                                    _per_class(report, f"{base}champion"), t, later, metric=metric)
            checks.append(check)
            notes.extend(class_notes)
    checks.extend(_fairness_checks(report, t, kind))
    checks.extend(_leakage_checks(report, kind, notes))
    if problem.is_classification(kind) and t.max_calibration_error < NO_CALIBRATION_LIMIT:
        checks.append(_calibration_check(report, t))
    out_of_time = (report.get("out_of_time") or {}).get("note")
    if out_of_time:
        notes.append(str(out_of_time))

    failed = [c for c in checks if not c["passed"]]
    if failed:
        reasons = [c["message"] for c in failed]
    else:
        context = (("champion not compared (judged as the first model)" if report.get("champion_not_compared")
                    else "no champion (first model)") if champion is None else
                   "beats the champion on the test rows after the models' training data" if basis == COMPARED_OUT_OF_TIME else
                   f"beats the champion on the whole test set, which favours the {COMPARED_WHOLE_SET[basis]} (see the note)"
                   if basis in COMPARED_WHOLE_SET else
                   "beats the champion")
        reasons = [f"passed all {len(checks)} checks; {context}"]
    return GateDecision(passed=not failed, reasons=reasons + notes, checks=checks)


# Two equally good multiclass models fail the per-class recall check by chance with at most this probability over all
# the classes it tests (Bonferroni: each tested class gets an equal share, one-sided).
CLASS_RECALL_FALSE_FAILURE = 0.05


def _per_class(report: Mapping[str, Any], model: str) -> Mapping[str, Any]:
    per_class = _lookup(report, f"{model}.metrics.per_class")
    if not isinstance(per_class, Mapping) or not per_class:
        raise GateInputError(f"evaluation report metric '{model}.metrics.per_class' must be a non-empty object of classes")
    return per_class


def recall_tolerance(metric: str, t: GateThresholds) -> "tuple[float, str]":
    """The drop of a class's recall ``class_recall`` allows beyond its noise, and how a message names it:
    ``gate.max_class_recall_drop``, a share of the class's rows whatever the primary ``metric`` (a slice's tolerance,
    ``gate.max_slice_regression``, is in the metric's units: log loss may rise by more than 1)."""
    return t.max_class_recall_drop, f"gate.max_class_recall_drop {t.max_class_recall_drop:.4f}"


def class_recall_check(mine: Mapping[str, Any], theirs: Mapping[str, Any], t: GateThresholds,
                       later: str = "", *, metric: str = "macro_f1") -> "tuple[Dict[str, Any], List[str]]":
    """Check ``class_recall`` (multiclass, with a champion): no class with ``min_slice_positives`` test rows or more
    loses more recall against the champion (per-class metrics ``mine`` / ``theirs``: ``rows``, ``recall``) than
    ``max_class_recall_drop`` (:func:`recall_tolerance`) plus the noise of its rows: ``z``
    binomial standard errors of the difference of two recalls on those rows (``sqrt(2 p (1 - p) / rows)``, ``p`` both models' pooled recall, add-one smoothed so a class
    both models always get right still has one) plus ``1 / rows`` (continuity: the normal curve under-states a few
    dozen rows' tails), ``z`` the one-sided normal quantile of
    :data:`CLASS_RECALL_FALSE_FAILURE` over the classes tested (Bonferroni). The margin on macro F1 moves by about 1/K
    of a lost class's F1, so a challenger a little better elsewhere lost a rare class unseen. A class whose F1 (when
    the metrics have it) is no lower than the champion's is not failed: its recall was traded for precision against a
    champion predicting it widely (an always-that-class champion has recall 1 there). Returns the check (one
    for all classes: a failure names the worst class, then any others) and the notes (classes not judged)."""
    minimum = t.min_slice_positives
    judged, small = [], []
    for name in sorted(mine):
        if name not in theirs:
            continue
        rows = min(int(mine[name].get("rows") or 0), int(theirs[name].get("rows") or 0))
        if rows < minimum or mine[name].get("recall") is None or theirs[name].get("recall") is None:
            small.append(name)
            continue
        f1s = (mine[name].get("f1"), theirs[name].get("f1"))
        judged.append((name, rows, float(mine[name]["recall"]), float(theirs[name]["recall"]),
                       None if None in f1s else (float(f1s[0]), float(f1s[1]))))
    notes = ([f"per-class recall not compared for {len(small)} class(es) with < {minimum} test rows "
              f"(gate.min_slice_positives): {', '.join(small)}"] if small else [])
    if not judged:
        return _check("class_recall", True, 0.0, 0.0, f"per-class recall: no class has >= {minimum} test rows{later} "
                      "(gate.min_slice_positives): not compared", classes=0), notes
    tolerance, tolerance_text = recall_tolerance(metric, t)
    alpha = CLASS_RECALL_FALSE_FAILURE / len(judged)
    z = NormalDist().inv_cdf(1.0 - alpha)
    results = []
    for name, rows, ours, champions, f1 in judged:
        pooled = (round(ours * rows) + round(champions * rows) + 1) / (2 * rows + 2)
        se = math.sqrt(2.0 * pooled * (1.0 - pooled) / rows)
        allowed = tolerance + z * se + 1.0 / rows  # continuity: recall moves in steps of 1 / rows
        drop = champions - ours
        # Recall traded for precision is no loss of the class: a champion that predicts a class for nearly every row
        # has its recall at 1 and a poor F1 there; a class lost loses both.
        traded = f1 is not None and f1[0] >= f1[1]
        results.append((allowed - drop, name, rows, ours, champions, drop, allowed, se, traded))
    results.sort()
    failed = [r for r in results if r[0] < 0 and not r[8]]
    headroom, name, rows, ours, champions, drop, allowed, se, _traded = (failed or results)[0]
    in_message = tolerance_text
    noise = (f"{in_message} + {z:.2f} standard errors of {se:.4f} + 1/{rows}: two "
             f"equally good models differ by more with probability {CLASS_RECALL_FALSE_FAILURE:.2g} over the "
             f"{len(judged)} classes with >= {minimum} test rows")
    if failed:
        message = (f"per-class recall: class {name} recall {ours:.4f} vs champion {champions:.4f} on {rows} test "
                   f"rows{later}: drop {drop:.4f} > allowed {allowed:.4f} ({noise})")
        if len(failed) > 1:
            message += "; also " + ", ".join(f"class {r[1]} {r[3]:.4f} vs {r[4]:.4f} (allowed drop {r[6]:.4f})"
                                            for r in failed[1:])
    else:
        message = (f"per-class recall: no class of the {len(judged)} with >= {minimum} test rows{later} drops below the "
                   f"champion's by more than {in_message} plus its noise; "
                   f"nearest class {name} {ours:.4f} vs champion {champions:.4f} on {rows} rows (drop {drop:.4f} <= "
                   f"allowed {allowed:.4f})")
        traded = [r for r in results if r[0] < 0 and r[8]]
        if traded:
            message += ("; recall traded for precision (F1 no lower than the champion's, who predicts the class more "
                        "widely): " + ", ".join(f"class {r[1]} {r[3]:.4f} vs {r[4]:.4f}" for r in traded))
    return _check("class_recall", not failed, ours, champions - allowed, message, **{
        "class": name, "rows": rows, "champion_value": champions, "allowed_drop": allowed, "se": se, "z": z,
        "classes": len(judged)}), notes


# One-sided 95 %: a lead (over the champion plus the margin) within this many standard errors of the paired
# difference is one a truly equal challenger reaches, or misses, by the test set's sampling alone.
MARGIN_NOISE_Z = 1.645


def _margin_noise(report: Mapping[str, Any], metric: str, mine: float, theirs: float, margin: float,
                  passed: bool) -> Optional[str]:
    """The note that the margin decision is within the frozen test set's noise (None when it is not, or when the
    report has no standard error of the paired difference, ``comparison.<metric>_delta_se``: reports before it)."""
    se = (report.get("comparison") or {}).get(f"{metric}_delta_se")
    if not isinstance(se, (int, float)) or not math.isfinite(se) or se <= 0:
        return None
    lead = (mine - theirs) if problem.higher_is_better(metric) else (theirs - mine)
    if abs(lead - margin) >= MARGIN_NOISE_Z * se:
        return None
    return (f"the challenger's {problem.label(metric)} lead over the champion ({lead:+.4f}, margin {margin:.4f}) is within "
            f"the noise of the frozen test set (standard error of the paired difference {se:.4f}): "
            + ("a challenger whose true lead is no more than the margin passes it by chance often" if passed else
               "a challenger whose true lead is more than the margin fails it by chance often")
            + "; review it on more test rows or with a larger gate.challenger_margin before relying on it")


def _comparison_basis(report: Mapping[str, Any]) -> Optional[str]:
    """The report's ``out_of_time.comparison.basis`` (None: no such block, the comparison is on the whole set)."""
    compared = (report.get("out_of_time") or {}).get("comparison")
    if compared is None:
        return None
    basis = _lookup(report, f"{COMPARISON_KEY}.basis")
    if basis not in COMPARISON_BASES:
        raise GateInputError(f"evaluation report's {COMPARISON_KEY}.basis is {basis!r}, not one of "
                             f"{list(COMPARISON_BASES)}")
    return basis


def comparison_shortfall(kind: str, metric: str, metrics: Mapping[str, Any], t: GateThresholds) -> Optional[str]:
    """What the rows whose headline ``metrics`` (one model's) these are lack to compare a challenger with a champion
    on, as what a comparison on them ``needs`` (None: enough): what a slice needs to be gated (check 4) -
    ``min_slice_rows`` rows; binary: ``min_slice_positives`` positives and as many negatives; multiclass: two classes
    that often (a long tail's rows lack its rare classes: a macro metric is compared over the classes seen that often,
    :func:`comparison_metric`) - and a computable primary ``metric`` (that restricted one where it applies). E.g.
    ``"38 more rows (gate.min_slice_rows: 50, what a gated slice needs)"``. A comparison on fewer rests on noise, as a
    small slice's would."""
    rows = int(metrics.get("rows") or 0)
    rule = "what a gated slice needs"
    if rows < t.min_slice_rows:
        return f"{_more(t.min_slice_rows - rows)} (gate.min_slice_rows: {t.min_slice_rows}, {rule})"
    if kind == problem.BINARY:
        positives = int(metrics.get("positives") or 0)
        rarer, which = min((positives, "positive"), (rows - positives, "negative"))
        if rarer < t.min_slice_positives:
            return (f"{_more(t.min_slice_positives - rarer, which)} (gate.min_slice_positives: "
                    f"{t.min_slice_positives} of each class, {rule}; {rarer} among the {rows})")
    elif kind == problem.MULTICLASS:
        enough, _left_out = comparison_classes(metrics, t)
        if len(enough) < 2:
            return (f"at least 2 classes with {t.min_slice_positives} rows or more each (gate.min_slice_positives: "
                    f"{t.min_slice_positives}, what a gated slice of a long tail needs; {len(enough)} among the {rows})")
    value = metrics.get(comparison_metric(kind, metric, metrics, t))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"rows on which the {problem.label(metric)} can be computed"
    return None


def comparison_classes(metrics: Mapping[str, Any], t: GateThresholds) -> "tuple[List[str], Dict[str, int]]":
    """The classes of multiclass rows (their headline ``metrics``' ``class_counts``) seen ``min_slice_positives``
    times or more - in the test set's class order - and the others with their counts (left out of a comparison on
    those rows where the metric is a mean over classes: :func:`comparison_metric`)."""
    counts = metrics.get("class_counts") or {}
    enough = [str(c) for c in counts if int(counts[c]) >= t.min_slice_positives]
    return enough, {str(c): int(counts[c]) for c in counts if int(counts[c]) < t.min_slice_positives}


def comparison_metric(kind: str, metric: str, metrics: Mapping[str, Any], t: GateThresholds) -> str:
    """The key of the rows' ``metrics`` a champion comparison on them reads: the primary ``metric``, or - multiclass,
    a class seen fewer than ``min_slice_positives`` times there, a metric averaged over classes (macro F1, macro AUC:
    :data:`~pipeline_code.training.metrics_multiclass.RESTRICTED_METRICS`) - ``compared_<metric>``, that metric over
    the classes seen that often (:func:`comparison_classes`; evaluate writes it). A class seen 3 times has an F1 or an
    AUC that one row moves by a third yet weighs as much as a class of thousands: the classes that often are what a
    gated slice compares (check 4). Accuracy and log loss, means over rows, keep every row."""
    if kind != problem.MULTICLASS or metric not in RESTRICTED_METRICS:
        return metric
    return f"compared_{metric}" if comparison_classes(metrics, t)[1] else metric


def _more(count: int, which: str = "") -> str:
    """``"1 more row"``, ``"5 more negative rows"``."""
    return f"{count} more {which + ' ' if which else ''}row{'' if count == 1 else 's'}"


def leakage_signals(report: Mapping[str, Any], kind: str) -> List[str]:
    """What makes the challenger suspect of target leakage (empty when nothing): see ``suspected_leakage`` above."""
    challenger = report.get("challenger") or {}
    metric = "auc" if problem.is_classification(kind) else "r2"
    info = challenger.get("model_info") or {}
    # Classifiers (multiclass too: a macro AUC) record a validation AUC beside the test one; regression its R².
    validation = info.get("validation_auc") if metric == "auc" else (info.get("validation") or {}).get(f"validation_{metric}")
    # A multiclass macro one-vs-rest AUC is no near-perfect score on its own: each class is ranked against many others
    # that are easy to tell from it, so a 40-class model wrong on one row in ten reaches 0.997. A leaked label makes
    # the predicted class right on (nearly) every row too: the AUC counts with an accuracy as close to perfect (a
    # report without the accuracy: the AUC alone, as before).
    accuracies = ((challenger.get("metrics") or {}).get("accuracy"), (info.get("validation") or {}).get("validation_accuracy"))
    signals = []
    for (where, value), accuracy in zip((("test", (challenger.get("metrics") or {}).get(metric)), ("validation", validation)),
                                        accuracies):
        if _near_perfect(value):
            if kind != problem.MULTICLASS:
                signals.append(f"{where} {problem.label(metric)} {float(value):.4f} >= {NEAR_PERFECT}")
            elif not _is_number(accuracy):
                signals.append(f"{where} macro one-vs-rest AUC {float(value):.4f} >= {NEAR_PERFECT}")
            elif _near_perfect(accuracy):
                signals.append(f"{where} macro one-vs-rest AUC {float(value):.4f} >= {NEAR_PERFECT} with accuracy "
                               f"{float(accuracy):.4f} >= {NEAR_PERFECT}")
    features = (report.get("attributions") or {}).get("features") or {}
    if len(features) >= 2:
        name = max(features, key=lambda f: float(features[f].get("share") or 0.0))
        share = float(features[name].get("share") or 0.0)
        if share >= DOMINANT_SHARE:
            signals.append(f"feature {name!r} holds {share:.0%} of the attribution (>= {DOMINANT_SHARE:.0%})")
    return signals


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def _near_perfect(value: Any) -> bool:
    return _is_number(value) and float(value) >= NEAR_PERFECT


def _calibration_check(report: Mapping[str, Any], t: GateThresholds) -> Dict[str, Any]:
    """Check 9: the challenger's expected calibration error against ``max_calibration_error``."""
    ece = _number(report, "challenger.metrics.ece")
    ok = ece <= t.max_calibration_error
    return _check("calibration", ok, ece, t.max_calibration_error,
                  f"challenger expected calibration error {ece:.4f} {'<=' if ok else '>'} maximum "
                  f"{t.max_calibration_error:.4f} ({CALIBRATION_BINS} equal-width probability bins)")


def _leakage_checks(report: Mapping[str, Any], kind: str, notes: List[str]) -> List[Dict[str, Any]]:
    """``suspected_leakage`` when :func:`leakage_signals` finds any: failed, unless the model's config acknowledges it
    (``leakage_acknowledged`` in the report), which passes it and notes the reason."""
    signals = leakage_signals(report, kind)
    if not signals:
        return []
    found = "; ".join(signals)
    reason = report.get("leakage_acknowledged")
    if reason:
        message = f"suspected target leakage ({found}) acknowledged by the model's config: {reason}"
        notes.append(message)
        return [_check("suspected_leakage", True, float(len(signals)), 0.0, message, signals=signals)]
    model = report.get("model", "<name>")
    return [_check(
        "suspected_leakage", False, float(len(signals)), 0.0,
        f"suspected target leakage: {found}; a score this close to perfect, or one feature carrying the model, usually "
        "means an input holds the label or is recorded after it (e.g. a cancellation reason for churn): remove that "
        f"input, or, if the score is genuine, say why in models.{model}.leakage_acknowledged", signals=signals)]


def _fairness_checks(report: Mapping[str, Any], t: GateThresholds, kind: str) -> List[Dict[str, Any]]:
    """Evidence, demographic parity and disparate impact (binary, multiclass per class), or the bias gap and error parity
    (regression)."""
    attribute = report.get("challenger", {}).get("fairness", {}).get("attribute", "sensitive attribute")
    shortfall = _group_shortfall(report, kind, attribute)
    if shortfall is not None:
        return [shortfall]
    if kind == problem.REGRESSION:
        return [_bias_check(report, attribute, t), _error_check(report, attribute, t)]
    dpd = _number(report, "challenger.fairness.demographic_parity_difference")
    di = _number(report, "challenger.fairness.disparate_impact")
    fairness = _lookup(report, "challenger.fairness")
    which = {"dpd": "", "di": ""}
    if kind == problem.MULTICLASS:
        which = {"dpd": f" (class {fairness.get('demographic_parity_class')})", "di": f" (class {fairness.get('disparate_impact_class')})"}
    evidence = _evidence_check(report, attribute, t) if kind == problem.BINARY else _class_evidence_check(
        fairness, attribute, t, (report.get("challenger", {}).get("metrics") or {}).get("per_class") or {})
    if kind == problem.MULTICLASS:
        di_check = _class_disparate_impact_check(fairness, attribute, t)
    else:
        di_check = _check(
            "disparate_impact",
            di >= t.min_disparate_impact,
            di,
            t.min_disparate_impact,
            f"disparate impact across {attribute}{which['di']} {di:.4f} {'>=' if di >= t.min_disparate_impact else '<'} "
            f"minimum {t.min_disparate_impact:.4f}",
        )
    return [
        evidence,
        _check(
            "demographic_parity",
            dpd <= t.max_demographic_parity_difference,
            dpd,
            t.max_demographic_parity_difference,
            f"demographic parity difference across {attribute}{which['dpd']} {dpd:.4f} "
            f"{'<=' if dpd <= t.max_demographic_parity_difference else '>'} maximum {t.max_demographic_parity_difference:.4f}",
        ),
        di_check,
    ]


# The chance that a multiclass model predicting each class at one rate for every group fails disparate impact anyway,
# over all its classes (each class gets an equal share of it).
FAIR_REFUSAL_RATE = 0.05
_NOISE_DRAWS = 20_000


def disparate_impact_noise(rows: Mapping[str, int], predicted: Mapping[str, int], alpha: float, seed: int = 0) -> float:
    """The disparate impact (lowest over highest share of each group's rows predicted the class) that groups of
    ``rows`` fall below with probability ``alpha`` when every group is predicted the class at the same rate (the
    pooled rate of ``predicted``): binomial draws, seeded, so the gate decides the same twice."""
    names = sorted(rows)
    n = np.asarray([int(rows[g]) for g in names], dtype=np.int64)
    total = int(sum(int(predicted.get(g, 0)) for g in names))
    if total == 0 or n.min() <= 0:
        return 1.0
    rate = total / float(n.sum())
    draws = np.random.default_rng(seed).binomial(n, rate, size=(_NOISE_DRAWS, len(n))) / n
    high = draws.max(axis=1)
    ratios = np.where(high > 0, draws.min(axis=1) / np.where(high > 0, high, 1.0), 1.0)
    return float(np.quantile(ratios, alpha))


def _class_disparate_impact_check(fairness: Mapping[str, Any], attribute: str, t: GateThresholds) -> Dict[str, Any]:
    """A multiclass model's disparate impact, judged per class: a class fails when its ratio is under the minimum and
    under what a model predicting it at one rate for every compared group shows by chance (probability
    :data:`FAIR_REFUSAL_RATE` over the classes). A class predicted a few dozen times splits unevenly over the groups
    whatever the model does, so the worst class's raw ratio is noise on a long tail (about 0.25 for a fair 40-class
    model on 4,500 test rows): judged on it the four-fifths bound refused every such model, and the only way through
    was a bound that judged no class at all."""
    per_class = fairness.get("per_class") or {}
    groups = fairness.get("groups") or {}
    eligible = [str(g) for g in fairness.get("eligible_groups") or []]
    if not per_class or not all(g in groups for g in eligible):
        di = _number({"f": fairness}, "f.disparate_impact")
        ok = di >= t.min_disparate_impact
        return _check("disparate_impact", ok, di, t.min_disparate_impact,
                      f"disparate impact across {attribute} (class {fairness.get('disparate_impact_class')}) {di:.4f} "
                      f"{'>=' if ok else '<'} minimum {t.min_disparate_impact:.4f}")
    alpha = FAIR_REFUSAL_RATE / len(per_class)
    rows = {g: int(groups[g]["rows"]) for g in eligible}
    judged = []
    for name in sorted(per_class):
        di = float(per_class[name]["disparate_impact"])
        bound = t.min_disparate_impact
        if di < bound:  # only a class under the minimum needs its noise (the others pass either way)
            counts = {g: int((groups[g].get("predicted_counts") or {}).get(name, 0)) for g in eligible}
            bound = min(bound, disparate_impact_noise(rows, counts, alpha))
        judged.append((di - bound, name, di, bound, int(per_class[name].get("predicted", 0))))
    margin, name, di, bound, predicted = min(judged)
    ok = margin >= 0
    lowered = (f" (for this class {bound:.4f}: a model predicting it at one rate for every group falls below that by "
               f"chance with probability {alpha:.2g} at its {predicted} predictions)") if bound < t.min_disparate_impact else ""
    if ok:
        message = (f"disparate impact across {attribute}: every class >= minimum {t.min_disparate_impact:.4f} or within "
                   f"the noise of its predictions; nearest class {name} {di:.4f}{lowered}")
    else:
        message = f"disparate impact across {attribute} (class {name}) {di:.4f} < minimum {t.min_disparate_impact:.4f}{lowered}"
    return _check("disparate_impact", ok, di, bound, message, **({"class": name}))


def _error_check(report: Mapping[str, Any], attribute: str, t: GateThresholds) -> Dict[str, Any]:
    """A regression model's fairness: error parity of MAE relative to each group's mean |target| (of MAE for a target
    centred on zero, or a report from before relative errors)."""
    fairness = _lookup(report, "challenger.fairness")
    ratio = _number(report, "challenger.fairness.error_parity_ratio")
    measure = error_measure_text(fairness)
    ok = ratio >= t.min_disparate_impact
    return _check("error_parity", ok, ratio, t.min_disparate_impact,
                  f"error parity across {attribute} (lowest / highest group {measure}) {ratio:.4f} {'>=' if ok else '<'} "
                  f"minimum {t.min_disparate_impact:.4f}")


def _bias_check(report: Mapping[str, Any], attribute: str, t: GateThresholds) -> Dict[str, Any]:
    """A regression model's bias gap (the most over- minus the most under-estimated group's mean error over its mean
    |target|) against the maximum gap of positive rates: its counterpart in the same units, a share."""
    fairness = _lookup(report, "challenger.fairness")
    gap = _number(report, "challenger.fairness.bias_gap")
    over = _lookup(report, "challenger.fairness.most_over_estimated_group")
    under = _lookup(report, "challenger.fairness.most_under_estimated_group")
    ok = gap <= t.max_demographic_parity_difference
    return _check("bias_parity", ok, gap, t.max_demographic_parity_difference,
                  f"bias gap across {attribute} (most over-estimated group {over}, most under-estimated {under}; "
                  f"{bias_measure_text(fairness)}) {gap:.4f} {'<=' if ok else '>'} maximum "
                  f"{t.max_demographic_parity_difference:.4f}",
                  over_estimated=over, under_estimated=under)


def _group_shortfall(report: Mapping[str, Any], kind: str, attribute: str) -> Optional[Dict[str, Any]]:
    """A failed ``fairness_evidence`` check when the test set has fewer than two groups big enough to compare
    (the report's disparity metric is null then), else None."""
    fairness = report.get("challenger", {}).get("fairness", {})
    metric = "error_parity_ratio" if kind == problem.REGRESSION else "demographic_parity_difference"
    groups = fairness.get("groups")
    if fairness.get(metric) is not None or not isinstance(groups, Mapping) or "min_group_rows" not in fairness:
        return None  # computed, or a report without its groups: the metric's own lookup decides
    shortfall = fairness_shortfall({g: int(v["rows"]) for g, v in groups.items()}, int(fairness["min_group_rows"]))
    if shortfall is None:
        return None
    return _check("fairness_evidence", False, float(len(fairness.get("eligible_groups") or [])), 2.0,
                  f"fairness across {attribute} cannot be judged on the test set: {shortfall} (insufficient evidence, not "
                  "a pass); provide more labelled data or lower gate.min_group_rows")


def _class_evidence_check(fairness: Mapping[str, Any], attribute: str, t: GateThresholds,
                          class_rows: Mapping[str, Any]) -> Dict[str, Any]:
    """A multiclass model's parity per class rests on how often each class is predicted in the compared groups:
    a class (almost) never predicted has equal shares everywhere, which is no evidence of fairness. A class with fewer
    test rows (``class_rows``: the challenger's per-class metrics) than ``min_predicted_positives`` cannot be predicted
    that often by a model that learnt it: it is not enough evidence, named, not a refusal of the model (the binary
    case's evidence is the flagged rows; a 0.2 % class of a long tail has a handful); with no class that large nothing
    can be judged, a refusal."""
    per_class = fairness.get("per_class") or {}
    if not per_class:
        raise GateInputError("evaluation report lacks required metric 'challenger.fairness.per_class'")
    minimum = t.min_predicted_positives
    short = sorted(c for c in per_class if c in class_rows and int(class_rows[c].get("rows") or 0) < minimum)
    judged = [c for c in per_class if c not in short]
    if not judged:
        return _check("fairness_evidence", False, 0.0, float(minimum),
                      f"fairness across {attribute} cannot be judged: no class has {minimum} test rows or more "
                      "(insufficient evidence, not a pass); provide more labelled data")
    rarest = min(judged, key=lambda c: (int(per_class[c]["predicted"]), c))
    flagged = int(per_class[rarest]["predicted"])
    ok = flagged >= minimum
    if ok:
        message = (f"fairness across {attribute} judged on every class predicted >= {minimum} times "
                   f"(rarest: {rarest}, {flagged})")
        if short:
            message += (f"; not enough evidence for {len(short)} class{'es' if len(short) > 1 else ''} with fewer than "
                        f"{minimum} test rows, not judged on how often {'they are' if len(short) > 1 else 'it is'} "
                        f"predicted: {', '.join(short)}")
    else:
        message = (f"fairness across {attribute} cannot be judged for class {rarest}: the challenger predicts it for {flagged} "
                   f"test rows in the compared groups, fewer than {minimum} (insufficient evidence, not a "
                   "pass); provide more test data of that class, and check its recall in the evaluation report: a model "
                   "that (almost) never predicts a class has not learned it, and lowering gate.min_predicted_positives "
                   "would pass it anyway")
    return _check("fairness_evidence", ok, float(flagged), float(minimum), message,
                  **({"not_enough_evidence": short} if short else {}))


def _evidence_check(report: Mapping[str, Any], attribute: str, t: GateThresholds) -> Dict[str, Any]:
    fairness = _lookup(report, "challenger.fairness")
    groups = _lookup(report, "challenger.fairness.groups")
    eligible = _lookup(report, "challenger.fairness.eligible_groups")
    flagged = sum(int(groups[g]["predicted_positives"]) for g in eligible)
    threshold = float(fairness.get("threshold", 0.5))
    ok = flagged >= t.min_predicted_positives
    if ok:
        message = (f"fairness across {attribute} judged on {flagged} predicted positives at threshold {threshold:.4f} "
                   f"(>= {t.min_predicted_positives})")
    else:
        message = (f"fairness across {attribute} cannot be judged: the challenger flags {flagged} test rows in the "
                   f"compared groups at threshold {threshold:.4f}, fewer than {t.min_predicted_positives} (insufficient "
                   "evidence, not a pass); give the model a decision policy (e.g. decision: {policy: max_f_beta}) or "
                   "lower gate.min_predicted_positives")
    return _check("fairness_evidence", ok, float(flagged), float(t.min_predicted_positives), message)


def _slice_checks(report: Mapping[str, Any], t: GateThresholds, notes: List[str], kind: str = problem.BINARY,
                  metric: str = "auc", base: str = "") -> List[Dict[str, Any]]:
    """Check 4 on the slices under ``base`` (the report itself, or ``out_of_time.comparison.``: the rows after both
    models' training data)."""
    challenger_slices = _lookup(report, f"{base}challenger.slices")
    champion_slices = _lookup(report, f"{base}champion.slices")
    later = f" after {_lookup(report, f'{base}after')}" if base else ""
    checks = []
    skipped = 0
    for column in sorted(challenger_slices):
        entry = challenger_slices[column]
        if not isinstance(entry, Mapping) or not isinstance(entry.get("values"), Mapping):
            raise GateInputError(f"evaluation report lacks required metric '{base}challenger.slices.{column}.values'")
        values = entry["values"]
        champion_values: Optional[Mapping[str, Any]] = (champion_slices.get(column) or {}).get("values")
        if champion_values is None:
            notes.append(f"slice column {column!r} has no champion metrics; not gated")
            continue
        for value in sorted(values):
            ours, theirs = values[value], champion_values.get(value)
            if theirs is None:
                notes.append(f"slice {column}={value} has no champion metrics; not gated")
                continue
            rows = min(int(ours.get("rows", 0)), int(theirs.get("rows", 0)))
            if kind == problem.BINARY:
                # A slice AUC rests on its rarer class: count positives and negatives, not just rows.
                rarer = min(_rarer_class(ours), _rarer_class(theirs))
                enough = rows >= t.min_slice_rows and rarer >= t.min_slice_positives
            else:  # the metrics module decided with the same minimums (every class present often enough)
                enough = bool(ours.get("gated")) and bool(theirs.get("gated"))
            key, what, extra = metric, problem.label(metric), {}
            if kind == problem.MULTICLASS and enough and (ours.get("gated_on") or theirs.get("gated_on")):
                # A long tail's slice lacks some classes: macro F1 over the classes it holds often enough (the same
                # rows and labels for both models, so the same classes).
                compared = list(ours.get("compared_classes") or [])
                enough = ours.get("gated_on") == theirs.get("gated_on") and compared == theirs.get("compared_classes")
                key, extra = str(ours.get("gated_on")), {"classes": compared}
                what = f"macro F1 over the {len(compared)} classes with >= {t.min_slice_positives} rows there"
            if not enough or ours.get(key) is None or theirs.get(key) is None:
                skipped += 1
                continue
            mine, champions = float(ours[key]), float(theirs[key])
            drop = -problem.improvement(metric, mine, champions)
            ok = drop <= t.max_slice_regression
            allowed = champions - t.max_slice_regression if problem.higher_is_better(metric) else champions + t.max_slice_regression
            checks.append(
                _check(
                    "slice_regression",
                    ok,
                    mine,
                    allowed,
                    f"slice {column}={value} ({rows} rows{later}): challenger {what} {mine:.4f} vs champion "
                    f"{champions:.4f} (drop {drop:.4f} {'<=' if ok else '>'} allowed {t.max_slice_regression:.4f})",
                    slice=f"{column}={value}",
                    rows=rows,
                    champion_value=champions,
                    **extra,
                )
            )
    if skipped:
        short = {problem.BINARY: f"< {t.min_slice_rows} rows or < {t.min_slice_positives} positives or negatives",
                 problem.MULTICLASS: f"< {t.min_slice_rows} rows or a class seen < {t.min_slice_positives} times",
                 problem.REGRESSION: f"< {t.min_slice_rows} rows"}.get(kind, "too little evidence")
        notes.append(f"{skipped} slice value(s) with {short} were reported, not gated")
    return checks


def _rarer_class(entry: Mapping[str, Any]) -> int:
    """Positives or negatives of a slice, whichever are fewer (a report without counts: the rows)."""
    rows = int(entry.get("rows", 0))
    positives = entry.get("positives")
    return rows if positives is None else min(int(positives), rows - int(positives))
