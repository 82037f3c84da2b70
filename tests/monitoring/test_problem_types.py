"""The monitor on multiclass and regression models: real models, real baselines, real capture (GIVEN / WHEN / THEN).

The models are trained here with the training job's own code (``train.train`` on prepared parquet) on a
dataset declared in this file, their baselines written by the baseline job's CLI, and the evaluation
baseline computed with the evaluation metrics - then the monitor CLI runs on captured traffic that serving's
response shapes describe (multiclass: label + probabilities or a class name per CSV line; regression: value).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd
import pytest

from pipeline_code.core.contract import DEFAULT_PROJECT, monitor_namespace
from pipeline_code.core.problem import MULTICLASS, REGRESSION
from mlops_cli.local import replay
from pipeline_code.monitoring import capture, drift, monitor
from pipeline_code.monitoring.report import retrain_alarms
from pipeline_code.training import baseline, metrics_multiclass, metrics_regression
from pipeline_code.training import train as train_mod
from pipeline_code.training.spec import ModelSpec
from tests.support.monitoring import check, monitor_args
from tests.support.problem_types import make_spec

BINARY_SUMMARY_KEYS = {
    "records", "malformed_records", "refused_records", "data_drift_max_psi", "data_drift_score", "drifted_feature_count", "drifted_features",
    "prediction_psi", "prediction_drift_score", "cumulative_drift_score", "cumulative_drifted",
    "missing_rate_max", "data_quality_violations", "label_coverage", "model_auc", "auc_drop",
    "demographic_parity_difference", "attribution_ndcg", "attribution_rank_correlation", "failed_checks",
    "monitoring_errors", "monitor_healthy",
}


def prepared(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """A prepared split: frame features + the target as the training job reads it (class codes / values)."""
    out = frame[list(spec.frame_features)].copy()
    if spec.problem_type == MULTICLASS:
        out[spec.target] = frame[spec.target].map({c: i for i, c in enumerate(spec.classes)}).astype(np.int64)
    else:
        out[spec.target] = frame[spec.target].astype(np.float64)
    return out


# One generated sample (one seed, disjoint rows): the reference trains on the first TRAINING_ROWS, window k
# is the WINDOW_ROWS after them. Drift and concept drift are injected by the tests themselves (inputs moved
# into the upper quarter of their distribution; labels shuffled), not by the generator's knobs.
SEED, TRAINING_ROWS, WINDOW_ROWS, WINDOWS = 11, 9000, 3000, 12
NUMERIC_FEATURES = ["visits_30d", "log_session_minutes", "discount_rate"]


@functools.lru_cache(maxsize=None)
def _generated(spec_name: str) -> pd.DataFrame:
    spec = make_spec(MULTICLASS if spec_name == "order-segment" else REGRESSION)
    return replay.traffic(spec, TRAINING_ROWS + WINDOWS * WINDOW_ROWS, seed=SEED, start="2026-01-01", days=120)


def rows_of(spec: ModelSpec, part: Optional[int]) -> pd.DataFrame:
    """The training rows (``part`` None) or window ``part`` of the generated data; the target never null."""
    data = _generated(spec.name)
    rows = data.iloc[:TRAINING_ROWS] if part is None else data.iloc[TRAINING_ROWS + part * WINDOW_ROWS:][:WINDOW_ROWS]
    return rows[rows[spec.target].notna()].reset_index(drop=True)


def build_reference(root: Path, spec: ModelSpec) -> Dict[str, Any]:
    data = rows_of(spec, None)
    n = len(data)
    splits = {"train": data.iloc[: n * 6 // 10], "validation": data.iloc[n * 6 // 10 : n * 8 // 10], "test": data.iloc[n * 8 // 10 :]}
    dirs = {}
    for name, part in splits.items():
        dirs[name] = root / name
        dirs[name].mkdir(parents=True)
        prepared(spec, part).to_parquet(dirs[name] / f"{name}.parquet", index=False)
    model_dir, baseline_dir = root / "model", root / "baseline"
    hp = train_mod.Hyperparameters(max_depth=4, num_round=60, early_stopping_rounds=0)
    train_mod.train(spec, str(dirs["train"]), str(dirs["validation"]), str(model_dir), hyperparameters=hp, nthread=2,
                    log=lambda _line: None)
    assert baseline.main(["--model-spec", spec.to_json(), "--model-dir", str(model_dir), "--train-dir", str(dirs["train"]),
                          "--validation-dir", str(dirs["validation"]), "--output-dir", str(baseline_dir), "--shap-sample-rows", "500"]) == 0
    model = train_mod.load_model(str(model_dir))
    test = prepared(spec, splits["test"])
    y = test[spec.target].to_numpy(dtype=np.float64)
    out = train_mod.predict(model, test)
    if spec.problem_type == MULTICLASS:
        challenger = {"metrics": metrics_multiclass.headline(y, out, spec.classes),
                      "fairness": metrics_multiclass.fairness(test["age_band"], y, out, spec.classes, attribute="age_band",
                                                              min_group_rows=100)}
    else:
        challenger = {"metrics": metrics_regression.headline(y, out),
                      "fairness": metrics_regression.fairness(test["age_band"], y, out, attribute="age_band", min_group_rows=100)}
    (baseline_dir / "evaluation.json").write_text(json.dumps({"challenger": challenger}, default=float))
    statistics = json.loads((baseline_dir / "statistics.json").read_text())
    ranking = json.loads((baseline_dir / "attributions.json").read_text())["ranking"]
    return {"model": model, "model_dir": str(model_dir), "baseline_dir": str(baseline_dir), "statistics": statistics,
            "evaluation": challenger, "top_numeric": [f for f in ranking if f in NUMERIC_FEATURES][0]}


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory):
    spec = make_spec(MULTICLASS)
    return spec, build_reference(tmp_path_factory.mktemp("multiclass"), spec)


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    spec = make_spec(REGRESSION)
    return spec, build_reference(tmp_path_factory.mktemp("regression"), spec)


def shift_inputs(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Input drift: feature ``name`` moved into the upper quarter of its own distribution (rank-preserving)."""
    frame = frame.copy()
    values = frame[name].astype(np.float64)
    ranks = values.rank(pct=True).fillna(0).to_numpy()
    frame[name] = np.where(values.notna(), np.quantile(values.dropna().to_numpy(), np.clip(0.75 + 0.25 * ranks, 0, 1)), np.nan)
    return frame


def write_window(root: Path, spec: ModelSpec, model: Any, *, part: int, rows: int = WINDOW_ROWS, drift: Optional[str] = None,
                 concept_drift: bool = False, label_coverage: Optional[float] = None, response_type: Optional[str] = None,
                 change_outputs: Any = None) -> Dict[str, Optional[str]]:
    """Capture (and labels) of window ``part``; ``drift`` names the input to move, ``concept_drift`` shuffles the
    labels (the inputs no longer say anything about them)."""
    frame = rows_of(spec, part).iloc[:rows]
    if drift:
        frame = shift_inputs(frame, drift)
    outputs = train_mod.predict(model, frame)
    if change_outputs is not None:
        outputs = change_outputs(frame, outputs)
    if concept_drift:
        frame = frame.copy()
        frame[spec.target] = np.random.default_rng(part).permutation(frame[spec.target].to_numpy())
    capture_dir, labels_dir = root / "capture", root / "labels"
    replay.write_capture(spec, frame, outputs, str(capture_dir), response_type=response_type)
    if label_coverage is not None:
        replay.write_labels(spec, frame, str(labels_dir), coverage=label_coverage)
    return {"capture": str(capture_dir), "labels": str(labels_dir) if label_coverage is not None else None}


class FakeCloudWatch:
    def __init__(self) -> None:
        self.data: List[Dict[str, Any]] = []
        self.namespaces: set = set()

    def put_metric_data(self, Namespace: str, MetricData: List[Dict[str, Any]]) -> None:  # noqa: N803 - boto3's names
        self.namespaces.add(Namespace)
        self.data.extend(MetricData)

    @property
    def names(self) -> set:
        return {m["MetricName"] for m in self.data}


def run(spec: ModelSpec, reference: Dict[str, Any], window: Dict[str, Optional[str]], output: Path, *,
        extra: List[str] = (), client: Any = None) -> Dict[str, Any]:
    args = monitor_args(spec, reference, window["capture"], str(output), labels=window.get("labels"), extra=list(extra))
    assert monitor.main(args, cloudwatch_client=client) == 0
    return json.loads((output / "report.json").read_text())


def capture_file(window: Dict[str, Optional[str]], spec: ModelSpec) -> str:
    return os.path.join(window["capture"], spec.name, "AllTraffic", "capture.jsonl")


def event(spec: ModelSpec, record: Dict[str, Any], output: str, content_type: str, inference_id: str) -> str:
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": json.dumps(record), "encoding": "JSON"},
        "endpointOutput": {"observedContentType": content_type, "mode": "OUTPUT", "data": output,
                           "encoding": "CSV" if content_type == "text/csv" else "JSON"}},
        "eventMetadata": {"eventId": inference_id, "inferenceId": inference_id, "inferenceTime": "2026-05-02T10:00:00Z"},
        "eventVersion": "0"})


RECORD = {"visits_30d": 12, "log_session_minutes": 2.5, "discount_rate": 0.2, "channel": "web", "age_band": "young"}


# ---------------------------------------------------------------- baselines per problem type
def test_the_baseline_holds_the_predicted_class_shares_and_the_regression_quantile_bins(multiclass, regression):
    spec, reference = multiclass
    stats = reference["statistics"]
    assert stats["problem_type"] == MULTICLASS
    prediction = stats["prediction"]
    assert prediction["classes"] == list(spec.classes) == prediction["histogram"]["levels"]
    # The predictions are the validation split's (out of sample), the target the training rows'
    assert prediction["split"] == "validation" and sum(prediction["histogram"]["counts"]) == prediction["rows"] > 0
    assert sum(prediction["predicted_shares"].values()) == pytest.approx(1.0)
    assert sum(prediction["mean_probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert set(stats["target"]["class_counts"]) == set(spec.classes) and sum(stats["target"]["class_counts"].values()) == stats["rows"]

    spec, reference = regression
    stats = reference["statistics"]
    assert stats["problem_type"] == REGRESSION
    hist = stats["prediction"]["histogram"]
    assert hist["binning"] == "quantile" and len(hist["counts"]) == len(hist["bin_edges"]) + 1 >= 10
    assert stats["prediction"]["split"] == "validation" and sum(hist["counts"]) == stats["prediction"]["rows"] > 0
    # quantile bins: every bin holds roughly a tenth of the validation predictions
    assert max(hist["fractions"]) < 0.2
    assert stats["prediction"]["std"] > 0 and stats["target"]["mean"] > 0 and "p50" in stats["target"]["quantiles"]


def test_quantile_bins_split_a_concentrated_prediction_distribution_and_see_its_shift():
    # GIVEN regression predictions concentrated on a few values (a tree model's leaves): 85 % on one value
    rng = np.random.default_rng(5)
    train = np.concatenate([np.full(8500, 120.0), rng.normal(120.0, 30.0, 1500)])
    edges = baseline.quantile_edges(train, 10)
    counts = baseline.bin_counts(train, edges)
    # THEN the mass has a bin of its own, bounded just above it
    at = int(np.searchsorted(edges, 120.0, side="right"))
    assert counts[at] >= 8500 and edges[at] < 120.0 + 30.0
    statistics = {"problem_type": REGRESSION, "prediction": {"histogram": {"bin_edges": edges, "counts": counts}}}
    # WHEN the mass shifts a little (well inside any equal-width bin over the range)
    same = np.concatenate([np.full(8500, 120.0), rng.normal(120.0, 30.0, 1500)])
    shifted = np.concatenate([np.full(8500, 123.0), rng.normal(123.0, 30.0, 1500)])
    quiet = drift.prediction_drift(same, statistics, problem_type=REGRESSION)
    moved = drift.prediction_drift(shifted, statistics, problem_type=REGRESSION)
    # THEN the quantile bins see it; ten equal-width bins over the training range do not
    assert quiet["psi"] < 0.01 and moved["psi"] > 0.2 and moved["status"] == "fail"
    equal = np.linspace(train.min(), train.max(), 11)[1:-1]
    assert baseline.psi(baseline.bin_counts(train, equal), baseline.bin_counts(shifted, equal)) < 0.05
    # a single value: one cut at it (nothing larger to bound its bin)
    assert baseline.quantile_edges(np.full(100, 3.0), 10) == [3.0]


# ---------------------------------------------------------------- capture decoding of the new responses
def test_capture_reads_multiclass_and_regression_responses(tmp_path, multiclass, regression):
    spec, _ = multiclass
    lines = [
        event(spec, RECORD, json.dumps({"predictions": [{"label": "gold", "score": 0.7,
                                                         "probabilities": {"bronze": 0.1, "silver": 0.2, "gold": 0.7}}]}),
              "application/json", "a"),
        event(spec, RECORD, "silver", "text/csv", "b"),
        event(spec, {"instances": [RECORD, RECORD]},
              '{"label": "bronze", "score": 0.5, "probabilities": {"bronze": 0.5, "silver": 0.3, "gold": 0.2}}\n'
              '{"label": "gold", "score": 0.4, "probabilities": {"bronze": 0.3, "silver": 0.3, "gold": 0.4}}',
              "application/jsonlines", "c"),
    ]
    root = tmp_path / "mc"
    root.mkdir()
    (root / "x.jsonl").write_text("\n".join(lines) + "\n")
    w = capture.read_capture(str(root), spec.features, categorical=["channel", "age_band"], extra_columns=["age_band"],
                             problem_type=MULTICLASS, classes=spec.classes)
    assert w.malformed == 0 and w.records == 4
    frame = w.frame.set_index(capture.INFERENCE_ID)
    assert frame[capture.SCORE].to_dict() == {"a": 2.0, "b": 1.0, "c:0": 0.0, "c:1": 2.0}
    assert frame.loc["a", capture.probability_column("gold")] == 0.7
    assert np.isnan(frame.loc["b", capture.probability_column("gold")])
    assert w.summary()["records_with_probabilities"] == 3 and w.summary()["problem_type"] == MULTICLASS

    # class names with a comma or a quote come CSV-quoted, as serving writes them
    root = tmp_path / "quoted"
    root.mkdir()
    (root / "x.jsonl").write_text("\n".join([
        event(spec, RECORD, '"large, red"', "text/csv", "a"),
        event(spec, RECORD, '"say ""hi"""', "text/csv", "b"),
        event(spec, {"instances": [RECORD, RECORD]}, 'small\n"large, red"', "text/csv", "c"),
    ]) + "\n")
    w = capture.read_capture(str(root), spec.features, categorical=["channel"], problem_type=MULTICLASS,
                             classes=["small", "large, red", 'say "hi"'])
    assert w.malformed == 0, w.summary()["malformed"]
    assert w.frame.set_index(capture.INFERENCE_ID)[capture.SCORE].to_dict() == {"a": 1.0, "b": 2.0, "c:0": 0.0, "c:1": 1.0}

    spec, _ = regression
    root = tmp_path / "rg"
    root.mkdir()
    (root / "x.jsonl").write_text("\n".join([
        event(spec, RECORD, json.dumps({"predictions": [{"value": 231.5}]}), "application/json", "a"),
        event(spec, RECORD, "99.25", "text/csv", "b"),
        event(spec, {"instances": [RECORD, RECORD]}, "1.5\n2.5", "text/csv", "c"),
    ]) + "\n")
    w = capture.read_capture(str(root), spec.features, categorical=["channel"], problem_type=REGRESSION)
    assert w.malformed == 0
    assert w.frame.set_index(capture.INFERENCE_ID)[capture.SCORE].to_dict() == {"a": 231.5, "b": 99.25, "c:0": 1.5, "c:1": 2.5}
    assert capture.probability_column("gold") not in w.frame.columns


# ---------------------------------------------------------------- multiclass
def test_multiclass_window_like_training_is_ok_and_its_quality_is_computed_on_the_labelled_days(tmp_path, multiclass):
    # GIVEN traffic from the training distribution with labels (class names) for 60 % of it
    spec, reference = multiclass
    window = write_window(tmp_path / "w", spec, reference["model"], part=0, label_coverage=0.6)
    client = FakeCloudWatch()
    # WHEN the monitor runs and publishes
    report = run(spec, reference, window, tmp_path / "out", extra=["--publish-metrics"], client=client)
    # THEN it publishes in the default project's namespace of its own model in its environment
    assert client.namespaces == {monitor_namespace(DEFAULT_PROJECT, "dev", spec.name)}
    # and nothing drifts, quality holds, and the section says which days were scored
    assert report["healthy"] and report["status"] == "ok", (report["errors"], [c for c in report["checks"] if c["status"] == "fail"])
    s = report["summary"]
    assert s["problem_type"] == MULTICLASS and s["primary_metric"] == "auc"
    assert s["prediction_psi"] < 0.1 and check(report, "prediction_psi")["status"] == "pass"
    pdrift = report["sections"]["prediction_drift"]
    assert set(pdrift["window_class_shares"]) == set(spec.classes) and pdrift["window_mean_probabilities"]
    mq = report["sections"]["model_quality"]
    assert mq["label_coverage"] == pytest.approx(0.6, abs=0.01) == s["label_coverage"]
    assert any(w["scored"] for w in mq["windows"]) and not all(w["scored"] for w in mq["windows"])
    assert {"accuracy", "macro_f1", "log_loss", "auc"} <= set(mq["metrics"]) and mq["metrics"]["probability_rows"] == mq["scored_rows"]
    assert mq["baseline_metrics"]["auc"] == pytest.approx(reference["evaluation"]["metrics"]["auc"])
    assert s["model_auc"] == mq["metrics"]["auc"] and abs(s["auc_drop"]) < 0.05 and s["quality_drop"] == s["auc_drop"]
    assert check(report, "auc_drop")["status"] == "pass"
    # bias: the predicted-class shares per group match the evaluation's
    assert check(report, "group_class_share_change", "age_band=young")["status"] == "pass"
    assert s["demographic_parity_difference"] is not None
    assert {"PredictionPsi", "ModelAuc", "AucDrop", "QualityDrop", "LabelCoverage", "MonitorHealthy"} <= client.names


def test_multiclass_input_drift_moves_the_predicted_class_shares(tmp_path, multiclass):
    spec, reference = multiclass
    window = write_window(tmp_path / "w", spec, reference["model"], part=1, drift=reference["top_numeric"])
    report = run(spec, reference, window, tmp_path / "out")
    assert report["summary"]["prediction_psi"] > 0.2 and check(report, "prediction_psi")["status"] == "fail"
    assert report["status"] == "alert" and report["healthy"]
    pdrift = report["sections"]["prediction_drift"]
    assert pdrift["chi_square"]["p_value"] < 0.01


def test_multiclass_concept_drift_drops_the_quality(tmp_path, multiclass):
    spec, reference = multiclass
    window = write_window(tmp_path / "w", spec, reference["model"], part=2, concept_drift=True, label_coverage=1.0)
    report = run(spec, reference, window, tmp_path / "out")
    assert report["summary"]["auc_drop"] > 0.05 and check(report, "auc_drop")["status"] == "fail"
    assert report["sections"]["model_quality"]["metrics"]["accuracy"] < reference["evaluation"]["metrics"]["accuracy"]


def test_multiclass_primary_metric_other_than_auc_gets_its_own_quality_check(tmp_path, multiclass):
    spec, reference = multiclass
    spec = dataclasses.replace(spec, primary_metric="log_loss")
    window = write_window(tmp_path / "w", spec, reference["model"], part=3, concept_drift=True, label_coverage=1.0)
    report = run(spec, reference, window, tmp_path / "out")
    drop = check(report, "quality_drop", "log_loss")
    assert drop["status"] == "fail" and "relative" in drop["detail"]
    assert report["summary"]["quality_drop"] == pytest.approx(drop["value"]) and report["summary"]["primary_metric"] == "log_loss"


def test_multiclass_class_names_only_are_rescored_for_probabilities(tmp_path, multiclass):
    # GIVEN CSV responses: a class name per record, no probabilities
    spec, reference = multiclass
    window = write_window(tmp_path / "w", spec, reference["model"], part=4, label_coverage=1.0, response_type="text/csv")
    report = run(spec, reference, window, tmp_path / "out")
    # THEN the monitor fills the probabilities from the model, keeps the served class, and computes log loss / AUC
    assert report["healthy"], report["errors"]
    assert report["sections"]["capture"]["records_with_probabilities"] == 0
    assert report["sections"]["rescoring"]["rescored_probability_rows"] == report["summary"]["records"] > 2000
    mq = report["sections"]["model_quality"]
    assert mq["metrics"]["log_loss"] is not None and mq["metrics"]["probability_rows"] == mq["scored_rows"]
    assert report["summary"]["prediction_psi"] < 0.1


def test_multiclass_bias_when_one_group_gets_another_class(tmp_path, multiclass):
    spec, reference = multiclass

    def favour_gold_for_the_young(frame, outputs):
        outputs = outputs.copy()
        young = (frame["age_band"] == "young").to_numpy()
        outputs[young] = [0.05, 0.05, 0.9]
        return outputs

    window = write_window(tmp_path / "w", spec, reference["model"], part=5, change_outputs=favour_gold_for_the_young)
    report = run(spec, reference, window, tmp_path / "out")
    changed = check(report, "group_class_share_change", "age_band=young")
    assert changed["status"] == "fail" and "class gold" in changed["detail"]
    assert check(report, "group_class_share_change", "age_band=senior")["status"] == "pass"
    assert check(report, "demographic_parity_difference")["status"] == "fail"


def test_multiclass_malformed_responses_are_counted_and_skipped(tmp_path, multiclass):
    spec, reference = multiclass
    window = write_window(tmp_path / "w", spec, reference["model"], part=6, rows=600)
    bad = [
        event(spec, RECORD, json.dumps({"predictions": [{"label": "platinum", "score": 0.9}]}), "application/json", "x1"),
        event(spec, RECORD, json.dumps({"predictions": [{"label": "gold", "probabilities": {"gold": 0.9, "silver": 0.1}}]}),
              "application/json", "x2"),
        event(spec, RECORD, json.dumps({"predictions": [{"label": "gold", "probabilities": {"bronze": "x", "silver": 0.1, "gold": 0.9}}]}),
              "application/json", "x3"),
        event(spec, RECORD, json.dumps({"predictions": [{"score": 0.9}]}), "application/json", "x4"),
        event(spec, RECORD, "copper", "text/csv", "x5"),
        event(spec, RECORD, json.dumps({"predictions": [{"label": "gold"}, {"label": "silver"}]}), "application/json", "x6"),
        "{not json",
    ]
    with open(capture_file(window, spec), "a") as handle:
        handle.write("\n".join(bad) + "\n")
    report = run(spec, reference, window, tmp_path / "out")
    assert report["summary"]["malformed_records"] == 7 and report["summary"]["records"] == 600
    assert report["sections"]["capture"]["malformed"]["reasons"] == {
        "unknown_class": 2, "bad_probabilities": 2, "bad_prediction": 1, "output_mismatch": 1, "invalid_json": 1}
    assert "malformed_records" in {e["kind"] for e in report["errors"]}
    assert report["sections"]["prediction_drift"]["psi"] is not None  # the good records are still monitored


# ---------------------------------------------------------------- regression
def test_regression_window_like_training_is_ok_and_its_quality_is_computed(tmp_path, regression):
    spec, reference = regression
    window = write_window(tmp_path / "w", spec, reference["model"], part=0, label_coverage=0.6)
    client = FakeCloudWatch()
    namespace = monitor_namespace("acme", "dev", spec.name)
    report = run(spec, reference, window, tmp_path / "out", extra=["--publish-metrics", "--metric-namespace", namespace],
                 client=client)
    assert report["healthy"] and report["status"] == "ok", (report["errors"], [c for c in report["checks"] if c["status"] == "fail"])
    # the namespace it is given (its project's, of its model in its environment), not the default project's
    assert client.namespaces == {namespace}
    s = report["summary"]
    assert s["problem_type"] == REGRESSION and s["primary_metric"] == "r2"
    assert s["prediction_psi"] < 0.1
    mq = report["sections"]["model_quality"]
    assert mq["label_coverage"] == pytest.approx(0.6, abs=0.01) == s["label_coverage"]
    assert {"rmse", "mae", "r2", "bias"} <= set(mq["metrics"]) and mq["baseline_metrics"]["rmse"] > 0
    assert set(mq["changes"]) == {"r2_drop", "rmse_increase", "mae_increase"}
    assert abs(s["quality_drop"]) < 0.1 and check(report, "quality_drop", "r2")["status"] == "pass"
    # no AUC for a regression model: neither in the summary nor published
    assert s["model_auc"] is None and s["auc_drop"] is None
    assert not [c for c in report["checks"] if c["check"] == "auc_drop"]
    assert "ModelAuc" not in client.names and "AucDrop" not in client.names
    assert {"PredictionPsi", "QualityDrop", "LabelCoverage", "MonitorHealthy"} <= client.names
    assert check(report, "error_parity_ratio")["status"] == "pass" and check(report, "bias_gap")["status"] == "pass"
    # its gap across the groups is published for the dashboard, as a classifier's parity difference is
    assert s["bias_gap"] == report["sections"]["bias"]["bias_gap"] is not None and "BiasGap" in client.names
    assert s["demographic_parity_difference"] is None and "DemographicParityDifference" not in client.names
    assert report["thresholds"]["max_quality_drop"] == 0.1


def test_regression_input_drift_moves_the_predictions_across_the_quantile_bins(tmp_path, regression):
    spec, reference = regression
    window = write_window(tmp_path / "w", spec, reference["model"], part=1, drift=reference["top_numeric"])
    report = run(spec, reference, window, tmp_path / "out")
    assert report["summary"]["prediction_psi"] > 0.2 and check(report, "prediction_psi")["status"] == "fail"
    pdrift = report["sections"]["prediction_drift"]
    assert pdrift["bins"]["bin_edges"] == reference["statistics"]["prediction"]["histogram"]["bin_edges"]
    assert report["status"] == "alert" and report["healthy"]


def test_regression_concept_drift_drops_the_primary_metric(tmp_path, regression):
    spec, reference = regression
    window = write_window(tmp_path / "w", spec, reference["model"], part=2, concept_drift=True, label_coverage=1.0)
    report = run(spec, reference, window, tmp_path / "out")
    drop = check(report, "quality_drop", "r2")
    assert drop["status"] == "fail" and report["summary"]["quality_drop"] > 0.1
    assert report["sections"]["model_quality"]["changes"]["rmse_increase"] > 0


def test_regression_rmse_as_primary_metric_is_judged_relative(tmp_path, regression):
    spec, reference = regression
    spec = dataclasses.replace(spec, primary_metric="rmse")
    window = write_window(tmp_path / "w", spec, reference["model"], part=3, label_coverage=1.0,
                          change_outputs=lambda frame, outputs: outputs + reference["evaluation"]["metrics"]["target_std"])
    report = run(spec, reference, window, tmp_path / "out")
    drop = check(report, "quality_drop", "rmse")
    mq = report["sections"]["model_quality"]
    expected = mq["metrics"]["rmse"] / mq["baseline_metrics"]["rmse"] - 1
    assert drop["status"] == "fail" and drop["value"] == pytest.approx(expected) and "relative" in drop["detail"]


def test_regression_too_few_labels_skips_quality(tmp_path, regression):
    spec, reference = regression
    window = write_window(tmp_path / "w", spec, reference["model"], part=4, label_coverage=0.03)
    report = run(spec, reference, window, tmp_path / "out")
    assert check(report, "quality_drop", "r2")["status"] == "skipped" and report["healthy"]
    assert report["summary"]["quality_drop"] is None


def test_regression_bias_when_one_group_gets_worse_predictions(tmp_path, regression):
    spec, reference = regression
    rng = np.random.default_rng(7)

    def noisy_for_seniors(frame, outputs):
        senior = (frame["age_band"] == "senior").to_numpy()
        outputs = outputs.copy()
        outputs[senior] = outputs[senior] + rng.normal(0, 3 * outputs.std(), senior.sum())
        return outputs

    window = write_window(tmp_path / "w", spec, reference["model"], part=5, label_coverage=1.0, change_outputs=noisy_for_seniors)
    report = run(spec, reference, window, tmp_path / "out")
    assert check(report, "error_parity_ratio")["status"] == "fail"
    assert check(report, "group_mae_change", "age_band=senior")["status"] == "warn"
    assert report["sections"]["bias"]["groups"]["senior"]["mae_change"] > 1.0
    assert report["summary"]["demographic_parity_difference"] is None


def test_regression_malformed_values_are_counted_and_skipped(tmp_path, regression):
    spec, reference = regression
    window = write_window(tmp_path / "w", spec, reference["model"], part=6, rows=600)
    bad = [
        event(spec, RECORD, "abc", "text/csv", "x1"),
        event(spec, RECORD, json.dumps({"predictions": [{"value": "high"}]}), "application/json", "x2"),
        event(spec, RECORD, json.dumps({"predictions": [{"value": None}]}), "application/json", "x3"),
        event(spec, RECORD, "nan", "text/csv", "x4"),
        event(spec, RECORD, json.dumps({"predictions": [{"value": True}]}), "application/json", "x5"),
        event(spec, RECORD, "1.0\n2.0", "text/csv", "x6"),
    ]
    with open(capture_file(window, spec), "a") as handle:
        handle.write("\n".join(bad) + "\n")
    report = run(spec, reference, window, tmp_path / "out")
    assert report["summary"]["malformed_records"] == 6 and report["summary"]["records"] == 600
    assert report["sections"]["capture"]["malformed"]["reasons"] == {"bad_value": 5, "output_mismatch": 1}
    assert report["summary"]["prediction_psi"] < 0.1


def test_a_baseline_of_another_problem_type_is_a_monitoring_error(tmp_path, multiclass, regression):
    spec, reference = regression
    _, other = multiclass
    window = write_window(tmp_path / "w", spec, reference["model"], part=7, rows=300)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("constraints", "attributions", "evaluation"):
        (mixed / f"{name}.json").write_text(Path(reference["baseline_dir"], f"{name}.json").read_text())
    (mixed / "statistics.json").write_text(Path(other["baseline_dir"], "statistics.json").read_text())
    args = monitor_args(spec, reference, window["capture"], str(tmp_path / "out"), baseline_dir=str(mixed))
    assert monitor.main(args) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    # THEN another model's statistics are refused before anything is compared with them
    assert not report["healthy"] and "prediction_drift" not in report["sections"]
    (error,) = [e for e in report["errors"] if e["kind"] == "baseline_invalid"]
    assert "was written for model 'order-segment', not 'basket-value'" in error["message"]
    # AND a baseline of this model but of another problem type (the model's type was changed) is refused too
    statistics = json.loads((mixed / "statistics.json").read_text())
    (mixed / "statistics.json").write_text(json.dumps({**statistics, "model": spec.name}))
    assert monitor.main(monitor_args(spec, reference, window["capture"], str(tmp_path / "out2"), baseline_dir=str(mixed))) == 0
    report = json.loads((tmp_path / "out2" / "report.json").read_text())
    assert not report["healthy"] and report["sections"]["prediction_drift"]["status"] == "error"
    assert "multiclass_classification" in report["sections"]["prediction_drift"]["error"]


# ---------------------------------------------------------------- binary stays as it was
def test_a_binary_report_keeps_its_summary_and_publishes_no_quality_drop(tmp_path, spec, reference):
    from tests.support.monitoring import write_window as binary_window

    window = binary_window(tmp_path / "w", spec, reference["model"], seed=400, label_coverage=1.0)
    client = FakeCloudWatch()
    report = run(spec, reference, window, tmp_path / "out", extra=["--publish-metrics"], client=client)
    assert set(report["summary"]) == BINARY_SUMMARY_KEYS
    assert "max_quality_drop" not in report["thresholds"] and "problem_type" not in report["sections"]["capture"]
    assert "QualityDrop" not in client.names and {"ModelAuc", "AucDrop"} <= client.names
    assert not [c for c in report["checks"] if c["check"] == "quality_drop"]


def test_a_regression_report_states_the_quality_drop_its_labels_can_detect(regression, tmp_path):
    spec, reference = regression
    window = write_window(tmp_path / "w", spec, reference["model"], part=2, rows=300, label_coverage=1.0)
    report = run(spec, reference, window, tmp_path / "out", extra=["--min-labeled-rows", "50"])
    quality = report["sections"]["model_quality"]
    (power,) = [c for c in report["checks"] if c["check"] == "quality_drop_power"]
    # the detectable drop is in the quality drop's units (relative for RMSE) and judged against max_quality_drop
    assert power["value"] == quality["detectable_quality_drop"] > 0 and power["threshold"] == 0.10
    assert power["status"] == ("warn" if power["value"] > 0.10 else "pass") and power["feature"] == quality["primary_metric"]



def test_a_quality_drop_within_the_noise_of_few_labels_is_reported_not_published(regression, tmp_path):
    # GIVEN a regression model whose labels were shuffled (a real loss of quality), judged on 60 and on 120 labels
    spec, reference = regression
    published = {}
    for rows in (60, 120):
        window = write_window(tmp_path / f"w{rows}", spec, reference["model"], part=2, rows=rows, label_coverage=1.0,
                              concept_drift=True)
        client = FakeCloudWatch()
        report = run(spec, reference, window, tmp_path / f"out{rows}", client=client,
                     extra=["--min-labeled-rows", "50", "--max-quality-drop", "0.05", "--publish-metrics"])
        published[rows] = ("QualityDrop" in client.names, report["summary"])
    # THEN on 60 labels the drop is over the limit but within what 60 labels without any change show: reported with
    # that noise, not published (the retrain alarm reads QualityDrop); on 120 it is more than the noise and retrains
    few, summary = published[60]
    assert not few and summary["quality_drop"] is None
    assert 0.05 < summary["quality_drop_within_noise"] < summary["quality_drop_noise"]
    enough, summary = published[120]
    assert enough and summary["quality_drop"] > 0.05 and "quality_drop_within_noise" not in summary


def _quality_report(problem_type: Optional[str], primary_metric: Optional[str], failing: set[str]) -> dict:
    checks = [{"check": name, "status": "fail" if name in failing else "pass"}
              for name in ("label_coverage", "auc_drop", "quality_drop")]
    section = {"checks": checks, **({"problem_type": problem_type, "primary_metric": primary_metric} if problem_type else {})}
    return {"healthy": True, "summary": {}, "sections": {"model_quality": section}}


@pytest.mark.parametrize(("problem_type", "primary_metric", "failing", "retrains"), [
    (None, None, {"auc_drop"}, True),  # a binary report carries no problem_type
    (None, None, {"label_coverage"}, False),  # too few labels informs; it is no quality loss
    (MULTICLASS, "auc", {"auc_drop"}, True),
    (MULTICLASS, "macro_f1", {"quality_drop"}, True),
    (MULTICLASS, "macro_f1", {"auc_drop"}, False),  # judged on macro F1: the AUC drop informs only
    (REGRESSION, "rmse", {"quality_drop"}, True),
], ids=["binary-auc", "binary-coverage", "multiclass-auc", "multiclass-f1", "multiclass-f1-auc-only", "regression"])
def test_the_local_quality_retrain_follows_the_one_check_the_cloud_alarm_watches(problem_type, primary_metric, failing, retrains):
    """The local loop decides retraining from the report as CloudWatch would: the quality alarm watches the
    check core.problem.quality_alarm_key names, so no other failing check may start a retrain locally."""
    fired = retrain_alarms(_quality_report(problem_type, primary_metric, failing))
    assert ("quality" in fired) is retrains


def test_a_regression_baseline_of_another_error_measure_is_no_baseline_for_error_parity():
    """GIVEN a baseline evaluation from before relative errors (absolute MAE parity, no error_measure) WHEN a window's
    relative error parity is judged THEN it is reported, not compared with a ratio of another measure (which could
    fail a model nothing happened to)."""
    from pipeline_code.monitoring import quality

    rng = np.random.default_rng(5)
    area = np.repeat(["city", "rural"], 300)
    y = np.where(area == "city", 300_000.0, 100_000.0) * rng.lognormal(0.0, 0.2, area.size)
    joined = pd.DataFrame({"area": area, quality.LABEL: y, capture.SCORE: y + np.where(area == "city", -30_000.0, 30_000.0)})
    old_baseline = {"error_parity_ratio": 1.0, "groups": {}}  # absolute MAE: both groups off by 30,000
    section = quality._error_bias(joined, "area", old_baseline, min_group_rows=100, max_group_rate_change=0.1)
    (parity,) = [c for c in section["checks"] if c["check"] == "error_parity_ratio"]
    assert parity["status"] == "pass" and parity["threshold"] is None and "same measure" in parity["detail"]
    same = quality._error_bias(joined, "area", {"error_parity_ratio": 1.0, "error_measure": "relative", "groups": {}},
                               min_group_rows=100, max_group_rate_change=0.1)
    assert [c["status"] for c in same["checks"] if c["check"] == "error_parity_ratio"] == ["fail"]


def _bias_section(groups, y, p, baseline=None, *, max_dpd=0.10):
    """The regression bias section of a labelled window across ``area`` (min_group_rows 100, max_group_rate_change
    0.1); ``baseline``: the evaluation's fairness block (default none)."""
    from pipeline_code.monitoring import quality

    joined = pd.DataFrame({"area": pd.Series(groups, dtype=object), quality.LABEL: np.asarray(y, float),
                           capture.SCORE: np.asarray(p, float)})
    return quality.bias_drift(joined, "area", baseline, min_group_rows=100, max_dpd=max_dpd, max_group_rate_change=0.1,
                              problem_type=REGRESSION)


def _section_check(section, name):
    (found,) = [c for c in section["checks"] if c["check"] == name]
    return found


def test_a_window_over_estimating_one_group_and_under_estimating_another_fails_the_bias_gap():
    """GIVEN a baseline whose bias gap was 0.02 WHEN a labelled window over-estimates group a by 30 % and under-estimates
    group b by 30 % (equal relative MAE: error parity 1.0 holds, and no group's MAE moved) THEN the bias gap 0.6 fails
    against max_dpd, naming both groups; the 50 rows of c (< min_group_rows) and the rows without a value, both
    under-estimated by half, are not compared."""
    groups = ["a"] * 200 + ["b"] * 200 + ["c"] * 50 + [None] * 300
    y = np.full(len(groups), 100.0)
    p = np.concatenate([np.full(200, 130.0), np.full(200, 70.0), np.full(350, 50.0)])
    baseline = {"error_measure": "relative", "error_parity_ratio": 0.95, "bias_gap": 0.02,
                "groups": {"a": {"mae": 30.0}, "b": {"mae": 30.0}}}
    section = _bias_section(groups, y, p, baseline)
    gap = _section_check(section, "bias_gap")
    assert (gap["status"], gap["value"], gap["threshold"], gap["op"]) == ("fail", pytest.approx(0.6), 0.10, ">")
    assert gap["detail"] == ("most over-estimated group a, most under-estimated b (mean error over its mean |target|); "
                             "baseline 0.0200")
    # the other checks see nothing: equal relative errors, unchanged MAE
    assert [c["check"] for c in section["checks"] if c["status"] == "fail"] == ["bias_gap"] and section["status"] == "fail"
    assert _section_check(section, "error_parity_ratio")["value"] == pytest.approx(1.0)
    assert section["bias_gap"] == pytest.approx(0.6) and section["baseline_bias_gap"] == 0.02
    assert (section["most_over_estimated_group"], section["most_under_estimated_group"]) == ("a", "b")
    assert section["bias_measure"] == "mean error over its mean |target|"


def test_an_even_window_passes_the_bias_gap():
    """GIVEN groups a and b whose errors are as large (MAE 3) and balanced around a gap of 0.01 THEN it passes."""
    groups = ["a"] * 200 + ["b"] * 200
    y = np.full(400, 100.0)
    errors = np.concatenate([np.tile([5.0, 1.0], 100), np.tile([5.0, -1.0], 100)])  # a: bias +3, b: bias +2
    section = _bias_section(groups, y, y + errors)
    gap = _section_check(section, "bias_gap")
    assert (gap["status"], gap["value"], gap["threshold"]) == ("pass", pytest.approx(0.01), 0.10)
    assert gap["detail"] == ("most over-estimated group a, most under-estimated b (mean error over its mean |target|); "
                             "no baseline bias gap of the same measure")
    assert section["status"] == "pass"


def test_the_bias_gap_limit_follows_a_baseline_gap_of_the_same_measure_as_the_parity_difference_does():
    """GIVEN a baseline the gate accepted with a gap of 0.58 (a model's own, looser gate) WHEN the window's gap is 0.6
    THEN it passes under 0.58 + max_group_rate_change / 2 (judged on how far it moved, as the demographic parity
    difference is); a baseline gap of another measure (absolute errors) is no baseline: the limit is max_dpd."""
    groups = ["a"] * 200 + ["b"] * 200
    y = np.full(400, 100.0)
    p = np.where(np.array(groups) == "a", 130.0, 70.0)
    same = _section_check(_bias_section(groups, y, p, {"error_measure": "relative", "bias_gap": 0.58}), "bias_gap")
    assert (same["status"], same["threshold"]) == ("pass", pytest.approx(0.63))
    other = _section_check(_bias_section(groups, y, p, {"error_measure": "absolute", "bias_gap": 0.58}), "bias_gap")
    assert (other["status"], other["threshold"]) == ("fail", 0.10)
    assert other["detail"].endswith("; no baseline bias gap of the same measure")


def test_a_version_evaluated_before_the_gate_judged_its_bias_gap_is_warned_of_a_gap_not_failed_every_day():
    """GIVEN the serving version's evaluation from before the gate judged the bias gap over absolute errors (its fairness
    block has no gap: a group near 0 made the measure absolute, and none was computed then) WHEN the window's gap is 0.4
    THEN the monitor warns of it (that version was never held to one) instead of failing every run; the error parity
    check is unaffected."""
    groups = ["a"] * 200 + ["b"] * 200
    y = np.where(np.array(groups) == "a", 0.0, 10.0)
    old = {"error_measure": "absolute", "error_parity_ratio": 1.0, "bias_gap": None,
           "groups": {"a": {"mae": 1.0}, "b": {"mae": 1.0}}}
    section = _bias_section(groups, y, y + np.where(np.array(groups) == "a", 1.0, -1.0), old)
    gap = _section_check(section, "bias_gap")
    assert (gap["status"], gap["value"], gap["threshold"]) == ("warn", pytest.approx(0.4), 0.10)
    assert gap["detail"] == ("most over-estimated group a, most under-estimated b (mean error over the compared groups' "
                             "mean |target|); the serving version's evaluation has no bias gap (registered before the "
                             "gate judged one): a warning, not a failure")
    assert section["status"] == "pass" and _section_check(section, "error_parity_ratio")["status"] == "pass"


def test_a_regression_window_is_held_to_the_gates_error_parity_minimum_as_well_as_to_its_baseline():
    """GIVEN a version the gate accepted with error parity 0.84 against a minimum of 0.8 WHEN a window's parity is 0.78
    (within its baseline - 0.1, below the gate's minimum) THEN it fails, held to its baseline - half the tolerance
    (0.79) as the gap is; a version with parity 0.95 is held to its baseline - 0.1 (0.85), the stricter; without a
    baseline, to the minimum (with one of another error measure, a warning); without a minimum, to the baseline alone
    (as before)."""
    groups = ["a"] * 200 + ["b"] * 200
    y = np.full(400, 100.0)
    # group a's errors 10, b's 7.8: parity 0.78, no bias gap (errors both ways)
    sign = np.tile([1.0, -1.0], 200)
    p = y + sign * np.where(np.array(groups) == "a", 10.0, 7.8)

    def parity(baseline, min_di):
        joined = pd.DataFrame({"area": pd.Series(groups, dtype=object), "label": y, capture.SCORE: p})
        from pipeline_code.monitoring import quality
        section = quality.bias_drift(joined.rename(columns={"label": quality.LABEL}), "area", baseline, min_group_rows=100,
                                     max_dpd=0.10, max_group_rate_change=0.1, problem_type=REGRESSION, min_di=min_di)
        return _section_check(section, "error_parity_ratio")

    near = parity({"error_measure": "relative", "error_parity_ratio": 0.84}, 0.8)
    assert (near["status"], near["value"], near["threshold"]) == ("fail", pytest.approx(0.78), pytest.approx(0.79))
    assert near["detail"] == "baseline 0.8400 - 0.05, under the gate's minimum 0.8"
    high = parity({"error_measure": "relative", "error_parity_ratio": 0.95}, 0.8)
    assert (high["status"], high["threshold"], high["detail"]) == ("fail", pytest.approx(0.85), "baseline 0.9500 - 0.1")
    alone = parity(None, 0.8)
    assert (alone["status"], alone["threshold"], alone["detail"]) == ("fail", 0.8, "the gate's minimum 0.8")
    # a version whose baseline compared another error measure was never held to this one: warned, not failed
    other = parity({"error_measure": "absolute", "error_parity_ratio": 0.95}, 0.8)
    assert (other["status"], other["threshold"]) == ("warn", 0.8)
    assert other["detail"] == ("the gate's minimum 0.8; the serving version's baseline compared another error measure, "
                               "so it was never held to this one: a warning, not a failure")
    before = parity({"error_measure": "relative", "error_parity_ratio": 0.84}, None)
    assert (before["status"], before["threshold"]) == ("pass", pytest.approx(0.74))


def test_fewer_than_two_groups_to_compare_skip_the_bias_gap_with_its_reason():
    """GIVEN one group of 200 labelled rows, one of 50 (< min_group_rows) and 300 rows without a value THEN the gap is
    not judged (insufficient evidence, never a pass), and the reason names each group's labelled rows."""
    groups = ["a"] * 200 + ["b"] * 50 + [None] * 300
    y = np.full(len(groups), 100.0)
    section = _bias_section(groups, y, np.where(np.array(groups) == "a", 130.0, 70.0))
    gap = _section_check(section, "bias_gap")
    assert (gap["status"], gap["value"]) == ("skipped", None)
    assert gap["detail"] == ("1 group of area with a value and >= 100 labelled rows ((missing): 300, a: 200, b: 50), "
                             "and a gap takes two: not judged (insufficient evidence, not a pass)")
    # AND no labelled rows, or no attribute in the window: both regression bias checks are skipped, saying why
    unlabelled = _bias_section(groups, np.full(len(groups), np.nan), np.full(len(groups), 100.0))
    assert _section_check(unlabelled, "bias_gap")["detail"] == "no labelled rows: error parity and the bias gap need ground truth"
    absent = _bias_section([None] * 10, np.ones(10), np.ones(10))
    assert [(c["check"], c["status"]) for c in absent["checks"]] == [("error_parity_ratio", "skipped"), ("bias_gap", "skipped")]


def test_a_group_whose_target_is_near_zero_makes_the_window_bias_gap_absolute_over_the_shared_scale():
    """GIVEN group a's target 0 (no relative error) and group b's 10, a over-estimated by 1 and b under-estimated by 1
    THEN the gap is 2 over the compared groups' mean |target| 5, 0.4, as the gate computes it, and fails; WHEN every
    compared target is 0 THEN no scale makes a share: skipped, saying so."""
    groups = ["a"] * 200 + ["b"] * 200
    y = np.where(np.array(groups) == "a", 0.0, 10.0)
    section = _bias_section(groups, y, y + np.where(np.array(groups) == "a", 1.0, -1.0))
    gap = _section_check(section, "bias_gap")
    assert (gap["status"], gap["value"]) == ("fail", pytest.approx(0.4))
    assert gap["detail"] == ("most over-estimated group a, most under-estimated b (mean error over the compared groups' "
                             "mean |target|); no baseline bias gap of the same measure")
    zero = _section_check(_bias_section(groups, np.zeros(400), np.ones(400)), "bias_gap")
    assert (zero["status"], zero["detail"]) == ("skipped", "every compared group's target is 0 in the window: no scale "
                                                           "makes its mean error a share, not judged")


def test_the_monitor_reports_a_window_whose_groups_are_over_and_under_estimated(tmp_path, regression):
    """GIVEN the regression model's baseline evaluation of a fair model (predictions 5 % high in every group) WHEN the
    window's predictions are its labels, 30 % high for one age band, 30 % low for another and 30 % off either way for
    the rest (every group's MAE is 30 % of its values) THEN the monitor fails bias_gap with --max-dpd, the report is an
    alert, and the HTML report's check table shows it; a window 5 % high everywhere passes."""
    spec, reference = regression
    baseline_dir = tmp_path / "baseline"
    baseline_dir.mkdir()
    for name in os.listdir(reference["baseline_dir"]):
        (baseline_dir / name).write_text(Path(reference["baseline_dir"], name).read_text())
    test = rows_of(spec, None)
    y = test[spec.target].to_numpy(dtype=np.float64)
    fair = metrics_regression.fairness(test["age_band"], y, y * 1.05, attribute="age_band", min_group_rows=100)
    evaluation = json.loads((baseline_dir / "evaluation.json").read_text())
    (baseline_dir / "evaluation.json").write_text(json.dumps({"challenger": {**evaluation["challenger"], "fairness": fair}}))
    reference = {**reference, "baseline_dir": str(baseline_dir)}
    groups = sorted(g for g in test["age_band"].dropna().unique())
    over, under = groups[0], groups[-1]

    def opposite(frame, outputs):
        target = frame[spec.target].to_numpy(dtype=np.float64)
        band = frame["age_band"].to_numpy(dtype=object)
        either = np.where(np.arange(len(frame)) % 2 == 0, 1.3, 0.7)
        return target * np.where(band == over, 1.3, np.where(band == under, 0.7, either))

    window = write_window(tmp_path / "w", spec, reference["model"], part=8, label_coverage=1.0, change_outputs=opposite)
    report = run(spec, reference, window, tmp_path / "out", extra=["--max-dpd", "0.2"])
    gap = check(report, "bias_gap")
    assert gap["status"] == "fail" and gap["value"] > 0.5 and gap["threshold"] == 0.2
    assert gap["detail"] == (f"most over-estimated group {over}, most under-estimated {under} (mean error over its mean "
                             f"|target|); baseline {fair['bias_gap']:.4f}")
    assert report["status"] == "alert" and report["sections"]["bias"]["baseline_bias_gap"] == pytest.approx(fair["bias_gap"])
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<td>bias_gap</td>" in html and f"most over-estimated group {over}" in html

    steady = write_window(tmp_path / "s", spec, reference["model"], part=9, label_coverage=1.0,
                          change_outputs=lambda frame, outputs: frame[spec.target].to_numpy(dtype=np.float64) * 1.05)
    assert check(run(spec, reference, steady, tmp_path / "out2", extra=["--max-dpd", "0.2"]), "bias_gap")["status"] == "pass"


@pytest.mark.parametrize("summary, thresholds, expected", [
    ({"model_auc": 0.812, "auc_drop": 0.031}, {"max_auc_drop": 0.05},
     "AUC 0.812, down 0.031 from the evaluation's (alarm at a drop of 0.05)"),
    ({"problem_type": MULTICLASS, "primary_metric": "auc", "model_auc": 0.9, "auc_drop": -0.006, "quality_drop": -0.006},
     {"max_auc_drop": 0.05, "max_quality_drop": 0.1}, "AUC 0.9, up 0.006 from the evaluation's (alarm at a drop of 0.05)"),
    ({"problem_type": REGRESSION, "primary_metric": "rmse", "quality_drop": -0.092}, {"max_quality_drop": 0.1},
     "RMSE down 9.2% from the evaluation's (alarm at 10% worse)"),
    ({"problem_type": REGRESSION, "quality_drop": 0.12}, {"max_quality_drop": 0.1},
     "R² down 0.120 from the evaluation's (alarm at 0.1)"),
    ({"problem_type": MULTICLASS, "primary_metric": "macro_f1", "auc_drop": 0.2}, {"max_quality_drop": 0.1}, None),
])
def test_the_quality_line_names_the_metric_the_alarm_watches_and_which_way_it_moved(summary, thresholds, expected):
    """One metric, the one the model's quality alarm watches, with its direction: RMSE 9 % lower reads as an
    improvement, not 'dropped by -0.092'; a multiclass model judged on AUC is not shown two limits."""
    from pipeline_code.monitoring import report as report_mod

    assert report_mod.quality_change({"summary": summary, "thresholds": thresholds}) == expected


def test_a_count_or_amount_models_label_its_deviance_is_undefined_on_leaves_the_windows_deviance_judged(
        tmp_path, regression):
    """GIVEN a model trained on loss tweedie (its deviance the window's headline) and, among its labelled window, one
    label of -1 (the feed's; the ETL would have quarantined it) WHEN the monitor judges the window THEN that label is
    left out and counted (unusable_labels), and the window's deviance is measured on the others - not left undefined
    by the one label, with the quality check skipped for the week it stays in the label window."""
    spec, reference = regression
    counted = dataclasses.replace(spec, loss="tweedie")
    # Positive means, as a log-link model answers (this squared-error model's are moved to 1 or more).
    window = write_window(tmp_path / "w", counted, reference["model"], part=0, label_coverage=0.6,
                          change_outputs=lambda _frame, outputs: np.maximum(outputs, 1.0))
    labels_file = Path(window["labels"]) / "labels.parquet"
    labels = pd.read_parquet(labels_file)
    labels.loc[0, "label"] = -1.0
    labels.to_parquet(labels_file, index=False)
    report = run(counted, reference, window, tmp_path / "out")
    mq = report["sections"]["model_quality"]
    assert mq["unusable_labels"] == {"rows": 1, "examples": ["-1.0"]}, report["errors"]
    assert mq["metrics"]["tweedie_deviance"] is not None and mq["metrics"]["tweedie_deviance"] > 0


@pytest.mark.parametrize("config_power, compared", [(1.8, False), (1.5, True)])
def test_a_tweedie_deviance_measured_at_another_power_than_the_serving_versions_is_not_compared_with_it(
        tmp_path, regression, config_power, compared):
    """GIVEN a tweedie model judged on its deviance whose serving version was evaluated at tweedie_variance_power 1.5
    (its evaluation's model_info) WHEN the config's power changes to 1.8 (deployed before a version trained on it
    serves) and the monitor judges a window like training THEN the window's deviance at 1.8 is not compared with the
    evaluation's at 1.5 (another quantity: the drop would be an artefact of the power, and could trigger a retrain):
    the quality check is skipped and a warning says why; at the same power it is compared as usual."""
    import shutil

    spec, reference = regression
    counted = dataclasses.replace(spec, loss="tweedie", tweedie_variance_power=config_power,
                                  primary_metric="tweedie_deviance")
    positive = lambda _frame, outputs: np.maximum(outputs, 1.0)  # noqa: E731 - a log-link model's positive means
    baseline_dir = tmp_path / "baseline"
    shutil.copytree(reference["baseline_dir"], baseline_dir)
    test = prepared(spec, rows_of(spec, None).iloc[-2000:])
    y = test[spec.target].to_numpy(dtype=np.float64)
    out = positive(None, train_mod.predict(reference["model"], test))
    challenger = {"metrics": metrics_regression.headline(y, out, ("tweedie_deviance", 1.5)),
                  "model_info": {"loss": "tweedie", "tweedie_variance_power": 1.5}}
    (baseline_dir / "evaluation.json").write_text(json.dumps({"challenger": challenger}, default=float))
    window = write_window(tmp_path / "w", counted, reference["model"], part=0, label_coverage=0.6,
                          change_outputs=positive)
    args = monitor_args(counted, reference, window["capture"], str(tmp_path / "out"), labels=window["labels"],
                        baseline_dir=str(baseline_dir))
    assert monitor.main(args) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    quality_check = check(report, "quality_drop", "tweedie_deviance")
    warned = [c for c in report["checks"] if c["check"] == "deviance_not_compared"]
    if compared:
        assert quality_check["status"] != "skipped" and not warned
        return
    assert quality_check["status"] == "skipped"
    (warning,) = warned
    assert warning["status"] == "warn" and warning["detail"] == (
        "the serving version's tweedie_deviance was measured at tweedie_variance_power 1.5 and the model's is now "
        "1.8: the window's is not compared with it (another quantity) until a version trained at 1.8 serves")
