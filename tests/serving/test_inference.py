"""The serving hooks on both sample models, trained by the project's own code (see conftest.py).

Scores are compared with the evaluation code's scores for the same test rows with exact
equality: serving must encode exactly as training/evaluation did, not approximately. (For the compiled
network, "the evaluation code's scores" are the compiled model's on the same encoded rows; one test below
holds those to the CPU model's.)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code.core.compiled import DEFAULT_PARITY_TOLERANCE, NEURON_COMPILER, SERVE_COMPILED_ENV
from pipeline_code.serving import inference as inf
from pipeline_code.training import evaluate
from pipeline_code.training.neuron import CompiledNetwork
from pipeline_code.training.train import load_model, predict
from tests.support.training import COMPILED_SERVING_MODELS as COMPILED


def _json_scores(body: bytes) -> np.ndarray:
    return np.asarray([p["score"] for p in json.loads(body)["predictions"]], dtype=np.float64)


def _invoke(model, payload, content_type=inf.JSON, accept=None):
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return inf.invoke(model, body, content_type=content_type, accept=accept)


@pytest.fixture
def served(trained):
    return inf.model_fn(trained.model_dir)


# --------------------------------------------------------------------------------------
# model_fn
# --------------------------------------------------------------------------------------
def test_model_fn_loads_the_training_artefact(trained, served):
    """GIVEN the directory train.py wrote WHEN model_fn loads it THEN order, threshold and identity come from it."""
    assert served.feature_order == list(trained.spec.features)
    assert served.threshold == 0.5
    digest = hashlib.sha256()
    for name in ("model.json", "feature_metadata.json"):
        digest.update(Path(trained.model_dir, name).read_bytes())
    assert served.info["artefact_sha256"] == digest.hexdigest()
    assert served.info["name"] == trained.name
    assert served.info["trained_at"]


def test_model_fn_reads_a_model_tar_gz_and_the_version_env(trained, tmp_path, monkeypatch):
    import tarfile

    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in sorted(os.listdir(trained.model_dir)):  # a compiled model's traced module too
            tar.add(os.path.join(trained.model_dir, name), arcname=name)
    monkeypatch.setenv(inf.MODEL_VERSION_ENV, "7")
    model = inf.model_fn(str(tmp_path))
    assert model.info["version"] == "7"
    body, _ = _invoke(model, {"instances": trained.feature_records(20)})
    assert np.array_equal(_json_scores(body), trained.evaluation_scores[:20])


def test_model_fn_loads_the_registered_bytes_and_refuses_changed_ones(trained, tmp_path, monkeypatch):
    """GIVEN the container's environment names the registered model digest (MLOPS_LOOP_MODEL_SHA256) WHEN
    model_fn loads THEN the registered files load, and a model whose booster changed by one byte is refused
    (the endpoint's new fleet never becomes healthy, so the blue/green update rolls back)."""
    import shutil

    from pipeline_code.core import integrity

    registered = integrity.model_digest(trained.model_dir)
    monkeypatch.setenv(integrity.MODEL_SHA256_ENV, registered)
    assert inf.model_fn(trained.model_dir).info["artefact_sha256"] == registered

    changed = tmp_path / "model"
    shutil.copytree(trained.model_dir, changed)
    with open(changed / "model.json", "ab") as handle:
        handle.write(b" ")
    with pytest.raises(inf.ModelLoadError) as err:
        inf.model_fn(str(changed))
    assert str(err.value) == (
        f"the model in {str(changed)!r} has sha256 {integrity.model_digest(str(changed))}, but its registration recorded "
        f"{registered} (MLOPS_LOOP_MODEL_SHA256): refusing to serve a model whose bytes changed after the gate passed it"
    )
    with pytest.raises(inf.ModelLoadError, match=r"holds no model.json \+ feature_metadata.json to check"):
        inf.model_fn(str(tmp_path / "empty"))


def test_model_fn_without_artefact_is_a_500_naming_the_directory(tmp_path):
    with pytest.raises(inf.ModelLoadError, match="cannot load the model from") as err:
        inf.model_fn(str(tmp_path))
    assert err.value.status_code == 500 and str(tmp_path) in str(err.value)


def test_model_fn_refuses_an_artefact_that_disagrees_with_the_catalog(trained, tmp_path):
    import shutil

    target = tmp_path / "model"
    shutil.copytree(trained.model_dir, target)
    meta_path = target / "feature_metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["features"][0]["feature_type"] = "String" if meta["features"][0]["feature_type"] != "String" else "Fractional"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(inf.ModelLoadError, match=f"feature '{meta['features'][0]['name']}' was trained as"):
        inf.model_fn(str(target))


# --------------------------------------------------------------------------------------
# Same scores as evaluation; raw == precomputed
# --------------------------------------------------------------------------------------
def test_precomputed_features_score_exactly_as_evaluation(trained, served):
    """GIVEN the test split's feature values WHEN sent as JSON THEN scores == evaluate.score's, bit for bit."""
    body, content_type = _invoke(served, {"instances": trained.feature_records()})
    assert content_type == inf.JSON
    scores = _json_scores(body)
    assert len(scores) == len(trained.test)
    assert np.array_equal(scores, trained.evaluation_scores)


def test_raw_fields_score_exactly_as_evaluation(trained, served):
    """GIVEN the curated records behind the test rows WHEN sent raw THEN the catalog computes the same features."""
    records = trained.raw_records()
    assert not set(served.feature_order) <= set(records[0])  # really raw: some features are computed
    body, _ = _invoke(served, {"instances": records})
    assert np.array_equal(_json_scores(body), trained.evaluation_scores)


def test_raw_and_precomputed_records_mixed_in_one_request_score_identically(trained, served):
    raw, features = trained.raw_records(30), trained.feature_records(30)
    mixed = [raw[i] if i % 2 else features[i] for i in range(30)]
    request = inf.input_fn(json.dumps(mixed).encode(), "application/json; charset=utf-8")
    prediction = inf.predict_fn(request, served)
    assert prediction.sources == [inf.SOURCE_RAW if i % 2 else inf.SOURCE_FEATURES for i in range(30)]
    assert np.array_equal(prediction.scores, trained.evaluation_scores[:30])
    rows_raw = inf.feature_rows(served.contract, raw).frame
    rows_features = inf.feature_rows(served.contract, features).frame
    pd.testing.assert_frame_equal(rows_raw[served.feature_order], rows_features[served.feature_order])


def test_feature_store_text_values_are_accepted(trained, served):
    """GetRecord returns ValueAsString: numeric text must score like the numbers."""
    records = trained.feature_records(25)
    as_text = [{k: (None if v is None else str(v)) for k, v in r.items()} for r in records]
    body, _ = _invoke(served, as_text)
    assert np.array_equal(_json_scores(body), trained.evaluation_scores[:25])


def test_labels_use_the_stored_threshold(trained, served, tmp_path):
    import shutil

    body, _ = _invoke(served, trained.feature_records(200))
    predictions = json.loads(body)["predictions"]
    assert all(p["label"] == int(p["score"] >= 0.5) for p in predictions)
    target = tmp_path / "model"
    shutil.copytree(trained.model_dir, target)
    meta = json.loads((target / "feature_metadata.json").read_text())
    meta["threshold"] = float(np.median([p["score"] for p in predictions]))
    (target / "feature_metadata.json").write_text(json.dumps(meta))
    body, _ = _invoke(inf.model_fn(str(target)), trained.feature_records(200))
    labels = [p["label"] for p in json.loads(body)["predictions"]]
    assert labels == [int(p["score"] >= meta["threshold"]) for p in predictions]
    assert 0 < sum(labels) < len(labels)


# --------------------------------------------------------------------------------------
# Content types
# --------------------------------------------------------------------------------------
def test_single_object_and_bare_list_are_json_requests(trained, served):
    record = trained.feature_records(1)[0]
    for payload in (record, [record], {"instances": [record]}):
        body, _ = _invoke(served, payload)
        assert _json_scores(body).tolist() == [trained.evaluation_scores[0]]


def test_json_arrays_in_feature_order_are_precomputed_records(trained, served):
    rows = [[r[f] for f in served.feature_order] for r in trained.feature_records(10)]
    body, _ = _invoke(served, {"instances": rows})
    assert np.array_equal(_json_scores(body), trained.evaluation_scores[:10])


def test_jsonlines_round_trip_keeps_order_and_count(trained, served):
    """GIVEN 120 records one per line (raw and precomputed, the body ending in line feeds) WHEN answered as jsonlines
    THEN line i = record i."""
    raw, features = trained.raw_records(120), trained.feature_records(120)
    lines = [json.dumps(raw[i] if i % 3 == 0 else features[i]) for i in range(120)]
    body, content_type = _invoke(served, "\n".join(lines) + "\n\n", content_type=inf.JSONLINES, accept=inf.JSONLINES)
    assert content_type == inf.JSONLINES
    out = body.decode().split("\n")
    assert len(out) == 120
    parsed = [json.loads(line) for line in out]
    assert set(parsed[0]) == {"score", "label"}
    assert np.array_equal([p["score"] for p in parsed], trained.evaluation_scores[:120])


def _blank_line_refusal(content_type: str, record: int, line: int) -> str:
    where = f"record {record} (line {line})"
    return (f"{where}: a blank line is not a record; remove blank lines between records (answers come one per record, "
            "in order: a blank line passed over would put each later answer on the line above its own); line feeds "
            "ending the body are fine")


@pytest.mark.parametrize("content_type", [inf.JSONLINES, inf.CSV])
def test_a_blank_line_before_a_record_is_a_400_naming_it_and_line_feeds_ending_the_body_are_scored(
        trained, served, content_type):
    """GIVEN a JSON Lines or CSV request with a blank line (empty, spaces, CRLF) before a record WHEN an endpoint
    (real-time, serverless, async, multi-model) answers it THEN a 400 names the blank line and the fix (before: passed
    over, so the answer held one line fewer than the request and a caller pairing answers with its lines by position
    scored every later line with the answer of the line below it); blank lines ending the body are no such line: the
    body is scored as without them. A JSON body's blank lines are whitespace between its values."""
    if content_type == inf.JSONLINES:
        rows = [json.dumps(r) for r in trained.raw_records(3)]
    else:
        rows = [",".join("" if r[f] is None else repr(r[f]) if isinstance(r[f], float) else str(r[f])
                         for f in served.feature_order) for r in trained.feature_records(3)]
    refused = {
        f"{rows[0]}\n\n{rows[1]}\n": (1, 2),
        f"{rows[0]}\n   \n{rows[1]}": (1, 2),
        f"{rows[0]}\r\n\r\n{rows[1]}\r\n": (1, 2),
        f"\n{rows[0]}\n{rows[1]}": (0, 1),
        f"{rows[0]}\n{rows[1]}\n\n\n{rows[2]}\n\n": (2, 3),
    }
    for body, (record, line) in refused.items():
        with pytest.raises(inf.InvocationError) as caught:
            _invoke(served, body, content_type=content_type, accept=content_type)
        assert (caught.value.status_code, str(caught.value)) == (400, _blank_line_refusal(content_type, record, line)), body
    expected, _ = _invoke(served, "\n".join(rows), content_type=content_type, accept=content_type)
    for ending in ("\n", "\n\n", "\n\n\n", "\n  \n", "\r\n\r\n"):
        answer, _ = _invoke(served, "\n".join(rows) + ending, content_type=content_type, accept=content_type)
        assert answer == expected, repr(ending)
    records = trained.raw_records(2)
    body = "[\n" + ",\n\n".join(json.dumps(r) for r in records) + "\n\n]\n\n"
    assert _invoke(served, body)[0] == _invoke(served, records)[0]


@pytest.mark.parametrize("content_type", [inf.JSONLINES, inf.CSV])
def test_a_400_for_one_line_names_its_record_and_line_as_the_documented_pattern_reads_them(trained, served,
                                                                                            content_type):
    """GIVEN a JSON Lines or CSV request refused for one of its lines (a blank line before a record, a line the reader
    cannot read) WHEN an endpoint answers 400 THEN the documented pattern (``core.contract.REFUSED_FIELD``,
    docs/invocation-contract.md "Reading a 400 by machine") reads that record and line from it, as from every other
    400 naming a record (before: CSV's said only "line 2: ...", so a client reading the pattern found no record)."""
    import re

    from pipeline_code.core.contract import REFUSED_FIELD

    if content_type == inf.JSONLINES:
        rows = [json.dumps(r) for r in trained.raw_records(3)]
        unreadable = "{not json"
    else:
        rows = [",".join("" if r[f] is None else str(r[f]) for f in served.feature_order)
                for r in trained.feature_records(3)]
        unreadable = f"{rows[1]}\rx"  # a bare carriage return: the csv module cannot read the line
    for body in (f"{rows[0]}\n\n{rows[1]}\n", f"{rows[0]}\n{unreadable}\n{rows[2]}\n"):
        with pytest.raises(inf.InvocationError) as caught:
            _invoke(served, body, content_type=content_type, accept=content_type)
        read = re.match(REFUSED_FIELD, str(caught.value))
        assert caught.value.status_code == 400 and read and read.group(1, 2) == ("1", "2"), str(caught.value)


def test_csv_round_trip_in_feature_order(trained, served):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for record in trained.feature_records():
        writer.writerow(["" if record[f] is None else repr(record[f]) if isinstance(record[f], float) else record[f]
                         for f in served.feature_order])
    body, content_type = _invoke(served, buffer.getvalue(), content_type=inf.CSV, accept=inf.CSV)
    assert content_type == inf.CSV
    scores = np.asarray([float(v) for v in body.decode().split("\n")])
    assert np.array_equal(scores, trained.evaluation_scores)


@pytest.mark.parametrize(
    "accept, expected",
    [(None, inf.JSON), ("*/*", inf.JSON), ("application/jsonlines", inf.JSONLINES), ("text/csv", inf.CSV),
     ("text/html, application/jsonlines;q=0.9", inf.JSONLINES), ("application/json; charset=utf-8", inf.JSON)],
)
def test_accept_header_picks_the_response_type(trained, served, accept, expected):
    body, content_type = _invoke(served, trained.feature_records(3), accept=accept)
    assert content_type == expected
    assert body  # and it parses as that type:
    if expected == inf.JSON:
        assert len(json.loads(body)["predictions"]) == 3
    else:
        assert len(body.decode().split("\n")) == 3


def test_inference_id_is_echoed(trained, served):
    records = trained.feature_records(2)
    records[1]["inference_id"] = "req-42"
    body, _ = _invoke(served, records)
    predictions = json.loads(body)["predictions"]
    assert "inference_id" not in predictions[0] and predictions[1]["inference_id"] == "req-42"


# --------------------------------------------------------------------------------------
# Unseen and messy categories
# --------------------------------------------------------------------------------------
def test_a_precomputed_category_outside_its_columns_declared_values_is_refused_like_a_raw_one(trained, served):
    """GIVEN precomputed features (JSON or CSV) whose categorical feature is its column unchanged WHEN a value outside
    the column's declared values is sent THEN it is a 400 naming the field and the allowed values, as for a raw record
    (before: scored as a missing value, a silently different score)."""
    dataset = trained.dataset
    categorical = next(f for f in served.feature_order if served.is_categorical(f) and dataset.feature(f).expr.op == "col"
                       and dataset.column(dataset.feature(f).expr.args[0]).allowed)
    allowed = dataset.column(dataset.feature(categorical).expr.args[0]).allowed
    record = dict(trained.feature_records(1)[0], **{categorical: "never-seen-before"})
    with pytest.raises(inf.InvocationError) as caught:
        _invoke(served, [record])
    assert str(caught.value) == (f"record 0: field {categorical!r}: 'never-seen-before' is not an allowed value; allowed: "
                                 f"{', '.join(allowed)} (declared for dataset {dataset.name!r})")
    row = ",".join("never-seen-before" if f == categorical else "" if record[f] is None else str(record[f])
                   for f in served.feature_order)
    with pytest.raises(inf.InvocationError, match=f"field {categorical!r}: 'never-seen-before' is not an allowed value"):
        inf.invoke(served, row, content_type=inf.CSV)


def test_the_model_reads_a_category_training_never_saw_as_a_missing_value(trained, served):
    """GIVEN a category no training row had (a feature whose levels come from the training data has no declared set
    to refuse it by) WHEN the model scores it THEN it is treated as missing, as train.encode does."""
    categorical = [f for f in served.feature_order if served.is_categorical(f)][0]
    unseen, missing = trained.test.iloc[:50].copy(), trained.test.iloc[:50].copy()
    unseen[categorical], missing[categorical] = "never-seen-before", None
    assert np.array_equal(predict(served.trained, unseen), predict(served.trained, missing))


def test_a_compiled_model_serves_the_cpu_models_scores_within_the_parity_tolerance(trained_models, monkeypatch):
    """GIVEN a network compiled as for ml.inf2 WHEN served as an inf2 endpoint serves it (its dense layers in the
    traced module) THEN every test record scores within the parity tolerance of the CPU model's evaluation score,
    and the same archive served without the setting serves the CPU model itself."""
    for name, compiler in COMPILED.items():
        model = trained_models[name]
        cpu_scores = evaluate.score(load_model(model.model_dir), model.test, model.spec, min_rows=50, min_group_rows=100)["_scores"]
        monkeypatch.setenv(SERVE_COMPILED_ENV, compiler)
        served = inf.model_fn(model.model_dir)
        assert isinstance(served.trained.estimator, CompiledNetwork)
        body, _ = _invoke(served, {"instances": model.feature_records()})
        assert np.max(np.abs(_json_scores(body) - cpu_scores)) < DEFAULT_PARITY_TOLERANCE / 100
        monkeypatch.delenv(SERVE_COMPILED_ENV)
        body, _ = _invoke(inf.model_fn(model.model_dir), {"instances": model.feature_records()})
        assert np.array_equal(_json_scores(body), cpu_scores)


def test_an_inf2_endpoint_refuses_an_artefact_it_cannot_run_compiled(trained_models, monkeypatch):
    """GIVEN the endpoint is told to serve Neuron-compiled models WHEN the artefact is a stand-in build, an uncompiled
    network or trees THEN model_fn refuses it naming the setting (the new fleet never becomes healthy)."""
    monkeypatch.setenv(SERVE_COMPILED_ENV, NEURON_COMPILER)
    compiled = trained_models[next(iter(COMPILED))].model_dir
    with pytest.raises(inf.ModelLoadError) as error:
        inf.model_fn(compiled)
    assert str(error.value) == ("MLOPS_LOOP_SERVE_COMPILED=torch-neuronx: compiled.json: the model was compiled by "
                                "'cpu-stand-in', but this container serves models compiled by 'torch-neuronx'")
    network = trained_models["churn-net"].model_dir
    with pytest.raises(inf.ModelLoadError, match="has no compiled.json: it was not compiled"):
        inf.model_fn(network)
    trees = trained_models["churn"].model_dir
    with pytest.raises(inf.ModelLoadError) as error:
        inf.model_fn(trees)
    assert str(error.value) == (f"MLOPS_LOOP_SERVE_COMPILED=torch-neuronx: the model in {trees!r} is a xgboost model; "
                                "only framework: pytorch networks are compiled")


def test_raw_categories_are_trimmed_and_lower_cased_like_the_etl(trained, served):
    records = trained.raw_records(30)
    column = next(c for c in served.required_raw_fields if trained.dataset.column(c).allowed)
    shouted = [dict(r, **{column: f"  {r[column].upper()} "}) for r in records]
    assert np.array_equal(_json_scores(_invoke(served, shouted)[0]), trained.evaluation_scores[:30])


# --------------------------------------------------------------------------------------
# Errors: record index and field named, HTTP status carried
# --------------------------------------------------------------------------------------
def test_missing_required_raw_field_names_record_and_field(trained, served):
    records = trained.raw_records(5)
    field = served.required_raw_fields[0]
    del records[3][field]
    with pytest.raises(inf.BadRequestError) as err:
        _invoke(served, {"instances": records})
    assert err.value.status_code == 400
    assert str(err.value).startswith(f"record 3: missing required field {field!r}")


def test_null_required_raw_field_is_missing_too(trained, served):
    records = trained.raw_records(2)
    field = served.required_raw_fields[-1]
    records[1][field] = None
    with pytest.raises(inf.BadRequestError, match=rf"^record 1: missing required field '{field}'"):
        _invoke(served, records)


def test_nullable_raw_fields_may_be_omitted(trained, served):
    records = trained.raw_records(5)
    for record in records:
        for name in served.optional_raw_fields:
            record.pop(name, None)
    prediction = inf.predict_fn(inf.input_fn(json.dumps(records), inf.JSON), served)
    assert prediction.sources == [inf.SOURCE_RAW] * 5 and np.all((prediction.scores > 0) & (prediction.scores < 1))


def test_precomputed_record_missing_a_feature_names_that_feature(trained, served):
    records = trained.feature_records(4)
    computed_only = next(f for f in served.feature_order if f not in {c.name for c in trained.dataset.columns})
    dropped = next(f for f in served.feature_order if f != computed_only)
    del records[2][dropped]
    with pytest.raises(inf.BadRequestError, match=rf"^record 2: missing feature '{dropped}'"):
        _invoke(served, records)


@pytest.mark.parametrize("bad", ["twelve", True, {"v": 1}, [1]])
def test_wrong_type_for_a_number_names_record_and_field(trained, served, bad):
    records = trained.raw_records(3)
    field = next(c for c in served.required_raw_fields if trained.dataset.column(c).dtype != "string")
    records[2][field] = bad
    with pytest.raises(inf.BadRequestError, match=rf"^record 2: field '{field}': expected a number"):
        _invoke(served, records)


def test_fractional_value_for_an_integer_column_is_rejected(served, trained):
    records = trained.raw_records(1)
    field = next(c for c in served.source_columns(served.feature_order) if trained.dataset.column(c).dtype == "integer")
    records[0][field] = 12.5
    with pytest.raises(inf.BadRequestError, match=rf"record 0: field '{field}': expected an integer, got 12.5"):
        _invoke(served, records)


def test_number_for_a_category_names_record_and_field(trained, served):
    records = trained.feature_records(2)
    field = next(f for f in served.feature_order if served.is_categorical(f))
    records[0][field] = 3
    with pytest.raises(inf.BadRequestError, match=rf"^record 0: field '{field}': expected a string, got int"):
        _invoke(served, records)


def test_several_problems_are_reported_together(trained, served):
    records = trained.raw_records(4)
    field = served.required_raw_fields[0]
    for i in (0, 2):
        del records[i][field]
    with pytest.raises(inf.BadRequestError) as err:
        _invoke(served, records)
    assert f"record 0: missing required field {field!r}" in str(err.value)
    assert f"record 2: missing required field {field!r}" in str(err.value)


def test_jsonlines_and_csv_errors_name_the_line(trained, served):
    lines = [json.dumps(r) for r in trained.feature_records(3)]
    lines[1] = "{not json"
    with pytest.raises(inf.BadRequestError, match=r"^record 1 \(line 2\): not valid JSON"):
        _invoke(served, "\n".join(lines), content_type=inf.JSONLINES)
    csv_body = "1,2\n"
    with pytest.raises(inf.BadRequestError, match=rf"^record 0 \(line 1\): 2 values, expected {len(served.feature_order)}"):
        _invoke(served, csv_body, content_type=inf.CSV)
    valid = trained.feature_records(1)[0]
    row = ["" if valid[f] is None else str(valid[f]) for f in served.feature_order]
    numeric = next(i for i, f in enumerate(served.feature_order) if not served.is_categorical(f))
    wrong = [*row[:numeric], "abc", *row[numeric + 1:]]
    with pytest.raises(inf.BadRequestError, match=rf"^record 1 \(line 2\): field '{served.feature_order[numeric]}'"):
        _invoke(served, ",".join(row) + "\n" + ",".join(wrong), content_type=inf.CSV)


@pytest.mark.parametrize(
    "body, content_type, status, message",
    [
        (b'{"a": 1}', "application/x-protobuf", 415, "unsupported Content-Type 'application/x-protobuf'"),
        (b"", inf.JSON, 400, "request body is empty"),
        (b"\xff\xfe", inf.JSON, 400, "not UTF-8"),
        (b"[1, 2", inf.JSON, 400, "request body: not valid JSON"),
        (b'{"instances": 3}', inf.JSON, 400, "field 'instances' must be a list"),
        (b"[]", inf.JSON, 400, "at least one record"),
        (b"[3]", inf.JSON, 400, "record 0: expected an object"),
    ],
)
def test_bad_requests_carry_their_http_status(served, body, content_type, status, message):
    with pytest.raises(inf.InvocationError) as err:
        inf.invoke(served, body, content_type=content_type)
    assert err.value.status_code == status
    assert message in str(err.value)


def test_unsupported_accept_is_406(trained, served):
    with pytest.raises(inf.NotAcceptableError, match="unsupported Accept 'text/html'") as err:
        _invoke(served, trained.feature_records(1), accept="text/html")
    assert err.value.status_code == 406


# --------------------------------------------------------------------------------------
# In the container: the hooks driven by the SageMaker inference toolkit
# --------------------------------------------------------------------------------------
class _Context:
    """The model server's request context as the toolkit's Transformer uses it."""

    def __init__(self, model_dir: str, headers: dict) -> None:
        self.system_properties = {"model_dir": model_dir}
        self.request_processor = [types.SimpleNamespace(get_request_properties=lambda: headers)]
        self.status = None
        self.content_types = {}

    def set_response_content_type(self, idx, value):
        self.content_types[idx] = value

    def set_response_status(self, code, phrase, idx=0):
        self.status = (code, phrase)


def test_errors_are_toolkit_errors_the_container_maps_to_4xx(trained, tmp_path, monkeypatch):
    """GIVEN serve_entry.py at a source-dir root WHEN the toolkit's Transformer drives it THEN hooks run and errors keep their status."""
    errors = pytest.importorskip("sagemaker_inference.errors", reason="sagemaker-inference (the container's toolkit) not installed")
    transformer_mod = pytest.importorskip("sagemaker_inference.transformer")
    import shutil
    import sys

    source_dir = tmp_path / "code"
    source_dir.mkdir()
    shutil.copy(Path(inf.__file__).with_name("serve_entry.py"), source_dir / "serve_entry.py")
    monkeypatch.syspath_prepend(str(source_dir))
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "serve_entry.py")
    monkeypatch.delitem(sys.modules, "serve_entry", raising=False)
    assert issubclass(inf.InvocationError, errors.BaseInferenceToolkitError)

    transformer = transformer_mod.Transformer()
    ok = _Context(trained.model_dir, {"Content-Type": inf.JSONLINES, "Accept": inf.JSONLINES})
    lines = "\n".join(json.dumps(r) for r in trained.raw_records(5)).encode()
    [body] = transformer.transform([{"body": lines}], ok)
    assert ok.status is None and ok.content_types[0] == inf.JSONLINES
    assert np.array_equal([json.loads(x)["score"] for x in body.decode().split("\n")], trained.evaluation_scores[:5])

    for headers, payload, status in (
        ({"Content-Type": inf.JSON}, json.dumps([{"nothing": 1}]).encode(), 400),
        ({"Content-Type": "application/x-protobuf"}, b"\x00", 415),
        ({"Content-Type": inf.JSON, "Accept": "image/png"}, json.dumps(trained.feature_records(1)).encode(), 406),
    ):
        context = _Context(trained.model_dir, headers)
        [message] = transformer.transform([{"body": payload}], context)
        assert context.status[0] == status, message
    assert "record 0: missing required field" in context_phrase(transformer, trained)


def context_phrase(transformer, trained) -> str:
    context = _Context(trained.model_dir, {"Content-Type": inf.JSON})
    transformer.transform([{"body": json.dumps([{"nothing": 1}]).encode()}], context)
    return context.status[1]


def test_errors_keep_their_status_with_the_xgboost_images_own_toolkit_error(tmp_path):
    """Some XGBoost image builds catch their own BaseInferenceToolkitError copy, not sagemaker_inference's."""
    import subprocess
    import sys
    import textwrap

    package = tmp_path / "sagemaker_xgboost_container" / "algorithm_mode"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "inference_errors.py").write_text(textwrap.dedent("""
        class BaseInferenceToolkitError(Exception):
            def __init__(self, status_code, message, phrase):
                self.status_code = status_code
                self.message = message
                self.phrase = phrase
    """))
    script = textwrap.dedent("""
        from sagemaker_xgboost_container.algorithm_mode.inference_errors import BaseInferenceToolkitError as Own
        from pipeline_code.serving import request_body
        try:
            request_body.parse_request(b"x", "image/png")
        except Own as exc:
            print(exc.status_code, exc.message)
    """)
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(repo)]))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("415 unsupported Content-Type 'image/png'")
