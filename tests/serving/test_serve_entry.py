"""serve_entry.py in the toolkits that run it: each refusal of the contract reaches the caller with its status and
its message, and each answer is byte for byte what the hooks give.

Single-model endpoints (real-time, serverless, async) and batch transform of XGBoost models and numpy-scored
networks run in the XGBoost image: sagemaker-containers 2.8.6.post2's real Transformer behind its Flask Worker
(``tests/support/serving_toolkits.py``). Networks compiled for ml.inf2 run in the Neuron image, under
``sagemaker_inference``'s Transformer. The expected message of each refusal is what the hooks raise for the same
request (:func:`pipeline_code.serving.inference.invoke`), so the cases hold for any model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline_code.core.contract import BATCH_RECORD_ERRORS_ENV, record_error_of
from pipeline_code.serving import inference as inf
from tests.support.serving_toolkits import TorchServeContext, xgboost_single_model
from tests.support.training import COMPILED_SERVING_MODELS as COMPILED

ENTRY = Path(inf.__file__).with_name("serve_entry.py")


def _code_dir(tmp_path: Path) -> str:
    """A copy of serve_entry.py alone (pipeline_code comes from the repository, as from the archive's code/)."""
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(ENTRY, code / "serve_entry.py")
    return str(code)


def _outside_declared(trained, served):
    """A required raw field and a value outside what its dataset declares (above ``max``, or not ``allowed``)."""
    for name in served.required_raw_fields:
        column = trained.dataset.column(name)
        if column.maximum is not None:
            return name, column.maximum + 1
        if column.allowed:
            return name, "never-seen-before"
    raise AssertionError(f"model {trained.name}: no required raw field declares a maximum or allowed values")


def _refusals(trained, served):
    """(what, body, Content-Type, Accept, status): the refusals the contract promises, built from the model."""
    raw = trained.raw_records(1)[0]
    required = served.required_raw_fields[0]
    numeric = next(c for c in served.required_raw_fields if trained.dataset.column(c).dtype in ("integer", "double"))
    bounded, outside = _outside_declared(trained, served)
    row = ",".join("" if v is None else str(v) for v in (trained.feature_records(1)[0][f] for f in served.feature_order))
    return [
        ("blank line before a record", f"{json.dumps(raw)}\n\n{json.dumps(raw)}\n", inf.JSONLINES, inf.JSONLINES, 400),
        ("blank CSV line before a record", f"{row}\n\n{row}\n", inf.CSV, inf.CSV, 400),
        ("missing required field", json.dumps([{k: v for k, v in raw.items() if k != required}]), inf.JSON, inf.JSON, 400),
        ("wrong type", json.dumps([{**raw, numeric: "sixty"}]), inf.JSON, inf.JSON, 400),
        ("value outside its declaration", json.dumps([{**raw, bounded: outside}]), inf.JSON, inf.JSON, 400),
        ("empty body", "", inf.JSON, inf.JSON, 400),
        ("unsupported Content-Type", json.dumps([raw]), "application/x-www-form-urlencoded", inf.JSON, 415),
        ("unsupported Accept", json.dumps([raw]), inf.JSON, "text/html", 406),
    ]


def _refused(served, body, content_type, accept, status) -> str:
    """The message the hooks refuse this request with (and the refusal's status is the one expected)."""
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(served, body, content_type=content_type, accept=accept)
    assert caught.value.status_code == status, str(caught.value)
    return str(caught.value)


def _answers(trained, served):
    """(body, Content-Type, Accept or None, the hooks' (body, type)): valid requests in each registered type."""
    records = trained.raw_records(3)
    features = trained.feature_records(2)
    csv_body = "\n".join(",".join("" if r[f] is None else str(r[f]) for f in served.feature_order) for r in features)
    requests = [
        (json.dumps({"instances": records}), inf.JSON, None),
        (json.dumps({"instances": records}), inf.JSON, inf.JSON),
        ("\n".join(json.dumps(r) for r in records), inf.JSONLINES, inf.JSONLINES),
        ("".join(f"{json.dumps(r)}\n" for r in records) + "\n\n", inf.JSONLINES, inf.JSONLINES),  # line feeds ending it
        (csv_body, inf.CSV, inf.CSV),
        (csv_body + "\r\n\r\n", inf.CSV, inf.CSV),
    ]
    return [(body, ct, accept, inf.invoke(served, body, content_type=ct, accept=accept)) for body, ct, accept in requests]


def _post(client, body, content_type, accept):
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    return client.post("/invocations", data=body, headers=headers)


# --------------------------------------------------------------------------------------
# XGBoost image: sagemaker-containers' Transformer + Flask Worker
# --------------------------------------------------------------------------------------
def test_the_xgboost_image_answers_each_refusal_with_its_status_and_message(trained_models, tmp_path):
    """GIVEN serve_entry.py served as the XGBoost image serves a single model (sagemaker-containers 2.8.6.post2)
    WHEN a request is refused (a blank JSON Lines / CSV line before a record, missing field, wrong type, value outside
    its declaration, empty body, unsupported Content-Type or Accept) THEN the caller gets its 400/415/406 and the one-line message as a text body (before: a
    bare HTML 500 for each, counted as a server error), and a valid request keeps its 200 answer byte for byte."""
    code = _code_dir(tmp_path)
    checked = []
    for name, trained in trained_models.items():
        if name in COMPILED:  # served by the Neuron image: the next test
            continue
        served = inf.model_fn(trained.model_dir)
        with xgboost_single_model(code, trained.model_dir) as client:
            for what, body, content_type, accept, status in _refusals(trained, served):
                message = _refused(served, body, content_type, accept, status)
                response = _post(client, body, content_type, accept)
                assert (response.status_code, response.get_data(as_text=True)) == (status, message), (name, what)
                assert response.mimetype == "text/plain", (name, what)
            for body, content_type, accept, (expected, kind) in _answers(trained, served):
                response = _post(client, body, content_type, accept)
                assert response.status_code == 200, (name, content_type, response.get_data(as_text=True)[:300])
                assert response.get_data() == expected and response.mimetype == kind, (name, content_type, accept)
        checked.append(name)
    assert checked, "no model is served by the XGBoost image"


def test_the_xgboost_image_in_a_batch_transform_answers_a_refused_record_by_its_own_line(trained_models, tmp_path,
                                                                                          monkeypatch):
    """GIVEN serve_entry.py in the XGBoost image with the batch Model's environment (BATCH_RECORD_ERRORS_ENV) WHEN a
    JSON Lines mini-batch holds one record the contract refuses THEN a 200 with one line per record, the refused one an
    error object (docs/invocation-contract.md "Batch transform"), byte for byte what the hooks give; not the 400 that
    failed the transform job."""
    monkeypatch.setenv(BATCH_RECORD_ERRORS_ENV, "1")
    trained = next(t for name, t in trained_models.items() if name not in COMPILED)
    served = inf.model_fn(trained.model_dir)
    numeric = next(c for c in served.required_raw_fields if trained.dataset.column(c).dtype in ("integer", "double"))
    records = trained.raw_records(3)
    records[1] = {**records[1], numeric: "sixty"}
    body = "\n".join(json.dumps(r) for r in records)
    expected, kind = inf.invoke(served, body, content_type=inf.JSONLINES, accept=inf.JSONLINES)
    with xgboost_single_model(_code_dir(tmp_path), trained.model_dir) as client:
        response = _post(client, body, inf.JSONLINES, inf.JSONLINES)
    assert response.status_code == 200 and response.get_data() == expected and response.mimetype == kind
    lines = [json.loads(line) for line in expected.decode().split("\n")]
    assert [record_error_of(line) is not None for line in lines] == [False, True, False]
    assert record_error_of(lines[1])["fields"] == [numeric]


def test_the_xgboost_image_keeps_a_server_error_a_500(trained_models, tmp_path, monkeypatch):
    """GIVEN serve_entry.py in the XGBoost image WHEN the model's output is not finite (the contract's 500) or scoring
    fails unexpectedly THEN the caller gets a 500 - the first with its message - so the server-errors alarm, which
    rolls a bad release back, still sees a broken model."""
    trained = next(t for name, t in trained_models.items() if name not in COMPILED)
    body = json.dumps(trained.raw_records(1))
    with xgboost_single_model(_code_dir(tmp_path), trained.model_dir) as client:
        def non_finite(model, request, **_):
            raise inf.ModelOutputError("record 0: the model's output nan is not a finite number; nothing is answered")

        monkeypatch.setattr(inf, "predict", non_finite)
        response = _post(client, body, inf.JSON, inf.JSON)
        assert (response.status_code, response.get_data(as_text=True)) == (
            500, "record 0: the model's output nan is not a finite number; nothing is answered")

        def broken(model, request, **_):
            raise RuntimeError("scoring broke")

        monkeypatch.setattr(inf, "predict", broken)
        response = _post(client, body, inf.JSON, inf.JSON)
        assert response.status_code == 500 and "scoring broke" not in response.get_data(as_text=True)


# --------------------------------------------------------------------------------------
# Neuron image: sagemaker_inference's Transformer (TorchServe)
# --------------------------------------------------------------------------------------
def _torchserve(trained, tmp_path, monkeypatch):
    """``transform(body, content_type, accept) -> (context, answer)``: serve_entry.py under sagemaker_inference's
    Transformer, as the Neuron image's TorchServe handler runs it (a Flask imported in the process, as a dependency
    might: only a Flask *request* changes the answer)."""
    transformer_module = pytest.importorskip("sagemaker_inference.transformer")
    import sys

    import flask  # noqa: F401

    monkeypatch.syspath_prepend(_code_dir(tmp_path))
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "serve_entry.py")
    monkeypatch.delitem(sys.modules, "serve_entry", raising=False)
    transformer = transformer_module.Transformer()

    def transform(body, content_type, accept):
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        context = TorchServeContext(trained.model_dir, headers)
        data = body.encode() if isinstance(body, str) else body  # the model server hands the body over as bytes
        [answer] = transformer.transform([{"body": data}], context)
        return context, answer

    return transform


def test_the_neuron_images_toolkit_answers_each_refusal_with_its_status_and_message(trained, tmp_path, monkeypatch):
    """GIVEN serve_entry.py under sagemaker_inference's Transformer (the Neuron image's TorchServe handler; a
    multi-model endpoint's too) WHEN a request is refused THEN the status is the refusal's and the phrase and the
    body are its message alone - no stack trace (the toolkit's own answer appends one: the caller saw the serving
    code's file paths, lines and source) - and a valid request keeps its 200 answer byte for byte."""
    transform = _torchserve(trained, tmp_path, monkeypatch)
    served = inf.model_fn(trained.model_dir)
    for what, body, content_type, accept, status in _refusals(trained, served):
        message = _refused(served, body, content_type, accept, status)
        context, answer = transform(body, content_type, accept)
        assert (context.status, answer) == ((status, message), message), what
    for body, content_type, accept, (expected, kind) in _answers(trained, served):
        context, answer = transform(body, content_type, accept)
        assert context.status is None and (answer, context.content_types[0]) == (expected, kind), (content_type, accept)


@pytest.mark.parametrize("content_type", [inf.JSON, inf.CSV])
def test_the_neuron_images_toolkit_answers_a_body_that_is_no_utf8_with_the_contracts_400(
        trained, tmp_path, monkeypatch, capfd, content_type):
    """GIVEN serve_entry.py under sagemaker_inference's Transformer (ml.inf2; a multi-model endpoint's too), which
    decodes a JSON or CSV body itself before any hook runs WHEN the body is not UTF-8 THEN the caller gets the 400 the
    hooks answer for it (before: the toolkit's UnicodeDecodeError was a 500 any caller could repeat at will, counted
    in the 5xx alarm that rolls a rollout back), and nothing is logged as a server error."""
    transform = _torchserve(trained, tmp_path, monkeypatch)
    served = inf.model_fn(trained.model_dir)
    body = b"\xff\xfe\x00"
    message = _refused(served, body, content_type, inf.JSON, 400)
    capfd.readouterr()
    context, answer = transform(body, content_type, inf.JSON)
    assert (context.status, answer) == ((400, message), message)
    assert "internal error" not in capfd.readouterr().err

def test_the_neuron_images_toolkit_keeps_a_server_errors_traceback_in_the_log_not_the_answer(
        trained_models, tmp_path, monkeypatch, capfd):
    """GIVEN serve_entry.py under sagemaker_inference's Transformer WHEN the model's output is not finite (the
    contract's 500) THEN the caller gets that 500 and its message alone; WHEN scoring fails unexpectedly THEN a 500
    saying only that, without the exception's text or a stack trace (as the XGBoost image answers), and the traceback
    is in the container's log (stderr, CloudWatch), where operators read it."""
    trained = trained_models[next(iter(COMPILED))]
    monkeypatch.setenv(inf.SERVE_COMPILED_ENV, COMPILED[trained.name])
    transform = _torchserve(trained, tmp_path, monkeypatch)
    body = json.dumps(trained.raw_records(1))
    transform(body, inf.JSON, inf.JSON)  # the model loads
    capfd.readouterr()

    def non_finite(model, request, **_):
        raise inf.ModelOutputError("record 0: the model's output nan is not a finite number; nothing is answered")

    monkeypatch.setattr(inf, "predict", non_finite)
    context, answer = transform(body, inf.JSON, inf.JSON)
    message = "record 0: the model's output nan is not a finite number; nothing is answered"
    assert (context.status, answer) == ((500, message), message)

    def broken(model, request, **_):
        raise RuntimeError("scoring broke on 'CUS-0001217'")

    monkeypatch.setattr(inf, "predict", broken)
    context, answer = transform(body, inf.JSON, inf.JSON)
    assert (context.status, answer) == ((500, inf.SERVER_ERROR_MESSAGE), inf.SERVER_ERROR_MESSAGE)
    log = capfd.readouterr().err
    assert "Traceback (most recent call last)" in log and "RuntimeError: scoring broke on 'CUS-0001217'" in log
