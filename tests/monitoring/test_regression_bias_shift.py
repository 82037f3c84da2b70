"""A regression model's window whose predictions are systematically off: the monitor fails its ``bias_shift``.

RMSE is in the target's units, so a window whose targets moved is no longer comparable with the evaluation's: in a
holiday week with no sales anywhere, a demand forecast that predicted the usual units for every store-product is wrong
on every record, yet its RMSE is lower than the evaluation's (the long tail of busy weeks is gone) and the quality
drop passes as an improvement. The mean error (``bias``) is what moved: the window's against the evaluation's, in
evaluation RMSEs. Data: generated weekly store sales (tests/support/store_sales.py); the forecast is each
store-product's mean of the four weeks before (a forecast a demand team starts from), evaluated on weeks 4-79.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline_code.monitoring import quality
from pipeline_code.monitoring.capture import INFERENCE_ID, INFERENCE_TIME, SCORE
from pipeline_code.training import metrics_regression
from tests.support import store_sales


@pytest.fixture(scope="module")
def weeks():
    sales = store_sales.generate()
    sales = sales[sales["lag_units_4w_avg"].notna()].copy()
    sales["week"] = (sales["event_time"] - store_sales.START).dt.days // 7
    evaluated = sales[sales["week"] < 80]
    baseline = metrics_regression.headline(evaluated["units_sold"].to_numpy(float), evaluated["lag_units_4w_avg"].to_numpy(float))
    return sales, baseline


def _window(sales: pd.DataFrame, first_week: int, *, holiday: bool = False) -> pd.DataFrame:
    """Three weeks of requests with their labels, each week's requests logged on its own day."""
    rows = sales[(sales["week"] >= first_week) & (sales["week"] < first_week + 3)]
    return pd.DataFrame({
        INFERENCE_ID: [f"r{i}" for i in range(len(rows))],
        INFERENCE_TIME: rows["event_time"].dt.strftime("%Y-%m-%dT10:00:00Z").to_numpy(),
        SCORE: rows["lag_units_4w_avg"].to_numpy(float),
        "label": np.zeros(len(rows)) if holiday else rows["units_sold"].to_numpy(float),
    })


def _section(window: pd.DataFrame, baseline) -> dict:
    return quality.model_quality(window, baseline, problem_type="regression", primary_metric="rmse", min_labeled_rows=200)


def _check(section: dict, name: str) -> dict:
    return next(c for c in section["checks"] if c["check"] == name)


def test_a_week_without_sales_everywhere_fails_the_bias_shift_though_its_rmse_looks_better(weeks):
    sales, baseline = weeks
    section = _section(_window(sales, 81, holiday=True), baseline)
    assert _check(section, "quality_drop")["value"] < 0  # RMSE "improved": it cannot see this week
    shift = _check(section, "bias_shift")
    assert shift["status"] == "fail"
    expected = (section["metrics"]["bias"] - baseline["bias"]) / baseline["rmse"]
    assert shift["value"] == pytest.approx(expected) and shift["value"] > 0.25
    assert section["bias_shift"] == pytest.approx(expected)
    assert shift["detail"] == (
        f"window mean error (prediction - target) {section['metrics']['bias']:+.4g} vs the evaluation's "
        f"{baseline['bias']:+.4g}: a shift of {expected:+.3f} of the evaluation's RMSE {baseline['rmse']:.4g} "
        f"(window mean target {0.0:.4g}, evaluation's {baseline['mean_target']:.4g}); limit 0.25; "
        f"{section['scored_rows']} labelled rows show a shift over {section['bias_shift_noise']:.3g} with no change "
        "with probability 0.01")


@pytest.mark.parametrize("first_week", [81, 84, 90])
def test_ordinary_weeks_pass_the_bias_shift(weeks, first_week):
    sales, baseline = weeks
    shift = _check(_section(_window(sales, first_week), baseline), "bias_shift")
    assert shift["status"] == "pass" and abs(shift["value"]) < 0.1


def test_the_bias_shift_is_skipped_without_an_evaluation_rmse(weeks):
    sales, baseline = weeks
    shift = _check(_section(_window(sales, 81, holiday=True), {**baseline, "rmse": None}), "bias_shift")
    assert shift["status"] == "skipped" and shift["detail"] == "no evaluation bias and RMSE to compare with"


def test_the_bias_shift_is_skipped_when_the_evaluation_was_exact_and_says_so(weeks):
    # GIVEN an evaluation whose every test prediction was exact (RMSE 0: no scale to measure a shift in) WHEN a holiday
    # window is judged THEN the check is skipped, with no division by zero, naming that cause (not a missing RMSE)
    sales, baseline = weeks
    shift = _check(_section(_window(sales, 81, holiday=True), {**baseline, "rmse": 0.0, "bias": 0.0}), "bias_shift")
    assert shift["status"] == "skipped" and shift["detail"] == (
        "the evaluation's RMSE is 0 (every test prediction exact): a shift has no scale to be measured in")


def test_the_reports_reading_says_the_predictions_are_systematically_off(weeks):
    from pipeline_code.monitoring import report as report_mod

    sales, baseline = weeks
    section = _section(_window(sales, 81, holiday=True), baseline)
    reading = report_mod.verdict({"status": "alert", "summary": {}, "errors": [], "sections": {"model_quality": section}})
    shift = _check(section, "bias_shift")
    assert (f"Predictions are systematically off: {shift['detail']}. RMSE and MAE compare a window whose targets moved "
            "with the evaluation in the target's units, so they do not judge it." in reading)
    ordinary = _section(_window(sales, 84), baseline)
    assert not any("systematically" in line
                   for line in report_mod.verdict({"status": "ok", "summary": {}, "errors": [],
                                                   "sections": {"model_quality": ordinary}}))
