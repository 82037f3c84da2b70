"""The problem types' shared facts: metric directions, floors and the per-type tables agree with each other."""

from __future__ import annotations

import pytest

from pipeline_code.core import problem


@pytest.mark.parametrize("metric, challenger, champion, gain", [
    ("auc", 0.81, 0.80, 0.01), ("r2", 0.40, 0.45, -0.05), ("log_loss", 0.30, 0.35, 0.05), ("rmse", 12.0, 10.0, -2.0),
])
def test_improvement_is_measured_in_the_metrics_direction(metric, challenger, champion, gain):
    assert problem.improvement(metric, challenger, champion) == pytest.approx(gain)
    assert problem.reaches(metric, challenger, champion) is (gain >= 0)


def test_every_type_has_one_entry_in_every_table():
    tables = (problem.PRIMARY_METRICS, problem.HEADLINE_METRICS, problem.XGBOOST_OBJECTIVE, problem.XGBOOST_EVAL_METRICS,
              problem.MODEL_QUALITY_KEY, problem.DISPLAY_NAME, problem.QUALITY_ALARM_KEY)
    for table in tables:
        assert set(table) == set(problem.PROBLEM_TYPES)
    for kind, metrics in problem.PRIMARY_METRICS.items():
        # a primary metric is one the reports, the model card and the local registry show: the gate judged on it
        assert set(metrics) <= set(problem.HEADLINE_METRICS[kind])


@pytest.mark.parametrize("kind, metric, min_quality, floor", [
    (problem.REGRESSION, "r2", None, 0.0),  # no worse than predicting the mean
    (problem.REGRESSION, "rmse", None, None),  # an RMSE has no scale-free default
    (problem.REGRESSION, "rmse", 25, 25.0),
    (problem.BINARY, "auc", None, None),  # classifiers have gate.min_auc
    (problem.MULTICLASS, "macro_f1", 0.5, 0.5),
])
def test_the_quality_floor_is_the_models_or_r2_at_zero_for_regression(kind, metric, min_quality, floor):
    assert problem.quality_floor(kind, metric, min_quality) == floor


def test_a_primary_metric_of_another_type_is_named_with_the_allowed_ones():
    assert problem.primary_metric_problem(problem.REGRESSION, "auc") == (
        "'auc' is not a metric of a regression model; allowed: r2, rmse, mae")
    assert problem.primary_metric_problem(problem.BINARY, None) is None


@pytest.mark.parametrize(("problem_type", "primary_metric", "key"), [
    (problem.BINARY, None, "auc_drop"),
    (problem.BINARY, "auc", "auc_drop"),
    (problem.BINARY, "f1", "quality_drop"),
    (problem.BINARY, "pr_auc", "quality_drop"),
    (problem.BINARY, "log_loss", "quality_drop"),
    (problem.MULTICLASS, None, "auc_drop"),
    (problem.MULTICLASS, "auc", "auc_drop"),
    (problem.MULTICLASS, "macro_f1", "quality_drop"),
    (problem.MULTICLASS, "accuracy", "quality_drop"),
    (problem.REGRESSION, None, "quality_drop"),
    (problem.REGRESSION, "mae", "quality_drop"),
])
def test_the_quality_alarm_watches_what_the_monitor_fails_the_model_on(problem_type, primary_metric, key):
    """A classifier (binary or multiclass) judged on a metric other than AUC is failed by the monitor on that metric's
    drop (monitoring.quality), so its retrain alarm must watch that drop, not the AUC's: a PR-AUC or F1 collapse can
    leave the AUC stable."""
    assert problem.quality_alarm_key(problem_type, primary_metric) == key
