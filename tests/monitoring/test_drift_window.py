"""A drift window of several days (monitoring.drift_window_days): a weekly rhythm is not drift, a real shift still is.

The simulation uses the monitor's own rule - PSI on the baseline's bins (``psi_rows``), the calibrated threshold
(``calibration.threshold``) and the slow-drift CUSUM (``cumulative.update``) - on one feature whose weekend traffic
differs from its weekday traffic, 1,000 requests a day for 140 days, against a training baseline that holds both in
their weekly shares. Seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline_code.monitoring import calibration, cumulative
from pipeline_code.training.baseline import psi_rows
from tests.support.monitoring import run, write_window

DAYS, DAILY_REQUESTS, BASELINE_ROWS = 140, 1000, 20_000
ALPHA, MATERIAL = 0.01, 0.1  # the defaults: false_alarm_rate (one feature: one test) and psi_threshold
WEEKDAY = np.full(10, 0.1)
WEEKEND = np.array([0.02, 0.03, 0.04, 0.06, 0.08, 0.10, 0.13, 0.16, 0.18, 0.20]) / 1.0
WEEK = (5 * WEEKDAY + 2 * WEEKEND) / 7  # the training data's mix: every weekday in its share
# A real change: half the traffic moves to the low bins (PSI about 0.15 against the baseline, over the material 0.1).
SHIFTED = (WEEK + WEEKEND[::-1]) / 2


def _simulate(window_days: int, *, shift_day: int | None = None, seed: int = 7) -> dict:
    """Days (0-based) the window check alarmed and the CUSUM called slow drift, with windows of ``window_days``.
    Traffic starts a week before day 0, so every window is full."""
    rng = np.random.default_rng(seed)
    baseline = rng.multinomial(BASELINE_ROWS, WEEK).astype(float)
    daily = []
    for day in range(-7, DAYS):
        shares = WEEKEND if day % 7 in (5, 6) else WEEKDAY
        if shift_day is not None and day >= shift_day:
            shares = SHIFTED
        daily.append(rng.multinomial(DAILY_REQUESTS, shares))
    alarms, slow, section = [], [], None
    for day in range(DAYS):
        window = np.sum(daily[day + 7 - window_days + 1: day + 8], axis=0).astype(float)
        value = float(psi_rows(baseline[None], window[None])[0])
        score = value / calibration.threshold(baseline, int(window.sum()), value, alpha=ALPHA, material=MATERIAL).value
        section = cumulative.update(section, {"x": score}, "b1", window_days=window_days)
        if score >= 1:
            alarms.append(day)
        if section["drifted"]:
            slow.append(day)
    return {"alarms": alarms, "slow": slow}


def test_with_weekly_seasonality_and_no_change_a_week_long_window_raises_no_alarm_where_one_day_raised_many():
    """GIVEN weekend traffic that differs from weekday traffic, a baseline that holds both, no change at all
    WHEN each daily run judges the last day THEN every weekend alarms (40 days); WHEN it judges the last 7 days
    THEN no day alarms, and the slow-drift CUSUM over the overlapping windows stays quiet too."""
    one_day, week = _simulate(1), _simulate(7)
    assert len(one_day["alarms"]) == 40 and len(one_day["slow"]) > 40
    assert week == {"alarms": [], "slow": []}


def test_a_real_shift_is_still_detected_by_a_week_long_window_within_a_week():
    """GIVEN the same traffic, half of it moving to the low bins from day 100 on WHEN each run judges the last 7 days
    THEN the shift alarms 4 days later (5 of the window's 7 days shifted) and on every day after; the one-day
    window sees it at once but cannot be told from the weekends before it."""
    one_day, week = _simulate(1, shift_day=100), _simulate(7, shift_day=100)
    assert one_day["alarms"][0] < 100  # the weekends: the shift is lost among them
    assert week["alarms"] == list(range(104, DAYS))


def test_one_bad_day_in_overlapping_windows_does_not_add_up_to_slow_drift():
    """GIVEN 7-day windows judged daily and one bad day (each of the 7 windows that hold it scores at the threshold)
    between quiet days WHEN the CUSUM reads their scores THEN it does not call slow drift: the 7 overlapping windows
    count as one look, as one bad window of one-day runs would (whose sum they reach, 0.5)."""
    section = None
    for score in [0.2] * 10 + [1.0] * 7 + [0.2] * 3:
        section = cumulative.update(section, {"x": score}, "b1", window_days=7)
        assert not section["drifted"]
    single = cumulative.update(cumulative.update(None, {"x": 0.0}, "b1"), {"x": 1.0}, "b1")
    assert section["window_days"] == 7 and single["features"]["x"]["statistic"] == 0.5


def test_a_changed_drift_window_restarts_the_cumulative_detector():
    """GIVEN a state kept with one-day windows (reports of before the setting carry no window_days) WHEN a run judges
    7-day windows THEN the sums restart, saying why; the same window length carries them on."""
    before = cumulative.update(None, {"x": 1.0}, "b1")
    assert "window_days" not in before
    after = cumulative.update(before, {"x": 1.0}, "b1", window_days=7)
    assert after["reset"] == "the drift window changed since the earlier report: the cumulative detector restarts"
    assert "reset" not in cumulative.update(after, {"x": 1.0}, "b1", window_days=7)
    assert "reset" not in cumulative.update(before, {"x": 1.0}, "b1")


def test_the_monitor_weighs_its_cumulative_steps_by_the_days_its_window_spans(tmp_path, spec, reference):
    """GIVEN the same drifted window judged by a run with the default one-day window and one with ``--window-hours 168``
    WHEN each starts its cumulative detector THEN the week-long run's report says its window spans 7 days and its
    sums moved by a seventh of the one-day run's step."""
    window = write_window(tmp_path / "w", spec, reference["model"], seed=301, drift=1.0)
    day = run(spec, reference, window, str(tmp_path / "day" / "run"), extra=["--history-dir", str(tmp_path / "day")])
    week = run(spec, reference, window, str(tmp_path / "week" / "run"),
               extra=["--history-dir", str(tmp_path / "week"), "--window-hours", "168"])
    day_section, week_section = (r["sections"]["cumulative_drift"] for r in (day, week))
    assert "window_days" not in day_section and week_section["window_days"] == 7
    steps = {name: (entry["statistic"], week_section["features"][name]["statistic"])
             for name, entry in day_section["features"].items()}
    assert any(one > 0 for one, _ in steps.values())
    assert all(seven == pytest.approx(one / 7) for one, seven in steps.values())
