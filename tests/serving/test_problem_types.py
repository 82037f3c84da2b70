"""Serving answers per problem type: a multiclass model (``plan``) and a regression model (``spend``).

Both are built by ``tests/support/problem_models.py`` (conftest's ``problem_models``) and served by the
real hooks; their answers are compared with :func:`pipeline_code.training.train.predict` on the same rows
with exact equality, as the binary tests do with the evaluation scores. A binary model's answer is
checked to be unchanged, byte for byte.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline_code.serving import inference as inf

PLANS = ["basic", "standard", "premium"]


def _invoke(model, payload, content_type=inf.JSON, accept=None):
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return inf.invoke(model, body, content_type=content_type, accept=accept)


@pytest.fixture(scope="module")
def plan(problem_models):
    return problem_models["plan"]


@pytest.fixture(scope="module")
def spend(problem_models):
    return problem_models["spend"]


# --------------------------------------------------------------------------------------
# model_fn
# --------------------------------------------------------------------------------------
def test_model_fn_reads_the_problem_type_and_the_classes(plan, spend):
    """GIVEN a multiclass and a regression artefact WHEN loaded THEN their type and classes come from the metadata."""
    served_plan, served_spend = inf.model_fn(plan.model_dir), inf.model_fn(spend.model_dir)

    assert (served_plan.problem_type, served_plan.classes) == ("multiclass_classification", PLANS)
    assert (served_spend.problem_type, served_spend.classes) == ("regression", [])
    assert served_plan.info["name"] == "plan" and served_spend.info["name"] == "spend"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"problem_type": "ranking"},
         "model 'plan': feature_metadata.json has problem_type 'ranking', not one of binary_classification, "
         "multiclass_classification, regression"),
        ({"classes": ["basic", "standard"]},
         "model 'plan': the model gives 3 probabilities per record but feature_metadata.json names 2 classes"),
        ({"classes": ["basic", "basic", "premium"]},
         "model 'plan': feature_metadata.json of a multiclass_classification model needs 'classes', a list of at "
         "least 2 distinct names, got ['basic', 'basic', 'premium']"),
        ({"classes": None},
         "model 'plan': feature_metadata.json of a multiclass_classification model needs 'classes', a list of at "
         "least 2 distinct names, got None"),
        ({"problem_type": "regression"}, "model 'plan': the model gives 3 outputs per record, but it is regression"),
    ],
    ids=["unknown-type", "too-few-classes", "duplicate-classes", "no-classes", "multiclass-booster-as-regression"],
)
def test_model_fn_refuses_an_artefact_whose_outputs_do_not_fit_its_problem_type(plan, tmp_path, change, message):
    """GIVEN a multiclass artefact whose metadata says something its booster cannot answer WHEN loaded THEN a 500 says why."""
    target = tmp_path / "model"
    shutil.copytree(plan.model_dir, target)
    meta = json.loads((target / "feature_metadata.json").read_text())
    meta.update(change)
    (target / "feature_metadata.json").write_text(json.dumps(meta))

    with pytest.raises(inf.ModelLoadError) as err:
        inf.model_fn(str(target))

    assert err.value.status_code == 500 and str(err.value) == message


# --------------------------------------------------------------------------------------
# Multiclass
# --------------------------------------------------------------------------------------
def _multiclass_answer(probabilities, inference_id=None):
    k = int(np.argmax(probabilities))
    item = {"label": PLANS[k], "score": float(probabilities[k]),
            "probabilities": {name: float(p) for name, p in zip(PLANS, probabilities)}}
    if inference_id is not None:
        item["inference_id"] = inference_id
    return item


def test_multiclass_json_answers_label_score_and_every_class_probability(plan):
    """GIVEN precomputed features, one with an inference id WHEN answered as JSON THEN each record gets the most
    probable class, its probability and all probabilities (train.predict's, exactly), the id echoed."""
    served = inf.model_fn(plan.model_dir)
    records = plan.feature_records(40)
    records[3]["inference_id"] = "crm-42"

    body, content_type = _invoke(served, {"instances": records}, accept=inf.JSON)

    assert content_type == inf.JSON
    answer = json.loads(body)
    assert set(answer) == {"predictions", "model"} and answer["model"]["name"] == "plan"
    expected = [_multiclass_answer(plan.outputs[i], "crm-42" if i == 3 else None) for i in range(40)]
    assert answer["predictions"] == expected
    assert list(answer["predictions"][3]) == ["label", "score", "probabilities", "inference_id"]
    assert {p["label"] for p in answer["predictions"]} == set(PLANS)  # the rows cover every class
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-6 for p in answer["predictions"])


def test_multiclass_jsonlines_through_input_predict_output_fn_keeps_order_and_count(plan):
    """GIVEN raw and precomputed records one per line WHEN the container's three hooks answer as JSON Lines
    THEN line i answers record i, raw records scored exactly like their features."""
    served = inf.model_fn(plan.model_dir)
    raw, features = plan.raw_records(30), plan.feature_records(30)
    lines = [json.dumps(raw[i] if i % 2 else features[i]) for i in range(30)]

    request = inf.input_fn(("\n".join(lines) + "\n").encode(), inf.JSONLINES)
    prediction = inf.predict_fn(request, served)
    body, content_type = inf.output_fn(prediction, inf.JSONLINES)

    assert content_type == inf.JSONLINES
    assert prediction.sources == [inf.SOURCE_RAW if i % 2 else inf.SOURCE_FEATURES for i in range(30)]
    assert np.array_equal(prediction.probabilities, plan.outputs[:30])
    assert [json.loads(line) for line in body.decode().split("\n")] == [_multiclass_answer(p) for p in plan.outputs[:30]]


def test_multiclass_csv_answers_the_class_name_per_line(plan):
    """GIVEN CSV records in feature order WHEN answered as CSV THEN each line is the predicted class's name."""
    served = inf.model_fn(plan.model_dir)
    rows = ["" if v is None else str(v) for r in plan.feature_records(25) for v in r.values()]
    width = len(served.feature_order)
    body_in = "\n".join(",".join(rows[i:i + width]) for i in range(0, len(rows), width))

    body, content_type = _invoke(served, body_in, content_type=inf.CSV, accept=inf.CSV)

    assert content_type == inf.CSV
    assert body.decode().split("\n") == [PLANS[int(np.argmax(p))] for p in plan.outputs[:25]]


def test_a_class_name_with_a_comma_is_one_quoted_csv_field(plan, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(plan.model_dir, target)
    meta = json.loads((target / "feature_metadata.json").read_text())
    meta["classes"] = ["basic", 'standard, "plus"', "premium"]
    (target / "feature_metadata.json").write_text(json.dumps(meta))
    served = inf.model_fn(str(target))
    records = plan.feature_records(25)
    which = next(i for i, p in enumerate(plan.outputs[:25]) if int(np.argmax(p)) == 1)

    body, _ = _invoke(served, [records[which], records[which]], accept=inf.CSV)

    assert body.decode() == '"standard, ""plus"""\n"standard, ""plus"""'


# --------------------------------------------------------------------------------------
# Regression
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("accept", [inf.JSON, inf.JSONLINES, inf.CSV])
def test_regression_answers_the_predicted_value_in_each_format(spend, accept):
    """GIVEN raw records, one with an inference id WHEN answered as JSON / JSON Lines / CSV THEN each record
    gets train.predict's value, exactly (and its id in JSON)."""
    served = inf.model_fn(spend.model_dir)
    records = spend.raw_records(20)
    records[0]["inference_id"] = "req-0"
    expected = [{"value": float(v)} for v in spend.outputs[:20]]
    expected[0]["inference_id"] = "req-0"

    body, content_type = _invoke(served, {"instances": records}, accept=accept)

    assert content_type == accept
    text = body.decode()
    if accept == inf.JSON:
        answer = json.loads(text)
        assert answer["predictions"] == expected and answer["model"]["name"] == "spend"
    elif accept == inf.JSONLINES:
        assert [json.loads(line) for line in text.split("\n")] == expected
    else:
        assert text == "\n".join(repr(float(v)) for v in spend.outputs[:20])


def test_regression_through_input_predict_output_fn_from_csv(spend):
    served = inf.model_fn(spend.model_dir)
    records = spend.feature_records(5)
    body_in = "\n".join(",".join("" if v is None else str(v) for v in r.values()) for r in records)

    prediction = inf.predict_fn(inf.input_fn(body_in, "text/csv; charset=utf-8"), served)
    body, content_type = inf.output_fn(prediction, "application/jsonlines")

    assert prediction.problem_type == "regression" and np.array_equal(prediction.scores, spend.outputs[:5])
    assert content_type == inf.JSONLINES
    assert body.decode() == "\n".join(json.dumps({"value": float(v)}, separators=(",", ":")) for v in spend.outputs[:5])


# --------------------------------------------------------------------------------------
# Non-finite outputs and request validation
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "poison", "message"),
    [
        ("spend", lambda out: out.__setitem__(1, np.inf),
         "record 1 (line 2): the model's output inf is not a finite number; nothing is answered for this request"),
        ("plan", lambda out: out.__setitem__((2, 1), np.nan),
         "record 2 (line 3): the model's output [{p0!r}, nan, {p2!r}] is not a finite number; nothing is answered "
         "for this request"),
    ],
    ids=["regression-inf", "multiclass-nan"],
)
def test_a_non_finite_model_output_is_refused_never_answered(problem_models, monkeypatch, name, poison, message):
    """GIVEN a model whose output for one record is not finite WHEN asked in any format THEN a 500 names the
    record and nothing is answered."""
    built = problem_models[name]
    served = inf.model_fn(built.model_dir)
    real = inf.model_output

    def broken(trained, frame):
        out = real(trained, frame).copy()
        poison(out)
        return out

    monkeypatch.setattr(inf, "model_output", broken)
    body_in = "\n".join(json.dumps(r) for r in built.feature_records(4))
    for accept in (inf.JSON, inf.JSONLINES, inf.CSV):
        with pytest.raises(inf.ModelOutputError) as err:
            _invoke(served, body_in, content_type=inf.JSONLINES, accept=accept)
        assert err.value.status_code == 500 and isinstance(err.value, inf.InvocationError)
        if name == "plan":
            p = built.outputs[2]
            assert str(err.value) == message.format(p0=float(p[0]), p2=float(p[2]))
        else:
            assert str(err.value) == message


def test_a_non_finite_binary_score_is_refused_too(trained_models, monkeypatch):
    served = inf.model_fn(trained_models["churn"].model_dir)
    monkeypatch.setattr(inf, "model_output", lambda trained, frame: np.full(len(frame), np.nan))

    with pytest.raises(inf.ModelOutputError) as err:
        _invoke(served, trained_models["churn"].feature_records(2))

    assert str(err.value) == ("record 0: the model's output nan is not a finite number; record 1: the model's output nan "
                              "is not a finite number; nothing is answered for this request")


def test_more_than_ten_non_finite_outputs_are_counted_not_listed(spend, monkeypatch):
    served = inf.model_fn(spend.model_dir)
    monkeypatch.setattr(inf, "model_output", lambda trained, frame: np.full(len(frame), -np.inf))

    with pytest.raises(inf.ModelOutputError) as err:
        _invoke(served, spend.feature_records(13))

    assert str(err.value).count("is not a finite number") == 10
    assert str(err.value).endswith("record 9: the model's output -inf is not a finite number (+3 more records); "
                                   "nothing is answered for this request")


@pytest.mark.parametrize("name", ["plan", "spend"])
def test_request_validation_is_the_same_for_every_problem_type(problem_models, name):
    """GIVEN a raw record missing a required field and one with a value outside its declared range WHEN sent
    THEN the 400 names both, exactly as for a binary model."""
    served = inf.model_fn(problem_models[name].model_dir)
    records = problem_models[name].raw_records(2)
    del records[0]["region"]
    records[1]["tenure_months"] = 601

    with pytest.raises(inf.BadRequestError) as err:
        _invoke(served, records)

    assert err.value.status_code == 400
    assert str(err.value) == (
        "record 0: missing required field 'region' (a raw record needs ['tenure_months', 'region'], optionally "
        "['support_calls_90d', 'gender']; or send every model feature ['tenure_months', 'log_support_calls_90d', "
        "'region']); record 1: field 'tenure_months': 601.0 is above the maximum 600 (declared for dataset "
        "'customer_plans')"
    )


# --------------------------------------------------------------------------------------
# Binary: unchanged
# --------------------------------------------------------------------------------------
def test_a_binary_answer_is_unchanged_byte_for_byte(trained_models):
    """GIVEN the churn model WHEN answered in each format THEN the bodies are exactly the pre-problem-type ones."""
    churn = trained_models["churn"]
    served = inf.model_fn(churn.model_dir)
    records = churn.feature_records(3)
    records[2]["inference_id"] = "crm-7f3a"
    scores = churn.evaluation_scores[:3]
    items = [{"score": float(s), "label": int(s >= 0.5)} for s in scores]
    items[2]["inference_id"] = "crm-7f3a"

    assert served.problem_type == "binary_classification" and served.classes == ["0", "1"]
    body, _ = _invoke(served, records, accept=inf.JSON)
    assert body == json.dumps({"predictions": items, "model": served.info}, separators=(",", ":")).encode()
    body, _ = _invoke(served, records, accept=inf.JSONLINES)
    assert body == "\n".join(json.dumps(i, separators=(",", ":")) for i in items).encode()
    body, _ = _invoke(served, records, accept=inf.CSV)
    assert body == "\n".join(repr(float(s)) for s in scores).encode()
