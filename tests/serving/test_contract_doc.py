"""docs/invocation-contract.md cannot drift from the code: every example in it is re-run here.

Examples are fenced blocks preceded by ``<!-- example id=... kind=request|response|error|capture ... -->``.
Each request is sent through the real hooks to the model it names (a binary sample model, or the
multiclass ``plan`` / regression ``spend`` models of ``problem_models.py``); the answer must have the
documented content type and the shape of that model's problem type (scores, probabilities, values and
the artefact identity depend on the trained model, so their form is checked, not their value);
documented errors must match word for word.
"""

from __future__ import annotations

import json
import math
import re
from typing import List

import pytest

from pipeline_code.serving import inference as inf
from tests.support.capture import decode_capture
from tests.support.contract_doc import DOC, doc_examples

EXAMPLES = doc_examples("example")
REQUESTS = sorted(i for i, kinds in EXAMPLES.items() if "request" in kinds)


def test_the_doc_has_an_example_for_every_mode_and_content_type():
    assert {"realtime-raw-json", "realtime-features-json", "realtime-csv", "serverless-raw-json", "async-jsonlines",
            "batch-jsonlines", "mme-features-json", "error-missing-field", "error-wrong-type", "error-blank-line",
            "multiclass-features-json", "multiclass-csv", "regression-raw-jsonlines", "regression-csv"} <= set(REQUESTS)
    content_types = {EXAMPLES[i]["request"]["content-type"] for i in REQUESTS}
    assert content_types == set(inf.CONTENT_TYPES)
    for i in REQUESTS:
        assert ("response" in EXAMPLES[i]) != ("error" in EXAMPLES[i]), f"{i}: needs exactly one response or error block"


def _check_answer(answer: dict, model: inf.ServingModel, where: str) -> None:
    """One record's answer has the shape of ``model``'s problem type (docs: Responses)."""
    extra = {"inference_id"} & set(answer)
    if model.problem_type == "multiclass_classification":
        assert list(answer) == ["label", "score", "probabilities", *extra], where
        probabilities = answer["probabilities"]
        assert list(probabilities) == model.classes, where
        assert all(0.0 <= p <= 1.0 for p in probabilities.values()) and math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-6), where
        assert answer["label"] == max(probabilities, key=probabilities.get) and answer["score"] == probabilities[answer["label"]], where
    elif model.problem_type == "regression":
        assert list(answer) == ["value", *extra] and math.isfinite(answer["value"]), where
    else:
        assert list(answer) == ["score", "label", *extra], where
        assert 0.0 <= answer["score"] <= 1.0 and answer["label"] == int(answer["score"] >= model.threshold), where


def _check_prediction(doc: dict, real: dict, model: inf.ServingModel, where: str) -> None:
    assert set(doc) == set(real), where
    assert doc.get("inference_id") == real.get("inference_id"), where
    _check_answer(doc, model, f"{where} (documented)")
    _check_answer(real, model, f"{where} (answered)")


def _check_csv_line(value: str, model: inf.ServingModel) -> bool:
    if model.problem_type == "multiclass_classification":
        return value in model.classes
    if model.problem_type == "regression":
        return math.isfinite(float(value))
    return 0.0 <= float(value) <= 1.0


@pytest.fixture(scope="module")
def doc_models(trained_models, problem_models):
    """Every model the doc's examples name, by name."""
    return {**{name: t.model_dir for name, t in trained_models.items()},
            **{name: m.model_dir for name, m in problem_models.items()}}


@pytest.mark.parametrize("example_id", REQUESTS)
def test_doc_example_is_answered_by_the_real_code_as_documented(example_id, doc_models):
    request = EXAMPLES[example_id]["request"]
    model = inf.model_fn(doc_models[request["model"]])
    if "error" in EXAMPLES[example_id]:
        with pytest.raises(inf.InvocationError) as err:
            inf.invoke(model, request["body"], content_type=request["content-type"])
        assert f"{err.value.status_code} {err.value}" == EXAMPLES[example_id]["error"]["body"]
        return
    response = EXAMPLES[example_id]["response"]
    body, content_type = inf.invoke(model, request["body"], content_type=request["content-type"], accept=response["content-type"])
    assert content_type == response["content-type"]
    real_text, doc_text = body.decode(), response["body"]
    if content_type == inf.JSON:
        real, doc = json.loads(real_text), json.loads(doc_text)
        assert set(doc) == set(real) == {"predictions", "model"}
        assert len(doc["predictions"]) == len(real["predictions"])
        for k, (d, r) in enumerate(zip(doc["predictions"], real["predictions"])):
            _check_prediction(d, r, model, f"{example_id} prediction {k}")
        assert set(doc["model"]) == set(real["model"]) and doc["model"]["name"] == real["model"]["name"] == request["model"]
        assert re.fullmatch(r"[0-9a-f]{64}", doc["model"]["artefact_sha256"])
    elif content_type == inf.JSONLINES:
        real_lines, doc_lines = real_text.split("\n"), doc_text.split("\n")
        assert len(doc_lines) == len(real_lines) == len([x for x in request["body"].splitlines() if x.strip()])
        for k, (d, r) in enumerate(zip(doc_lines, real_lines)):
            _check_prediction(json.loads(d), json.loads(r), model, f"{example_id} line {k}")
    else:
        real_lines, doc_lines = real_text.split("\n"), doc_text.split("\n")
        assert len(doc_lines) == len(real_lines) == len(request["body"].splitlines())
        assert all(_check_csv_line(v, model) for v in [*doc_lines, *real_lines])


def test_doc_capture_example_decodes_with_the_monitor(trained_models, tmp_path):
    example = EXAMPLES["realtime-features-json"]
    capture = json.loads(example["capture"]["body"])
    assert json.loads(capture["captureData"]["endpointInput"]["data"]) == json.loads(example["request"]["body"])
    assert json.loads(capture["captureData"]["endpointOutput"]["data"]) == json.loads(example["response"]["body"])
    path = tmp_path / "capture" / "churn" / "AllTraffic" / "capture.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(capture) + "\n")
    window = decode_capture(trained_models["churn"], tmp_path / "capture")
    assert window.summary()["malformed"]["count"] == 0 and not window.schema_changed
    assert window.frame["inference_id"].tolist() == ["crm-7f3a", "crm-7f3b"]  # the records' ids win over the header
    documented = [p["score"] for p in json.loads(example["response"]["body"])["predictions"]]
    assert window.frame["score"].tolist() == documented


def _table_row(name: str, occurrence: int) -> List[List[str]]:
    lines = (line.strip() for line in DOC.read_text(encoding="utf-8").splitlines())
    rows = [line for line in lines if line.startswith(f"| {name} | ")]
    cells = rows[occurrence].strip().strip("|").split("|")[1:]
    return [re.findall(r"`([^`]+)`", cell) or [n.strip() for n in cell.split(",") if n.strip()] for cell in cells]


@pytest.mark.parametrize("name", ["churn", "credit-risk"])
def test_doc_field_tables_match_the_models(name, trained_models):
    model = inf.model_fn(trained_models[name].model_dir)
    required, optional = _table_row(name, 0)
    assert required == model.required_raw_fields and optional == model.optional_raw_fields
    [order] = _table_row(name, 1)
    assert [n.strip() for n in order[0].split(",")] == model.feature_order


def test_the_async_example_puts_its_request_where_the_models_execution_role_reads():
    """GIVEN the doc's async invocation example WHEN its S3 locations are read THEN the request's and the answer's keys
    are under the model's async prefix of the inference bucket (``inference_prefix(model, "async")``: the only
    prefix there its execution role reads and writes), as input/ and output/ - an input anywhere else is accepted and
    then fails AccessDenied."""
    from pipeline_code.core.contract import inference_prefix

    text = DOC.read_text(encoding="utf-8")
    uploads = re.findall(r"aws s3 cp \S+ s3://<inference bucket>/(\S+)", text)
    inputs = re.findall(r"--input-location s3://<inference bucket>/(\S+)", text)
    outputs = re.findall(r'"OutputLocation": "s3://<inference bucket>/(\S+?)"', text)
    assert uploads and inputs == uploads and outputs
    prefix = inference_prefix("churn", "async")
    assert all(key.startswith(f"{prefix}input/") for key in inputs)
    assert all(key.startswith(f"{prefix}output/") for key in outputs)
