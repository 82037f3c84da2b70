"""The champion/challenger margin on a frozen test set of limited size: the evaluation measures the noise of the
paired difference, and the gate says when its margin decision is within it."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline_code.training import evaluate
from pipeline_code.training.gate import decide
from tests.support.training import UNREAD_SHAP_ROWS


def _two_equal_models(rng, rows: int, prevalence: float):
    """Labels and the scores of two models with the same true AUC (0.80) that share most of their signal."""
    y = (rng.random(rows) < prevalence).astype(np.float64)
    common = rng.normal(0.0, 1.0, rows)
    def scores():
        z = 1.19 * y + 0.8 * common + 0.6 * rng.normal(0.0, 1.0, rows)
        return 1.0 / (1.0 + np.exp(-z))
    return y, scores(), scores()


def test_the_paired_standard_error_matches_the_spread_of_the_difference_over_fresh_test_sets(churn_spec):
    # GIVEN two models of equal true AUC and a rare event (2 % positives) on 2,000 test rows
    rng = np.random.default_rng(20261206)
    y, mine, theirs = _two_equal_models(rng, 2000, 0.02)
    se = evaluate.paired_delta_se(churn_spec, y, mine, 0.5, theirs, 0.5)
    # THEN the bootstrap standard error of one test set is the spread of the AUC difference over 300 fresh test sets
    spread = np.std([roc_auc_score(yy, a) - roc_auc_score(yy, b)
                     for yy, a, b in (_two_equal_models(rng, 2000, 0.02) for _ in range(300))], ddof=1)
    assert 0.7 < se / spread < 1.4, (se, spread)
    # and it is far larger than the default margin: the margin alone decides such a comparison by chance
    assert se > 0.005


@pytest.fixture(scope="module")
def compared(churn_spec, dev_gate, strong_model, weak_model, prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("gate-noise")
    return evaluate.evaluate(churn_spec, strong_model, prepared["test"], str(out), dev_gate, champion_dir=weak_model,
                             log=lambda line: None, shap_sample_rows=UNREAD_SHAP_ROWS)


def test_the_evaluation_records_the_standard_error_of_the_compared_difference(compared):
    se = compared["comparison"]["auc_delta_se"]
    assert 0 < se < 0.1


def test_the_gate_says_when_its_margin_decision_is_within_the_test_sets_noise(compared, dev_gate):
    gate = dataclasses.replace(dev_gate, challenger_margin=0.005)
    report = copy.deepcopy(compared)
    report.pop("out_of_time", None)
    se = report["comparison"]["auc_delta_se"]
    mine = report["challenger"]["metrics"]["auc"]
    # GIVEN a champion the challenger leads by the margin plus a quarter of a standard error: it passes on noise
    report["champion"]["metrics"]["auc"] = mine - 0.005 - se / 4
    decision = decide(report, gate)
    (note,) = [r for r in decision.reasons if "within the noise of the frozen test set" in r]
    assert note == (f"the challenger's AUC lead over the champion ({0.005 + se / 4:+.4f}, margin 0.0050) is within the "
                    f"noise of the frozen test set (standard error of the paired difference {se:.4f}): a challenger "
                    "whose true lead is no more than the margin passes it by chance often; review it on more test rows or "
                    "with a larger gate.challenger_margin before relying on it")
    # GIVEN a lead a quarter of a standard error short of the margin THEN it fails, and the note says a challenger that
    # truly clears the margin fails it by chance often (not that one no better than the champion does: it should)
    report["champion"]["metrics"]["auc"] = mine - 0.005 + se / 4
    decision = decide(report, gate)
    assert not decision.passed
    (note,) = [r for r in decision.reasons if "within the noise of the frozen test set" in r]
    assert ("a challenger whose true lead is more than the margin fails it by chance often; review it on more test rows"
            in note), note
    # WHEN the lead is clear of the noise, or the report predates the standard error THEN no note
    report["champion"]["metrics"]["auc"] = mine - 0.005 - 3 * se
    assert not [r for r in decide(report, gate).reasons if "within the noise" in r]
    report["champion"]["metrics"]["auc"] = mine - 0.005 - se / 4
    del report["comparison"]["auc_delta_se"]
    assert not [r for r in decide(report, gate).reasons if "within the noise" in r]


def test_the_paired_standard_error_of_a_large_test_set_costs_what_a_capped_one_does(churn_spec, monkeypatch):
    # GIVEN two equal models on 60,000 test rows (10 % positives)
    y, mine, theirs = _two_equal_models(np.random.default_rng(5), 60_000, 0.1)
    full = evaluate.paired_delta_se(churn_spec, y, mine, 0.5, theirs, 0.5, draws=60, cap=len(y))
    scored = []
    alone = evaluate.metrics.metric_alone
    monkeypatch.setattr(evaluate.metrics, "metric_alone", lambda yy, pp, m, t: scored.append(len(yy)) or alone(yy, pp, m, t))
    # WHEN its standard error is measured with the default cap
    capped = evaluate.paired_delta_se(churn_spec, y, mine, 0.5, theirs, 0.5, draws=60)
    # THEN each resample scores at most 20,000 rows (it scored all 60,000: a minute and more at 200,000 rows)
    assert scored and max(scored) == 20_000
    # and the scaled spread is the full resamples' within the bootstrap's own error
    assert 0.75 < capped / full < 1.33, (capped, full)


@pytest.mark.parametrize("problem_type, metric", [("binary_classification", "auc"), ("binary_classification", "pr_auc"),
                                                  ("binary_classification", "f1"),
                                                  ("multiclass_classification", "macro_f1"),
                                                  ("multiclass_classification", "auc"), ("regression", "rmse"),
                                                  ("regression", "r2")])
def test_each_resample_of_the_paired_standard_error_scores_the_primary_metric_alone(problem_type, metric, monkeypatch):
    """GIVEN two models' scores WHEN the paired standard error of their primary metric is bootstrapped THEN a resample
    computes that metric alone, not every headline metric (a binary AUC draw no PR-AUC, calibration or confusion; a
    multiclass macro-F1 draw no per-class AUC ranking), with the value the headline gives it."""
    import types

    from pipeline_code.training import metrics, metrics_multiclass, metrics_regression

    rng = np.random.default_rng(9)
    classes = ["a", "b", "c", "d"]
    if problem_type == "multiclass_classification":
        y = rng.integers(0, 4, 3000).astype(np.float64)
        mine, theirs = (rng.dirichlet(np.ones(4), 3000) * 0.5 + np.eye(4)[y.astype(int)] * w for w in (0.5, 0.3))
        module = metrics_multiclass
    elif problem_type == "regression":
        y = rng.normal(10.0, 2.0, 3000)
        mine, theirs = y + rng.normal(0, 1.0, 3000), y + rng.normal(0, 1.1, 3000)
        module = metrics_regression
    else:
        y, mine, theirs = _two_equal_models(rng, 3000, 0.1)
        module = metrics
    spec = types.SimpleNamespace(problem_type=problem_type, primary_metric=metric, classes=classes, deviance=None)
    spied = {"headline": [], "macro_auc": []}
    # A multiclass draw of another metric takes the headline's confusion-matrix metrics (with_auc=False): no ranking
    for name in ("macro_auc",) if module is metrics_multiclass and metric != "auc" else spied:
        if hasattr(module, name):
            original = getattr(module, name)
            monkeypatch.setattr(module, name, lambda *a, _o=original, _n=name, **k: spied[_n].append(1) or _o(*a, **k))
    se = evaluate.paired_delta_se(spec, y, mine, 0.5, theirs, 0.5, draws=40)
    assert se is not None and se > 0
    assert not spied["headline"] and len(spied["macro_auc"]) <= (80 if metric == "auc" else 0)
    monkeypatch.undo()
    rows = rng.integers(0, 3000, 3000)
    for scores in (mine, theirs):
        if problem_type == "multiclass_classification":
            full = metrics_multiclass.headline(y[rows], scores[rows], classes)
            alone = metrics_multiclass.metric_alone(y[rows], scores[rows], classes, metric)
        elif problem_type == "regression":
            full = metrics_regression.headline(y[rows], scores[rows])
            alone = metrics_regression.metric_alone(y[rows], scores[rows], metric)
        else:
            full = metrics.headline(y[rows], scores[rows], 0.5)
            alone = metrics.metric_alone(y[rows], scores[rows], metric, 0.5)
        assert alone == full[metric]
