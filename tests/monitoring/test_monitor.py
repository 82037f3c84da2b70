"""Monitor behaviour on real generated traffic (GIVEN / WHEN / THEN)."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Dict

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws
from scipy import stats

from pipeline_code.core.contract import DEFAULT_PROJECT, monitor_namespace, record_error
from pipeline_code.core import integrity
from pipeline_code.monitoring import capture, drift, monitor
from pipeline_code.monitoring import report as report_mod
from pipeline_code.training.baseline import bin_counts
from tests.support.monitoring import check, run, write_window
from tests.support.credentials import moto_credentials

# Where the monitor publishes by default (no --metric-namespace): the default project's namespace of the
# model ("churn") in its environment ("dev").
NAMESPACE = monitor_namespace(DEFAULT_PROJECT, "dev", "churn")


# ---------------------------------------------------------------- statistics vs scipy
def test_ks_chi2_psi_match_scipy_and_hand_computation():
    # GIVEN two real samples
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 4000), rng.normal(0.1, 1.1, 3000)
    # WHEN / THEN: exact two-sample KS equals scipy's statistic; p-value close to the asymptotic one
    ours = drift.ks_two_sample(a, b)
    ref = stats.ks_2samp(a, b, method="asymp")
    assert ours["statistic"] == pytest.approx(ref.statistic, abs=1e-12)
    assert ours["p_value"] == pytest.approx(ref.pvalue, rel=0.05, abs=1e-6)
    # binned KS = ECDF difference at the cut points, a lower bound of D
    edges = np.quantile(a, np.linspace(0, 1, 11)[1:-1])
    binned = drift.ks_binned(bin_counts(a, edges), bin_counts(b, edges))
    at_edges = max(abs((a < e).mean() - (b < e).mean()) for e in edges)
    assert binned["statistic"] == pytest.approx(at_edges) and binned["statistic"] <= ref.statistic + 1e-12
    # chi-square homogeneity equals scipy chi2_contingency without correction
    base, win = [500, 300, 150, 50, 0], [240, 160, 60, 30, 10]
    ours_c = drift.chi_square_homogeneity(base, win)
    chi2, p, dof, _ = stats.chi2_contingency(np.array([base, win])[:, :], correction=False)
    assert ours_c["statistic"] == pytest.approx(chi2) and ours_c["p_value"] == pytest.approx(p, rel=1e-6) and ours_c["dof"] == dof
    # the Kolmogorov tail is SciPy's: right for every distance, also the tiny ones where a truncated
    # series (the hand-written one it replaced gave 0.11 at lambda 0.0024) reports drift on equal data
    for d, n in ((0.001, 5), (0.004, 20), (0.1, 50), (0.01, 50_000)):
        root = n ** 0.5
        assert drift.kolmogorov_sf(d, n) == pytest.approx(stats.kstwobign.sf((root + 0.12 + 0.11 / root) * d), rel=1e-9)
    assert drift.kolmogorov_sf(0.001, 5) == pytest.approx(1.0)
    # PSI by hand: sum (a-e) ln(a/e) on the fractions
    e_frac, a_frac = np.array(base) / sum(base), np.array(win) / sum(win)
    e_frac, a_frac = np.clip(e_frac, 1e-4, None), np.clip(a_frac, 1e-4, None)
    hand = float(np.sum((a_frac - e_frac) * np.log(a_frac / e_frac)))
    from pipeline_code.training.baseline import psi
    assert psi(base, win) == pytest.approx(hand)


# ---------------------------------------------------------------- drift scenarios
def test_same_distribution_window_is_quiet_and_healthy(tmp_path, spec, reference):
    # GIVEN traffic from the training distribution (another seed), labels for 60 % of it
    window = write_window(tmp_path / "w", spec, reference["model"], seed=200, label_coverage=0.6)
    # WHEN the monitor runs
    report = run(spec, reference, window, str(tmp_path / "out"))
    # THEN nothing drifts, quality holds, the monitor is healthy
    assert report["healthy"] and report["status"] == "ok", report["errors"]
    assert report["summary"]["drifted_feature_count"] == 0 and report["summary"]["data_drift_max_psi"] < 0.1
    assert report["summary"]["prediction_psi"] < 0.1
    assert report["summary"]["monitor_healthy"] == 1
    # partial label coverage: only the days whose labels arrived are scored
    mq = report["sections"]["model_quality"]
    assert mq["label_coverage"] == pytest.approx(0.6, abs=0.01)
    assert any(w["scored"] for w in mq["windows"]) and not all(w["scored"] for w in mq["windows"])
    assert mq["scored_rows"] < mq["labeled_rows"] + 1 and abs(report["summary"]["auc_drop"]) < 0.05
    assert report["summary"]["attribution_ndcg"] > 0.95


def test_data_drift_flags_the_shifted_features_and_predictions(tmp_path, spec, reference):
    # GIVEN a strongly drifted window (generator drift=0.8 raises prices and support calls)
    window = write_window(tmp_path / "w", spec, reference["model"], seed=201, drift=0.8)
    report = run(spec, reference, window, str(tmp_path / "out"))
    # THEN exactly the moved features are flagged, prediction drift too; still a healthy monitor
    drifted = set(report["sections"]["data_drift"]["drifted_features"])
    assert {"monthly_charges", "log_support_calls_90d"} <= drifted
    assert "region" not in drifted  # moved by only ~0.1 in share: PSI well below 0.2
    assert check(report, "feature_psi", "monthly_charges")["status"] == "fail"
    assert report["summary"]["prediction_psi"] > 0.2 and check(report, "prediction_psi")["status"] == "fail"
    assert report["status"] == "alert" and report["healthy"]


def test_per_feature_threshold_override(tmp_path, spec, reference):
    window = write_window(tmp_path / "w", spec, reference["model"], seed=202, drift=0.8)
    report = run(spec, reference, window, str(tmp_path / "out"), extra=["--feature-thresholds", json.dumps({"monthly_charges": 5.0})])
    assert "monthly_charges" not in report["sections"]["data_drift"]["drifted_features"]
    calibration = report["sections"]["data_drift"]["features"]["monthly_charges"]["calibration"]
    assert calibration["material_threshold"] == 5.0
    assert check(report, "feature_psi", "monthly_charges")["threshold"] == 5.0 + calibration["sampling_bias"]


def test_data_quality_unseen_categories_missing_spike_range_violations(tmp_path, spec, reference):
    def corrupt(frame):
        frame = frame.copy()
        n = len(frame)
        frame.loc[frame.index[: n // 5], "payment_method"] = "crypto"  # unseen category
        frame.loc[frame.index[n // 5 : n // 2], "tenure_months"] = pd.NA  # missing spike
        frame["monthly_charges"] = frame["monthly_charges"].astype(float)
        frame.loc[frame.index[-n // 10 :], "monthly_charges"] = 999.0  # outside training range
        return frame

    window = write_window(tmp_path / "w", spec, reference["model"], seed=203, mutate=corrupt)
    report = run(spec, reference, window, str(tmp_path / "out"))
    unseen = check(report, "unseen_category_rate", "payment_method")
    assert unseen["status"] == "fail" and "crypto" in unseen["detail"]
    assert check(report, "missing_rate", "tenure_months")["status"] == "fail"
    assert check(report, "range_violation_rate", "monthly_charges")["status"] == "fail"
    assert report["summary"]["missing_rate_max"] == pytest.approx(0.3, abs=0.01)
    assert report["healthy"]  # data problems are findings, not monitor failures


# ---------------------------------------------------------------- quality, bias, attribution
def test_concept_drift_lowers_auc_and_is_flagged(tmp_path, spec, reference):
    # GIVEN same inputs but a changed label relationship
    window = write_window(tmp_path / "w", spec, reference["model"], seed=204, concept_drift=1.0, label_coverage=1.0)
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert report["summary"]["drifted_feature_count"] == 0
    assert report["summary"]["auc_drop"] > 0.05 and check(report, "auc_drop")["status"] == "fail"


def test_too_few_labels_skips_quality_without_error(tmp_path, spec, reference):
    window = write_window(tmp_path / "w", spec, reference["model"], seed=205, label_coverage=0.05)
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert check(report, "auc_drop")["status"] == "skipped" and report["healthy"]


def _relabel(window, change) -> None:
    path = os.path.join(window["labels"], "labels.parquet")
    labels = pd.read_parquet(path)
    change(labels)
    labels.to_parquet(path, index=False)


def test_labels_none_of_which_this_model_takes_are_the_quality_sections_error_not_no_labels_yet(tmp_path, spec, reference):
    # GIVEN a label feed that writes yes/no where the binary model takes 0/1
    window = write_window(tmp_path / "w", spec, reference["model"], seed=206, label_coverage=1.0)
    _relabel(window, lambda labels: labels.__setitem__("label", np.where(labels["label"] == 1, "yes", "no")))
    report = run(spec, reference, window, str(tmp_path / "out"))
    # THEN model quality fails naming the values and what the model takes (it read as "no labelled traffic yet")
    (error,) = [e for e in report["errors"] if e.get("section") == "model_quality"]
    assert error["message"].endswith("is a label this model takes (e.g. 'no', 'yes'); it takes 0 or 1 (a boolean column too)")
    assert not report["healthy"] and report["trusted"]


def test_a_few_unusable_labels_are_left_out_and_counted(tmp_path, spec, reference):
    window = write_window(tmp_path / "w", spec, reference["model"], seed=207, label_coverage=1.0)

    def spoil(labels):
        labels["label"] = labels["label"].astype(int).astype(str)
        labels.loc[labels.index[:7], "label"] = "unknown"

    _relabel(window, spoil)
    report = run(spec, reference, window, str(tmp_path / "out"))
    section = report["sections"]["model_quality"]
    assert section["unusable_labels"] == {"rows": 7, "examples": ["unknown"]}
    assert check(report, "unusable_labels")["status"] == "warn" and report["healthy"]


def test_blank_labels_are_labels_not_known_yet_never_unusable_ones(tmp_path, spec, reference):
    window = write_window(tmp_path / "w", spec, reference["model"], seed=208, label_coverage=1.0)
    _relabel(window, lambda labels: labels.__setitem__("label", [""] * len(labels)))
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert report["healthy"] and "unusable_labels" not in report["sections"]["model_quality"]


def test_bias_drift_on_one_group(tmp_path, spec, reference):
    # GIVEN the female customers' traffic shifted to month-to-month contracts and many support calls
    def degrade(frame):
        frame = frame.copy()
        female = frame["gender"] == "female"
        frame.loc[female, "contract_type"] = "month-to-month"
        frame.loc[female, "log_support_calls_90d"] = np.log1p(6.0)
        return frame

    window = write_window(tmp_path / "w", spec, reference["model"], seed=206, mutate=degrade)
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert check(report, "demographic_parity_difference")["status"] == "fail"
    assert check(report, "group_positive_rate_change", "gender=female")["status"] == "fail"


def test_attribution_drift_against_a_different_baseline_ranking(tmp_path, spec, reference):
    # GIVEN a baseline whose attribution ranking is reversed
    base = tmp_path / "baseline"
    base.mkdir()
    for name in ("statistics", "constraints", "evaluation"):
        (base / f"{name}.json").write_text(open(os.path.join(reference["baseline_dir"], f"{name}.json")).read())
    attributions = json.loads(open(os.path.join(reference["baseline_dir"], "attributions.json")).read())
    values = sorted(v["mean_abs_shap"] for v in attributions["features"].values())
    for (name, entry), value in zip(sorted(attributions["features"].items(), key=lambda kv: -kv[1]["mean_abs_shap"]), values):
        entry["mean_abs_shap"] = value
    (base / "attributions.json").write_text(json.dumps(attributions))
    window = write_window(tmp_path / "w", spec, reference["model"], seed=207)
    report = run(spec, reference, window, str(tmp_path / "out"), baseline_dir=str(base))
    assert check(report, "attribution_ndcg")["status"] == "fail"
    assert report["summary"]["attribution_rank_correlation"] < 0


# ---------------------------------------------------------------- robustness
def test_malformed_lines_and_schema_change_are_reported_not_raised(tmp_path, spec, reference):
    window = write_window(tmp_path / "w", spec, reference["model"], seed=208, rows=600)
    path = os.path.join(window["capture"], "churn", "AllTraffic", "bad.jsonl")
    good = json.loads(open(os.path.join(window["capture"], "churn", "AllTraffic", "capture.jsonl")).readline())
    renamed = json.loads(good["captureData"]["endpointInput"]["data"])
    renamed["tenure_in_months"] = renamed.pop("tenure_months")
    good["captureData"]["endpointInput"]["data"] = json.dumps(renamed)
    with open(path, "w") as handle:
        handle.write("{not json\n")
        handle.write(json.dumps({"captureData": {"endpointInput": {"observedContentType": "text/csv", "data": "1,2", "encoding": "CSV"}}}) + "\n")
        handle.write(json.dumps(good) + "\n")
    report = run(spec, reference, window, str(tmp_path / "out"))
    # 2 malformed lines of 603 are within the default tolerance (1 %): counted and skipped, not an error
    assert [e["kind"] for e in report["errors"]] == ["schema_change"]
    assert report["summary"]["malformed_records"] == 2 and report["summary"]["monitor_healthy"] == 0
    reasons = report["sections"]["capture"]["malformed"]["reasons"]
    assert reasons == {"invalid_json": 1, "schema_csv_width": 1}
    schema = report["sections"]["capture"]["schema"]
    assert schema["unknown_keys"] == {"tenure_in_months": 1} and schema["missing_keys"] == {"tenure_months": 1}
    assert report["summary"]["records"] == 601  # the good records are still monitored


def test_one_truncated_capture_line_does_not_blind_the_monitor(tmp_path, spec, reference):
    """GIVEN a drifted window of 600 requests and one truncated capture line (a write cut short) WHEN monitored THEN
    the line is skipped and counted, the window is judged and its drift published (the retrain alarms fire); only a
    share of malformed lines above --max-malformed-rate (1 % by default, the config's
    monitoring.max_malformed_rate) distrusts the window."""
    window = write_window(tmp_path / "w", spec, reference["model"], seed=215, rows=600, drift=0.8)
    with open(os.path.join(window["capture"], "churn", "AllTraffic", "capture.jsonl"), "a") as handle:
        handle.write('{"captureData": {"endpointInput": {"observedContentType": "application/js\n')
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert (report["healthy"], report["trusted"], report["errors"]) == (True, True, [])
    published = {m["MetricName"]: m["Value"] for m in report_mod.metric_data(report, "dev", "churn")}
    assert published["MalformedRecords"] == 1 and published["CapturedRecords"] == 600
    assert "DataDriftMaxPsi" in published and "data-drift" in report_mod.retrain_alarms(report)
    strict = run(spec, reference, window, str(tmp_path / "strict"), extra=["--max-malformed-rate", "0"])
    assert [e["kind"] for e in strict["errors"]] == ["malformed_records"] and not strict["trusted"]
    assert report_mod.retrain_alarms(strict) == []


def test_a_window_too_small_to_judge_is_never_called_stable(tmp_path, spec, reference):
    """GIVEN 60 requests, fewer than the 100 (min_rows) a feature's PSI needs WHEN monitored THEN no drifted-feature
    count is published (0 would read as "stable") and the verdict says drift was not judged."""
    window = write_window(tmp_path / "w", spec, reference["model"], seed=216, rows=60)
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert report["summary"]["drifted_feature_count"] is None
    assert "DriftedFeatureCount" not in {m["MetricName"] for m in report_mod.metric_data(report, "dev", "churn")}
    assert ("Drift was not judged: no feature had the 100 values in the window a PSI needs (min_rows; 60 records); a "
            "window like this is reported, never called stable.") in report_mod.verdict(report)


def test_a_quiet_window_is_quiet_not_broken(tmp_path, spec, reference):
    """GIVEN a window without any traffic (an intermittent model's quiet day) WHEN monitored
    THEN the report is healthy and says quiet: nothing to compare, nobody paged."""
    (tmp_path / "empty").mkdir()
    report = run(spec, reference, {"capture": str(tmp_path / "empty")}, str(tmp_path / "out"))
    assert (report["status"], report["healthy"], report["errors"]) == ("quiet", True, [])
    assert report["summary"]["monitor_healthy"] == 1 and report["summary"].get("data_drift_max_psi") is None


def test_too_little_traffic_is_unhealthy_when_the_model_expects_traffic(tmp_path, spec, reference):
    (tmp_path / "empty").mkdir()
    report = run(spec, reference, {"capture": str(tmp_path / "empty")}, str(tmp_path / "out"), extra=["--min-requests", "50"])
    (error,) = report["errors"]
    assert error["kind"] == "traffic_below_expected" and report["status"] == "unhealthy"
    assert error["message"].startswith("0 requests in the window, fewer than the 50 the model expects (min_daily_requests)")
    window = write_window(tmp_path / "some", spec, reference["model"], rows=30)
    report = run(spec, reference, window, str(tmp_path / "out2"), extra=["--min-requests", "50"])
    assert [e["kind"] for e in report["errors"]] == ["traffic_below_expected"]


def test_capture_lines_none_of_which_decode_and_a_missing_baseline_are_unhealthy(tmp_path, spec, reference):
    capture = tmp_path / "broken" / "AllTraffic" / "2026" / "12" / "02" / "08"
    capture.mkdir(parents=True)
    (capture / "x.jsonl").write_text("not json\n{\"captureData\": 1}\n")
    report = run(spec, reference, {"capture": str(tmp_path / "broken")}, str(tmp_path / "out"), baseline_dir=str(tmp_path / "nope"))
    kinds = {e["kind"] for e in report["errors"]}
    assert {"empty_window", "baseline_missing"} <= kinds
    assert report["status"] == "unhealthy" and report["summary"]["monitoring_errors"] >= 2
    assert os.path.exists(tmp_path / "out" / "report.html")


@pytest.mark.parametrize("edit, problem", [
    (lambda statistics: {}, "is empty or not a JSON object"),
    (lambda statistics: {**statistics, "features": {}}, "has no features"),
    (lambda statistics: {**statistics, "model": "fraud"}, "was written for model 'fraud', not 'churn'"),
])
def test_an_empty_or_another_models_baseline_is_unhealthy_never_a_silent_pass(tmp_path, spec, reference, edit, problem):
    # GIVEN a drifted window and a baseline whose statistics are empty, featureless or another model's
    window = write_window(tmp_path / "w", spec, reference["model"], seed=211, rows=400, drift=0.8)
    baseline = tmp_path / "baseline"
    shutil.copytree(reference["baseline_dir"], baseline)
    statistics = json.loads((baseline / "statistics.json").read_text())
    (baseline / "statistics.json").write_text(json.dumps(edit(statistics)))
    # WHEN monitored
    report = run(spec, reference, window, str(tmp_path / "out"), baseline_dir=str(baseline))
    # THEN the monitor is unhealthy and says which document and why, and no drift was judged against it
    (error,) = [e for e in report["errors"] if e["kind"] == "baseline_invalid"]
    assert error["message"] == f"statistics.json in {str(baseline)!r} {problem}; re-run the model's baseline step"
    assert report["status"] == "unhealthy" and "data_drift" not in report["sections"]


def test_an_unhealthy_report_publishes_its_health_only(tmp_path, spec, reference):
    """GIVEN a drifted window with a schema change (unhealthy) WHEN its metrics are built THEN drift and quality are
    withheld - the retrain alarms see no data - while the health metrics still page people."""
    window = write_window(tmp_path / "w", spec, reference["model"], seed=212, rows=600, drift=0.8)
    healthy = run(spec, reference, window, str(tmp_path / "healthy"))
    path = os.path.join(window["capture"], "churn", "AllTraffic", "bad.jsonl")
    with open(path, "w") as handle:
        handle.write("{not json\n" * 50)
    unhealthy = run(spec, reference, window, str(tmp_path / "unhealthy"))
    assert healthy["healthy"] and not unhealthy["healthy"]
    assert unhealthy["summary"]["data_drift_max_psi"] is not None  # still computed and reported...
    names = {m["MetricName"] for m in report_mod.metric_data(unhealthy, "dev", "churn")}
    assert names == {"CapturedRecords", "MalformedRecords", "RefusedRecords", "MonitoringErrors", "MonitorHealthy"}  # ...but not published
    assert unhealthy["summary"]["metrics_withheld"].startswith("drift and quality metrics are not published")
    assert {"DataDriftMaxPsi", "PredictionPsi", "FeaturePsi"} <= {m["MetricName"] for m in report_mod.metric_data(healthy, "dev", "churn")}


def test_invalid_arguments_exit_non_zero(tmp_path, spec):
    with pytest.raises(SystemExit) as exc:
        monitor.main(["--model-spec", spec.to_json(), "--psi-threshold", "-1", "--output-dir", str(tmp_path)])
    assert exc.value.code == 2


def test_csv_and_batch_transform_inputs(tmp_path, spec, reference):
    window = write_window(tmp_path / "w", spec, reference["model"], seed=209, rows=300, content_type="text/csv")
    batch = tmp_path / "w" / "capture" / "batch"
    batch.mkdir()
    (batch / "part-0.csv").write_text("12,50.0,600.0,50.0,0.69,month-to-month,card,north\n3,20,60,20,0,one-year,,south\n")
    (batch / "part-0.csv.out").write_text("0.7\n0.1\n")
    w = capture.read_capture(window["capture"], spec.features, categorical=["contract_type", "payment_method", "region", "gender"],
                             extra_columns=["gender"])
    assert w.records == 302 and w.malformed == 0 and w.files == {"data_capture": 1, "batch_input": 1}
    assert w.frame[capture.SCORE].notna().all() and w.frame["gender"].isna().all()
    assert w.frame["tenure_months"].dtype == np.float64


def _batch_with_refused_records(root: Path, refused: Dict[str, int]) -> None:
    """A batch input file of two scored CSV records and, after them, one record per refusal that serving answered
    with its error line (core.contract.record_error: the shape the serving code writes), in X.out line for line."""
    batch = root / "capture" / "batch"
    batch.mkdir()
    inputs = ["12,50.0,600.0,50.0,0.69,month-to-month,card,north", "3,20,60,20,0,one-year,,south"]
    outputs = ["0.7", "0.1"]
    for name, count in refused.items():
        for _ in range(count):
            inputs.append("1_0,50.0,600.0,50.0,0.69,month-to-month,card,north")
            outputs.append(json.dumps(record_error(f"record 0 (line 1): field {name!r}: expected a number",
                                                   [name] if name != "(record)" else [])))
    (batch / "part-0.csv").write_text("\n".join(inputs) + "\n")
    (batch / "part-0.csv.out").write_text("\n".join(outputs) + "\n")


def test_batch_records_serving_refused_are_counted_per_field_and_distrust_the_window_above_the_limit(tmp_path, spec,
                                                                                                    reference):
    """GIVEN a window of 600 requests and a batch output holding error lines (records serving refused) WHEN monitored
    THEN an error line is never read as a prediction: it is refused (not malformed) and counted per field, the rest is
    judged; within --max-refused-rate (their own limit, not the malformed lines') the window stays trusted, above it the
    window is unhealthy, naming the limit and the fields."""
    few = write_window(tmp_path / "few", spec, reference["model"], seed=216, rows=600, content_type="text/csv")
    _batch_with_refused_records(tmp_path / "few", {"tenure_months": 2})
    report = run(spec, reference, few, str(tmp_path / "few-out"))
    refused = report["sections"]["capture"]["refused"]
    assert (report["healthy"], report["trusted"], report["errors"]) == (True, True, [])
    assert refused["count"] == 2 and refused["fields"] == {"tenure_months": 2}
    assert report["sections"]["capture"]["malformed"]["reasons"] == {}
    assert report["summary"]["records"] == 602
    assert (report["summary"]["malformed_records"], report["summary"]["refused_records"]) == (0, 2)

    many = write_window(tmp_path / "many", spec, reference["model"], seed=216, rows=600, content_type="text/csv")
    _batch_with_refused_records(tmp_path / "many", {"tenure_months": 30, "region": 12, "(record)": 3})
    report = run(spec, reference, many, str(tmp_path / "many-out"))
    assert not report["trusted"] and report["summary"]["records"] == 602
    (error,) = report["errors"]
    assert (error["kind"], error["message"]) == (
        "refused_records", "45 of 647 capture lines (7 %) are requests serving refused, over the limit of 5 % "
        "(monitoring.max_refused_rate); per field: tenure_months=30, region=12, (record)=3")


def _live_refusals(root: Path, refused: Dict[str, int]) -> None:
    """A data-capture file of requests serving refused (400), one per refusal: the request as sent (a field that is not
    a number) and the answer the serving hooks give a refused request on an endpoint (``serve_entry.transform_fn``:
    the message as ``text/plain``, which SageMaker's capture stores BASE64-encoded, its content type not a captured
    one)."""
    lines = []
    for index, (name, count) in enumerate((n, c) for n, c in refused.items() for _ in range(c)):
        message = f"record 0: field {name!r}: expected a number, got 'n/a'" if name != "(record)" else \
            "record 0: not a JSON object of fields"
        request = {"tenure_months": "n/a", "monthly_charges": 50.0, "total_charges": 600.0, "contract_type": "one-year",
                   "payment_method": "card", "region": "north"}
        lines.append(json.dumps({"captureData": {
            "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": json.dumps(request),
                              "encoding": "JSON"},
            "endpointOutput": {"observedContentType": "text/plain", "mode": "OUTPUT",
                               "data": base64.b64encode(message.encode()).decode(), "encoding": "BASE64"}},
            "eventMetadata": {"eventId": f"refused-{index}", "inferenceTime": "2026-05-01T10:00:00Z"}, "eventVersion": "0"}))
    (root / "capture" / "refused.jsonl").write_text("\n".join(lines) + "\n")


def test_live_requests_serving_refused_are_counted_per_field_and_distrust_the_window_above_the_limit(tmp_path, spec,
                                                                                                   reference):
    """GIVEN a window of 600 captured requests and captured requests serving refused (400, its text/plain answer)
    WHEN monitored THEN each is counted refused (not malformed), per field named in the answer, like a
    batch record's error line; a window where 30 % of the requests were refused is distrusted, saying so."""
    few = write_window(tmp_path / "few", spec, reference["model"], seed=217, rows=600)
    _live_refusals(tmp_path / "few", {"tenure_months": 2})
    report = run(spec, reference, few, str(tmp_path / "few-out"))
    refused = report["sections"]["capture"]["refused"]
    assert (report["healthy"], report["trusted"], report["errors"]) == (True, True, [])
    assert refused["count"] == 2 and refused["fields"] == {"tenure_months": 2}
    assert (report["summary"]["malformed_records"], report["summary"]["refused_records"]) == (0, 2)

    many = write_window(tmp_path / "many", spec, reference["model"], seed=217, rows=600)
    _live_refusals(tmp_path / "many", {"tenure_months": 200, "region": 57, "(record)": 1})
    report = run(spec, reference, many, str(tmp_path / "many-out"))
    assert not report["trusted"] and report["summary"]["refused_records"] == 258
    (error,) = report["errors"]
    assert (error["kind"], error["message"]) == (
        "refused_records", "258 of 858 capture lines (30.1 %) are requests serving refused, over the limit of 5 % "
        "(monitoring.max_refused_rate); per field: tenure_months=200, region=57, (record)=1")


def test_refused_requests_have_their_own_limit_and_malformed_capture_lines_keep_theirs(tmp_path, spec, reference):
    """GIVEN 600 captured requests and a client whose 8 requests serving refused (1.3 %: over the 1 % of malformed
    capture lines, under max_refused_rate) WHEN monitored THEN the window is judged: refusals are the client's, not a
    broken capture. 8 lines that do not decode still distrust it, naming max_malformed_rate; refusals over
    --max-refused-rate distrust it, naming that limit."""
    window = write_window(tmp_path / "w", spec, reference["model"], seed=218, rows=600)
    _live_refusals(tmp_path / "w", {"tenure_months": 8})
    report = run(spec, reference, window, str(tmp_path / "refused"))
    assert (report["healthy"], report["trusted"], report["errors"]) == (True, True, [])
    refused = report["sections"]["capture"]["refused"]
    assert (refused["count"], refused["rate"], refused["fields"]) == (8, 8 / 608, {"tenure_months": 8})

    report = run(spec, reference, window, str(tmp_path / "strict"), extra=["--max-refused-rate", "0.01"])
    assert not report["trusted"]
    (error,) = report["errors"]
    assert (error["kind"], error["message"]) == (
        "refused_records", "8 of 608 capture lines (1.3 %) are requests serving refused, over the limit of 1 % "
        "(monitoring.max_refused_rate); per field: tenure_months=8")

    with open(os.path.join(window["capture"], "churn", "AllTraffic", "bad.jsonl"), "w") as handle:
        handle.write("{not json\n" * 8)
    report = run(spec, reference, window, str(tmp_path / "broken"))
    assert not report["trusted"]
    (error,) = report["errors"]
    assert (error["kind"], error["message"]) == (
        "malformed_records", "8 of 616 capture lines (1.3 %) malformed (invalid_json=8), over the limit of 1 % "
        "(monitoring.max_malformed_rate)")

def test_malformed_counts_only_lines_that_do_not_decode_and_refusals_are_counted_on_their_own(tmp_path, spec,
                                                                                               reference):
    """GIVEN 600 captured requests, 3 requests serving refused and 2 capture lines that do not decode WHEN monitored
    THEN the report's malformed section, its malformed_records and the MalformedRecords metric count the 2 broken lines
    only (before: 5, the refusals included, beside a refused section that counted them again), the refusals are in
    refused (count, rate, fields, samples), refused_records and the RefusedRecords metric; the verdict is unchanged
    (both within their limits: trusted)."""
    window = write_window(tmp_path / "w", spec, reference["model"], seed=218, rows=600)
    _live_refusals(tmp_path / "w", {"tenure_months": 2, "(record)": 1})
    with open(os.path.join(window["capture"], "churn", "AllTraffic", "bad.jsonl"), "w") as handle:
        handle.write("{not json\n" * 2)
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert (report["healthy"], report["trusted"], report["errors"]) == (True, True, [])
    capture_section = report["sections"]["capture"]
    malformed, refused = capture_section["malformed"], capture_section["refused"]
    assert (malformed["count"], malformed["rate"], malformed["reasons"]) == (2, 2 / 605, {"invalid_json": 2})
    assert [x["reason"].split(":")[0] for x in malformed["samples"]] == ["invalid_json"] * 2
    assert "refused_fields" not in malformed
    assert (refused["count"], refused["rate"], refused["fields"]) == (3, 3 / 605, {"tenure_months": 2, "(record)": 1})
    assert [x["reason"].split(":")[0] for x in refused["samples"]] == ["refused_record"] * 3
    assert (report["summary"]["malformed_records"], report["summary"]["refused_records"]) == (2, 3)
    published = {m["MetricName"]: m["Value"] for m in report_mod.metric_data(report, "dev", "churn")}
    assert (published["MalformedRecords"], published["RefusedRecords"], published["CapturedRecords"]) == (2, 3, 600)


# ---------------------------------------------------------------- CloudWatch + HTML
def test_publish_metrics_to_cloudwatch_moto(tmp_path, spec, reference, monkeypatch):
    moto_credentials(monkeypatch)
    window = write_window(tmp_path / "w", spec, reference["model"], seed=210, drift=0.8)
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="eu-west-1")
        args = ["--publish-metrics", "--region", "eu-west-1"]
        from tests.support.monitoring import monitor_args
        assert monitor.main(monitor_args(spec, reference, window["capture"], str(tmp_path / "out"), extra=args), cloudwatch_client=client) == 0
        listed = client.list_metrics(Namespace=NAMESPACE)["Metrics"]
        names = {m["MetricName"] for m in listed}
        assert {"DataDriftMaxPsi", "DriftedFeatureCount", "PredictionPsi", "MonitorHealthy", "MonitoringErrors", "FeaturePsi"} <= names
        feature_dims = [m["Dimensions"] for m in listed if m["MetricName"] == "FeaturePsi"]
        assert {"Name": "Feature", "Value": "monthly_charges"} in feature_dims[0] or any(
            {"Name": "Feature", "Value": "monthly_charges"} in d for d in feature_dims)
        import datetime as dt
        now = dt.datetime.now(dt.timezone.utc)
        data = client.get_metric_data(
            MetricDataQueries=[{"Id": "d", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": "DriftedFeatureCount",
                                 "Dimensions": [{"Name": "Environment", "Value": "dev"}, {"Name": "Model", "Value": "churn"}]},
                                 "Period": 60, "Stat": "Maximum"}}],
            StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(hours=1))
        assert data["MetricDataResults"][0]["Values"] and data["MetricDataResults"][0]["Values"][0] >= 2


def test_html_report_contains_headline_checks(tmp_path, spec, reference):
    window = write_window(tmp_path / "w", spec, reference["model"], seed=211, drift=0.8)
    run(spec, reference, window, str(tmp_path / "out"))
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<!DOCTYPE html>" in page and "feature_psi" in page and "prediction_psi" in page and "ALERT" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_type_violations_in_json_requests(tmp_path, spec, reference):
    # GIVEN requests whose numeric features hold text / booleans
    window = write_window(tmp_path / "w", spec, reference["model"], seed=212, rows=400)
    path = os.path.join(window["capture"], "churn", "AllTraffic", "capture.jsonl")
    lines = open(path).read().splitlines()
    for i in range(40):
        event = json.loads(lines[i])
        body = json.loads(event["captureData"]["endpointInput"]["data"])
        body["monthly_charges"] = "abc" if i % 2 else True
        event["captureData"]["endpointInput"]["data"] = json.dumps(body)
        lines[i] = json.dumps(event)
    open(path, "w").write("\n".join(lines) + "\n")
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert report["sections"]["capture"]["type_violations"] == {"monthly_charges": 40}
    tv = check(report, "type_violation_rate", "monthly_charges")
    assert tv["status"] == "fail" and tv["value"] == pytest.approx(40 / 400)


def test_the_report_states_which_auc_drop_its_labels_can_detect(tmp_path, spec, reference):
    few = write_window(tmp_path / "few", spec, reference["model"], seed=231, rows=400, label_coverage=1.0)
    many = write_window(tmp_path / "many", spec, reference["model"], seed=232, rows=6000, label_coverage=1.0)
    small, large = (run(spec, reference, w, str(tmp_path / f"out-{i}"), extra=["--min-labeled-rows", "50"])
                    for i, w in enumerate((few, many)))
    # 400 labelled rows cannot vouch for a 0.05 limit (warn, with the reason), 6000 can
    power = check(small, "auc_drop_power")
    assert power["status"] == "warn" and power["value"] > 0.05 and "label more traffic" in power["detail"]
    assert check(large, "auc_drop_power")["status"] == "pass"
    assert large["sections"]["model_quality"]["detectable_auc_drop"] < small["sections"]["model_quality"]["detectable_auc_drop"]


def test_the_model_digest_of_a_directory_holding_only_the_archive_is_the_digest_of_its_files(tmp_path):
    # GIVEN a model's two files, and a directory holding only their model.tar.gz (a Processing input of model data)
    import tarfile

    files = tmp_path / "files"
    files.mkdir()
    (files / integrity.MODEL_FILE).write_bytes(b'{"learner": 1}')
    (files / integrity.METADATA_FILE).write_bytes(b'{"model": "churn"}')
    (files / "code.py").write_text("# serving code travels in the archive too")
    packed = tmp_path / "packed"
    packed.mkdir()
    with tarfile.open(packed / integrity.MODEL_ARCHIVE, "w:gz") as tar:
        for name in ("code.py", integrity.METADATA_FILE, integrity.MODEL_FILE):
            tar.add(files / name, arcname=f"./{name}")
    # THEN both forms have the digest serving reports for the extracted files
    assert monitor._serving_digest(str(packed)) == monitor._serving_digest(str(files)) == integrity.model_digest(str(files))
    assert integrity.model_digest(str(packed)) is None  # the files-only digest does not look inside archives
    # AND an archive without both files has none
    with tarfile.open(packed / integrity.MODEL_ARCHIVE, "w:gz") as tar:
        tar.add(files / integrity.MODEL_FILE, arcname=integrity.MODEL_FILE)
    assert monitor._serving_digest(str(packed)) is None


def test_a_feature_no_request_gives_a_value_makes_the_window_unhealthy_naming_it(tmp_path, spec, reference):
    """GIVEN raw requests from callers that renamed a nullable field upstream (``support_calls_90d`` sent as
    ``calls_last_quarter``: an unknown key serving ignores, so every request is scored with the feature missing) WHEN
    monitored THEN the window is unhealthy, naming the feature, the field it reads and the fix, and its drift is not
    published (no retrain on a broken integration): its PSI alone is skipped (no values), so it never looked drifted."""
    from pipeline_code.sample_data.generate import generate

    raw = generate(spec.catalog_dataset, 600, seed=209, start="2026-05-01", days=7)
    raw = raw.rename(columns={"support_calls_90d": "calls_last_quarter"})
    window = write_window(tmp_path / "w", spec, reference["model"], seed=209, rows=600)
    path = os.path.join(window["capture"], "churn", "AllTraffic", "capture.jsonl")
    lines = [json.loads(line) for line in open(path)]
    with open(path, "w") as handle:
        for line, (_, record) in zip(lines, raw.iterrows()):
            fields = {k: (None if pd.isna(v) else v) for k, v in record.items() if k not in ("churned", "customer_id")}
            line["captureData"]["endpointInput"]["data"] = json.dumps(fields, default=str)
            handle.write(json.dumps(line) + "\n")
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert check(report, "missing_rate", "log_support_calls_90d")["value"] == 1.0
    assert [e["kind"] for e in report["errors"]] == ["feature_without_values"]
    had = reference["docs"]["constraints"]["features"]["log_support_calls_90d"]["completeness"]
    assert report["errors"][0]["message"] == (
        f"feature 'log_support_calls_90d' has a value in none of the window's 600 requests, while {had:.1%} of the "
        "baseline's rows had one: every request was scored as if it were missing. Its raw field(s) ['support_calls_90d'] "
        "are no longer sent as declared (serving ignores a field it does not know, such as a renamed one, and scores the "
        "declared one as missing) or the callers' feature computation broke: fix the callers (docs/invocation-contract.md); "
        "this window's drift and quality are not published, so no retrain starts on it")
    assert report["summary"]["monitor_healthy"] == 0 and not report["trusted"]


def test_while_a_version_trained_before_a_features_expression_changed_serves_raw_requests_are_read_as_it_read_them(
        tmp_path, spec, reference):
    """GIVEN a deployed config that changed a computed feature's expression while the version trained with the old
    one still serves (its pipeline run not approved yet), and callers sending raw fields WHEN the monitor judges the
    window against that version's baselines THEN it computes the feature as serving did (the version's own
    declaration), so an unchanged traffic shows no drift on it - not the gap between two expressions as drift."""
    import copy

    from pipeline_code.catalog import format_expression
    from pipeline_code.sample_data.generate import generate
    from pipeline_code.training.spec import parse_model_spec
    from mlops_cli.local import replay
    from pipeline_code.serving.records import FeatureContract
    from pipeline_code.training.train import predict

    dataset = spec.catalog_dataset
    computed = next(f for f in spec.features
                    if dataset.feature(f).feature_type == "Fractional" and f not in dataset.column_names
                    and len(dataset.feature(f).expr.source_columns()) == 1)
    source = dataset.feature(computed).expr.source_columns()[0]
    # The same window of raw records the version answered, captured with their raw fields.
    raw = generate(dataset, 3000, seed=202, start="2026-05-01", days=7)
    frame = replay.traffic(spec, 3000, seed=202, start="2026-05-01", days=7)
    scores = predict(reference["model"], frame)
    columns = FeatureContract.create(dataset, spec.features).source_columns(spec.frame_features)  # what serving reads
    lines = []
    for line, record in zip(replay.capture_lines(spec, frame, scores), raw[columns].astype(object).to_dict("records")):
        event = json.loads(line)
        event["captureData"]["endpointInput"]["data"] = json.dumps(
            {k: (None if v is None or v != v else (v.isoformat() if hasattr(v, "isoformat") else v)) for k, v in record.items()})
        lines.append(json.dumps(event))
    capture = tmp_path / "capture" / spec.name / replay.VARIANT / "capture.jsonl"
    capture.parent.mkdir(parents=True)
    capture.write_text("\n".join(lines) + "\n")
    # The config as deployed now: the feature computed by another expression (its source squared first).
    document = copy.deepcopy(json.loads(spec.to_json()))
    squared = format_expression(dataset.feature(computed).expr).replace(source, f"product({source}, {source})")
    for feature in document["dataset"]["features"]:
        if feature["name"] == computed:
            feature["expr"] = squared
    changed = parse_model_spec(document)
    window = {"capture": str(tmp_path / "capture")}
    before = run(spec, reference, window, str(tmp_path / "as-trained"))
    after = run(changed, reference, window, str(tmp_path / "config-changed"))
    assert check(before, "feature_psi", computed)["status"] == "pass", "precondition: no drift in this traffic"
    assert check(after, "feature_psi", computed)["value"] == check(before, "feature_psi", computed)["value"]
    assert check(after, "feature_psi", computed)["status"] == "pass"


@pytest.mark.parametrize("records, errors", [(120, 0), (200, 1)])
def test_a_sparse_feature_without_a_value_in_a_window_is_an_error_only_beyond_the_shared_false_alarm_budget(spec, records,
                                                                                                          errors):
    """GIVEN a feature that training had in only 5 % of its rows, among 20 inputs, and a window none of whose requests
    gave it THEN the window is unhealthy only when that is improbable under monitoring.false_alarm_rate shared among
    the features (0.01 / 20), as the data-quality checks share it: 120 requests hold none by chance in
    0.95 ** 120 = 0.2 % of unchanged windows (an unhealthy window pages and withholds its drift), 200 in 0.004 %."""
    sparse = "log_support_calls_90d"
    names = [sparse] + [f"x{i}" for i in range(19)]
    constraints = {"features": {name: {"kind": "numeric", "min": -100.0, "max": 100.0,
                                       "completeness": 0.05 if name == sparse else 1.0} for name in names}}
    frame = pd.DataFrame({name: np.zeros(records) for name in names}).assign(**{sparse: np.nan})
    section = drift.data_quality(frame, constraints)
    found = monitor.features_without_values(section, spec.catalog_dataset, [sparse], records, min_rows=100)
    assert len(found) == errors


def test_a_feature_key_renamed_in_requests_that_send_the_features_is_named_as_that_key_not_as_raw_fields(
        tmp_path, spec, reference):
    """GIVEN callers that send the model's features themselves and renamed one key (``log_support_calls_90d`` sent as
    ``log_calls``) WHEN monitored THEN the error names the key they dropped, not the raw field ``support_calls_90d``
    they never send."""
    window = write_window(tmp_path / "w", spec, reference["model"], seed=209, rows=600)
    path = os.path.join(window["capture"], "churn", "AllTraffic", "capture.jsonl")
    lines = [json.loads(line) for line in open(path)]
    with open(path, "w") as handle:
        for line in lines:
            record = json.loads(line["captureData"]["endpointInput"]["data"])
            record["log_calls"] = record.pop("log_support_calls_90d")
            line["captureData"]["endpointInput"]["data"] = json.dumps(record)
            handle.write(json.dumps(line) + "\n")
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert [e["kind"] for e in report["errors"]] == ["schema_change", "feature_without_values"]
    had = reference["docs"]["constraints"]["features"]["log_support_calls_90d"]["completeness"]
    assert report["errors"][1]["message"] == (
        f"feature 'log_support_calls_90d' has a value in none of the window's 600 requests, while {had:.1%} of the "
        "baseline's rows had one: every request was scored as if it were missing. 600 request(s) that send the features "
        "themselves lack its key 'log_support_calls_90d' (renamed or dropped by the callers: the schema_change error "
        "names the keys they sent instead): fix the callers (docs/invocation-contract.md); this window's drift and "
        "quality are not published, so no retrain starts on it")


@pytest.mark.parametrize("edit, why", [
    (lambda meta: meta["dataset"]["features"][0].update(expr="no_such_operator(x)"), "unusable"),
    (lambda meta: meta.update(dataset=meta["dataset"]["name"]), "records no dataset declaration"),
    (lambda meta: meta.update(model="another_model"), "another model"),
], ids=["corrupt", "older-artefact", "another-model"])
def test_a_serving_version_whose_declaration_cannot_be_used_is_monitored_with_the_configs_and_the_report_says_so(
        tmp_path, spec, reference, edit, why):
    """GIVEN the version's artefact with a declaration that cannot be used for this model's requests (unreadable,
    an artefact from before models carried it, or one of another model) WHEN the monitor runs THEN it does not stop
    and does not read requests with another model's expressions: raw fields are computed with the config's
    declaration, and a warn check says so and why - not a silent switch."""
    from pipeline_code.training.model_io import load_model, save_model

    model = load_model(reference["model_dir"])
    edit(model.metadata)
    save_model(model, str(tmp_path / "model"))
    window = write_window(tmp_path / "w", spec, reference["model"], seed=200)
    report = run(spec, {**reference, "model_dir": str(tmp_path / "model")}, window, str(tmp_path / "out"))
    said = check(report, "serving_declaration")
    assert said["status"] == drift.WARN and why in said["detail"], said
    assert said["detail"].endswith("raw-field requests are computed with the config's declaration")
    assert report["summary"]["drifted_feature_count"] == 0, report["errors"]


def test_the_serving_versions_usable_declaration_raises_no_note(tmp_path, spec, reference):
    """GIVEN the version's own usable declaration WHEN the monitor runs THEN no serving_declaration check is written."""
    window = write_window(tmp_path / "w", spec, reference["model"], seed=200)
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert not [c for c in report["checks"] if c["check"] == "serving_declaration"]
