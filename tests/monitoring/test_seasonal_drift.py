"""A seasonal model's drift judgement (models.<name>.monitoring): quiet for a year without real change, still firing
for a real change of a judged input, and its labelled quality still judged.

A weekly demand model trained on two years (tests/support/seasonal.py: a yearly season, no growth, ``week_of_year``
among the features, 225 requests a week) is monitored on each week of the third. A week holds one week of the 52-week
cycle, so ``week_of_year`` drifts by construction (PSI about 8 in every week), the lagged sales and the forecasts follow
the season, and with the environment's settings alone the data-drift alarm fires every week. With the seasonal
settings - ``week_of_year`` exempt (reported, never judged), the lags given a threshold above their seasonal swing
(largest PSI 0.27 in the year: bench/seasonal_drift_bench.py), prediction drift reported only - no week fires, and
promotions on half the rows (the history's 15 %) still fire data drift.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List

import pandas as pd
import pytest

from mlops_loop.config.monitoring import ModelMonitoringConfig
from pipeline_code.monitoring import drift, monitor
from pipeline_code.monitoring import report as report_mod
from pipeline_code.training.model_io import predict
from tests.support import seasonal

LAG_PSI = 0.4
SEASONAL = ModelMonitoringConfig(feature_thresholds={"lag_units_1w": LAG_PSI, "lag_units_4w_avg": LAG_PSI},
                                 drift_exempt_features=("week_of_year",), prediction_drift="report_only")
ORDINARY_WEEK = 110  # a week of the third year whose forecasts drift most (PSI 0.80 at the defaults)
PROMOTIONS = seasonal.REAL_CHANGES["promotions on half the rows"]


@pytest.fixture(scope="module")
def demand(tmp_path_factory) -> Dict[str, Any]:
    sales = seasonal.world()
    return {"sales": sales, **seasonal.reference(tmp_path_factory.mktemp("seasonal"), sales)}


def _judged(demand: Dict[str, Any], frame: pd.DataFrame, settings: ModelMonitoringConfig) -> Dict[str, Any]:
    """The window's data and prediction drift as the monitor decides them under ``settings``."""
    statistics = demand["statistics"]
    data = drift.data_drift(frame, statistics, feature_thresholds=settings.feature_thresholds,
                            exempt=settings.drift_exempt_features)
    prediction = drift.prediction_drift(predict(demand["model"], frame), statistics, problem_type="regression",
                                        report_only=settings.prediction_drift == "report_only")
    return {"data": data, "prediction": prediction}


def _run(demand: Dict[str, Any], root: Path, frame: pd.DataFrame, extra: List[str]) -> Dict[str, Any]:
    """The monitor job on ``frame`` scored by the model (all of it labelled) with ``extra`` arguments."""
    window = seasonal.write_week(root, demand, frame)
    out = root / "out"
    code = monitor.main(["--model-spec", demand["spec"].to_json(), "--baseline-dir", demand["baseline_dir"],
                         "--model-dir", demand["model_dir"], "--capture-dir", window["capture"],
                         "--labels-dir", window["labels"], "--output-dir", str(out), "--shap-sample-rows", "200", *extra])
    assert code == 0
    with open(os.path.join(out, "report.json"), encoding="utf-8") as handle:
        return json.load(handle)


def test_with_the_environments_settings_alone_an_ordinary_week_fires_the_drift_alarms(demand, tmp_path):
    """The trial, reproduced: no real change, yet week_of_year (PSI about 8) and the forecasts start a retrain."""
    report = _run(demand, tmp_path, seasonal.week(demand["sales"], ORDINARY_WEEK), [])
    assert report["sections"]["data_drift"]["features"]["week_of_year"]["psi"] > 5
    assert "week_of_year" in report["summary"]["drifted_features"].split(", ")
    assert {"data-drift", "prediction-drift"} <= set(report_mod.retrain_alarms(report))


def test_the_seasonal_settings_keep_every_week_of_a_year_without_real_change_quiet(demand):
    loud = []
    for week in range(seasonal.TRAINING_WEEKS, seasonal.WEEKS):
        judged = _judged(demand, seasonal.week(demand["sales"], week), SEASONAL)
        data, prediction = judged["data"], judged["prediction"]
        # Reported, never judged: the calendar feature's PSI is there, its drift score is not.
        entry = data["features"]["week_of_year"]
        assert entry["exempt"] and entry["status"] == drift.EXEMPT and entry["psi"] > 5 and "drift_score" not in entry
        assert data["exempt_features"] == {"week_of_year": entry["psi"]}
        assert prediction["status"] == drift.EXEMPT and prediction["psi"] > 0 and "drift_score" not in prediction
        if data["drifted_features"] or data["drift_score"] >= 1:
            loud.append((week, data["drifted_features"], data["drift_score"]))
    assert loud == []


def test_a_real_change_of_a_judged_input_still_fires_in_every_week(demand):
    for week in range(seasonal.TRAINING_WEEKS, seasonal.WEEKS):
        data = _judged(demand, seasonal.week(demand["sales"], week, PROMOTIONS), SEASONAL)["data"]
        assert data["drifted_features"] == ["promo"] and data["drift_score"] >= 1, week


def test_the_monitor_job_with_the_seasonal_arguments_reports_the_exempt_drift_and_alarms_nothing(demand, tmp_path):
    report = _run(demand, tmp_path, seasonal.week(demand["sales"], ORDINARY_WEEK), SEASONAL.monitor_arguments())
    assert report_mod.retrain_alarms(report) == []
    summary, sections = report["summary"], report["sections"]
    assert summary["drifted_features"] in ("", None)
    assert summary["prediction_drift_score"] is None and summary["prediction_psi"] > 0.5  # reported, not published
    exempt = [c for c in report["checks"] if c["check"] == "feature_psi" and c.get("feature") == "week_of_year"]
    assert exempt[0]["status"] == drift.EXEMPT and exempt[0]["value"] > 5
    assert exempt[0]["detail"].startswith(drift.EXEMPT_FEATURE)
    prediction = next(c for c in report["checks"] if c["check"] == "prediction_psi")
    assert prediction["status"] == drift.EXEMPT and prediction["detail"].startswith(drift.REPORT_ONLY_PREDICTIONS)
    # Neither moves the slow-drift sums (a sum kept from before the exemption would carry its alarm forward).
    assert set(sections["cumulative_drift"]["features"]) == {
        name for name in sections["data_drift"]["features"] if name != "week_of_year"}
    assert report["thresholds"]["drift_exempt_features"] == ["week_of_year"]
    assert report["thresholds"]["feature_thresholds"] == {"lag_units_1w": LAG_PSI, "lag_units_4w_avg": LAG_PSI}
    reading = report_mod.verdict(report)
    psi = sections["data_drift"]["features"]["week_of_year"]["psi"]
    assert f"Exempt from drift, reported only (monitoring.drift_exempt_features): week_of_year (PSI {psi:.3f})." in reading
    assert (f"Predictions: PSI {sections['prediction_drift']['psi']:.3f}, reported only (monitoring.prediction_drift: "
            "report_only); labelled model quality judges them." in reading)
    # Published: the exempt feature's PSI (dashboards), no prediction drift score (its alarm sees no data).
    names = {(m["MetricName"], tuple(d["Value"] for d in m["Dimensions"])) for m in report_mod.metric_data(report, "dev", "demand")}
    assert ("FeaturePsi", ("dev", "demand", "week_of_year")) in names
    assert not any(name == "PredictionDriftScore" for name, _ in names)


def test_the_monitor_job_with_the_seasonal_arguments_fires_for_a_real_change(demand, tmp_path):
    report = _run(demand, tmp_path, seasonal.week(demand["sales"], ORDINARY_WEEK, PROMOTIONS), SEASONAL.monitor_arguments())
    assert report["summary"]["drifted_features"] == "promo"
    # (The labels are the unchanged world's, so the forecasts of the extra promotions are wrong too: quality fires.)
    assert "data-drift" in report_mod.retrain_alarms(report)


def test_labelled_quality_still_judges_a_seasonal_model_whose_world_changed(demand, tmp_path):
    """Demand doubles while every input stays as it was: no drift test can see it (the inputs, so the forecasts, are
    unchanged; prediction drift reported only loses nothing here), the labels do - the quality alarm fires."""
    frame = seasonal.week(demand["sales"], ORDINARY_WEEK)
    frame["units_sold"] = frame["units_sold"] * 2
    report = _run(demand, tmp_path, frame, SEASONAL.monitor_arguments())
    assert report["summary"]["drifted_features"] in ("", None)
    assert report_mod.retrain_alarms(report) == ["quality"]
