"""What serving answers is what the drift monitor decodes.

Each test sends real requests through the hooks, wraps request and response the way
SageMaker data capture (real-time, serverless, async) or batch transform stores them, and
decodes them with ``pipeline_code.monitoring.capture.read_capture`` called as ``monitor.py``
calls it (with the model's dataset, so raw-field requests are completed into features).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
from pathlib import Path
from typing import List, Optional

import numpy as np
import pandas as pd
import pytest

from pipeline_code.core import integrity, media_types
from pipeline_code.monitoring.capture import ANSWERED
from pipeline_code.serving import inference as inf
from tests.support.capture import batch_transform, decode_capture


def _capture_event(request: bytes, content_type: str, response: bytes, accept: str, *, inference_id: Optional[str],
                   base64_encoded: bool = False) -> str:
    """One line of a SageMaker data-capture file (``<prefix>/<endpoint>/<variant>/YYYY/MM/DD/HH/*.jsonl``)."""

    def block(data: bytes, observed: str, mode: str) -> dict:
        if base64_encoded:
            return {"observedContentType": observed, "mode": mode, "data": base64.b64encode(data).decode(), "encoding": "BASE64"}
        encoding = "CSV" if observed == inf.CSV else "JSON"
        return {"observedContentType": observed, "mode": mode, "data": data.decode(), "encoding": encoding}

    metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": "2026-11-26T08:00:00Z"}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    return json.dumps({
        "captureData": {"endpointInput": block(request, content_type, "INPUT"),
                        "endpointOutput": block(response, accept, "OUTPUT")},
        "eventMetadata": metadata,
        "eventVersion": "0",
    })


def _write_capture(root: Path, lines: List[str]) -> Path:
    path = root / "capture" / "endpoint" / "AllTraffic" / "2026" / "11" / "26" / "08" / "capture.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    return root / "capture"


def _assert_clean(window, records: int) -> None:
    summary = window.summary()
    assert summary["malformed"]["count"] == 0, summary["malformed"]
    assert not window.schema_changed, summary["schema"]
    assert window.records == records and summary["records_with_score"] == records


def _assert_features_match(trained, frame, expected_rows) -> None:
    for name in trained.spec.features:
        got = frame[name].to_numpy()
        want = expected_rows[name].to_numpy()
        if trained.spec.is_categorical(name):
            assert [None if v is None or v != v else v for v in got] == [None if v is None else v for v in want], name
        else:
            # capture.py reads CSV fields with pandas' fast float parser, which may differ in the last ulp.
            assert np.allclose(got.astype(float), want.astype(float), rtol=1e-12, atol=0, equal_nan=True), name


def _json_response_scores(body: bytes) -> List[float]:
    return [p["score"] for p in json.loads(body)["predictions"]]


def test_realtime_json_precomputed_request_is_decoded(trained, tmp_path):
    """GIVEN JSON requests of precomputed features (+ sensitive attribute) WHEN captured THEN features, scores and ids decode."""
    model = inf.model_fn(trained.model_dir)
    records = trained.feature_records(40, with_extras=True)
    lines, scores = [], []
    for k in range(0, 40, 4):  # 10 requests of 4 records each
        request = json.dumps({"instances": records[k:k + 4]}).encode()
        response, accept = inf.invoke(model, request, content_type=inf.JSON)
        scores.extend(_json_response_scores(response))
        lines.append(_capture_event(request, inf.JSON, response, accept, inference_id=f"req-{k // 4}"))
    window = decode_capture(trained, _write_capture(tmp_path, lines))
    _assert_clean(window, 40)
    assert np.array_equal(window.frame["score"].to_numpy(), np.asarray(scores))
    assert np.array_equal(window.frame["score"].to_numpy(), trained.evaluation_scores[:40])
    assert window.frame["inference_id"].tolist()[:5] == ["req-0:0", "req-0:1", "req-0:2", "req-0:3", "req-1:0"]
    _assert_features_match(trained, window.frame, trained.test.iloc[:40])
    extra = trained.spec.sensitive_attribute
    missing_as_none = [None if pd.isna(v) else v for v in window.frame[extra]]  # text columns hold pd.NA
    assert missing_as_none == trained.test[extra].iloc[:40].tolist()


def test_realtime_csv_request_base64_captured_is_decoded(trained, tmp_path):
    model = inf.model_fn(trained.model_dir)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for record in trained.feature_records(12):
        writer.writerow(["" if record[f] is None else record[f] for f in model.feature_order])
    request = buffer.getvalue().encode()
    response, accept = inf.invoke(model, request, content_type=inf.CSV, accept=inf.JSON)
    window = decode_capture(trained, _write_capture(tmp_path, [
        _capture_event(request, inf.CSV, response, accept, inference_id="batch-1", base64_encoded=True)]))
    _assert_clean(window, 12)
    assert np.array_equal(window.frame["score"].to_numpy(), trained.evaluation_scores[:12])
    _assert_features_match(trained, window.frame, trained.test.iloc[:12])


def test_sagemakers_capture_of_a_json_response_says_which_model_answered_and_of_a_csv_one_does_not(trained, tmp_path):
    """GIVEN SageMaker's own capture (no model in the record's metadata) WHEN one request is answered in JSON and one in
    CSV THEN the JSON one is attributed to the artefact that answered it and the CSV one is unattributed."""
    model = inf.model_fn(trained.model_dir)
    request = json.dumps(trained.feature_records(3)).encode()
    lines = [_capture_event(request, inf.JSON, *inf.invoke(model, request, content_type=inf.JSON, accept=accept),
                            inference_id=f"req-{accept}") for accept in (inf.JSON, inf.CSV)]
    window = decode_capture(trained, _write_capture(tmp_path, lines))
    _assert_clean(window, 6)
    digest = integrity.model_digest(trained.model_dir)
    assert window.frame[ANSWERED].fillna("none").tolist() == [digest] * 3 + ["none"] * 3
    assert window.summary()["answered_by"] == {"models": {digest: {"version": None, "records": 3}}, "unattributed": 3}


@pytest.mark.parametrize("content_type", [inf.JSON, inf.CSV])
def test_padded_or_shouted_categories_are_decoded_as_serving_read_them(trained, tmp_path, content_type):
    """GIVEN precomputed requests whose text features are padded and upper-cased (serving scores them as the values
    training saw) WHEN captured and decoded THEN the monitor counts the values the model scored, not unseen ones."""
    model = inf.model_fn(trained.model_dir)
    records = trained.feature_records(12)
    text = [f for f in model.feature_order if trained.spec.is_categorical(f)]
    assert text, "the sample models have categorical features"
    shouted = [{k: (f"  {v.upper()} " if k in text and isinstance(v, str) else v) for k, v in r.items()} for r in records]
    if content_type == inf.JSON:
        request = json.dumps({"instances": shouted}).encode()
    else:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(
            [["" if r[f] is None else r[f] for f in model.feature_order] for r in shouted])
        request = buffer.getvalue().encode()
    response, accept = inf.invoke(model, request, content_type=content_type, accept=inf.JSON)
    window = decode_capture(trained, _write_capture(tmp_path, [
        _capture_event(request, content_type, response, accept, inference_id="r")]))
    _assert_clean(window, 12)
    assert np.array_equal(window.frame["score"].to_numpy(), trained.evaluation_scores[:12])
    _assert_features_match(trained, window.frame, trained.test.iloc[:12])


def test_record_inference_id_wins_over_the_header(trained, tmp_path):
    """Batch clients put ``inference_id`` in the record; capture keys ground truth by it."""
    model = inf.model_fn(trained.model_dir)
    records = trained.feature_records(3)
    for i, record in enumerate(records):
        record["inference_id"] = f"order-{i}"
    request = json.dumps(records).encode()
    response, accept = inf.invoke(model, request, content_type=inf.JSON)
    window = decode_capture(trained, _write_capture(tmp_path, [_capture_event(request, inf.JSON, response, accept, inference_id="hdr")]))
    _assert_clean(window, 3)
    assert window.frame["inference_id"].tolist() == ["order-0", "order-1", "order-2"]
    assert [p["inference_id"] for p in json.loads(response)["predictions"]] == ["order-0", "order-1", "order-2"]


@pytest.mark.parametrize("content_type", [inf.JSONLINES, inf.CSV])
def test_batch_transform_input_and_output_files_are_decoded(trained, tmp_path, content_type):
    """GIVEN a batch input file split by line into mini-batches WHEN outputs are assembled by line THEN X / X.out decode."""
    model = inf.model_fn(trained.model_dir)
    records = trained.feature_records(50)
    if content_type == inf.JSONLINES:
        input_lines = [json.dumps(dict(r, inference_id=f"row-{i}")) for i, r in enumerate(records)]
    else:
        input_lines = [",".join("" if r[f] is None else str(r[f]) for f in model.feature_order) for r in records]
    batch = batch_transform(model, input_lines, tmp_path / "batch", per_invocation=16, content_type=content_type)
    window = decode_capture(trained, batch)
    _assert_clean(window, 50)
    assert np.array_equal(window.frame["score"].to_numpy(), trained.evaluation_scores[:50])
    if content_type == inf.JSONLINES:
        assert window.frame["inference_id"].tolist() == [f"row-{i}" for i in range(50)]
    _assert_features_match(trained, window.frame, trained.test.iloc[:50])


def test_realtime_raw_field_request_is_decoded(trained, tmp_path):
    model = inf.model_fn(trained.model_dir)
    request = json.dumps({"instances": trained.raw_records(10)}).encode()
    response, accept = inf.invoke(model, request, content_type=inf.JSON)
    window = decode_capture(trained, _write_capture(tmp_path, [_capture_event(request, inf.JSON, response, accept, inference_id="r")]))
    assert np.array_equal(window.frame["score"].to_numpy(), trained.evaluation_scores[:10])
    _assert_clean(window, 10)
    _assert_features_match(trained, window.frame, trained.test.iloc[:10])


def test_a_window_of_single_record_raw_requests_is_computed_together_and_a_bad_one_costs_a_few_calls(
        trained, tmp_path, monkeypatch):
    """GIVEN 40 captured requests of one raw record each (the usual shape of real-time traffic), two of them lacking a
    required raw field WHEN the window is decoded THEN every good record has the features serving computed for it, the
    two bad ones are left for the monitor's own checks, and the features are computed a few times per window (the two
    bad records split the batch in halves), not once per request: each call costs ~4 ms, hours at a million requests."""
    from pipeline_code.serving import records as serving_records

    model = inf.model_fn(trained.model_dir)
    raw = trained.raw_records(40)
    required = serving_records.FeatureContract.create(
        trained.spec.catalog_dataset, trained.spec.features,
        [f for f in trained.spec.frame_features if f not in trained.spec.features]).required_raw_fields[0]
    events = []
    for i, record in enumerate(raw):
        sent = {k: v for k, v in record.items() if k != required} if i in (7, 31) else record
        request = json.dumps(sent).encode()
        response, accept = inf.invoke(model, json.dumps(record).encode(), content_type=inf.JSON)
        events.append(_capture_event(request, inf.JSON, response, accept, inference_id=f"r{i}"))
    calls = []
    original = serving_records.feature_rows
    monkeypatch.setattr(serving_records, "feature_rows", lambda *a, **k: calls.append(1) or original(*a, **k))
    window = decode_capture(trained, _write_capture(tmp_path, events))
    good = [i for i in range(40) if i not in (7, 31)]
    assert len(calls) <= 16, len(calls)
    frame = window.frame.set_index("inference_id")
    assert np.array_equal(frame.loc[[f"r{i}" for i in good], "score"].to_numpy(), trained.evaluation_scores[good])
    _assert_features_match(trained, frame.loc[[f"r{i}" for i in good]].reset_index(), trained.test.iloc[good])


def test_realtime_jsonlines_request_is_decoded(trained, tmp_path):
    model = inf.model_fn(trained.model_dir)
    request = "\n".join(json.dumps(r) for r in trained.feature_records(6)).encode()
    response, accept = inf.invoke(model, request, content_type=inf.JSONLINES, accept=inf.JSONLINES)
    window = decode_capture(trained, _write_capture(tmp_path, [_capture_event(request, inf.JSONLINES, response, accept, inference_id="j")]))
    _assert_clean(window, 6)
    assert np.array_equal(window.frame["score"].to_numpy(), trained.evaluation_scores[:6])


@pytest.mark.parametrize("base64_encoded", [False, True], ids=["json-encoded", "base64"])
@pytest.mark.parametrize("content_type", sorted(media_types.JSONLINES_ALIASES) + ["Application/X-NDJSON; charset=utf-8"])
def test_every_json_lines_spelling_serving_accepts_is_decoded(trained, tmp_path, content_type, base64_encoded):
    """GIVEN a JSON Lines request under any spelling serving accepts (SageMaker captures types its JsonContentTypes
    does not list as base64) WHEN captured THEN the monitor reads every record, none malformed."""
    model = inf.model_fn(trained.model_dir)
    request = "\n".join(json.dumps(r) for r in trained.feature_records(6)).encode()
    response, accept = inf.invoke(model, request, content_type=content_type, accept=content_type)
    window = decode_capture(trained, _write_capture(tmp_path, [
        _capture_event(request, content_type, response, accept, inference_id="j", base64_encoded=base64_encoded)]))
    _assert_clean(window, 6)
    assert np.array_equal(window.frame["score"].to_numpy(), trained.evaluation_scores[:6])


@pytest.mark.parametrize("content_type", [inf.JSON, inf.JSONLINES, inf.CSV])
def test_a_body_starting_with_a_byte_order_mark_is_decoded_as_serving_read_it(trained, tmp_path, content_type):
    """GIVEN a request whose text starts with a UTF-8 byte-order mark (Windows tools write one), which serving
    answers WHEN captured THEN the monitor reads it too (it was counted malformed: invalid JSON)."""
    model = inf.model_fn(trained.model_dir)
    records = trained.feature_records(3)
    if content_type == inf.CSV:
        body = "\n".join(",".join("" if r[f] is None else str(r[f]) for f in model.feature_order) for r in records)
    elif content_type == inf.JSON:
        body = json.dumps({"instances": records})
    else:
        body = "\n".join(json.dumps(r) for r in records)
    request = ("\ufeff" + body).encode()
    response, accept = inf.invoke(model, request, content_type=content_type, accept=inf.JSON)
    window = decode_capture(trained, _write_capture(tmp_path, [
        _capture_event(request, content_type, response, accept, inference_id="bom", base64_encoded=True)]))
    _assert_clean(window, 3)
    assert np.array_equal(window.frame["score"].to_numpy(), np.asarray(_json_response_scores(response)))


def test_a_line_separator_inside_a_captured_value_is_not_a_malformed_line(trained, tmp_path):
    """U+2028 is legal inside a JSON string: serving and the capture decoder split records at line feeds only."""
    model = inf.model_fn(trained.model_dir)
    records = trained.feature_records(4)
    for record in records:
        record["inference_id"] = "note\u2028two"  # an id is free text, echoed back and captured
    request = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    response, accept = inf.invoke(model, request, content_type=inf.JSONLINES, accept=inf.JSONLINES)
    window = decode_capture(trained, _write_capture(tmp_path, [_capture_event(request, inf.JSONLINES, response, accept,
                                                                              inference_id="u")]))
    _assert_clean(window, 4)
    assert np.array_equal(window.frame["score"].to_numpy(), trained.evaluation_scores[:4])


def test_complete_records_turns_raw_records_into_the_features_serving_scored(trained):
    """The helper the monitor needs for raw-field requests: same features as serving, bad records untouched."""
    from pipeline_code.serving.records import FeatureContract, complete_records

    spec = trained.spec
    contract = FeatureContract.create(spec.catalog_dataset, spec.features, [f for f in spec.frame_features if f not in spec.features])
    raw = trained.raw_records(6)
    raw[0]["inference_id"] = "keep-me"
    broken = {k: v for k, v in raw[1].items() if k != contract.required_raw_fields[0]}
    precomputed = trained.feature_records(3)[2]
    records = [raw[0], broken, precomputed, *raw[3:]]
    completed = complete_records(records, contract)
    assert completed[1] is broken and completed[2] is precomputed
    assert completed[0]["inference_id"] == "keep-me"
    expected = trained.feature_records(6, with_extras=True)
    for i in (0, 3, 4, 5):
        got = {k: v for k, v in completed[i].items() if k != "inference_id"}
        assert got.keys() == expected[i].keys()
        for name, value in expected[i].items():
            assert got[name] == value or (got[name] is None and value is None), (i, name)


@pytest.mark.parametrize("content_type", [inf.JSONLINES, inf.CSV])
def test_a_captured_request_with_a_blank_line_before_a_record_is_a_refusal_and_one_ending_in_line_feeds_pairs(
        trained, tmp_path, content_type):
    """GIVEN captured endpoint traffic: a request with a blank line between its records (refused by the hooks: the
    400's message as text/plain, stored BASE64) and one ending in blank lines (scored) WHEN the window is decoded THEN
    the first is one refused request (the record as a whole at fault), not malformed and not scored, and the second's
    records each get their own score."""
    model = inf.model_fn(trained.model_dir)
    if content_type == inf.JSONLINES:
        rows = [json.dumps(r) for r in trained.feature_records(3)]
    else:
        rows = [",".join("" if r[f] is None else repr(r[f]) if isinstance(r[f], float) else str(r[f])
                         for f in model.feature_order) for r in trained.feature_records(3)]
    blank = f"{rows[0]}\n\n{rows[1]}\n".encode()
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(model, blank, content_type=content_type, accept=content_type)
    ending = ("\n".join(rows) + "\n\n\n").encode()
    response, accept = inf.invoke(model, ending, content_type=content_type, accept=content_type)
    window = decode_capture(trained, _write_capture(tmp_path, [
        _capture_event(blank, content_type, str(caught.value).encode(), media_types.REFUSAL, inference_id="b",
                       base64_encoded=True),
        _capture_event(ending, content_type, response, accept, inference_id="e"),
    ]))
    summary = window.summary()
    assert (summary["refused"]["count"], summary["refused"]["fields"]) == (1, {"(record)": 1}), summary["refused"]
    _assert_clean(window, 3)
    assert np.array_equal(window.frame["score"].to_numpy(), trained.evaluation_scores[:3])


def test_a_captured_400_is_counted_under_the_field_its_batch_error_line_names(trained, tmp_path, monkeypatch):
    """GIVEN captured endpoint 400s of the refusals callers make most (a precomputed record lacking a feature, a raw
    record lacking a required field, a wrong type, a value outside its declaration; the hooks' own text/plain answers)
    WHEN the window is decoded THEN each refused request is counted under the field the same record's batch error
    line names first (the documented pattern core.contract.REFUSED_FIELD reads it from the 400), so the report's and
    the error's per-field counts name the same field for live traffic and batch (before: a missing feature, "missing
    feature 'x'", was counted under "(record)")."""
    from pipeline_code.core.contract import BATCH_RECORD_ERRORS_ENV, record_error_of

    model = inf.model_fn(trained.model_dir)
    raw, features = trained.raw_records(1)[0], trained.feature_records(1)[0]
    numeric = next(c for c in model.required_raw_fields if trained.dataset.column(c).dtype in ("integer", "double"))
    requests = {
        "missing feature": {k: v for k, v in features.items() if k != model.feature_order[-1]},
        "missing required field": {k: v for k, v in raw.items() if k != model.required_raw_fields[0]},
        "wrong type": {**raw, numeric: "sixty"},
    }
    events, expected = [], {}
    for what, record in requests.items():
        body = json.dumps([record]).encode()
        with pytest.raises(inf.InvocationError) as caught:
            inf.invoke(model, body, content_type=inf.JSON, accept=inf.JSON)
        events.append(_capture_event(body, inf.JSON, str(caught.value).encode(), media_types.REFUSAL,
                                     inference_id=what, base64_encoded=True))
        monkeypatch.setenv(BATCH_RECORD_ERRORS_ENV, "1")
        line, _ = inf.invoke(model, json.dumps(record), content_type=inf.JSONLINES, accept=inf.JSONLINES)
        monkeypatch.delenv(BATCH_RECORD_ERRORS_ENV)
        first = record_error_of(json.loads(line))["fields"][0]
        expected[first] = expected.get(first, 0) + 1
    window = decode_capture(trained, _write_capture(tmp_path, events))
    summary = window.summary()
    assert (summary["refused"]["count"], summary["refused"]["fields"]) == (len(requests), expected), summary["refused"]
