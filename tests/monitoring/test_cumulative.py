"""Slow drift: the CUSUM of drift scores across runs, its state read from the earlier reports."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline_code.monitoring import report as report_mod
from pipeline_code.monitoring import calibration, cumulative
from pipeline_code.training.baseline import psi
from tests.support.monitoring import run, write_window


def windows_until_drift(score: float, limit: int = 100) -> int | None:
    section = None
    for window in range(1, limit + 1):
        section = cumulative.update(section, {"x": score}, "b1")
        if section["drifted"]:
            return window
    return None


def test_a_persistent_shift_under_the_window_threshold_is_caught_within_a_stated_number_of_windows():
    # GIVEN a feature whose every window scores under 1 (no single window calls it drift)
    # THEN the cumulative detector does: at 90 % of the threshold in 5 windows, 75 % in 8, 60 % in 20
    assert windows_until_drift(0.9) == 5
    assert windows_until_drift(0.75) == 8
    assert windows_until_drift(0.6) == 20
    # AND a shift at or above the threshold counts as one at the threshold (the window check has called it): 4 windows
    assert windows_until_drift(1.0) == 4 and windows_until_drift(2.5) == 4 and windows_until_drift(50.0) == 4
    # AND scores under the allowance never add up
    assert windows_until_drift(0.5) is None and windows_until_drift(0.3) is None


def test_one_strongly_drifted_window_does_not_keep_calling_slow_drift_on_the_quiet_windows_after_it():
    # GIVEN a quiet feature, then one window far past its threshold (a bad batch), then quiet windows again
    section = None
    for score in (0.2, 0.2, 8.0):
        section = cumulative.update(section, {"x": score}, "b1")
    # THEN the spike adds what a window at the threshold adds, not its size
    assert section["features"]["x"]["statistic"] == pytest.approx(0.5) and section["cap"] == cumulative.CAP
    # AND two quiet windows drain it, with no slow-drift alarm at any point (uncapped, 7.5 would have called
    # slow drift for 18 quiet windows)
    after = cumulative.update(section, {"x": 0.2}, "b1")
    assert after["features"]["x"]["statistic"] == pytest.approx(0.2) and not after["drifted"]
    after = cumulative.update(after, {"x": 0.2}, "b1")
    assert after["features"]["x"]["statistic"] == 0.0 and not after["drifted"] and after["score"] == 0.0
    # AND windows just under the threshold after the spike still add up as before (0.9: 0.4 a window)
    for _ in range(4):
        after = cumulative.update(after, {"x": 0.9}, "b1")
    assert after["drifted"] == [] and after["features"]["x"]["statistic"] == pytest.approx(1.6)
    assert cumulative.update(after, {"x": 0.9}, "b1")["drifted"] == ["x"]


def test_sums_kept_under_another_rule_restart_and_a_nan_score_leaves_the_sum_as_it_was():
    # GIVEN an earlier report written before windows were capped (no "cap"), holding a sum of 7.5 from one spike
    old = {"baseline": "b1", "allowance": 0.5, "decision": 2.0,
           "features": {"x": {"statistic": 7.5, "windows": 3, "drifted": True}}, "drifted": ["x"], "score": 3.75}
    # THEN the detector restarts instead of calling slow drift on quiet windows for 18 more runs
    section = cumulative.update(old, {"x": 0.2}, "b1")
    assert "rule changed" in section["reset"] and section["features"]["x"]["statistic"] == 0.0 and not section["drifted"]
    # AND a window whose score is NaN counts as not scored: the sum carries forward
    section = cumulative.update(cumulative.update(section, {"x": 0.9}, "b1"), {"x": float("nan")}, "b1")
    assert section["features"]["x"] == {"statistic": pytest.approx(0.4), "windows": 2, "drifted": False}


def test_the_state_resets_when_the_baseline_changes_and_an_unscored_window_carries_it_forward():
    first = cumulative.update(None, {"x": 0.9, cumulative.PREDICTION: 0.2}, "b1")
    assert "no earlier report" in first["reset"] and first["features"]["x"]["statistic"] == pytest.approx(0.4)
    carried = cumulative.update(first, {"x": None, cumulative.PREDICTION: None}, "b1")
    assert carried["features"]["x"] == {"statistic": pytest.approx(0.4), "windows": 1, "drifted": False}
    assert "reset" not in carried
    # a new version serves: its baseline is the new training data, the sums start again
    renewed = cumulative.update(carried, {"x": 0.9, cumulative.PREDICTION: 0.2}, "b2")
    assert "baseline changed" in renewed["reset"] and renewed["features"]["x"]["statistic"] == pytest.approx(0.4)


def test_quiet_windows_of_a_twenty_feature_model_do_not_add_up_to_an_alarm():
    # GIVEN 150 runs of 100 requests each, every feature drawn from its baseline (no drift), calibrated scores
    baseline = [100_000.0] * 10
    alpha = 0.01 / 21
    rng = np.random.default_rng(17)
    section, alarms = None, 0
    for _ in range(150):
        counts = rng.multinomial(100, np.full(10, 0.1), size=20)
        scores = {}
        for i, c in enumerate(counts):
            value = psi(baseline, c)
            scores[f"x{i}"] = value / calibration.threshold(baseline, 100, value, alpha=alpha, material=0.1).value
        section = cumulative.update(section, scores, "b1")
        alarms += bool(section["drifted"])
    # THEN no run alarms: the noise of quiet windows drains below the allowance
    assert alarms == 0 and section["score"] < 0.5


def test_the_monitor_carries_its_state_from_report_to_report(tmp_path, spec, reference):
    history = tmp_path / "history"
    reports = []
    for day in range(3):
        window = write_window(tmp_path / f"w{day}", spec, reference["model"], seed=300 + day, drift=0.25)
        out = history / f"run-{day}"
        reports.append(run(spec, reference, window, str(out), extra=["--history-dir", str(history)]))
    sections = [r["sections"]["cumulative_drift"] for r in reports]
    # the first run starts the detector; the later ones read the previous report and count on
    assert "no earlier report" in sections[0]["reset"] and "reset" not in sections[2]
    assert [s["features"][cumulative.PREDICTION]["windows"] for s in sections] == [1, 2, 3]
    assert sections[2]["history"]["reports"] == 2
    assert all(r["healthy"] for r in reports)
    assert reports[2]["summary"]["cumulative_drift_score"] == pytest.approx(sections[2]["score"])
    # and the report's trend lists the earlier runs and this one
    assert len(reports[2]["trend"]["data_drift_score"]) == 3


@pytest.mark.parametrize("content, reason", [
    ("", "not a readable JSON report"),
    ("{not json", "not a readable JSON report"),
    ('{"format": "something/else"}', "not a monitor report"),
    ('[1, 2]', "not a monitor report"),
])
def test_a_corrupt_earlier_report_makes_the_window_unhealthy_with_the_reason_never_a_crash(tmp_path, spec, reference,
                                                                                           content, reason):
    history = tmp_path / "history"
    (history / "run-0").mkdir(parents=True)
    (history / "run-0" / "report.json").write_text(content)
    window = write_window(tmp_path / "w", spec, reference["model"], seed=310)
    report = run(spec, reference, window, str(tmp_path / "out"), extra=["--history-dir", str(history)])
    assert not report["healthy"]
    (error,) = [e for e in report["errors"] if e["kind"] == "history_invalid"]
    assert error["message"].startswith(f"run-0/report.json: {reason}") and "remove or repair the file" in error["message"]
    # AND only the slow-drift detector, which reads that history, is left out: today's drift is judged and published
    assert error["section"] == "cumulative_drift" and "cumulative_drift" not in report["sections"]
    assert report["trusted"] and "DataDriftMaxPsi" in {m["MetricName"] for m in report_mod.metric_data(report, "dev", "churn")}


def test_another_models_reports_in_a_shared_history_are_skipped(tmp_path, spec, reference):
    history = tmp_path / "history"
    window = write_window(tmp_path / "w", spec, reference["model"], seed=320)
    first = run(spec, reference, window, str(history / "run-0"), extra=["--history-dir", str(history)])
    other = dict(first, model="credit-risk")
    (history / "other").mkdir()
    (history / "other" / "report.json").write_text(json.dumps(other))
    second = run(spec, reference, window, str(tmp_path / "out"), extra=["--history-dir", str(history)])
    assert second["healthy"] and second["sections"]["cumulative_drift"]["history"] == {"reports": 1, "other_models_skipped": 1}


def test_a_report_of_another_baseline_restarts_the_detector(tmp_path, spec, reference):
    history = tmp_path / "history"
    window = write_window(tmp_path / "w", spec, reference["model"], seed=330)
    run(spec, reference, window, str(history / "run-0"), extra=["--history-dir", str(history)])
    moved = tmp_path / "baseline2"
    shutil.copytree(reference["baseline_dir"], moved)
    statistics = json.loads((moved / "statistics.json").read_text())
    statistics["features"][spec.features[0]]["mean"] = 123.0  # another training run's statistics
    (moved / "statistics.json").write_text(json.dumps(statistics))
    report = run(spec, reference, window, str(tmp_path / "out"), baseline_dir=str(moved), extra=["--history-dir", str(history)])
    assert report["healthy"] and "baseline changed" in report["sections"]["cumulative_drift"]["reset"]
