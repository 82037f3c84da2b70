"""drift.data_quality's missing-rate check on simulated windows with a known truth: small windows of an intermittent
model do not fail on chance, a real rise still fails."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline_code.monitoring import drift

FEATURES = 20
CONSTRAINTS = {"features": {f"x{i}": {"kind": "numeric", "completeness": 0.9, "min": -10.0, "max": 10.0}
                            for i in range(FEATURES)}}


def _window(rng, rows: int, missing: float) -> pd.DataFrame:
    columns = {}
    for i in range(FEATURES):
        values = rng.normal(0.0, 1.0, rows)
        values[rng.random(rows) < missing] = np.nan
        columns[f"x{i}"] = values
    return pd.DataFrame(columns)


def test_a_small_window_whose_missing_rate_has_not_changed_rarely_fails_data_quality():
    # GIVEN 200 windows of 100 requests (an intermittent model's day) whose 20 inputs stay 10 % missing, as in training
    rng = np.random.default_rng(20261206)
    failed = [bool(drift.data_quality(_window(rng, 100, 0.10), CONSTRAINTS)["failed_features"]) for _ in range(200)]
    # THEN data quality fails on chance at most about monitoring.false_alarm_rate of them (72 % failed when a
    # missing rate over baseline + 0.05 failed however few requests measured it)
    assert sum(failed) / len(failed) <= 3 * drift.DEFAULT_FALSE_ALARM_RATE


def test_a_real_rise_of_missing_values_still_fails_on_a_small_window():
    section = drift.data_quality(_window(np.random.default_rng(3), 200, 0.25), CONSTRAINTS)
    assert len(section["failed_features"]) == FEATURES
    (row,) = [c for c in section["checks"] if c["check"] == "missing_rate" and c["feature"] == "x0"]
    assert row["status"] == "fail" and row["detail"].startswith("baseline 0.1000 + 0.05; p=")
    assert row["detail"].endswith("at the baseline's rate (fails under 0.0005: monitoring.false_alarm_rate shared "
                                  "among the features)")
