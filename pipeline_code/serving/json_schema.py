"""JSON Schemas of a model's invocation contract, generated from the definition serving validates with.

A caller's CI validates its requests (and the answers it parses) against these, and regenerates them from each new
model version to learn, before the deploy, that the contract changed (a field renamed, a level removed, a type
changed): ``python -m mlops_cli.contract_schema`` (docs/invocation-contract.md, "A machine-readable contract").

Everything here is derived from the serving code's own :class:`pipeline_code.serving.records.FeatureContract` (the
catalog dataset an artefact carries, its feature order, sensitive attribute and slices) and the artefact's problem type
and classes: the rules :func:`pipeline_code.serving.records.feature_rows` applies, never a second hand-written copy.

The schema describes the *canonical form* of a record, and is never looser than serving: a request the schema accepts
is one serving scores (no 400), and among records written in that form it accepts exactly what serving accepts
(``tests/serving/test_json_schema.py`` holds both to it). Serving also reads some lenient forms the schema refuses,
so a client never depends on them: numbers written as text (``"21"``), categories in another case or with spaces
(``" North"``), booleans written as words, keys of no column or feature of the dataset (a caller's own metadata),
an ``inference_id`` given as a number. What JSON Schema cannot say stays serving's alone: a field given twice in one
object (a parsed document holds it once), NaN (not JSON), and a date or time that is not a real one (``2026-02-30``;
the ``date`` format says it to a validator that asserts formats) or an instant outside the times the jobs hold.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from pipeline_code import catalog
from pipeline_code.core import problem
from pipeline_code.core.contract import TRIMMED
from pipeline_code.core.value_rules import FLOAT32_MAX
from pipeline_code.serving.records import INFERENCE_ID, META_KEYS, FeatureContract

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# The kinds (file name parts, python -m mlops_cli.contract_schema) of the score-by-id front's schemas.
BY_ID_REQUEST, BY_ID_RESPONSE = "by-id.request", "by-id.response"
# Non-blank text: a required field's blank text is a missing value (serving reads it as the ETL does).
_NOT_BLANK = f"[^{TRIMMED}]"


def _or_null(schema: Dict[str, Any]) -> Dict[str, Any]:
    """``schema`` that also accepts null (a missing value)."""
    out = dict(schema)
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    if isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _number(integral: bool, minimum: Optional[float], maximum: Optional[float]) -> Dict[str, Any]:
    """A JSON number held to its declared bounds and to the float32 range the models compute in."""
    low = -FLOAT32_MAX if minimum is None else max(minimum, -FLOAT32_MAX)
    high = FLOAT32_MAX if maximum is None else min(maximum, FLOAT32_MAX)
    return {"type": "integer" if integral else "number", "minimum": _plain(low), "maximum": _plain(high)}


def _plain(number: float) -> Any:
    return int(number) if float(number).is_integer() and abs(number) < 2**53 else number


def _text(allowed: Optional[Sequence[str]], required: bool) -> Dict[str, Any]:
    if allowed is not None:
        return {"type": "string", "enum": list(allowed)}
    return {"type": "string", "pattern": _NOT_BLANK} if required else {"type": "string"}


def column_schema(column: catalog.Column, *, required: bool) -> Dict[str, Any]:
    """A raw field of ``column``: its type and declared rules (``min`` / ``max``, ``allowed``); null unless
    ``required``."""
    if column.dtype == catalog.STRING:
        schema = _text(column.allowed, required)
    elif column.dtype in (catalog.INTEGER, catalog.DOUBLE):
        schema = _number(column.dtype == catalog.INTEGER, column.minimum, column.maximum)
    elif column.dtype == catalog.BOOLEAN:
        schema = {"type": "boolean"}
    elif column.dtype == catalog.DATE:
        schema = {"type": "string", "pattern": catalog.DATE_PATTERN, "format": "date"}
    else:
        schema = {"type": "string", "pattern": catalog.TIMESTAMP_PATTERN}
    if column.description:
        schema["description"] = column.description
    return schema if required else _or_null(schema)


def feature_schema(dataset: catalog.Dataset, name: str, *, required: bool) -> Dict[str, Any]:
    """A precomputed value of feature ``name``: its Feature Store type and the rule serving holds it to
    (:meth:`pipeline_code.catalog.Dataset.feature_rule`); null unless ``required``."""
    definition = dataset.feature(name)
    rule = dataset.feature_rule(name)
    if dataset.is_boolean_feature(name):
        schema: Dict[str, Any] = {"enum": [True, False, 0, 1]}
    elif definition.feature_type == catalog.FS_STRING:
        schema = _text(rule.allowed if rule is not None else None, required)
    else:
        schema = _number(definition.feature_type == catalog.INTEGRAL,
                         rule.minimum if rule is not None else None, rule.maximum if rule is not None else None)
    if definition.description:
        schema["description"] = definition.description
    return schema if required else _or_null(schema)


def record_schemas(contract: FeatureContract) -> Dict[str, Dict[str, Any]]:
    """The three forms of one record (``$defs``): ``raw_record`` (raw fields), ``features_record`` (every model
    feature, an object) and ``features_array`` (the feature values in ``feature_order``: a JSON array, a CSV line)."""
    ds = contract.dataset
    features = list(contract.feature_order)
    columns = set(ds.column_names)
    required_features = set(ds.required_features(features))
    inference_id = {"type": "string", "description": (
        "echoed back with the record's answer; the id labels are joined by "
        "(docs/invocation-contract.md, Joining ground truth: the inference id)")}
    # Keys serving reads nothing from, or only what can never refuse the record: any value.
    ignored = {name: True for name in (*ds.column_names, *ds.feature_names, *META_KEYS)}

    features_props: Dict[str, Any] = dict(ignored)
    for name in features:
        features_props[name] = feature_schema(ds, name, required=name in required_features)
    for name in contract.extra_features:
        features_props[name] = feature_schema(ds, name, required=False)
    features_props[INFERENCE_ID] = inference_id
    features_record = {
        "title": "precomputed features",
        "description": f"every model feature, keyed by name (feature_order {features})",
        "type": "object", "required": features, "properties": features_props, "additionalProperties": False,
    }

    raw_props: Dict[str, Any] = dict(ignored)
    kinds = contract.record_kinds
    # A raw record holding a model feature named like no column, or a feature of another feature list, is read as an
    # incomplete precomputed one by serving (refused): the schema refuses those keys in a raw record.
    for name in (*kinds.named_like_no_column, *kinds.other_features):
        raw_props[name] = False
    for name in contract.required_raw_fields:
        raw_props[name] = column_schema(ds.column(name), required=True)
    for name in contract.optional_raw_fields:
        raw_props[name] = column_schema(ds.column(name), required=False)
    raw_props[INFERENCE_ID] = inference_id
    raw_record: Dict[str, Any] = {
        "title": "raw fields",
        "description": (f"the curated columns the model's features are computed from: required (non-null, not blank) "
                        f"{contract.required_raw_fields}, optional (omitted or null = missing) "
                        f"{contract.optional_raw_fields}"),
        "type": "object", "required": list(contract.required_raw_fields), "properties": raw_props,
        "additionalProperties": False,
    }
    if all(name in columns for name in features):
        # Holding every feature, it is read as precomputed features.
        raw_record["not"] = {"required": features}

    features_array = {
        "title": "precomputed features in feature_order",
        "description": f"the feature values in feature_order {features} (JSON array, JSON Lines line or CSV line)",
        "type": "array",
        "prefixItems": [feature_schema(ds, name, required=name in required_features) for name in features],
        "items": False, "minItems": len(features),
    }
    return {"raw_record": raw_record, "features_record": features_record, "features_array": features_array}


def request_schema(contract: FeatureContract, model: str) -> Dict[str, Any]:
    """The ``application/json`` request body of ``model``: ``{"instances": [record, ...]}``, ``[record, ...]`` or one
    record, each record one of the three forms of :func:`record_schemas`. ``$defs/record`` is one JSON Lines line."""
    defs: Dict[str, Any] = record_schemas(contract)
    defs["record"] = {"oneOf": [{"$ref": "#/$defs/raw_record"}, {"$ref": "#/$defs/features_record"},
                                {"$ref": "#/$defs/features_array"}]}
    records = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/record"}}
    return {
        "$schema": DIALECT,
        "title": f"{model} request (application/json)",
        "description": ("Generated from the model's dataset declaration and feature list "
                        "(python -m mlops_cli.contract_schema); docs/invocation-contract.md, Requests"),
        "x-mlops-loop": {"model": model, "dataset": contract.dataset.name, "feature_order": list(contract.feature_order)},
        "oneOf": [
            {"type": "object", "required": ["instances"], "properties": {"instances": records}},
            records,
            {"$ref": "#/$defs/raw_record"},
            {"$ref": "#/$defs/features_record"},
        ],
        "$defs": defs,
    }


def prediction_schema(problem_type: str, classes: Sequence[str],
                      value_range: Sequence[Optional[float]] = (None, None)) -> Dict[str, Any]:
    """One record's answer (a JSON ``predictions`` item, a JSON Lines line) of a model of ``problem_type``."""
    inference_id = {"type": "string"}
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    if problem_type == problem.MULTICLASS:
        properties: Dict[str, Any] = {
            "label": {"enum": list(classes)}, "score": probability,
            "probabilities": {"type": "object", "required": list(classes),
                              "properties": {name: probability for name in classes}, "additionalProperties": False},
        }
    elif problem_type == problem.REGRESSION:
        value: Dict[str, Any] = {"type": "number"}
        low, high = value_range
        if low is not None:
            value["minimum"] = _plain(low)
        if high is not None:
            value["maximum"] = _plain(high)
        properties = {"value": value}
    else:
        properties = {"score": probability, "label": {"enum": [0, 1]}}
    required = list(properties)
    properties[INFERENCE_ID] = inference_id
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}


def response_schema(model: str, problem_type: str, classes: Sequence[str],
                    value_range: Sequence[Optional[float]] = (None, None)) -> Dict[str, Any]:
    """The ``application/json`` answer of ``model``; ``$defs/prediction`` is one JSON Lines line, and
    ``$defs/batch_line`` one line of a batch transform's output (a prediction or a refused record's error)."""
    nullable_text = {"type": ["string", "null"]}
    return {
        "$schema": DIALECT,
        "title": f"{model} response (application/json)",
        "description": ("Generated from the model's problem type and classes (python -m mlops_cli.contract_schema); "
                        "docs/invocation-contract.md, Responses"),
        "x-mlops-loop": {"model": model, "problem_type": problem_type, "classes": list(classes)},
        "type": "object", "required": ["predictions", "model"], "additionalProperties": False,
        "properties": {
            "predictions": {"type": "array", "items": {"$ref": "#/$defs/prediction"}},
            "model": {"type": "object", "required": ["name", "version", "artefact_sha256", "trained_at"],
                      "properties": {"name": {"type": "string"},
                                     "version": {**nullable_text, "description": "the registry version that answered; "
                                                 "null on a multi-model endpoint (its TargetModel names it)"},
                                     "artefact_sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
                                     "trained_at": nullable_text}},
        },
        "$defs": {
            "prediction": prediction_schema(problem_type, classes, value_range),
            "batch_line": {"oneOf": [{"$ref": "#/$defs/prediction"}, {
                "type": "object", "required": ["error"], "additionalProperties": False,
                "properties": {"inference_id": {"type": "string"}, "error": {
                    "type": "object", "required": ["status", "fields", "message"], "additionalProperties": False,
                    "properties": {"status": {"type": "integer"}, "fields": {"type": "array", "items": {"type": "string"}},
                                   "message": {"type": "string"}}}}}]},
        },
    }


def model_schemas(contract: FeatureContract, model: str, problem_type: str, classes: Sequence[str],
                  value_range: Sequence[Optional[float]] = (None, None)) -> Dict[str, Dict[str, Any]]:
    """``{"request": ..., "response": ...}`` of one model."""
    return {"request": request_schema(contract, model),
            "response": response_schema(model, problem_type, classes, value_range)}


def target_range(dataset: catalog.Dataset, target: str, problem_type: str) -> List[Optional[float]]:
    """The bounds a regression model's answers keep (its target column's ``min`` / ``max``), else none."""
    if problem_type != problem.REGRESSION:
        return [None, None]
    column = dataset.column(target)
    return [column.minimum, column.maximum]


def by_id_schemas(contract: FeatureContract, model: str, problem_type: str, classes: Sequence[str],
                  value_range: Sequence[Optional[float]] = (None, None), *, max_ids: int,
                  policy: str) -> Dict[str, Dict[str, Any]]:
    """``{"by-id.request": ..., "by-id.response": ...}``: the score-by-id front's body (``{"ids": [...]}``, or under
    policy ``compute`` ``{"instances": [...]}`` with raw fields) and its 200 answer (each id's prediction or its
    ``error``, where its features came from, the lookup verdicts); :mod:`pipeline_code.core.online_features`."""
    from pipeline_code.core import online_features as lookup

    verdicts = (lookup.FRESH, lookup.UNKNOWN, lookup.EXPIRED, lookup.STALE, lookup.INVALID)
    ds = contract.dataset
    entity_id = {"type": "string", "minLength": 1, "maxLength": lookup.MAX_ID_LENGTH,
                 "pattern": f"^{lookup._PRINTABLE.pattern}$", "description": f"the {ds.record_identifier} of one entity"}
    ids_form = {"type": "object", "required": ["ids"], "additionalProperties": False, "properties": {
        "ids": {"type": "array", "minItems": 1, "maxItems": max_ids, "items": entity_id}}}
    forms: List[Dict[str, Any]] = [ids_form]
    if policy == "compute":
        raw = record_schemas(contract)["raw_record"]
        # A raw field an instance lacks refuses that id alone (in a 200), not the request: none is required here.
        properties = {name: (column_schema(ds.column(name), required=False) if isinstance(body, dict) and
                             name in contract.required_raw_fields else body)
                      for name, body in raw["properties"].items()}
        properties[ds.record_identifier] = entity_id
        instance = {"type": "object", "required": [ds.record_identifier], "properties": properties,
                    "additionalProperties": False}
        forms.append({"type": "object", "required": ["instances"], "additionalProperties": False, "properties": {
            "instances": {"type": "array", "minItems": 1, "maxItems": max_ids, "items": instance}}})
    request = {
        "$schema": DIALECT, "title": f"{model} score-by-id request (application/json)",
        "description": ("Generated from the model's definition and its serving.by_id settings "
                        "(python -m mlops_cli.contract_schema --env); docs/invocation-contract.md, Score by id: the "
                        "online Feature Store at serving"),
        "x-mlops-loop": {"model": model, "policy": policy, "max_ids": max_ids},
        "oneOf": forms,
    }
    answered = prediction_schema(problem_type, classes, value_range)
    provenance = {
        "id": {"type": "string"},
        lookup.FEATURE_SOURCE: {"enum": [lookup.SOURCE_STORE, lookup.SOURCE_COMPUTED, lookup.SOURCE_MISSING]},
        lookup.FEATURE_EVENT_TIME: {"type": ["string", "null"]},
        "lookup": {"enum": list(verdicts)},
        lookup.LOOKUP_REASON: {"type": "string"},
    }
    scored = {**answered, "properties": {**answered["properties"], **provenance},
              "required": [*answered["required"], "id", lookup.FEATURE_SOURCE, "lookup"]}
    refused = {"type": "object", "additionalProperties": False, "required": ["id", "error", lookup.FEATURE_SOURCE],
               "properties": {**provenance, lookup.FEATURE_SOURCE: {"type": "null"}, "error": {"type": "string"},
                              INFERENCE_ID: {"type": "string"}}}
    base = response_schema(model, problem_type, classes, value_range)
    response = {
        **base, "title": f"{model} score-by-id response (200, application/json)",
        "x-mlops-loop": {**base["x-mlops-loop"], "policy": policy},
        "required": ["predictions", "model", "lookup"],
        "properties": {**base["properties"], "lookup": {
            "type": "object", "required": list(verdicts), "additionalProperties": False,
            "properties": {verdict: {"type": "integer", "minimum": 0} for verdict in verdicts}}},
        "$defs": {"prediction": {"oneOf": [scored, refused]}, "error": {
            "description": "the body of every other status (docs/invocation-contract.md, Score by id: the online "
                           "Feature Store at serving)",
            "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}},
    }
    return {BY_ID_REQUEST: request, BY_ID_RESPONSE: response}
