"""The replay command: traffic replayed through a registered local model, as capture the monitor judges."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from mlops_cli.local import replay
from mlops_cli.local.registry import LocalRegistry
from pipeline_code.monitoring import monitor


@pytest.fixture()
def registry(tmp_path, reference):
    # GIVEN a local registry holding the reference model, approved, with its baseline; the
    # evaluation sits next to baseline/ (the registry layout), not inside it
    baseline = tmp_path / "baseline_src"
    shutil.copytree(reference["baseline_dir"], baseline)
    evaluation = json.loads((baseline / "evaluation.json").read_text())
    (baseline / "evaluation.json").unlink()
    reg = LocalRegistry(str(tmp_path / "registry"))
    version = reg.register("churn", reference["model_dir"], evaluation=evaluation, artifacts={"baseline": str(baseline)})
    reg.approve("churn", version.version)
    return reg


def test_replay_cli_writes_capture_that_the_monitor_flags(tmp_path, spec, reference, registry, capsys):
    # WHEN traffic with drift 0.8 is replayed through the champion, labels for 70 % of it
    code = replay.main(["--registry", registry.root, "--model", "churn", "--rows", "2000", "--seed", "300", "--drift", "0.8",
                        "--capture-dir", str(tmp_path / "capture"), "--labels-dir", str(tmp_path / "labels"),
                        "--label-coverage", "0.7"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["labelled"] == 1400 and os.path.exists(result["capture_file"])
    # THEN the monitor, pointed at the registry version, finds the drift and the evaluation baseline
    out = tmp_path / "out"
    args = ["--model-spec", spec.to_json(), "--baseline-dir", result["baseline_dir"], "--model-dir", result["model_dir"],
            "--capture-dir", str(tmp_path / "capture"), "--labels-dir", str(tmp_path / "labels"), "--output-dir", str(out)]
    assert monitor.main(args) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["healthy"] and rep["baseline"]["evaluation_found"]
    assert "monthly_charges" in rep["sections"]["data_drift"]["drifted_features"]
    assert rep["summary"]["label_coverage"] == pytest.approx(0.7) and rep["summary"]["model_auc"] is not None


def _records(tmp_path, spec, curated):
    """GIVEN-helper: ``curated`` records as the curate job writes them, and their features as the feature job does."""
    from pipeline_code.features.compute import compute_features

    curated_dir, features_dir = tmp_path / "curated", tmp_path / "features"
    curated_dir.mkdir()
    features_dir.mkdir()
    curated.to_parquet(curated_dir / "part-0.parquet", index=False)
    compute_features(curated, spec.catalog_dataset).to_parquet(features_dir / "part-0.parquet", index=False)
    return str(features_dir), str(curated_dir)


@pytest.mark.parametrize("problem_type", ["multiclass_classification", "regression"])
def test_your_records_become_requests_with_their_labels_as_they_arrive(tmp_path, problem_type):
    import pandas as pd

    from pipeline_code.sample_data.generate import generate
    from tests.support.problem_types import dataset, make_spec

    # GIVEN six records in event-time disorder, times finer than a millisecond, and one whose label has not arrived
    spec = make_spec(problem_type)
    curated = generate(dataset(), 6, seed=3)
    curated["event_time"] = pd.to_datetime("2026-05-01T00:00:00Z") + pd.to_timedelta([5, 1, 4, 2, 3, 0], unit="s") \
        + pd.to_timedelta(123, unit="us")
    curated.loc[2, spec.target] = None
    features_dir, curated_dir = _records(tmp_path, spec, curated)

    # WHEN they are made requests, the oldest five
    requests = replay.traffic_from_records(spec, features_dir, curated_dir, rows=5)

    # THEN oldest first, each with its own record's label as it arrives (a class name, a value), none for the one
    # still missing, and the time as the feature job wrote it
    expected = curated.sort_values("event_time").iloc[:5]
    assert list(requests["inference_id"]) == [f"{i:08d}-{r}" for i, r in enumerate(expected["order_id"])]
    assert list(requests["inference_time"]) == [f"2026-05-01T00:00:0{s}.000Z" for s in range(5)]
    labels = [None if pd.isna(v) else v for v in expected[spec.target]]
    if problem_type == "regression":
        assert [None if pd.isna(v) else v for v in requests[spec.target]] == pytest.approx(labels)
    else:
        assert list(requests[spec.target]) == labels
    assert list(requests.columns) == [*spec.frame_features, spec.target, "inference_id", "inference_time"]


def test_a_record_labelled_twice_is_refused(tmp_path):
    from pipeline_code.sample_data.generate import generate
    from tests.support.problem_types import dataset, make_spec

    spec = make_spec("regression")
    curated = generate(dataset(), 3, seed=3)
    curated = curated.iloc[[0, 0, 1, 2]].reset_index(drop=True)
    curated.loc[1, "basket_value"] = 12.5
    features_dir, curated_dir = _records(tmp_path, spec, curated.iloc[[0, 2, 3]])
    curated.to_parquet(tmp_path / "curated" / "part-0.parquet", index=False)
    with pytest.raises(ValueError, match=rf"^{curated_dir}: record '{curated['order_id'][0]}' at .* has 2 labels; "
                                         "give each record one$"):
        replay.traffic_from_records(spec, features_dir, curated_dir)


def _capture_lines_before(spec, frame, scores, *, content_type="application/json", response_type=None):
    """``replay.capture_lines`` as it was before it built its lines a column at a time: json.dumps of each row's
    event (the oracle of the test below)."""
    import uuid

    def output_block(content_type, data):
        return {"observedContentType": content_type, "mode": "OUTPUT", "data": data,
                "encoding": "CSV" if content_type == "text/csv" else "JSON"}

    lines = []
    cols = list(spec.frame_features) if content_type == "application/json" else list(spec.features)
    records = frame[cols].astype(object).to_numpy()
    inference_ids, inference_times = frame["inference_id"], frame["inference_time"]
    for i in range(len(frame)):
        values = [replay._value(v) for v in records[i]]
        if content_type == "application/json":
            data = json.dumps(dict(zip(cols, values)))
        else:
            data = ",".join("" if v is None else str(v) for v in values)
        event = {
            "captureData": {
                "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data,
                                  "encoding": "JSON" if content_type == "application/json" else "CSV"},
                "endpointOutput": output_block(*replay.response(spec, scores[i], response_type)),
            },
            "eventMetadata": {"eventId": str(uuid.UUID(int=i + 1)), "inferenceId": str(inference_ids.iat[i]),
                              "inferenceTime": str(inference_times.iat[i])},
            "eventVersion": "0",
        }
        lines.append(json.dumps(event))
    return lines


@pytest.mark.parametrize("problem_type, response_type", [
    ("binary_classification", None), ("multiclass_classification", None), ("multiclass_classification", "text/csv"),
    ("regression", None), ("regression", "application/json"),
])
@pytest.mark.parametrize("content_type", ["application/json", "text/csv"])
def test_capture_lines_are_what_json_dumps_of_each_rows_event_wrote(problem_type, response_type, content_type):
    import numpy as np
    import pandas as pd

    from tests.support.problem_types import DATASET, make_spec

    # GIVEN generated traffic with every kind of value a frame can hand the replay: missing numbers and categories
    # (NaN, None, pd.NA), infinities, a huge integer, a boolean, numpy integers, text with quotes, backslashes,
    # control characters and non-ASCII letters, an integer id and a timestamp (not text) column
    returned = {**DATASET, "labels": [*DATASET["labels"], "returned"],
                "columns": {**DATASET["columns"], "returned": {"type": "integer", "min": 0, "max": 1}}}
    spec = make_spec(problem_type) if problem_type != "binary_classification" else make_spec(
        problem_type, name="order-returned", target="returned", dataset=returned)
    frame = replay.traffic(spec, 400, seed=7)
    numeric = [c for c in spec.frame_features if pd.api.types.is_float_dtype(frame[c])]
    category = "channel"
    frame[category] = frame[category].astype(object)
    frame.loc[0, numeric[0]] = np.inf
    frame.loc[1, numeric[0]] = -np.inf
    frame.loc[2, numeric[0]] = np.nan
    frame.loc[3, category] = None
    frame.loc[4, category] = pd.NA
    frame.loc[5, category] = 'say "hi"\\ \t\n caf\u00e9 \u2603 \U0001F600'
    frame.loc[6, category] = 10 ** 40
    frame.loc[7, category] = True
    frame.loc[8, category] = np.int64(-3)
    frame.loc[9, category] = 2.5
    frame.loc[10, numeric[0]] = 1e-300
    if problem_type == "binary_classification":
        frame["inference_id"] = np.arange(len(frame), dtype=np.int64) * 7
    frame["inference_time"] = pd.to_datetime(frame["inference_time"], utc=True)
    rng = np.random.default_rng(3)
    scores = (rng.dirichlet(np.ones(len(spec.classes)), size=len(frame)) if problem_type == "multiclass_classification"
              else rng.random(len(frame)) * (1.0 if problem_type == "binary_classification" else 500.0))

    # WHEN it is written as capture
    lines = replay.capture_lines(spec, frame, scores, content_type=content_type, response_type=response_type)

    # THEN every line is byte for byte what json.dumps of the row's event wrote
    assert lines == _capture_lines_before(spec, frame, scores, content_type=content_type, response_type=response_type)
