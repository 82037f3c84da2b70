"""Scoring by id when a stored value breaks a rule tightened after it was stored.

Serving refuses a precomputed value outside its feature's declared rules (400 for the whole request,
:func:`pipeline_code.serving.records.feature_rows`): a column unchanged (``col(x)``) keeps its column's ``min`` /
``max`` / ``allowed``, a ``bucket`` is one of its labels. The online store keeps each record's values as written, so a
rule tightened since (a category dropped, a narrower range) leaves records serving now refuses. The by-id front's spec
carries the same rules (``FEATURE_RULES``, from :meth:`pipeline_code.catalog.Dataset.feature_rules`, the very rule
serving checks with): such a record is ``invalid``, the answer says why, the model's policy resolves that one id, and
the other ids are scored.

As in ``test_by_id_required.py``, the front's own handler runs through the local twin against an endpoint that is
serving's own request checks, and the config is written here (project ``shop``, dataset ``visits``): no test depends
on the sample models.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml

from mlops_cli.local.online_store import local_environ
from mlops_loop.config import load_config
from mlops_loop.config.serving import ById
from mlops_loop.constructs.handler_function import MAX_ENVIRONMENT_BYTES, environment_size
from pipeline_code import catalog
from pipeline_code.core import online_features as lookup
from pipeline_code.core.value_rules import RULE_KINDS
from pipeline_code.serving import errors, records
from tests.support import by_id_world
from tests.support.by_id_world import EVENT, IDS, MODEL, NOW

ODD = "v99"  # the one id whose stored device is no longer an allowed category

# Every rule kind on a feature of each Feature Store type: bounds on an integer and a double column unchanged (both,
# one, none), allowed values of a string column, a bucket's labels, a boolean column (true or false); and features no
# rule holds (a string column without allowed values, computed features). A category list and a range tightened since the store was
# filled: "tablet" was a device, pages went up to 100.
VISITS = {
    "description": "Site visits; label: the visitor came back within 30 days.",
    "record_identifier": "visit_id",
    "event_time": "event_time",
    "labels": ["returned"],
    "columns": {
        "visit_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "returned": {"type": "integer", "min": 0, "max": 1},
        "pages": {"type": "integer", "min": 1, "max": 50},
        "seconds": {"type": "double", "min": 0.5, "max": 3600},
        "basket": {"type": "integer", "max": 20},
        "spend": {"type": "double", "min": 0},
        "items": {"type": "integer"},
        "device": {"type": "string", "allowed": ["desktop", "mobile"]},
        "referrer": {"type": "string"},
        "member": {"type": "boolean"},
        "segment": {"type": "string"},
    },
    "features": {
        "pages": "pages", "seconds": "seconds", "basket": "basket", "spend": "spend", "items": "items",
        "device": "device", "referrer": "referrer", "member": "member",
        "length": "bucket(seconds, [60], ['short', 'long'])",
        "seconds_per_page": "ratio(seconds, pages)",
        "segment": "segment",  # the models' sensitive attribute: never a model input
    },
}
FEATURES = [name for name in VISITS["features"] if name != "segment"]


def _config_path(directory: Path, policy: str = "missing", features: Optional[List[str]] = None, **changes: Any) -> str:
    return by_id_world.config_path(directory, VISITS, policy, features or ["pages", "device"], **changes)


@pytest.fixture()
def world(tmp_path):
    """The local twin's store holding 100 visits as the feature job wrote them; ``v99``'s device is ``tablet``, a
    category since dropped from the dataset's ``allowed`` list."""
    rows = [{"visit_id": entity_id, "event_time": EVENT, "pages": 3, "device": "tablet" if entity_id == ODD else "mobile"}
            for entity_id in IDS]
    store, endpoint = by_id_world.filled_store(tmp_path, VISITS, rows, ["pages", "device"])
    yield store, endpoint, tmp_path
    store.close()


def _scored(world, policy: str, request: Dict[str, Any], environ: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    return by_id_world.scored(world, _config_path(world[2], policy), request, environ)


REASON = "feature 'device': stored 'tablet' is not an allowed value; allowed: desktop, mobile"


# ---------------------------------------------------------------- the reviewer's scenario, under each policy


def test_the_fronts_environment_carries_the_models_rules(tmp_path):
    """GIVEN a model reading a bounded integer and a categorical column unchanged WHEN synth (or the local twin) builds
    its front's environment THEN it carries their rules as FEATURE_RULES."""
    environ = local_environ(_config_path(tmp_path), "dev", MODEL)
    assert json.loads(environ["FEATURE_RULES"]) == {"pages": {"min": 1, "max": 50}, "device": {"allowed": ["desktop", "mobile"]}}


def test_under_missing_the_record_breaking_a_tightened_rule_is_scored_as_missing_saying_why_and_the_other_99_from_the_store(world):
    # WHEN 100 ids are scored by id, one of them holding a category no longer allowed
    answer = _scored(world, "missing", {"ids": IDS})
    # THEN the request is scored: 99 ids from the store, the odd one with every feature missing, marked invalid with why
    assert answer["status"] == 200, answer["body"]
    predictions = answer["body"]["predictions"]
    assert [(p["id"], p["feature_source"], p["lookup"]) for p in predictions] == [
        *[(entity_id, "online_store", "fresh") for entity_id in IDS[:99]], (ODD, "missing", "invalid")]
    assert predictions[99] == {"score": 0.5, "id": ODD, "feature_source": "missing",
                               "feature_event_time": EVENT, "lookup": "invalid", "lookup_reason": REASON}
    assert not any("lookup_reason" in p for p in predictions[:99])
    assert answer["body"]["lookup"] == {"fresh": 99, "unknown": 0, "expired": 0, "stale": 0, "invalid": 1}
    # AND the endpoint got one call: the odd id's record with every feature missing, the others as stored
    _, endpoint, _ = world
    (sent,) = endpoint.calls
    assert {k: sent[99][k] for k in ("pages", "device", "feature_source", "feature_lookup")} == {
        "pages": None, "device": None, "feature_source": "missing", "feature_lookup": "invalid"}
    assert (sent[0]["pages"], sent[0]["device"]) == (3, "mobile")


def test_under_compute_the_record_breaking_a_tightened_rule_is_computed_from_its_raw_fields(world):
    request = {"instances": [{"visit_id": entity_id} for entity_id in IDS[:99]]
               + [{"visit_id": ODD, "pages": 4, "device": "desktop"}]}
    answer = _scored(world, "compute", request)
    assert answer["status"] == 200, answer["body"]
    last = answer["body"]["predictions"][99]
    assert (last["id"], last["feature_source"], last["lookup"], last["lookup_reason"]) == (ODD, "computed", "invalid", REASON)


@pytest.mark.parametrize(("policy", "fix"), [("reject", "the model's by-id policy is 'reject'"),
                                             ("compute", "policy 'compute' needs the instance's raw fields for these ids")])
def test_under_reject_or_compute_without_raw_fields_the_front_refuses_naming_the_id_and_why(world, policy, fix):
    answer = _scored(world, policy, {"ids": IDS})
    assert answer == {"status": 422, "body": {"error": f"no fresh online-store record (invalid: {ODD}); {fix}; {ODD}: {REASON}"}}
    _, endpoint, _ = world
    assert endpoint.calls == []  # refused by the front, not by the endpoint


def test_without_the_rules_the_endpoint_refuses_every_id(world):
    """Break-it: a front told no rules (a spec as before) sends the odd record, and serving's 400 refuses it: the
    stand-in endpoint does refuse what the front must not send (the front then answers that id unscored, in serving's
    words, instead of scoring it as the policy's miss, and scores the others in a second call)."""
    _, endpoint, directory = world
    environ = {**local_environ(_config_path(directory, "missing"), "dev", MODEL), "FEATURE_RULES": "{}"}
    answer = _scored(world, "missing", {"ids": IDS}, environ)
    assert answer["status"] == 200, answer["body"]
    refused = [p for p in answer["body"]["predictions"] if "error" in p]
    assert [p["error"] for p in refused] == [f"{refused[0]['id']}: not scored: field 'device': 'tablet' is not an "
                                             "allowed value; allowed: desktop, mobile (declared for dataset 'visits')"]
    assert len(endpoint.calls[-2]) == len(endpoint.calls[-1]) + 1


# ---------------------------------------------------------------- one rule: the front's rules are serving's


def _model(directory: Path, features: List[str]):
    return load_config(_config_path(directory, "missing", features)).models[MODEL]


def _valid_text(dataset: catalog.Dataset, name: str) -> str:
    """A stored value (text, as Feature Store returns it) serving accepts for feature ``name``."""
    feature = dataset.feature(name)
    if feature.expr.op == "bucket":
        return feature.expr.args[2][0]
    if feature.feature_type == catalog.FS_STRING:
        column = dataset.column(feature.source_column) if feature.source_column else None
        return column.allowed[0] if column is not None and column.allowed else "search"
    return "1"


# Stored texts for each feature: each side of each bound, the bound itself, other case and spacing of a category, a
# category or label never declared, blank text, and values no rule holds.
CANDIDATES: Dict[str, Tuple[str, ...]] = {
    "pages": ("0", "1", "50", "51", "-3", "1000000"),
    "seconds": ("0.49", "0.5", "3600", "3600.01", "-1e3", "2e3"),
    "basket": ("-5", "20", "21"),
    "spend": ("-0.01", "0", "1e9"),
    "items": ("-7", "0", "99999"),
    "device": ("desktop", " Mobile ", "MOBILE", "tablet", "desk top", " "),
    "referrer": ("search", "anything at all", " "),
    "member": ("0", "1"),
    "length": ("short", "Long ", "medium", "very long"),
    "seconds_per_page": ("-4.5", "0", "1e6"),
}


def _sent(spec: lookup.LookupSpec, stored: Dict[str, Optional[str]]) -> Tuple[str, Optional[str], Dict[str, Any]]:
    """(verdict, reason, record the front would send) for one stored record under policy ``missing``."""
    values = {key: text for key, text in {"visit_id": "v1", "event_time": EVENT, **stored}.items() if text is not None}
    resolved = lookup.resolve([lookup.Instance("v1", {})], {"v1": lookup.StoredRecord(values)}, spec, NOW)
    return resolved.verdicts[0], resolved.reasons[0], resolved.records[0]


def _serving_refuses(contract: records.FeatureContract, record: Dict[str, Any]) -> Optional[str]:
    try:
        records.feature_rows(contract, [record])
    except errors.BadRequestError as error:
        return str(error)
    return None


def test_the_dataset_holds_every_rule_kind():
    """The agreement below covers bounds (min, max, both), allowed values, bucket labels and booleans, and features
    without."""
    dataset = catalog.parse_dataset("visits", VISITS)
    kinds = {kind for name in FEATURES for kind in (dataset.feature_rule(name) or catalog.ValueRule()).to_json()}
    assert kinds == set(RULE_KINDS)
    assert [name for name in FEATURES if dataset.feature_rule(name) is None] == ["items", "referrer", "seconds_per_page"]
    assert set(CANDIDATES) == set(FEATURES)


def test_the_fronts_rules_are_exactly_those_serving_refuses_a_stored_value_by(tmp_path):
    # GIVEN a model reading every kind of feature, its front's spec as synth builds it, and serving's contract
    model = _model(tmp_path, FEATURES)
    dataset = model.catalog_dataset
    spec = model.lookup_spec(ById(missing="missing"))
    unchecked = dataclasses.replace(spec, rules=())  # what the front sent before it knew the rules
    contract = records.FeatureContract.create(dataset, FEATURES)
    valid = {name: _valid_text(dataset, name) for name in FEATURES}
    verdict, _, sent = _sent(spec, valid)
    assert verdict == lookup.FRESH and _serving_refuses(contract, sent) is None
    # THEN the spec's rules are serving's, feature by feature (one definition: Dataset.feature_rule)
    assert spec.rules == tuple((name, dataset.feature_rule(name)) for name in FEATURES if dataset.feature_rule(name))
    # WHEN each candidate value is stored for one feature at a time
    invalid_for_the_front, refused_by_serving = {}, {}
    for name, texts in CANDIDATES.items():
        for text in texts:
            found, reason, _ = _sent(spec, {**valid, name: text})
            if found == lookup.INVALID:
                invalid_for_the_front[(name, text)] = reason
            refused = _serving_refuses(contract, _sent(unchecked, {**valid, name: text})[2])
            if refused is not None:
                refused_by_serving[(name, text)] = refused
    # THEN the front calls a record unusable exactly when serving would refuse it, for every rule kind
    assert set(invalid_for_the_front) == set(refused_by_serving) == {
        ("pages", "0"), ("pages", "51"), ("pages", "-3"), ("pages", "1000000"),
        ("seconds", "0.49"), ("seconds", "3600.01"), ("seconds", "-1e3"),
        ("basket", "21"), ("spend", "-0.01"),
        ("device", "tablet"), ("device", "desk top"),
        ("length", "medium"), ("length", "very long"),
    }
    # AND both name the same rule: the front's reason is serving's problem with the feature and the stored value
    for key, reason in invalid_for_the_front.items():
        name, _ = key
        problem = reason.removeprefix(f"feature {name!r}: stored ")
        assert problem.split(" is ", 1)[1] in refused_by_serving[key], (key, reason, refused_by_serving[key])
    assert invalid_for_the_front[("seconds", "3600.01")] == "feature 'seconds': stored 3600.01 is above the maximum 3600"
    assert invalid_for_the_front[("length", "medium")] == ("feature 'length': stored 'medium' is not one of the feature's "
                                                           "buckets; allowed: short, long")


# Every stored text the agreement below tries, per feature (so per rule kind): those above, and what a store can hold
# that a rule's edge does not show - numeric text Python reads but the ETL's patterns do not (sign, spacing, "1_0",
# other scripts' digits, an integer written as a float, 30 digits), NaN / infinity words and an overflow, negative zero
# and a subnormal, other case / spacing / Unicode of a category or bucket label, and each way of writing a boolean,
# with numbers and words serving does not read as one.
AGREEMENT: Dict[str, Tuple[str, ...]] = {
    "pages": (*CANDIDATES["pages"], "3", " 3 ", "+3", "1_0", "\u0663", "1.0", "3.0", "3.", "3.5", "1e1", "true", "0050",
              "51 ", "\u00a03", ".0", "nan", "", " "),
    "seconds": (*CANDIDATES["seconds"], "nan", "NaN", "inf", "-inf", "Infinity", "1e400", " 2 ", "1_000.5",
                "3600.0000000000001", "0x10", "\u0663", "", "true"),
    "basket": (*CANDIDATES["basket"], "-0", "20.0", "21.0"),
    "spend": (*CANDIDATES["spend"], "-0", "-0.0", "-1e-320", "nan", "inf"),
    "items": (*CANDIDATES["items"], "1.5", "9" * 30, "9" * 38, "9" * 39, "7.0"),
    "device": (*CANDIDATES["device"], "Desktop\t", "desktop\u00a0", "\u200bdesktop", "DESKTOP", "\uff44esktop", "MOB\u0130LE",
               "mobile\n", "\tmobile", "", "Mobile\u3000", "desktop\r\n", "1"),
    "referrer": (*CANDIDATES["referrer"], "", "\u00a0", "0"),
    "member": (*CANDIDATES["member"], "true", "True", "TRUE", " true ", "false", "yes", "no", "y", "n", "t", "F", "1.0",
               "0.0", "2", "-1", "01", "+1", "1.5", "\u0661", "maybe", "nan", "inf", "", " "),
    "length": (*CANDIDATES["length"], "SHORT", " short ", "Short\u00a0", "long\t", "", "0", "short\u200b"),
    "seconds_per_page": (*CANDIDATES["seconds_per_page"], "nan", "inf", "-inf", "1e400", "1e38", "1e39", "-1e39", "1_0",
                         "", "\u0663"),
}


@pytest.fixture(scope="module")
def agreement(tmp_path_factory):
    """The spec synth builds for a model reading every feature, serving's contract, and a record serving accepts."""
    model = _model(tmp_path_factory.mktemp("agreement"), FEATURES)
    dataset = model.catalog_dataset
    spec = model.lookup_spec(ById(missing="missing"))
    contract = records.FeatureContract.create(dataset, FEATURES)
    valid = {name: _valid_text(dataset, name) for name in FEATURES}
    found, _, sent = _sent(spec, valid)
    assert found == lookup.FRESH and _serving_refuses(contract, sent) is None
    return spec, contract, valid, sent


def test_the_agreement_tries_every_feature_so_every_rule_kind():
    assert set(AGREEMENT) == set(FEATURES)


@pytest.mark.parametrize(("name", "text"), [(name, text) for name, texts in AGREEMENT.items() for text in dict.fromkeys(texts)],
                         ids=lambda value: ascii(value) if isinstance(value, str) else None)
def test_the_front_uses_a_stored_value_exactly_when_serving_accepts_it(agreement, name, text):
    """GIVEN a record whose ``name`` is stored as ``text`` (every other feature valid) WHEN the front judges it THEN it
    is fresh exactly when serving accepts it: fresh, serving accepts the record the front sends (never a 400 failing
    every id of the request); invalid, serving refuses that stored value (given as stored: the front refuses nothing
    serving reads), and the front's reason names the feature and the value."""
    spec, contract, valid, valid_sent = agreement
    found, reason, sent = _sent(spec, {**valid, name: text})
    if found == lookup.FRESH:
        assert _serving_refuses(contract, sent) is None, (name, text, sent[name])
    else:
        assert found == lookup.INVALID, (name, text, found)
        assert reason.startswith(f"feature {name!r}: stored "), reason
        refused = _serving_refuses(contract, {**valid_sent, name: text})
        assert refused is not None, (name, text, reason)
        assert refused.startswith(f"record 0: field {name!r}: "), refused


def test_the_front_reads_a_boolean_feature_as_serving_does(agreement):
    """The reviewer's case: a stored 2 is invalid (serving refuses it: once sent, every id failed), a stored true is
    used as 1 (serving reads it; the front refused it)."""
    spec, _, valid, _ = agreement
    assert _sent(spec, {**valid, "member": "2"})[:2] == (
        lookup.INVALID, "feature 'member': stored '2' is not true or false, as serving reads a boolean feature")
    found, _, sent = _sent(spec, {**valid, "member": "true"})
    assert (found, sent["member"]) == (lookup.FRESH, 1)


# ---------------------------------------------------------------- the rules and Lambda's 4 KB of environment


def test_the_fronts_environment_with_its_rules_stays_within_lambdas_limit_for_every_sample_model():
    """The repository's own config: each by-id front's environment, rules inline, as synth writes it."""
    app = load_config("config/mlops-loop.yaml")
    sizes = {}
    for name, environment in app.environments.items():
        for model in environment.models:
            if app.serving_of(environment, app.models[model]).by_id.enabled:
                sizes[(name, model)] = environment_size(local_environ("config/mlops-loop.yaml", name, model))
    assert sizes and max(sizes.values()) < MAX_ENVIRONMENT_BYTES // 2, sizes


@pytest.mark.parametrize(("length", "fits"), [(12, True), (16, False)])
def test_a_200_category_feature_fits_inline_only_while_its_values_are_short(tmp_path, length, fits):
    """GIVEN a categorical column of 200 allowed values of ``length`` characters THEN the front's environment, rules
    inline, fits in Lambda's 4 KB at 12 characters a value (3,822 bytes) and not at 16 (4,622): the construct then ships
    the rules as a file of the function's code (tests/infra/constructs/test_score_by_id.py); without them the
    environment is far under."""
    visits = {**VISITS, "columns": {**VISITS["columns"], "device": {
        "type": "string", "allowed": [f"device-{i:0{length - 7}d}" for i in range(200)]}}}
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(by_id_world.config(visits, "missing", ["pages", "device"])))
    environ = local_environ(str(path), "dev", MODEL)
    assert (environment_size(environ) <= MAX_ENVIRONMENT_BYTES) is fits
    assert environment_size({k: v for k, v in environ.items() if k != "FEATURE_RULES"}) < 1024
