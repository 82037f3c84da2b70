"""Scoring by id, policy ``compute``, when an instance's fields are a precomputed record serving refuses.

Serving reads a JSON record holding a feature named like no column (one of the model's, or one of another feature
list of the dataset, e.g. an earlier version's) as precomputed; lacking a model feature, it refuses it (400) rather than
score it as raw fields with that feature missing (:meth:`pipeline_code.catalog.Dataset.record_source`). The by-id front
applies the same rule (its spec carries what it needs: :attr:`pipeline_code.core.online_features.LookupSpec.records`),
so such an instance is refused alone, its answer giving serving's words, and the other ids are scored: without it the
endpoint's 400 failed every id of the request.

The front's own handler runs through the local twin against serving's own request checks; the dataset is this test's.
"""

from __future__ import annotations

import pytest

from mlops_cli.local.online_store import local_environ
from mlops_loop.config import load_config
from mlops_loop.config.serving import ById
from pipeline_code import catalog
from pipeline_code.core import online_features as lookup
from pipeline_code.serving import errors, records
from tests.support import by_id_world
from tests.support.by_id_world import MODEL

TICKETS = {
    "description": "Support tickets; label: escalated.",
    "record_identifier": "visit_id",
    "event_time": "event_time",
    "labels": ["returned"],
    "columns": {
        "visit_id": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
        "region": {"type": "string", "nullable": False, "allowed": ["north", "south"]},
        "calls": {"type": "integer", "min": 0, "max": 1000},
        "backlog": {"type": "integer", "min": 0, "max": 1000},
        "segment": {"type": "string"},
        "returned": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {"region": "region", "log_calls": "log1p(calls)", "capped_calls": "clip(calls, 0, 10)",
                 "calls_or_backlog": "coalesce(calls, backlog)", "segment": "segment"},
}
EARLIER = {"region": "north", "log_calls": 1.1}  # an earlier version's precomputed record [region, log_calls]
OTHER_LIST_WORDS = (
    "missing feature 'capped_calls': the record was written for another feature list (an earlier version's?); send "
    "every feature of this model (a record may hold the features of both lists while versions change), or raw fields "
    "only. Its 'log_calls' is a feature of dataset 'visits' that this model does not read, and read as raw fields it "
    "would be scored with 'capped_calls' missing (a precomputed-feature record needs every model feature: ['region', "
    "'capped_calls'])")


def _scored(tmp_path, features, instances, environ=None):
    store, endpoint = by_id_world.filled_store(tmp_path, TICKETS, [], features)
    try:
        config = by_id_world.config_path(tmp_path, TICKETS, "compute", features)
        answer = by_id_world.scored((store, endpoint, tmp_path), config, {"instances": instances}, environ)
        return answer, endpoint, config
    finally:
        store.close()


def test_an_instance_of_another_feature_list_is_refused_alone_with_servings_words_and_the_others_scored(tmp_path):
    answer, endpoint, _ = _scored(tmp_path, ["region", "capped_calls"], [
        {"visit_id": "t-1", **EARLIER}, {"visit_id": "t-2", "region": "south", "calls": 30}])
    assert answer["status"] == 200, answer["body"]
    refused, scored = answer["body"]["predictions"]
    assert refused == {"id": "t-1", "feature_source": None, "feature_event_time": None, "lookup": "unknown",
                       "error": f"t-1: not scored: {OTHER_LIST_WORDS}"}
    assert (scored["id"], scored["feature_source"], "score" in scored) == ("t-2", "computed", True)
    assert [record["entity_id"] for record in endpoint.calls[-1]] == ["t-2"]
    # The words are serving's own for that record.
    with pytest.raises(errors.BadRequestError) as caught:
        records.feature_rows(endpoint.contract, [dict(EARLIER)])
    assert str(caught.value) == f"record 0: {OTHER_LIST_WORDS}"


def test_an_instance_holding_a_model_feature_named_like_no_column_but_not_all_is_refused_alone(tmp_path):
    features = ["region", "log_calls", "capped_calls"]
    answer, endpoint, _ = _scored(tmp_path, features, [
        {"visit_id": "t-1", **EARLIER}, {"visit_id": "t-2", "region": "south", "calls": 30}])
    assert answer["status"] == 200, answer["body"]
    refused, scored = answer["body"]["predictions"]
    assert refused["error"] == ("t-1: not scored: missing feature 'capped_calls' (a precomputed-feature record needs "
                                "every model feature: ['region', 'log_calls', 'capped_calls'])")
    assert (scored["id"], scored["feature_source"]) == ("t-2", "computed")
    assert [record["entity_id"] for record in endpoint.calls[-1]] == ["t-2"]


def test_an_instance_whose_raw_fields_compute_the_feature_another_way_is_scored(tmp_path):
    answer, endpoint, _ = _scored(tmp_path, ["region", "calls_or_backlog"], [
        {"visit_id": "t-1", "region": "north", "backlog": 4, "log_calls": 1.1}])
    assert answer["status"] == 200, answer["body"]
    (scored,) = answer["body"]["predictions"]
    assert (scored["id"], scored["feature_source"], "error" in scored) == ("t-1", "computed", False)
    assert records.feature_rows(endpoint.contract, endpoint.calls[-1]).frame["calls_or_backlog"].tolist() == [4.0]


def test_without_the_rule_in_its_spec_the_endpoints_refusal_is_read_and_the_others_scored_again(tmp_path):
    """A front deployed without RECORD_KINDS sends the instance on; serving's 400 names it, and the front refuses it
    alone in those words and scores the others in a second call (before that, a 422 failed every id)."""
    features = ["region", "capped_calls"]
    config = by_id_world.config_path(tmp_path, TICKETS, "compute", features)
    environ = {k: v for k, v in local_environ(config, "dev", MODEL).items() if k != lookup.RECORDS_ENV}
    answer, endpoint, _ = _scored(tmp_path, features, [
        {"visit_id": "t-1", **EARLIER}, {"visit_id": "t-2", "region": "south", "calls": 30}], environ)
    assert answer["status"] == 200, answer["body"]
    refused, scored = answer["body"]["predictions"]
    assert refused["error"] == f"t-1: not scored: {OTHER_LIST_WORDS}"
    assert (scored["id"], "score" in scored) == ("t-2", True)
    assert [[record["entity_id"] for record in call] for call in endpoint.calls[-2:]] == [["t-1", "t-2"], ["t-2"]]


@pytest.mark.parametrize("features", [["region", "capped_calls"], ["region", "log_calls", "capped_calls"],
                                      ["region", "calls_or_backlog"], ["log_calls"], ["region"]])
def test_the_front_reads_every_record_as_serving_does(tmp_path, features):
    """One rule: for records of every mix of columns and features, the front's spec reads each as serving does."""
    model = load_config(by_id_world.config_path(tmp_path, TICKETS, "compute", features)).models[MODEL]
    spec = model.lookup_spec(ById(missing="compute"))
    dataset = catalog.parse_dataset("visits", dict(TICKETS))
    contract = records.FeatureContract.create(dataset, features, ["segment"])
    fields = ["region", "calls", "backlog", "log_calls", "capped_calls", "calls_or_backlog"]
    for mask in range(1 << len(fields)):
        record = {name: 1 for i, name in enumerate(fields) if mask >> i & 1}
        assert _front_reads(spec, record) == _serving_reads(record, contract), record


def _front_reads(spec, record):
    assert spec.records is not None
    source, missing = spec.records.source(record)
    return source, missing if source == records.SOURCE_FEATURES else None


def _serving_reads(record, contract):
    source, missing = records._source(record, contract)
    return source, missing if source == records.SOURCE_FEATURES else None


def test_the_rule_travels_in_the_environment_and_in_the_spec_file_and_reads_back(tmp_path, monkeypatch):
    """The front gets the rule from RECORD_KINDS, or from its FEATURE_SPEC_FILE for a wide model: both read back."""
    model = load_config(by_id_world.config_path(tmp_path, TICKETS, "compute", ["region", "capped_calls"])).models[MODEL]
    spec = model.lookup_spec(ById(missing="compute"))
    assert spec.records is not None and set(spec.records.other_features) == {"log_calls", "calls_or_backlog"}
    assert lookup.LookupSpec.decode(spec.encode()) == spec
    (tmp_path / "spec.json").write_text(spec.spec_document(), encoding="utf-8")
    monkeypatch.setattr(lookup, "CODE_ROOT", tmp_path)
    lookup._code_file.cache_clear()
    try:
        assert lookup.LookupSpec.decode(spec.encode(spec_file="spec.json")) == spec
    finally:
        lookup._code_file.cache_clear()
    # Under another policy the front scores no raw fields: no rule.
    assert model.lookup_spec(ById(missing="missing")).records is None


def test_an_instance_whose_fields_serving_refuses_is_refused_alone_in_servings_words_and_the_others_scored(tmp_path):
    """GIVEN compute instances serving refuses for their values or names (a raw field written with a typo, a value
    outside its declaration) among good ones WHEN scored by id THEN each is refused alone, its error giving serving's
    words, and the others are scored (before: serving's 400 failed every id of the request, a 422)."""
    answer, endpoint, _ = _scored(tmp_path, ["region", "capped_calls"], [
        {"visit_id": "t-1", "region": "north", "calsl": 3}, {"visit_id": "t-2", "region": "south", "calls": 30},
        {"visit_id": "t-3", "region": "west", "calls": 3}])
    assert answer["status"] == 200, answer["body"]
    typo, scored, outside = answer["body"]["predictions"]
    assert typo["error"] == ("t-1: not scored: field 'calsl' is not a field of this model and looks like 'calls', which "
                             "the record lacks (an optional field left out is scored as missing); correct its name")
    assert outside["error"] == ("t-3: not scored: field 'region': 'west' is not an allowed value; allowed: north, south "
                                "(declared for dataset 'visits')")
    assert (typo["feature_source"], outside["feature_source"]) == (None, None)
    assert (scored["id"], scored["feature_source"], "score" in scored) == ("t-2", "computed", True)
    assert [record["entity_id"] for record in endpoint.calls[-1]] == ["t-2"]


def test_a_request_serving_refuses_as_a_whole_or_in_every_instance_is_still_a_422(tmp_path):
    answer, _, _ = _scored(tmp_path, ["region", "capped_calls"], [{"visit_id": "t-1", "region": "west", "calls": 3}])
    assert answer["status"] == 422
    assert answer["body"]["error"] == ("the model refused the records: record 0: field 'region': 'west' is not an "
                                       "allowed value; allowed: north, south (declared for dataset 'visits')")
