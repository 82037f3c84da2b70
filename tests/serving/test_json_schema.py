"""The JSON Schemas of a model's contract (``python -m mlops_cli.contract_schema``) accept exactly what serving accepts.

For every model of the sample config (whatever models it lists) and a model of every column type (a date, a
timestamp, booleans, optional fields: :data:`EVERY_TYPE`), on a sample of records written in the canonical form
(generated raw records, their precomputed features as objects and arrays, and records each broken in one way: a
required field left out, null or blank, a level not declared, a number outside its bounds, a wrong type, a typo'd key,
a feature of the precomputed form in a raw record ...), a record's request validates against the request schema
exactly when serving's own validation (:func:`pipeline_code.serving.records.feature_rows`) accepts it. Lenient forms
serving also reads (numeric text, a category's other case) the schema refuses: it is never looser than serving.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import jsonschema
import pytest

from mlops_cli import contract_schema
from pipeline_code import catalog
from pipeline_code.core.value_rules import FLOAT32_MAX
from pipeline_code.sample_data.generate import generate_batch
from pipeline_code.serving import records as serving_records
from pipeline_code.serving.errors import BadRequestError
from pipeline_code.serving.inference import serving_contract
from pipeline_code.training.spec import parse_model_spec
from tests.support.configs import SAMPLE_CONFIG
from tests.support.contract_doc import DOC, doc_examples

from mlops_loop.config import load_config

_APP = load_config(str(SAMPLE_CONFIG))
MODELS = sorted(_APP.models)


def frame_records(frame: Any) -> List[Dict[str, Any]]:
    """A frame's rows as a caller's JSON records (missing values null, times ISO-8601)."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


# A model of every column type beside the sample's (whatever models those are): required and optional booleans, a date
# and a timestamp counted in days (days_since), free text, a bounded number, and a field name too short for a one-letter
# typo to read as one.
EVERY_TYPE = "every-type"
_EVERY_TYPE_DATASET = {
    "name": "every_type", "record_identifier": "rid", "event_time": "event_time", "labels": ["label"],
    "columns": {
        "rid": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
        "signup_date": {"type": "date", "nullable": False}, "last_login": {"type": "timestamp"},
        "is_premium": {"type": "boolean", "nullable": False}, "has_promo": {"type": "boolean"},
        "note": {"type": "string"}, "code": {"type": "string", "nullable": False},
        "rating": {"type": "double", "min": -5, "max": 5}, "segment": {"type": "string", "allowed": ["a", "b"]},
        "label": {"type": "integer", "min": 0, "max": 1}},
    "features": {"tenure_days": "days_since(signup_date)", "login_age": "days_since(last_login)",
                 "is_premium": "is_premium", "has_promo": "has_promo", "note": "note", "code": "code",
                 "rating": "rating", "segment": "segment"},
}
_EVERY_TYPE_METADATA = {
    "model": EVERY_TYPE, "dataset": _EVERY_TYPE_DATASET, "problem_type": "binary_classification",
    "feature_order": ["tenure_days", "login_age", "is_premium", "has_promo", "note", "code", "rating"],
    "sensitive_attribute": "segment", "slices": [],
}


def _contract(name: str) -> Tuple[Any, serving_records.FeatureContract]:
    if name == EVERY_TYPE:
        return None, serving_contract(_EVERY_TYPE_METADATA, catalog.load_dataset(_EVERY_TYPE_DATASET))
    spec = parse_model_spec(_APP.models[name].job_spec())
    metadata = {"feature_order": list(spec.features), "sensitive_attribute": spec.sensitive_attribute,
                "slices": list(spec.slices)}
    return spec, serving_contract(metadata, spec.catalog_dataset)


def _request_schema(name: str) -> Dict[str, Any]:
    if name == EVERY_TYPE:
        return contract_schema.schemas_of_metadata(_EVERY_TYPE_METADATA)["request"]
    return contract_schema.schemas_of_config(str(SAMPLE_CONFIG), [name])[name]["request"]


def _raw_records(ds: catalog.Dataset, count: int) -> List[Dict[str, Any]]:
    """Generated raw records as a caller writes them: dates yyyy-MM-dd, times ISO-8601, missing values null."""
    records = frame_records(generate_batch(ds, count, seed=5, as_text=False).frame)
    dates = [name for name in ds.column_names if ds.column(name).dtype == catalog.DATE]
    for record in records:
        for name in dates:
            record[name] = record[name][:10] if isinstance(record.get(name), str) else record.get(name)
    return records


def _serving_accepts(contract: serving_records.FeatureContract, record: Any) -> bool:
    try:
        serving_records.feature_rows(contract, [record])
    except BadRequestError:
        return False
    return True


def _validator(schema: Dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _out_of_rule(column: catalog.Column) -> List[Any]:
    """Values of ``column``'s type that break its declared rules, and values of another type."""
    if column.dtype == catalog.STRING:
        return [*(["not-a-declared-level"] if column.allowed else []), 7]
    if column.dtype in (catalog.INTEGER, catalog.DOUBLE):
        out: List[Any] = ["not a number", True]
        out += [column.minimum - 1] if column.minimum is not None else []
        out += [column.maximum + 1] if column.maximum is not None else []
        out += [1.5] if column.dtype == catalog.INTEGER else []
        return out
    if column.dtype == catalog.BOOLEAN:
        return ["maybe", 2]
    return ["not a time", 20260101]


def _samples(spec: Any, contract: serving_records.FeatureContract) -> List[Tuple[str, Any]]:
    """(what, record) in the canonical form, valid and broken."""
    ds = contract.dataset
    raw = _raw_records(ds, 12)
    for record in raw:
        for label in ds.labels:
            record.pop(label, None)
    features = frame_records(serving_records.feature_rows(contract, raw).frame[list(contract.feature_order)])
    out: List[Tuple[str, Any]] = [(f"raw {i}", r) for i, r in enumerate(raw)]
    out += [(f"features {i}", {**r, "inference_id": f"id-{i}"}) for i, r in enumerate(features)]
    out += [(f"array {i}", [r[name] for name in contract.feature_order]) for i, r in enumerate(features)]
    base, feature_base = raw[0], features[0]
    for name in contract.required_raw_fields:
        out.append((f"raw without {name}", {k: v for k, v in base.items() if k != name}))
        out.append((f"raw {name} null", {**base, name: None}))
        out.append((f"raw {name} blank", {**base, name: "  "}))
    for name in [*contract.required_raw_fields, *contract.optional_raw_fields]:
        out += [(f"raw {name}={value!r}", {**base, name: value}) for value in _out_of_rule(ds.column(name))]
    for name in contract.optional_raw_fields:
        out.append((f"raw {name} null", {**base, name: None}))
        without = {k: v for k, v in base.items() if k != name}
        out.append((f"raw without {name}", without))
        # Its last letter doubled: one typo serving names for a name of any length ("note" -> "notee").
        out.append((f"raw {name} typo'd", {**without, name + name[-1]: base.get(name)}))
    for name in contract.record_kinds.named_like_no_column:
        out.append((f"raw with feature {name}", {**base, name: feature_base[name]}))
    out.append(("raw inference_id object", {**base, "inference_id": {"a": 1}}))
    for name in contract.feature_order:
        out.append((f"features without {name}", {k: v for k, v in feature_base.items() if k != name}))
        out.append((f"features {name} null", {**feature_base, name: None}))
        rule = ds.feature_rule(name)
        if rule is not None and rule.allowed:
            out.append((f"features {name} not a level", {**feature_base, name: "not-a-declared-level"}))
        if rule is not None and rule.maximum is not None:
            out.append((f"features {name} above max", {**feature_base, name: rule.maximum + 1}))
    out.append(("array one short", [feature_base[name] for name in contract.feature_order][:-1]))
    return out


@pytest.mark.parametrize("model", [*MODELS, EVERY_TYPE])
def test_the_request_schema_accepts_exactly_what_serving_accepts(model):
    spec, contract = _contract(model)
    schema = _request_schema(model)
    validator = _validator(schema)
    disagreements, verdicts = [], set()
    for what, record in _samples(spec, contract):
        body = json.loads(json.dumps({"instances": [record]}))  # as a caller sends it
        by_schema = validator.is_valid(body)
        by_serving = _serving_accepts(contract, body["instances"][0])
        verdicts.add(by_serving)
        if by_schema != by_serving:
            disagreements.append(f"{what}: schema {'accepts' if by_schema else 'refuses'}, serving "
                                 f"{'accepts' if by_serving else 'refuses'}: {json.dumps(record)[:300]}")
    assert verdicts == {True, False}, "the sample must hold records serving accepts and records it refuses"
    assert disagreements == []


@pytest.mark.parametrize("model", [*MODELS, EVERY_TYPE])
def test_the_schema_refuses_the_lenient_forms_serving_also_reads(model):
    """Never looser than serving: numeric text, a category in another case, a key of no column, a numeric
    inference_id are scored by serving but not the canonical form a client codes against."""
    spec, contract = _contract(model)
    validator = _validator(_request_schema(model))
    base = _raw_records(contract.dataset, 1)[0]
    lenient = [("a key of no column", {**base, "caller_metadata": "x"}), ("numeric inference_id", {**base, "inference_id": 42})]
    for name in contract.required_raw_fields:
        column = contract.dataset.column(name)
        if column.dtype in (catalog.INTEGER, catalog.DOUBLE):
            lenient.append((f"{name} as text", {**base, name: str(base[name])}))
        if column.allowed:
            lenient.append((f"{name} capitalised", {**base, name: f" {base[name].upper()} "}))
    for what, record in lenient:
        assert _serving_accepts(contract, record), what
        assert not validator.is_valid({"instances": [record]}), what


def test_the_response_schema_of_each_problem_type_names_its_answers():
    schemas = contract_schema.schemas_of_config(str(SAMPLE_CONFIG))
    by_type: Dict[str, Any] = {}
    for name in MODELS:
        spec = parse_model_spec(_APP.models[name].job_spec())
        by_type.setdefault(spec.problem_type, (spec, schemas[name]["response"]))
    for problem_type, (spec, schema) in by_type.items():
        validator = _validator(schema)
        model = {"name": spec.name, "version": "7", "artefact_sha256": "0" * 64, "trained_at": "2026-11-26T08:32:36+00:00"}
        if problem_type == "multiclass_classification":
            classes = list(spec.classes)
            good = {"label": classes[0], "score": 0.6,
                    "probabilities": {c: (0.6 if c == classes[0] else 0.4 / (len(classes) - 1)) for c in classes}}
            bad = {**good, "label": "not-a-class"}
        elif problem_type == "regression":
            good, bad = {"value": 12.5}, {"score": 0.5, "label": 1}
        else:
            good, bad = {"score": 0.25, "label": 0}, {"score": 0.25, "label": 2}
        assert validator.is_valid({"predictions": [{**good, "inference_id": "a"}], "model": model}), problem_type
        assert not validator.is_valid({"predictions": [bad], "model": model}), problem_type


def _metadata(name: str) -> Dict[str, Any]:
    spec = parse_model_spec(_APP.models[name].job_spec())
    return {"model": name, "dataset": spec.catalog_dataset.to_declaration(), "feature_order": list(spec.features),
            "sensitive_attribute": spec.sensitive_attribute, "slices": list(spec.slices),
            "problem_type": spec.problem_type, "classes": list(spec.classes), "target": spec.target}


def _changed(metadata: Dict[str, Any], column: str, **body: Any) -> Dict[str, Any]:
    """``metadata`` with raw column ``column`` declared otherwise (``body`` replaces its keys; None drops one)."""
    out = json.loads(json.dumps(metadata))
    for entry in out["dataset"]["columns"]:
        if entry["name"] == column:
            entry.update(body)
            for key in [k for k, v in body.items() if v is None]:
                del entry[key]
    return out


def _renamed(metadata: Dict[str, Any], column: str, new: str) -> Dict[str, Any]:
    """``metadata`` with raw column ``column`` renamed ``new`` (and read so by every feature)."""
    out = _changed(metadata, column, name=new)
    for feature in out["dataset"]["features"]:
        feature["expr"] = re.sub(rf"\b{re.escape(column)}\b", new, feature["expr"])
    return out


@pytest.mark.parametrize("model", MODELS)
def test_check_names_each_change_a_new_version_makes_to_the_contract(model):
    metadata = _metadata(model)
    _, contract = _contract(model)
    kept = contract_schema.schemas_of_metadata(metadata)["request"]
    ds = contract.dataset
    required = [ds.column(name) for name in contract.required_raw_fields]
    raw_fields = contract.required_raw_fields + contract.optional_raw_fields
    categorical = next((c for c in ds.columns if c.allowed and len(c.allowed) > 1 and c.name in raw_fields), None)
    numeric = next((c for c in required if c.dtype in (catalog.INTEGER, catalog.DOUBLE)), None)
    if categorical is None or numeric is None:
        pytest.skip(f"model {model} reads no declared level or no required number")
    level = categorical.allowed[-1]
    where = f"/$defs/raw_record/properties/{categorical.name}/enum"

    fewer = contract_schema.schemas_of_metadata(_changed(metadata, categorical.name, allowed=list(categorical.allowed[:-1])))
    assert f"{where}: removed {json.dumps([level])}" in contract_schema.differences(kept, fewer["request"])

    # An integer column becomes a double one (or the other way); its features' types follow (inferred).
    new_type, json_type = ("double", "number") if numeric.dtype == catalog.INTEGER else ("integer", "integer")
    retyped_metadata = _changed(metadata, numeric.name, type=new_type)
    retyped_metadata["dataset"]["features"] = [
        {k: v for k, v in f.items() if k != "type" or not re.search(rf"\b{numeric.name}\b", f["expr"])}
        for f in retyped_metadata["dataset"]["features"]]
    retyped = contract_schema.schemas_of_metadata(retyped_metadata)
    assert (f"/$defs/raw_record/properties/{numeric.name}/type: changed from "
            f"{json.dumps(kept['$defs']['raw_record']['properties'][numeric.name]['type'])} to {json.dumps(json_type)}"
            in contract_schema.differences(kept, retyped["request"]))

    renamed = contract_schema.schemas_of_metadata(_renamed(metadata, numeric.name, f"{numeric.name}_v2"))
    changes = contract_schema.differences(kept, renamed["request"])
    assert f"/$defs/raw_record/required: removed {json.dumps([numeric.name])}, added {json.dumps([numeric.name + '_v2'])}" in changes


def test_the_command_writes_the_schemas_and_its_check_fails_on_a_changed_contract(tmp_path, capsys):
    config = str(SAMPLE_CONFIG)
    assert contract_schema.main(["--config", config, "--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(contract_schema.file_name(m, kind) for m in MODELS for kind in contract_schema.KINDS)
    assert contract_schema.main(["--config", config, "--check", str(tmp_path)]) == 0
    # The callers coded against a level the config no longer declares (kept: what they validated against).
    model, name = next((m, n) for m in MODELS for n in _contract(m)[1].required_raw_fields
                       if _contract(m)[1].dataset.column(n).allowed)
    path = tmp_path / contract_schema.file_name(model, "request")
    kept = json.loads(path.read_text())
    kept["$defs"]["raw_record"]["properties"][name]["enum"].append("retired-level")
    path.write_text(json.dumps(kept))
    capsys.readouterr()
    assert contract_schema.main(["--config", config, "--check", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{path}: /$defs/raw_record/properties/{name}/enum: removed [\"retired-level\"]"]
    assert err == (f"1 change(s) to the invocation contract: update the callers, then the schemas (--out {tmp_path})\n")
    # A model the callers call that the config no longer has (removed, or renamed).
    gone = tmp_path / contract_schema.file_name("retired-model", "request")
    gone.write_text("{}")
    assert contract_schema.main(["--config", config, "--check", str(tmp_path)]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == (f"{gone}: model 'retired-model' is no longer in the config (removed or renamed): its "
                                   "callers would be refused")


def test_the_check_of_an_environment_s_schemas_holds_its_by_id_fronts_and_names_one_withdrawn(tmp_path, capsys):
    """GIVEN a config whose first model is served by id in an environment, and the schemas written with --env WHEN
    checked with --env (or without it) THEN the kept by-id schemas are no model gone: exit 0; and once the config no
    longer serves that model by id, the check with --env names the by-id front withdrawn (its callers would be
    refused), not a model 'x.by-id' gone from the config."""
    import yaml

    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    model, environment = MODELS[0], sorted(raw["environments"])[0]
    raw["models"][model]["serving"] = {"mode": "realtime", "realtime": {"instance_type": "ml.m5.large"},
                                       "by_id": {"enabled": True, "missing": "compute"}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "contract"
    assert contract_schema.main(["--config", str(config), "--env", environment, "--out", str(out)]) == 0
    by_id = out / contract_schema.file_name(model, "by-id.request")
    assert by_id.is_file()
    capsys.readouterr()
    assert contract_schema.main(["--config", str(config), "--env", environment, "--check", str(out)]) == 0, capsys.readouterr()
    assert contract_schema.main(["--config", str(config), "--check", str(out)]) == 0, capsys.readouterr()

    raw["models"][model]["serving"].pop("by_id")
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert contract_schema.main(["--config", str(config), "--env", environment, "--check", str(out)]) == 1
    printed, _ = capsys.readouterr()
    assert printed.splitlines() == [f"{by_id}: model {model!r} is no longer served by id in {environment} (its front "
                                    "withdrawn): its by-id callers would be refused"]


def test_a_kept_schema_that_is_not_json_is_named_with_its_fix(tmp_path, capsys):
    """GIVEN a kept schema file cut short (a bad merge) WHEN checked THEN exit 2 naming the file, what is wrong and
    how to write it again, not a traceback."""
    model = MODELS[0]
    assert contract_schema.main(["--config", str(SAMPLE_CONFIG), "--model", model, "--out", str(tmp_path)]) == 0
    path = tmp_path / contract_schema.file_name(model, "request")
    path.write_text('{"$schema": ')
    capsys.readouterr()
    assert contract_schema.main(["--config", str(SAMPLE_CONFIG), "--model", model, "--check", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"error: {path}: not JSON (Expecting value: line 1 column 13 (char 12)); write the "
                                       f"schemas again with --out {tmp_path}, then check\n")


def test_an_artefact_without_a_usable_dataset_declaration_is_named_with_its_file(tmp_path, capsys):
    """GIVEN --model-dir a directory whose feature_metadata.json carries no dataset declaration WHEN the schemas are
    generated THEN exit 2 naming the file, what it lacks (in serving's words: it would not load either) and the fix."""
    (tmp_path / "feature_metadata.json").write_text(json.dumps({"model": "churn", "feature_order": ["a"]}))
    assert contract_schema.main(["--model-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'feature_metadata.json'}: model 'churn': its dataset declaration is unusable (a dataset "
        "declaration must be a JSON object with a 'name'), so serving would not load this artefact either; give the "
        "directory a model.tar.gz of this model was extracted to, or generate the schemas from the config (--model "
        "churn)\n")


def test_an_unknown_model_is_named_with_the_known_ones(capsys):
    assert contract_schema.main(["--model", "chrun", "--config", str(SAMPLE_CONFIG), "--out", "unused"]) == 2
    assert capsys.readouterr().err == (f"error: --model 'chrun' is not a model of {SAMPLE_CONFIG}; its models: "
                                       f"{', '.join(MODELS)}\n")


def _part(schema: Dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator of ``schema``'s ``$defs/<name>`` (one JSON Lines line)."""
    return _validator({"$schema": schema["$schema"], "$ref": f"#/$defs/{name}", "$defs": schema["$defs"]})


_EXAMPLES = doc_examples("example")
_JSON_EXAMPLES = sorted(i for i, e in _EXAMPLES.items()
                        if "request" in e and e["request"]["content-type"] in ("application/json", "application/jsonlines"))


@pytest.mark.parametrize("example_id", _JSON_EXAMPLES)
def test_the_schemas_of_a_trained_artefact_hold_its_real_requests_and_answers(example_id, trained_models, problem_models):
    """Generated from the artefact (``--model-dir``): each JSON / JSON Lines request of docs/invocation-contract.md
    validates (the refused ones do not), and serving's real answer to it validates against the response schema."""
    from pipeline_code.serving import inference as inf

    request = _EXAMPLES[example_id]["request"]
    model_dir = {**{n: t.model_dir for n, t in trained_models.items()},
                 **{n: m.model_dir for n, m in problem_models.items()}}[request["model"]]
    (name, schemas), = contract_schema.schemas_of_artefact(model_dir).items()
    assert name == request["model"]
    model = inf.model_fn(model_dir)
    lines = request["content-type"] == inf.JSONLINES
    bodies = [json.loads(x) for x in request["body"].splitlines() if x.strip()] if lines else [json.loads(request["body"])]
    valid = [(_part(schemas["request"], "record") if lines else _validator(schemas["request"])).is_valid(b) for b in bodies]
    try:
        answer, _ = inf.invoke(model, request["body"], content_type=request["content-type"], accept=request["content-type"])
    except inf.InvocationError:
        assert not all(valid), f"{example_id}: the schema accepts a request serving refuses"
        return
    assert all(valid), f"{example_id}: the schema refuses a request serving scores"
    if lines:
        prediction = _part(schemas["response"], "prediction")
        assert all(prediction.is_valid(json.loads(x)) for x in answer.decode().split("\n"))
    else:
        response = json.loads(answer)
        errors = [e.message for e in _validator(schemas["response"]).iter_errors(response)]
        assert errors == []


def _field_rows(model: str, schema: Dict[str, Any]) -> List[str]:
    """The Values table's rows of ``model`` (docs/invocation-contract.md, Requests), rendered from its request schema."""
    raw = schema["$defs"]["raw_record"]

    def number(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    rows = []
    for name in [*raw["required"], *[n for n in raw["properties"] if n not in raw["required"]]]:
        body = raw["properties"][name]
        if not isinstance(body, dict) or name == "inference_id":
            continue
        kind = body["type"] if isinstance(body["type"], str) else body["type"][0]
        if "enum" in body:
            values = ", ".join(f"`{v}`" for v in body["enum"] if v is not None)
        else:
            low, high = body.get("minimum"), body.get("maximum")
            low = None if low is None or low <= -FLOAT32_MAX else low
            high = None if high is None or high >= FLOAT32_MAX else high
            values = (f"{number(low)} .. {number(high)}" if low is not None and high is not None else
                      f">= {number(low)}" if low is not None else f"<= {number(high)}" if high is not None else "any")
        rows.append(f"| {model} | `{name}` | {kind} | {'yes' if name in raw['required'] else 'no'} | {values} |")
    return rows


def test_the_doc_s_values_table_is_the_schemas():
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("**Values.**"):]
    table = table[table.index("| model | field |"):]
    table = table[:table.index("\n\n")].splitlines()[2:]
    models = list(dict.fromkeys(row.split("|")[1].strip() for row in table))
    schemas = contract_schema.schemas_of_config(str(SAMPLE_CONFIG), models)
    assert table == [row for model in models for row in _field_rows(model, schemas[model]["request"])]


def test_the_by_id_schemas_hold_the_front_s_real_requests_and_answers(trained_models, tmp_path):
    """The score-by-id front's schemas (policy ``compute``) of a trained artefact: what its real handler accepts and
    answers (a hit, a computed miss, an id refused alone for a raw field it lacks) validates; what it refuses whole
    (too many ids, no id, an id of no printable character, a numeric inference_id) does not."""
    from types import SimpleNamespace

    from mlops_cli.local.online_store import LocalEndpoint, LocalOnlineStore, score_by_id
    from pipeline_code.core.integrity import METADATA_FILE
    from pipeline_code.core.online_features import LookupSpec, front_environment

    churn = trained_models["churn"]
    ds, features = churn.dataset, churn.spec.features
    metadata = json.loads((Path(churn.model_dir) / METADATA_FILE).read_text())
    schemas = contract_schema.schemas_of_metadata(metadata, SimpleNamespace(enabled=True, max_ids=3, missing="compute"))
    request, response = _validator(schemas["by-id.request"]), _validator(schemas["by-id.response"])
    spec = LookupSpec(record_identifier=ds.record_identifier, event_time=ds.event_time,
                      features=tuple((name, ds.feature(name).feature_type) for name in features), policy="compute",
                      max_ids=3, required=ds.required_features(features), required_raw=ds.required_raw_fields(features))
    environ = front_environment(environment="dev", model="churn", endpoint="test-churn", feature_group="test-group",
                                spec=spec, namespace="test/serving")
    store = LocalOnlineStore(str(tmp_path / "store.sqlite"))
    [stored] = churn.feature_records(1)
    store.put_records("test-group", [{ds.record_identifier: "id-0", ds.event_time: "2026-05-31T00:00:00Z", **stored}],
                      record_identifier=ds.record_identifier, event_time=ds.event_time, ttl_days=None)
    endpoint = LocalEndpoint(churn.model_dir, model="churn")
    [raw] = churn.raw_records(1)
    raw = {k: v for k, v in raw.items() if k in ds.required_raw_fields(features)}
    lacking = {k: v for k, v in raw.items() if k != next(iter(raw))}

    def answered(body: Dict[str, Any]) -> Dict[str, Any]:
        return score_by_id(body, environ=environ, store=store, endpoint=endpoint, now=dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc))

    for body in ({"ids": ["id-0"]},
                 {"instances": [{ds.record_identifier: "id-0"}, {ds.record_identifier: "new-1", **raw},
                                {ds.record_identifier: "new-2", **lacking, "inference_id": "mine"}]}):
        assert request.is_valid(body), body
        answer = answered(body)
        assert answer["status"] == 200, answer
        assert [e.message for e in response.iter_errors(answer["body"])] == []
    assert any("error" in p for p in answer["body"]["predictions"]), "the sample must hold an id refused alone"
    for body in ({"ids": ["a", "b", "c", "d"]}, {"ids": []}, {"ids": ["\u0001"]},
                 {"instances": [{ds.record_identifier: "id-0", "inference_id": 7.5}]}):
        assert not request.is_valid(body), body
        assert answered(body)["status"] in (400, 413), body


def test_an_unknown_environment_is_named_with_the_known_ones(capsys):
    assert contract_schema.main(["--env", "prd", "--config", str(SAMPLE_CONFIG), "--out", "unused"]) == 2
    assert capsys.readouterr().err == (f"error: --env 'prd' is not an environment of {SAMPLE_CONFIG}; its environments: "
                                       f"{', '.join(sorted(_APP.environments))}\n")


@pytest.mark.parametrize("model", [*MODELS, EVERY_TYPE])
def test_an_endpoint_s_400_names_each_record_and_field_as_the_batch_error_lines_do(model):
    """A caller reads the record and the field at fault from an endpoint's 400 text with the documented pattern
    (:data:`pipeline_code.core.contract.REFUSED_FIELD`): for every broken sample record, the same field a batch
    transform's error line names first in its ``fields`` (none when the record as a whole is at fault)."""
    from pipeline_code.core.contract import REFUSED_FIELD

    spec, contract = _contract(model)
    broken = [(what, record) for what, record in _samples(spec, contract) if not _serving_accepts(contract, record)]
    assert broken
    for what, record in broken:
        with pytest.raises(BadRequestError) as refused:
            serving_records.feature_rows(contract, [record])
        [refusal] = serving_records.feature_rows(contract, [record], refuse_records=True).refused.values()
        named = [(int(m.group(1)), m.group(3)) for m in re.finditer(REFUSED_FIELD, str(refused.value))]
        assert named[:1] == [(0, refusal.fields[0] if refusal.fields else None)], (what, str(refused.value))


def test_the_doc_gives_the_pattern_serving_s_400_keeps():
    from pipeline_code.core.contract import REFUSED_FIELD

    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("**Reading a 400 by machine.**"):]
    assert section.split("```text\n", 1)[1].split("\n```", 1)[0] == REFUSED_FIELD


def test_a_change_between_true_and_1_is_named():
    """A boolean feature's values hold both 1 and true: compared as JSON, not as Python's equal 1 == True."""
    assert contract_schema.differences({"enum": [True, False]}, {"enum": [1, 0]}) == [
        "/enum: removed [true, false], added [1, 0]"]


@pytest.mark.parametrize("model", [*MODELS, EVERY_TYPE])
def test_a_400_fits_in_the_2048_characters_sagemaker_hands_its_caller(model):
    """GIVEN a request of 12 records each lacking a required raw field (each problem some 400 characters) WHEN refused
    THEN the 400 lists the first whole problems that fit in 2048 characters (ModelError's OriginalMessage) and counts
    the rest, so the caller reads whole records and fields, never a message cut mid-field."""
    from pipeline_code.core.contract import MAX_ERROR_MESSAGE

    spec, contract = _contract(model)
    first = contract.required_raw_fields[0]
    records = [{k: v for k, v in record.items() if k != first} for record in _raw_records(contract.dataset, 12)]
    refusals = serving_records.feature_rows(contract, records, refuse_records=True).refused
    words = [refusals[i].message for i in range(12)]
    # As many whole problems as fit, at most the 10 a 400 names (a model of few fields has short ones: 10 fit).
    fits = max(k for k in range(1, 11) if len("; ".join(words[:k]) + f" (+{12 - k} more problems)") <= MAX_ERROR_MESSAGE)
    with pytest.raises(BadRequestError) as refused:
        serving_records.feature_rows(contract, records)
    assert str(refused.value) == "; ".join(words[:fits]) + f" (+{12 - fits} more problems)"
    assert len(str(refused.value)) <= MAX_ERROR_MESSAGE == 2048


def test_a_misspelt_required_field_of_a_wide_model_is_named_within_the_2048_characters():
    """GIVEN a model of 150 features computed from 150 required columns (its 'raw record needs' list alone is longer
    than 2048 characters) and a record whose key for one of them is misspelt WHEN refused THEN the 400, cut to what
    SageMaker hands the caller, still names the misspelt key beside the missing field: the fix the caller needs comes
    before the long list, not after it."""
    from pipeline_code.core.contract import MAX_ERROR_MESSAGE, REFUSED_FIELD

    columns: Dict[str, Any] = {"rid": {"type": "string", "nullable": False},
                               "event_time": {"type": "timestamp", "nullable": False},
                               "label": {"type": "integer", "min": 0, "max": 1}}
    features = {}
    for i in range(150):
        columns[f"measurement_{i:03d}"] = {"type": "double", "nullable": False}
        features[f"log_measurement_{i:03d}"] = f"log1p(measurement_{i:03d})"
    ds = catalog.load_dataset({"name": "wide", "record_identifier": "rid", "event_time": "event_time",
                               "labels": ["label"], "columns": columns, "features": features})
    contract = serving_records.FeatureContract.create(ds, list(features))
    record = {f"measurement_{i:03d}": 1.0 for i in range(150) if i != 7}
    record["mesurement_007"] = 1.0
    with pytest.raises(BadRequestError) as refused:
        serving_records.feature_rows(contract, [record])
    text = str(refused.value)
    assert len(text) <= MAX_ERROR_MESSAGE
    assert text.startswith("record 0: missing required field 'measurement_007'; its 'mesurement_007' looks like "
                           "'measurement_007' (a raw record needs ['measurement_000', "), text[:300]
    assert re.match(REFUSED_FIELD, text).group(3) == "measurement_007"


def test_one_problem_longer_than_2048_characters_is_cut_after_its_record_and_field():
    from pipeline_code.core.contract import MAX_ERROR_MESSAGE

    problem = "record 0: missing required field 'a' (a raw record needs " + "['x'], " * 600 + ")"
    text = serving_records.refusal_message([problem, "record 1: field 'b': bad"], 2)
    assert len(text) == MAX_ERROR_MESSAGE
    assert text == problem[:MAX_ERROR_MESSAGE - len(" ... (+1 more problems)")] + " ... (+1 more problems)"
