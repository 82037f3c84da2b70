"""The monitor's one streaming pass over a window (pipeline_code.monitoring.window_pass): the report does not depend
on how the window was cut into chunks, the row sample bounds only what needs records, and a failing step is
reported by its section (GIVEN / WHEN / THEN)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd
import pytest

from mlops_cli.local import replay
from pipeline_code.core import integrity
from pipeline_code.core.contract import ANSWERED_BY
from pipeline_code.core.problem import BINARY, MULTICLASS, REGRESSION
from pipeline_code.monitoring import capture, capture_columns, late_labels, quality, window_pass
from pipeline_code.monitoring.window_stats import RowSample, concat
from pipeline_code.training.baseline import bin_counts
from pipeline_code.training.train import predict
from pipeline_code.monitoring import report as report_mod
from tests.support.monitoring import run, write_window

TEXT = pd.StringDtype("pyarrow")
SECTIONS = ("data_drift", "prediction_drift", "data_quality", "model_quality", "bias", "attribution")


def same(actual: Any, expected: Any, path: str = "report") -> None:
    """Equal, but floats only to 1e-12 relative: chunking re-orders the sums behind means and metrics."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), path
        for key in expected:
            same(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            same(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-15), path
    else:
        assert actual == expected, path


def tiny_chunks(monkeypatch: pytest.MonkeyPatch, block_bytes: int = 3000) -> None:
    """Blocks of ``block_bytes`` for the columnar reader, 7 records at most for the line decoder."""
    monkeypatch.setattr(capture_columns, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(capture, "CHUNK_RECORDS", 7)


def chunk_sizes(monkeypatch: pytest.MonkeyPatch) -> List[int]:
    """The sizes of the chunks every WindowPass of this test is handed (a list that fills as the monitor runs)."""
    sizes: List[int] = []
    original = window_pass.WindowPass.__call__

    def counted(self: window_pass.WindowPass, chunk: pd.DataFrame) -> None:
        sizes.append(len(chunk))
        original(self, chunk)

    monkeypatch.setattr(window_pass.WindowPass, "__call__", counted)
    return sizes


def capture_path(window: Dict[str, Any], spec: Any) -> str:
    return os.path.join(window["capture"], spec.name, "AllTraffic", "capture.jsonl")


def unscored_window(root: Path, spec: Any, model: Any, *, rows: int, seed: int, content_type: str = "application/json",
                    label_coverage: Optional[float] = None) -> Dict[str, Any]:
    """A window whose capture holds the requests only (no endpointOutput: the monitor must score them), and the
    scores the model gives them."""
    window = write_window(root, spec, model, rows=rows, seed=seed, content_type=content_type, label_coverage=label_coverage)
    frame = replay.traffic(spec, rows, seed=seed)
    path = capture_path(window, spec)
    with open(path, encoding="utf-8") as handle:
        events = [json.loads(line) for line in handle if line.strip()]
    for event in events:
        del event["captureData"]["endpointOutput"]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(json.dumps(e) for e in events) + "\n")
    return {**window, "scores": predict(model, frame)}


def read(spec: Any, capture_dir: str, **kwargs: Any) -> capture.CaptureWindow:
    categorical = [f for f in spec.frame_features if spec.is_categorical(f)]
    extra = [f for f in spec.frame_features if f not in spec.features]
    return capture.read_capture(capture_dir, spec.features, categorical=categorical, extra_columns=extra,
                                dataset=spec.catalog_dataset, **kwargs)


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(capture.INFERENCE_ID, kind="mergesort").reset_index(drop=True)


@pytest.mark.parametrize("content_type, block_bytes", [
    ("application/json", 20_000),  # the line decoder (the JSON fast path off): chunks of 7 records (and the rest of each block)
    ("text/csv", 3_000),  # the columnar reader: a chunk per block of a few lines
])
def test_the_report_is_the_same_however_the_window_is_chunked(tmp_path, spec, reference, monkeypatch, content_type, block_bytes):
    # GIVEN a window of 1000 records, 80 % labelled
    window = write_window(tmp_path / "w", spec, reference["model"], seed=300, rows=1000, label_coverage=0.8,
                          content_type=content_type)
    sizes = chunk_sizes(monkeypatch)
    if content_type == "application/json":  # JSON requests go line by line (as when the fast path cannot read them)
        monkeypatch.setattr(capture_columns, "_json_schema", lambda decoder: None)
    # WHEN the monitor reads it in one chunk, then in chunks of a few records
    whole = run(spec, reference, window, str(tmp_path / "whole"))
    assert sizes == [1000]
    tiny_chunks(monkeypatch, block_bytes)
    chunked = run(spec, reference, window, str(tmp_path / "chunked"))
    assert len(sizes) > 140 and max(sizes[1:]) <= 7 and sum(sizes[1:]) == 1000
    # THEN every section and the summary are the same (sums to 1e-12)
    assert whole["healthy"] and whole["sections"]["row_sample"]["whole_window"], whole["errors"]
    assert whole["sections"]["model_quality"]["status"] == "pass"
    for name in (*SECTIONS, "capture", "row_sample", "cumulative_drift"):
        same(chunked["sections"][name], whole["sections"][name], name)
    same(chunked["summary"], whole["summary"], "summary")
    same(chunked["checks"], whole["checks"], "checks")
    assert (chunked["status"], chunked["errors"]) == (whole["status"], whole["errors"]) == ("ok", [])


def test_a_window_larger_than_the_row_sample_is_counted_whole_and_sampled_for_bias_and_attributions(tmp_path, spec, reference):
    # GIVEN a labelled window of 3000 records
    window = write_window(tmp_path / "w", spec, reference["model"], seed=301, label_coverage=0.8)
    shap = ["--shap-sample-rows", "5000"]  # attributions on every record of the sample, so its size shows
    # WHEN monitored with room for every record, for 1000 and for exactly 3000
    full = run(spec, reference, window, str(tmp_path / "full"), extra=shap)
    capped = run(spec, reference, window, str(tmp_path / "capped"), extra=[*shap, "--sample-rows", "1000"])
    exact = run(spec, reference, window, str(tmp_path / "exact"), extra=[*shap, "--sample-rows", "3000"])
    # THEN the capped report says it sampled
    assert capped["sections"]["row_sample"] == {"rows": 1000, "of": 3000, "size": 1000, "whole_window": False}
    assert full["sections"]["row_sample"] == {"rows": 3000, "of": 3000, "size": 200_000, "whole_window": True}
    # AND drift, prediction drift, data quality and model quality still read every record
    for name in ("data_drift", "prediction_drift", "data_quality", "model_quality"):
        assert capped["sections"][name] == full["sections"][name], name
    assert capped["sections"]["prediction_drift"]["rows"] == 3000
    assert sum(w["rows"] for w in capped["sections"]["model_quality"]["windows"]) == 3000
    tenure = capped["sections"]["data_drift"]["features"]["tenure_months"]
    assert sum(tenure["bins"]["window"]) == tenure["ks"]["n_window"] > 2900
    # AND bias and attributions read the 1000 sampled records
    assert sum(g["rows"] for g in capped["sections"]["bias"]["groups"].values()) == 1000
    assert sum(g["rows"] for g in full["sections"]["bias"]["groups"].values()) == 3000
    assert (capped["sections"]["attribution"]["rows"], full["sections"]["attribution"]["rows"]) == (1000, 3000)
    # AND a cap of the window's size keeps it whole: the same bias as without a cap
    assert exact["sections"]["row_sample"] == {"rows": 3000, "of": 3000, "size": 3000, "whole_window": True}
    assert exact["sections"]["bias"] == full["sections"]["bias"]
    assert exact["sections"]["attribution"] == full["sections"]["attribution"]


@pytest.mark.parametrize("content_type", ["application/json", "text/csv"])
def test_records_without_a_prediction_are_rescored_chunk_by_chunk_like_in_one_chunk(tmp_path, spec, reference, monkeypatch, content_type):
    # GIVEN a window of 600 requests whose responses were not captured
    window = unscored_window(tmp_path / "w", spec, reference["model"], rows=600, seed=302, content_type=content_type)
    sizes = chunk_sizes(monkeypatch)
    # WHEN monitored in one chunk and in chunks of a few records
    whole = run(spec, reference, window, str(tmp_path / "whole"))
    tiny_chunks(monkeypatch)
    chunked = run(spec, reference, window, str(tmp_path / "chunked"))
    assert sizes[0] == 600 and len(sizes) > 60
    # THEN every record was scored by the model, whatever the chunking
    for report in (whole, chunked):
        assert report["sections"]["capture"]["records_with_score"] == 0
        assert report["sections"]["rescoring"] == {"rescored_rows": 600, "checks": []}
        assert report["summary"]["records"] == 600
    # AND the prediction drift is the one of the model's scores of the window
    same(chunked["sections"]["prediction_drift"], whole["sections"]["prediction_drift"], "prediction_drift")
    drift_section = chunked["sections"]["prediction_drift"]
    edges = reference["docs"]["statistics"]["prediction"]["histogram"]["bin_edges"]
    assert drift_section["rows"] == 600
    assert drift_section["bins"]["window"] == bin_counts(window["scores"], edges)
    assert drift_section["window_mean_score"] == pytest.approx(float(np.mean(window["scores"])), rel=1e-12)


def test_a_model_that_fails_to_score_is_the_rescoring_sections_error_not_a_crash(tmp_path, spec, reference, monkeypatch):
    window = unscored_window(tmp_path / "w", spec, reference["model"], rows=300, seed=303, label_coverage=1.0)

    def broken(self, chunk):
        raise RuntimeError("model down")

    monkeypatch.setattr(window_pass.WindowPass, "_rescore", broken)
    tiny_chunks(monkeypatch)
    report = run(spec, reference, window, str(tmp_path / "out"))
    rescoring = report["sections"]["rescoring"]
    assert (rescoring["status"], rescoring["error"]) == ("error", "RuntimeError: model down")
    assert {"kind": "section_failed", "message": "rescoring: RuntimeError: model down"} in report["errors"]
    # the predictions the other sections judge are missing: the window is not trusted, nothing but health is published
    assert not report["healthy"] and report["status"] == "unhealthy" and not report["trusted"]
    assert {m["MetricName"] for m in report_mod.metric_data(report, "dev", "churn")} <= {
        "CapturedRecords", "MalformedRecords", "RefusedRecords", "MonitoringErrors", "MonitorHealthy"}
    # the other sections ran on the unscored records
    assert {*SECTIONS, "capture", "row_sample"} <= set(report["sections"])
    assert report["sections"]["data_drift"]["features"]["tenure_months"]["status"] == "pass"
    assert report["sections"]["data_quality"]["failed_features"] == []
    assert report["sections"]["prediction_drift"]["status"] == "skipped"
    assert report["sections"]["prediction_drift"]["detail"] == "0 scores < min_rows 100"
    assert report["sections"]["model_quality"]["scored_rows"] == 0
    assert report["sections"]["attribution"]["rows"] == 300


def second_join_fails(monkeypatch: pytest.MonkeyPatch) -> List[int]:
    """Make the second label join of a window fail; the list fills with the size of each chunk a join was tried on."""
    join, calls = quality.join_labels, []

    def second_fails(frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
        calls.append(len(frame))
        if len(calls) == 2:
            raise RuntimeError("label store gone")
        return join(frame, labels)

    monkeypatch.setattr(quality, "join_labels", second_fails)
    return calls


def test_a_model_that_stops_scoring_part_way_leaves_the_window_untrusted(tmp_path, spec, reference, monkeypatch):
    """GIVEN rescoring that fails on the second chunk (the first chunks were scored) WHEN monitored THEN prediction
    drift, quality and bias would judge only the chunks scored before: the window is not trusted, no retrain alarm."""
    window = unscored_window(tmp_path / "w", spec, reference["model"], rows=300, seed=305, label_coverage=1.0)
    calls = []
    rescore = window_pass.WindowPass._rescore

    def fails_second(self, chunk):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise RuntimeError("model down")
        return rescore(self, chunk)

    monkeypatch.setattr(window_pass.WindowPass, "_rescore", fails_second)
    tiny_chunks(monkeypatch)
    report = run(spec, reference, window, str(tmp_path / "out"))
    assert len(calls) == 2 and not report["trusted"] and report_mod.retrain_alarms(report) == []
    assert "could not trust this window" in report_mod.verdict(report)[0]


def test_labels_that_fail_to_join_midway_are_model_qualitys_error_and_bias_still_runs(tmp_path, spec, reference, monkeypatch):
    # GIVEN a labelled window of 600 records read in chunks, whose second label join fails, sampled to 300 records
    window = write_window(tmp_path / "w", spec, reference["model"], seed=304, rows=600, label_coverage=1.0)
    calls = second_join_fails(monkeypatch)
    tiny_chunks(monkeypatch, 20_000)
    # WHEN monitored
    report = run(spec, reference, window, str(tmp_path / "out"), extra=["--sample-rows", "300", "--min-group-rows", "50"])
    # THEN the join was not tried again, and model quality reports why it has no labels
    assert len(calls) == 2
    model_quality = report["sections"]["model_quality"]
    assert (model_quality["status"], model_quality["error"]) == ("error", "RuntimeError: label store gone")
    assert {"kind": "section_failed", "message": "model_quality: RuntimeError: label store gone",
            "section": "model_quality"} in report["errors"]
    # AND bias ran on the sample (the chunks after the failure kept the sample's columns, their labels missing)
    bias = report["sections"]["bias"]
    assert bias["status"] in ("pass", "fail") and sum(g["rows"] for g in bias["groups"].values()) == 300
    assert report["sections"]["row_sample"] == {"rows": 300, "of": 600, "size": 300, "whole_window": False}
    # AND the window's drift still stands: published for the retrain alarms while the health metrics page people
    published = {m["MetricName"]: m["Value"] for m in report_mod.metric_data(report, "dev", "churn")}
    assert report["trusted"] and not report["healthy"] and published["MonitorHealthy"] == 0
    assert {"DataDriftMaxPsi", "PredictionPsi"} <= set(published) and "ModelAuc" not in published
    assert report["sections"]["attribution"]["status"] == "pass"
    assert report["sections"]["data_drift"]["drifted_features"] == []


def test_after_a_failed_label_join_every_sampled_record_keeps_its_own_values(monkeypatch):
    # GIVEN 3 chunks of 5 records, a label for each, the second join failing, and room for 4 records (the sample
    # cuts its columns back while the chunks arrive)
    n = 15
    window = pd.DataFrame({
        capture.INFERENCE_ID: pd.Series([f"i{k}" for k in range(n)], dtype=TEXT),
        capture.INFERENCE_TIME: pd.Series(["2026-05-01T10:00:00Z"] * n, dtype=TEXT),
        capture.SCORE: np.arange(n) / 100, "row": np.arange(n, dtype=np.float64)})
    labels = pd.DataFrame({capture.INFERENCE_ID: [f"i{k}" for k in range(n)], quality.LABEL: (np.arange(n) % 2).astype(float),
                           quality.LABEL_TIME: "2026-06-01"})
    calls = second_join_fails(monkeypatch)
    sampled_rows = set()
    for seed in range(20):
        calls.clear()
        passed = window_pass.WindowPass(problem_type=BINARY, labels=labels, sample_rows=4, seed=seed)
        # WHEN the chunks pass
        for start in range(0, n, 5):
            passed(window.iloc[start:start + 5].reset_index(drop=True))
        # THEN the labels step stopped at the failure, its error kept for model quality
        assert calls == [5, 5]
        with pytest.raises(RuntimeError, match="label store gone"):
            passed.failure(window_pass.LABELS)
        assert passed.labelled_records()["row"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert passed.rows_per_day == {"2026-05-01": 5}
        # AND the sample holds 4 whole records: each its own score, its label when its chunk was joined, else none
        sample = passed.sample_frame()
        assert list(sample.columns) == [capture.SCORE, "row", quality.LABEL, quality.LABEL_TIME] and len(sample) == 4
        rows = sample["row"].to_numpy()
        assert sample[capture.SCORE].tolist() == (rows / 100).tolist()
        np.testing.assert_array_equal(sample[quality.LABEL].to_numpy(dtype=np.float64), np.where(rows < 5, rows % 2, np.nan))
        assert sample[quality.LABEL_TIME].isna().tolist() == (rows >= 5).tolist()
        assert set(sample[quality.LABEL_TIME].dropna()) <= {"2026-06-01"}
        sampled_rows.update(rows.tolist())
    assert min(sampled_rows) < 5 <= max(sampled_rows)  # samples held joined and unjoined records


def test_a_sample_that_fails_is_the_error_of_bias_and_attributions_only(tmp_path, spec, reference, monkeypatch):
    window = write_window(tmp_path / "w", spec, reference["model"], seed=305, rows=600, label_coverage=1.0)

    def broken(self, chunk):
        raise MemoryError("no room for the sample")

    monkeypatch.setattr(RowSample, "add", broken)
    report = run(spec, reference, window, str(tmp_path / "out"))
    for name in ("bias", "attribution"):
        section = report["sections"][name]
        assert (section["status"], section["error"]) == ("error", "MemoryError: no room for the sample"), name
        assert {"kind": "section_failed", "message": f"{name}: MemoryError: no room for the sample", "section": name} in report["errors"]
    assert len(report["errors"]) == 2
    assert report["sections"]["data_drift"]["drifted_features"] == [] and "error" not in report["sections"]["data_drift"]
    assert report["sections"]["prediction_drift"]["rows"] == 600
    assert report["sections"]["data_quality"]["failed_features"] == []
    assert report["sections"]["model_quality"]["labeled_rows"] == 600


def test_a_record_id_repeated_within_a_chunk_is_joined_with_its_label_like_the_whole_window():
    # GIVEN a chunk in which one labelled request id appears twice (a client retried with the same InferenceId)
    chunk = pd.DataFrame({
        capture.INFERENCE_ID: pd.Series(["a", "a", "b", "c"], dtype=TEXT),
        capture.INFERENCE_TIME: pd.Series(["2026-05-01T10:00:00Z"] * 4, dtype=TEXT),
        capture.SCORE: [0.2, 0.2, 0.7, 0.4]})
    labels = pd.DataFrame({capture.INFERENCE_ID: ["a", "b"], quality.LABEL: [0.0, 1.0]})
    streamed = window_pass.WindowPass(problem_type=BINARY, labels=labels)
    # WHEN the pass joins it
    streamed(chunk.copy())
    # THEN both records carry the label, as the whole window joined at once does
    assert "labels" not in streamed.failures
    whole = quality.join_labels(chunk, labels)
    pd.testing.assert_frame_equal(streamed.labelled_records(), whole[whole[quality.LABEL].notna()].reset_index(drop=True))
    assert streamed.labelled_records()[quality.LABEL].tolist() == [0.0, 0.0, 1.0]
    assert streamed.rows_per_day == {"2026-05-01": 4}


def merged(frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The label join as pandas' merge gives it (what join_labels did before it took the labels by index)."""
    left = frame.copy()
    left[capture.INFERENCE_ID] = left[capture.INFERENCE_ID].astype(str)
    joined = left.merge(labels, on=capture.INFERENCE_ID, how="left", suffixes=("", "__label"), validate="many_to_one")
    for c in [c for c in joined.columns if c.endswith("__label")]:
        base = c[: -len("__label")]
        joined[base] = joined[base].where(joined[base].notna(), joined[c])
        joined = joined.drop(columns=c)
    return joined


@pytest.mark.parametrize("matched", ["all", "some", "none"])
def test_the_label_join_is_the_merge_of_the_records_and_their_labels(matched):
    # GIVEN records (a repeated id, a missing time and attribute, rows labelled out of order) and labels whose
    # columns are whole numbers, flags, text, times and columns the records also have
    rng = np.random.default_rng(7)
    n = 9
    ids = ["a", "b", "a", "c", "d", "e", "f", "g", "h"]
    frame = pd.DataFrame({
        "tenure": rng.normal(size=n), "gender": pd.Series(["f", None, "m", None, "f", "m", None, "f", "m"], dtype=TEXT),
        capture.INFERENCE_ID: pd.Series(ids, dtype=TEXT),
        capture.INFERENCE_TIME: pd.Series(["2026-05-01T10:00:00Z", None] * 4 + [None], dtype=TEXT),
        capture.SCORE: rng.random(n), "flag": rng.random(n) > 0.5}, index=np.arange(n)[::-1] * 3)
    label_ids = {"all": ["h", "g", "f", "e", "d", "c", "b", "a"], "some": ["c", "a", "x"], "none": ["x", "y"]}[matched]
    m = len(label_ids)
    labels = pd.DataFrame({
        capture.INFERENCE_ID: label_ids, quality.LABEL: (np.arange(m) % 2).astype(float), "count": np.arange(m),
        "bool": np.arange(m) % 2 == 0, "gender": ["m"] * m, "group": pd.Series(["x", None] * (m // 2) + ["x"] * (m % 2), dtype=TEXT),
        capture.INFERENCE_TIME: ["2026-05-02T09:00:00Z"] * m, quality.LABEL_TIME: pd.to_datetime(["2026-06-01"] * m, utc=True),
        "tenure": np.full(m, 9.0)})
    # WHEN joined THEN the frame (values, dtypes, order, index) is the merge's
    pd.testing.assert_frame_equal(quality.join_labels(frame, labels), merged(frame, labels), check_exact=True)
    pd.testing.assert_frame_equal(quality.join_labels(frame.iloc[:0], labels), merged(frame.iloc[:0], labels), check_exact=True)


def test_labels_that_repeat_an_id_are_refused_by_the_label_join_as_by_the_merge():
    frame = pd.DataFrame({capture.INFERENCE_ID: ["a", "b"], capture.SCORE: [0.1, 0.2]})
    labels = pd.DataFrame({capture.INFERENCE_ID: ["a", "a"], quality.LABEL: [0.0, 1.0]})
    with pytest.raises(pd.errors.MergeError, match="Merge keys are not unique in right dataset; not a many-to-one merge"):
        quality.join_labels(frame, labels)


@pytest.mark.parametrize("missing", [(None, np.nan), (None, pd.NA), (np.nan, pd.NA), (None, pd.NaT)])
def test_labels_with_two_kinds_of_missing_id_are_refused_by_the_label_join_as_by_the_merge(missing):
    # The merge takes None, NaN, NA and NaT for one key; an index counts them as different ones.
    frame = pd.DataFrame({capture.INFERENCE_ID: ["a", "b"], capture.SCORE: [0.1, 0.2]})
    labels = pd.DataFrame({capture.INFERENCE_ID: pd.Series(["a", *missing], dtype=object), quality.LABEL: [0.0, 1.0, 1.0]})
    with pytest.raises(pd.errors.MergeError, match="Merge keys are not unique in right dataset; not a many-to-one merge"):
        quality.join_labels(frame, labels)


def labelled_chunk() -> Dict[str, pd.DataFrame]:
    """A chunk of four requests without the sensitive attribute and with one input missing, and labels that carry
    both, a request time for the requests that had none, and a label."""
    chunk = pd.DataFrame({
        "tenure": [1.0, np.nan, 3.0, 4.0],
        "gender": pd.Series([pd.NA] * 4, dtype=TEXT),
        capture.INFERENCE_ID: pd.Series(["a", "b", "c", "d"], dtype=TEXT),
        capture.INFERENCE_TIME: pd.Series([pd.NA, pd.NA, "2026-05-02T10:00:00Z", "2026-05-02T11:00:00.250Z"], dtype=TEXT),
        capture.SCORE: [0.2, 0.4, 0.6, 0.8]})
    labels = pd.DataFrame({capture.INFERENCE_ID: ["a", "b", "c"], quality.LABEL: [0.0, 1.0, 1.0],
                           capture.INFERENCE_TIME: ["2026-05-01T09:00:00Z"] * 3, "gender": ["f", "m", "f"],
                           "tenure": [9.0, 9.0, 9.0]})
    return {"chunk": chunk, "labels": labels}


def test_what_the_labels_fill_in_counts_for_quality_and_bias_not_for_presence_or_the_models_inputs():
    # GIVEN requests without the sensitive attribute and with a missing input, and labels that carry both
    given = labelled_chunk()
    streamed = window_pass.WindowPass(problem_type=BINARY, labels=given["labels"], inputs=["tenure"], extra_columns=["gender"])
    # WHEN the pass reads the chunk
    streamed(given["chunk"].copy())
    # THEN the traffic did not send the attribute (data quality skips it) though bias reads the labels' values;
    assert streamed.absent() == ["gender"]
    sample = streamed.sample_frame()
    assert sample["gender"].iloc[:3].tolist() == ["f", "m", "f"] and pd.isna(sample["gender"].iloc[3])
    # the model's input stays as the traffic sent it (attributions and the KS test read what the model got);
    assert sample["tenure"].tolist()[0] == 1.0 and math.isnan(sample["tenure"].tolist()[1]) and sample["tenure"].tolist()[2:] == [3.0, 4.0]
    # and the days of the records are read from the joined times, as the labelled records' days are
    assert streamed.rows_per_day == {"2026-05-01": 2, "2026-05-02": 2}
    assert sorted(quality.inference_days(streamed.labelled_records()).tolist()) == ["2026-05-01", "2026-05-01", "2026-05-02"]


def test_times_of_mixed_precision_are_each_read():
    times = pd.Series(["2026-05-01T10:00:00Z", "2026-05-02T10:00:00.250Z", "2026-05-03T10:00:00+02:00", "soon", None])
    assert quality.inference_days(pd.DataFrame({capture.INFERENCE_TIME: times})).tolist() == [
        "2026-05-01", "2026-05-02", "2026-05-03", "(unknown)", "(unknown)"]


def test_the_days_of_a_window_are_each_records_utc_day_in_its_rows_order():
    """GIVEN a window's records over several days, with offsets that move a record to the next or the previous UTC day,
    unreadable times, and the row labels of a filtered frame WHEN their days are read THEN each row gets its own UTC
    day (as formatting each time on its own gives), in the frame's order and with its index."""
    rng = np.random.default_rng(5)
    base = pd.Timestamp("2026-05-01T00:00:00Z")
    stamps = [base + pd.Timedelta(seconds=float(s)) for s in rng.uniform(0, 5 * 86_400, 300)]
    times = [t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for t in stamps] + [
        "2026-05-01T23:30:00-02:00", "2026-05-02T00:30:00+02:00", "later", None]
    frame = pd.DataFrame({capture.INFERENCE_TIME: times}, index=np.arange(len(times))[::-1] * 7)
    expected = [t.strftime("%Y-%m-%d") for t in stamps] + ["2026-05-02", "2026-05-01", "(unknown)", "(unknown)"]
    days = quality.inference_days(frame)
    assert days.tolist() == expected and days.index.equals(frame.index)
    assert quality.day_counts(frame) == pd.Series(expected).value_counts().to_dict()


def test_the_days_of_times_read_as_datetimes_are_their_utc_days():
    """GIVEN times a records file gives back as UTC datetimes (microseconds, as the records keep them), one before 1970,
    a missing one and two outside the nanosecond range (a file another writer made) WHEN their days are read THEN each
    is its UTC day (as formatting each on its own gives), the missing one (unknown); the late-label join's day codes
    name the same days. (Read as nanoseconds, 2300-01-02 was 1715-06-14.)"""
    stamps = ["1969-12-31T23:00:00", "2026-05-01T23:59:59.999999", "2026-05-02T00:00:00", "NaT", "2026-05-01T00:00:00",
              "2300-01-02T03:00:00", "1500-06-01T00:00:00"]
    times = pd.Series(np.array(stamps, dtype="datetime64[us]")).dt.tz_localize("UTC")
    assert str(times.dtype) == "datetime64[us, UTC]"
    expected = ["1969-12-31", "2026-05-01", "2026-05-02", "(unknown)", "2026-05-01", "2300-01-02", "1500-06-01"]
    assert quality.inference_days(pd.DataFrame({capture.INFERENCE_TIME: times})).tolist() == expected
    days = {"2026-05-02": 0}
    codes = late_labels._day_codes(pd.DataFrame({capture.INFERENCE_TIME: times}), days)
    assert [list(days)[code] for code in codes] == expected and list(days) == [
        "2026-05-02", "1969-12-31", "2026-05-01", "2300-01-02", "1500-06-01", "(unknown)"]


def test_a_failed_sample_is_reported_as_failed_not_as_a_whole_window(tmp_path, spec, reference, monkeypatch):
    # GIVEN a window whose sampling fails on its third chunk
    window = write_window(tmp_path / "w", spec, reference["model"], seed=308, rows=600)
    tiny_chunks(monkeypatch, 20_000)
    original, calls = RowSample.add, []

    def fails_third(self, chunk):
        calls.append(len(chunk))
        if len(calls) == 3:
            raise MemoryError("no room for the sample")
        original(self, chunk)

    monkeypatch.setattr(RowSample, "add", fails_third)
    # WHEN the monitor runs
    report = run(spec, reference, window, str(tmp_path / "out"))
    # THEN the report says the sample failed, for the whole window's records
    assert report["sections"]["row_sample"] == {"status": "error", "error": "MemoryError: no room for the sample",
                                                "of": 600, "size": window_pass.DEFAULT_SAMPLE_ROWS}


def mixed_window(root: Path, spec: Any, model: Any) -> str:
    """Capture of CSV requests (the columnar reader), JSON requests (the line decoder) and malformed lines."""
    window = write_window(root / "csv", spec, model, seed=306, rows=250, content_type="text/csv")
    other = write_window(root / "json", spec, model, seed=307, rows=150)
    path = capture_path(window, spec)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("{not json\n")
        handle.write(Path(capture_path(other, spec)).read_text(encoding="utf-8"))
        handle.write(json.dumps({"captureData": {"endpointInput": {"observedContentType": "text/csv", "data": "1,2",
                                                                   "encoding": "CSV"}}}) + "\n")
    return window["capture"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, spec, reference) -> str:
    """The capture directory of :func:`mixed_window`, written once for the tests that only read it."""
    return mixed_window(tmp_path_factory.mktemp("mixed"), spec, reference["model"])


@pytest.fixture(scope="module")
def mixed_streamed(mixed, spec) -> Dict[str, Any]:
    """:func:`mixed` streamed in chunks of a few records to a consumer that keeps them (read once for the tests that
    only look at the chunks: the window read, and how many chunks there are)."""
    chunks: List[pd.DataFrame] = []
    with pytest.MonkeyPatch.context() as patch:
        tiny_chunks(patch)
        streamed = read(spec, mixed, consume=chunks.append)
    return {"window": streamed, "chunks": chunks}


def test_the_chunks_handed_to_a_consumer_are_the_window_read_whole(mixed, mixed_streamed, spec, monkeypatch):
    # GIVEN a capture of CSV and JSON requests and malformed lines, and chunks of a few records
    capture_dir = mixed
    tiny_chunks(monkeypatch)
    # WHEN it is read whole and streamed to a consumer
    whole = read(spec, capture_dir)
    chunks, streamed = mixed_streamed["chunks"], mixed_streamed["window"]
    # THEN the consumer got every record, typed alike in every chunk, and the counts are the same
    assert len(chunks) > 60 and whole.records == streamed.records == 400 == sum(len(c) for c in chunks)
    assert streamed.summary() == whole.summary()
    assert whole.summary()["malformed"]["reasons"] == {"invalid_json": 1, "schema_csv_width": 1}
    assert all(list(c.columns) == list(whole.frame.columns) for c in chunks)
    assert all(c.dtypes.to_dict() == chunks[0].dtypes.to_dict() for c in chunks)
    pd.testing.assert_frame_equal(by_id(concat(chunks)), by_id(whole.frame))
    assert len(streamed.frame) == 0  # streamed: nothing collected


@pytest.mark.parametrize("failing", ["third", "last"])
def test_an_error_of_the_consumer_is_raised_by_read_capture(mixed, mixed_streamed, spec, monkeypatch, failing):
    capture_dir = mixed
    tiny_chunks(monkeypatch)
    if failing == "third":
        fail_at = 3
    else:  # the last chunk: as many as the same read handed a consumer that kept them
        fail_at = len(mixed_streamed["chunks"])
    seen: List[int] = []

    class ConsumerFailed(Exception):
        pass

    def consumer(chunk: pd.DataFrame) -> None:
        seen.append(len(chunk))
        if len(seen) == fail_at:
            raise ConsumerFailed(f"chunk {fail_at}")

    # WHEN the consumer fails on a chunk (the worker thread's error: at a later chunk or at the end)
    with pytest.raises(ConsumerFailed) as raised:
        read(spec, capture_dir, consume=consumer)
    # THEN read_capture raises it, and the consumer was handed no chunk after it failed
    assert str(raised.value) == f"chunk {fail_at}"
    assert len(seen) == fail_at


def test_a_failed_read_leaves_no_consumer_thread_behind(mixed, spec, monkeypatch):
    import threading

    capture_dir = mixed
    tiny_chunks(monkeypatch)

    def consumer(chunk: pd.DataFrame) -> None:
        raise RuntimeError("consumer broke")

    before = {t for t in threading.enumerate() if t.name == "capture-consumer"}
    # WHEN three reads fail on their consumer
    for _ in range(3):
        with pytest.raises(RuntimeError, match="consumer broke"):
            read(spec, capture_dir, consume=consumer)
    # THEN each ended its worker thread
    assert {t for t in threading.enumerate() if t.name == "capture-consumer"} == before


def quality_window(problem_type: str) -> Dict[str, Any]:
    """Records of 8 days (and a few without a readable time), a score per record but some, and labels for the
    oldest days and a few of the later ones."""
    rng = np.random.default_rng(7)
    n = 2400
    times = pd.Timestamp("2026-05-01T00:00:00Z") + pd.to_timedelta(np.sort(rng.uniform(0, 8, n)), unit="D")
    frame = pd.DataFrame({capture.INFERENCE_ID: [f"q{i}" for i in range(n)],
                          capture.INFERENCE_TIME: times.strftime("%Y-%m-%dT%H:%M:%SZ").astype(object)})
    frame.loc[rng.choice(n, 15, replace=False), capture.INFERENCE_TIME] = "not a time"
    classes = ["a", "b", "c"]
    if problem_type == BINARY:
        truth = (rng.random(n) < 0.3).astype(np.float64)
        frame[capture.SCORE] = np.clip(0.3 + 0.3 * (truth - 0.3) + rng.normal(0, 0.2, n), 0, 1)
        kwargs: Dict[str, Any] = {}
        base = {"auc": 0.8, "log_loss": 0.5}
    elif problem_type == REGRESSION:
        truth = rng.gamma(2.0, 20.0, n)
        frame[capture.SCORE] = truth + rng.normal(0, 10, n)
        kwargs = {"problem_type": REGRESSION}
        base = {"r2": 0.7, "rmse": 12.0, "mae": 9.0, "bias": 0.0, "mean_target": 40.0}
    else:
        truth = rng.integers(0, 3, n).astype(np.float64)
        raw = rng.random((n, 3)) + np.eye(3)[truth.astype(int)]
        P = raw / raw.sum(axis=1, keepdims=True)
        frame[capture.SCORE] = P.argmax(axis=1).astype(np.float64)
        for k, name in enumerate(classes):
            frame[capture.probability_column(name)] = P[:, k]
        frame.loc[rng.choice(n, 100, replace=False), capture.probability_column("b")] = np.nan
        kwargs = {"problem_type": MULTICLASS, "classes": classes}
        base = {"auc": 0.7, "log_loss": 0.9, "accuracy": 0.5, "macro_f1": 0.5}
    frame.loc[rng.choice(n, 40, replace=False), capture.SCORE] = np.nan
    labelled = (np.arange(n) < n * 0.55) | (rng.random(n) < 0.1)
    labels = pd.DataFrame({capture.INFERENCE_ID: frame[capture.INFERENCE_ID][labelled].to_numpy(),
                           quality.LABEL: truth[labelled], quality.LABEL_TIME: "2026-06-01"})
    return {"frame": frame, "labels": labels, "kwargs": kwargs, "base": base}


@pytest.mark.parametrize("problem_type", [BINARY, REGRESSION, MULTICLASS])
def test_model_quality_of_the_labelled_records_and_the_days_counts_is_that_of_the_whole_window(problem_type):
    # GIVEN a window, its labels, and the labelled records alone with the records per day of the whole window
    w = quality_window(problem_type)
    joined = quality.join_labels(w["frame"], w["labels"])
    labelled = joined[joined[quality.LABEL].notna()]
    days = quality.day_counts(w["frame"])
    # WHEN model quality is computed on each
    whole = quality.model_quality(joined, w["base"], **w["kwargs"])
    alone = quality.model_quality(labelled, w["base"], rows_per_day=days, **w["kwargs"])
    # THEN it is the same section: coverage, days scored, metrics, checks
    assert alone == whole
    assert quality.model_quality(joined, w["base"], rows_per_day=quality.day_counts(joined), **w["kwargs"]) == whole
    assert whole["status"] != "skipped" and len(labelled) < len(joined)
    assert {d["day"] for d in whole["windows"]} >= {"(unknown)"} and sum(d["rows"] for d in whole["windows"]) == 2400
    scored = [d["scored"] for d in whole["windows"]]
    assert any(scored) and not all(scored)
    # (without the days' counts the labelled records alone would look fully covered: the counts matter)
    assert quality.model_quality(labelled, w["base"], **w["kwargs"])["label_coverage"] > whole["label_coverage"]


def rollout_window(root: Path, spec: Any, reference: Dict[str, Any], *, rows: int, previous: int, name: bool) -> Dict[str, Any]:
    """A window whose first ``previous`` requests the previous version answered (scores pushed up by 0.4) and the rest
    the serving one, in JSON responses that say which artefact answered when ``name``."""
    window = write_window(root, spec, reference["model"], rows=rows, seed=340)
    scores = predict(reference["model"], replay.traffic(spec, rows, seed=340))
    serving = integrity.model_digest(reference["model_dir"])
    path = capture_path(window, spec)
    with open(path, encoding="utf-8") as handle:
        events = [json.loads(line) for line in handle if line.strip()]
    for i, event in enumerate(events):
        old = i < previous
        body: Dict[str, Any] = {"predictions": [{"score": min(1.0, float(scores[i]) + 0.4) if old else float(scores[i])}]}
        if name:
            body[ANSWERED_BY] = {"name": spec.name, "version": "6" if old else "7", "artefact_sha256": "0" * 64 if old else serving}
        event["captureData"]["endpointOutput"] = {"observedContentType": "application/json", "mode": "OUTPUT",
                                                  "data": json.dumps(body), "encoding": "JSON"}
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(json.dumps(e) for e in events) + "\n")
    return {**window, "scores": scores}


def test_a_window_that_holds_a_rollout_judges_the_serving_versions_predictions_not_the_previous_ones(tmp_path, spec, reference):
    # GIVEN a window in which the previous version (whose scores sit 0.4 higher) answered the first 500 of 1,500 requests
    unnamed = rollout_window(tmp_path / "unnamed", spec, reference, rows=1500, previous=500, name=False)
    named = rollout_window(tmp_path / "named", spec, reference, rows=1500, previous=500, name=True)
    # WHEN the responses do not say which model answered, the previous version's answers pass as the serving one's
    blind = run(spec, reference, unnamed, str(tmp_path / "blind"))
    assert blind["sections"]["prediction_drift"]["status"] == "fail" and "answered_by" not in blind["sections"]["capture"]
    # WHEN they do (every JSON response names its model)
    report = run(spec, reference, named, str(tmp_path / "report"))
    # THEN those 500 records are rescored by the serving version and the predictions judged are its own: no drift
    assert report["sections"]["rescoring"] == {"rescored_rows": 500, "other_versions": {"0" * 64: 500}, "checks": []}
    drift_section = report["sections"]["prediction_drift"]
    assert drift_section["status"] == "pass"
    assert drift_section["window_mean_score"] == pytest.approx(float(np.mean(named["scores"])), rel=1e-6)
    # AND the capture section counts the records per answering model, and the verdict says what happened
    serving = integrity.model_digest(reference["model_dir"])
    assert report["sections"]["capture"]["answered_by"] == {
        "models": {"0" * 64: {"version": "6", "records": 500}, serving: {"version": "7", "records": 1000}}, "unattributed": 0}
    assert ("500 records were answered by another model version (version 6; the window holds a rollout): they are "
            "judged by the serving version's own predictions, rescored.") in report_mod.verdict(report)
