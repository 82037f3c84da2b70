"""Scoring by id when a stored record lacks a feature serving refuses missing.

Serving refuses a precomputed record whose feature is a ``nullable: false`` column unchanged (``col(x)``) and missing
(400, :func:`pipeline_code.serving.records.feature_rows`). Feature Store keeps no value for a null, so an online
record written before such a feature joined the group (or before its column became ``nullable: false``) simply lacks
it. The by-id front's spec carries the same set (``REQUIRED_FEATURES``, from
:meth:`pipeline_code.catalog.Dataset.required_features`), so such a record is ``invalid`` and the model's policy
resolves that one id: the endpoint is never sent a record it refuses, which would fail every id of the request.

Here the front's own handler runs through the local twin (:mod:`mlops_cli.local.online_store`: its environment built
from a config by the loader synth uses, its SQLite store filled as the feature job fills the online store) against an
endpoint that is serving's own request checks. The config is written here (project ``shop``, dataset ``visits``):
no test depends on the sample models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from mlops_cli.local.online_store import local_environ, score_by_id
from mlops_loop.config import load_config
from mlops_loop.config.serving import ById
from pipeline_code import catalog
from pipeline_code.core import online_features as lookup
from pipeline_code.serving import errors, records
from tests.support import by_id_world
from tests.support.by_id_world import EVENT, IDS, MODEL, NOW

ODD = "v99"  # the one id whose stored record lacks a required feature

# Every kind of feature: a column unchanged (col) of each type, declared nullable: false and nullable, and each
# operator over nullable: false columns (test_the_dataset_holds_every_kind_of_feature keeps it so).
VISITS = {
    "description": "Site visits; label: the visitor came back within 30 days.",
    "record_identifier": "visit_id",
    "event_time": "event_time",
    "labels": ["returned"],
    "columns": {
        "visit_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "returned": {"type": "integer", "min": 0, "max": 1},
        "pages": {"type": "integer", "nullable": False, "min": 0},
        "seconds": {"type": "double", "nullable": False, "min": 0},
        "referrer": {"type": "string", "nullable": False},
        "device": {"type": "string", "nullable": False, "allowed": ["desktop", "mobile"]},
        "member": {"type": "boolean", "nullable": False},
        "coupon": {"type": "string"},
        "basket": {"type": "integer", "min": 0},
        "spend": {"type": "double", "min": 0},
        "newsletter": {"type": "boolean"},
        "segment": {"type": "string"},
        "first_visit": {"type": "date", "nullable": False},
    },
    "features": {
        "pages": "pages", "seconds": "seconds", "referrer": "referrer", "device": "device", "member": "member",
        "coupon": "coupon", "basket": "basket", "spend": "spend", "newsletter": "newsletter",
        "seconds_per_page": "ratio(seconds, pages)",
        "log_seconds": "log1p(seconds)",
        "pages_capped": "clip(pages, 0, 50)",
        "spend_or_seconds": "coalesce(spend, seconds)",
        "page_seconds": "product(pages, seconds)",
        "length": "bucket(seconds, [60], ['short', 'long'])",
        "days_a_visitor": "days_since(first_visit)",
        "segment": "segment",  # the models' sensitive attribute: never a model input
    },
}
ALL_FEATURES = [name for name in VISITS["features"] if name != "segment"]
# The features serving refuses missing, written out: each nullable: false column unchanged, one per column type.
REQUIRED = ["pages", "seconds", "referrer", "device", "member"]
# Why the front calls v99's record invalid (the refusal names it).
WHY = "; v99: feature 'pages': absent from the stored record, but serving refuses it missing (a required feature)"


def _config_path(directory: Path, policy: str = "missing", features: Optional[List[str]] = None) -> str:
    return by_id_world.config_path(directory, VISITS, policy, features or ["pages", "seconds"])


def _model(directory: Path, features: List[str]):
    return load_config(_config_path(directory, "reject", features)).models[MODEL]


@pytest.fixture()
def world(tmp_path):
    """The local twin's store holding 100 visits as the feature job writes them; ``v99`` has no ``pages`` (its row's
    null is not put: Feature Store keeps no value for a null), as a record written before ``pages`` was required."""
    rows = [{"visit_id": entity_id, "event_time": EVENT, "pages": None if entity_id == ODD else 3, "seconds": 12.5}
            for entity_id in IDS]
    store, endpoint = by_id_world.filled_store(tmp_path, VISITS, rows, ["pages", "seconds"])
    yield store, endpoint, tmp_path
    store.close()


def _scored(world, policy: str, request: Dict[str, Any]) -> Dict[str, Any]:
    return by_id_world.scored(world, _config_path(world[2], policy), request)


# ---------------------------------------------------------------- the reviewer's scenario, under each policy


def test_the_fronts_environment_names_the_required_features(tmp_path):
    """GIVEN a model reading two nullable: false columns unchanged WHEN synth (or the local twin) builds its front's
    environment THEN it carries them as REQUIRED_FEATURES."""
    assert local_environ(_config_path(tmp_path), "dev", MODEL)["REQUIRED_FEATURES"] == "pages,seconds"


def test_under_missing_the_record_lacking_a_required_feature_is_scored_as_missing_and_the_other_99_from_the_store(world):
    # WHEN 100 ids are scored by id, one of them lacking a required feature in the store
    answer = _scored(world, "missing", {"ids": IDS})
    # THEN the request is scored: 99 ids from the store, the odd one with every feature missing, marked invalid
    assert answer["status"] == 200, answer["body"]
    predictions = answer["body"]["predictions"]
    assert [(p["id"], p["feature_source"], p["lookup"]) for p in predictions] == [
        *[(entity_id, "online_store", "fresh") for entity_id in IDS[:99]], (ODD, "missing", "invalid")]
    assert answer["body"]["lookup"] == {"fresh": 99, "unknown": 0, "expired": 0, "stale": 0, "invalid": 1}
    # AND the endpoint got one call, the odd id's record with every feature missing (what serving accepts as a miss)
    _, endpoint, _ = world
    (sent,) = endpoint.calls
    assert {k: sent[99][k] for k in ("pages", "seconds", "feature_source", "feature_lookup")} == {
        "pages": None, "seconds": None, "feature_source": "missing", "feature_lookup": "invalid"}
    assert (sent[0]["pages"], sent[0]["seconds"]) == (3, 12.5)


def test_under_compute_the_record_lacking_a_required_feature_is_computed_from_its_raw_fields(world):
    request = {"instances": [{"visit_id": entity_id} for entity_id in IDS[:99]]
               + [{"visit_id": ODD, "pages": 4, "seconds": 30.0}]}
    answer = _scored(world, "compute", request)
    assert answer["status"] == 200, answer["body"]
    predictions = answer["body"]["predictions"]
    assert [(p["feature_source"], p["lookup"]) for p in predictions[:99]] == [("online_store", "fresh")] * 99
    assert (predictions[99]["id"], predictions[99]["feature_source"], predictions[99]["lookup"]) == (ODD, "computed", "invalid")


def test_under_compute_without_raw_fields_the_front_refuses_naming_the_id(world):
    answer = _scored(world, "compute", {"ids": IDS})
    assert answer == {"status": 422, "body": {"error": "no fresh online-store record (invalid: v99); "
                                                       "policy 'compute' needs the instance's raw fields for these ids"
                                                       + WHY}}
    _, endpoint, _ = world
    assert endpoint.calls == []  # refused by the front, not by the endpoint


def test_under_reject_the_front_refuses_naming_the_id(world):
    answer = _scored(world, "reject", {"ids": IDS})
    assert answer == {"status": 422, "body": {"error": "no fresh online-store record (invalid: v99); "
                                                       "the model's by-id policy is 'reject'" + WHY}}


def test_without_the_required_set_the_endpoint_refuses_every_id(world):
    """Break-it: the front told no required feature (a spec as before) sends the odd record, and serving's 400 refuses
    it: the stand-in endpoint does refuse what the front must not send (the front then answers that id unscored, in
    serving's words, instead of scoring it as the policy's miss, and scores the others in a second call)."""
    store, endpoint, directory = world
    environ = {**local_environ(_config_path(directory, "missing"), "dev", MODEL), "REQUIRED_FEATURES": ""}
    answer = score_by_id({"ids": IDS}, environ=environ, store=store, endpoint=endpoint, now=NOW)
    assert answer["status"] == 200, answer["body"]
    refused = [p for p in answer["body"]["predictions"] if "error" in p]
    assert len(refused) == 1 and refused[0]["error"].startswith(
        f"{refused[0]['id']}: not scored: field 'pages': missing (null, or an empty CSV field), but its column "
        "'pages' is declared nullable: false")
    assert len(endpoint.calls[-2]) == len(endpoint.calls[-1]) + 1


def test_under_compute_a_model_counting_days_is_scored_at_the_event_time_its_raw_fields_give(tmp_path):
    """GIVEN a model with a days_since feature (days_a_visitor: days from first_visit to the record's event time) under
    ``compute``, and an id whose stored record lacks a required feature WHEN the id comes with its raw fields THEN the
    front passes the instance's event time on, so the endpoint counts the age to it (here 364 days), never to the
    1970 placeholder or the stored record's time; an instance without it is refused alone, its answer naming the
    field, and the other ids are scored."""
    features = ["pages", "days_a_visitor"]
    rows = [{"visit_id": entity_id, "event_time": EVENT, "pages": None if entity_id == ODD else 3, "days_a_visitor": 10}
            for entity_id in IDS[:3] + [ODD]]
    store, endpoint = by_id_world.filled_store(tmp_path, VISITS, rows, features)
    try:
        config = by_id_world.config_path(tmp_path, VISITS, "compute", features)
        raw = {"pages": 4, "first_visit": "2025-01-01", "event_time": "2025-12-31T05:00:00+05:00"}
        answer = by_id_world.scored((store, endpoint, tmp_path), config,
                                    {"instances": [{"visit_id": IDS[0]}, {"visit_id": ODD, **raw}]})
        assert answer["status"] == 200, answer["body"]
        assert [(p["id"], p["feature_source"]) for p in answer["body"]["predictions"]] == [
            (IDS[0], "online_store"), (ODD, "computed")]
        (sent,) = endpoint.calls
        assert sent[1]["event_time"] == raw["event_time"]
        assert records.feature_rows(endpoint.contract, sent).frame["days_a_visitor"].tolist() == [10.0, 364.0]

        # WHEN the odd id comes without its event time, beside a fresh id
        without = {"instances": [{"visit_id": IDS[0]}, {"visit_id": ODD, **{k: v for k, v in raw.items() if k != "event_time"}}]}
        answer = by_id_world.scored((store, endpoint, tmp_path), config, without)
        # THEN the fresh id is scored and the odd one refused alone, naming the field (the endpoint never sees it)
        assert answer["status"] == 200, answer["body"]
        scored, refused = answer["body"]["predictions"]
        assert (scored["id"], scored["feature_source"], "score" in scored) == (IDS[0], "online_store", True)
        assert refused == {"id": ODD, "feature_source": None, "feature_event_time": EVENT, "lookup": "invalid",
                           "lookup_reason": "feature 'pages': absent from the stored record, but serving refuses it "
                                            "missing (a required feature)",
                           "error": "v99: not scored: policy 'compute' scores it from the raw fields sent with it, which "
                                    "lack 'event_time' (missing, null or blank); a raw instance must carry pages, "
                                    "first_visit, event_time"}
        assert [record["entity_id"] for record in endpoint.calls[-1]] == [IDS[0]]

        # Break-it: a front not told the required raw fields sends the record, and serving's 400 refuses it (the front
        # then answers it in serving's words and scores the other id in a second call)
        environ = {k: v for k, v in local_environ(config, "dev", MODEL).items() if k != lookup.REQUIRED_RAW_ENV}
        answer = by_id_world.scored((store, endpoint, tmp_path), config, without, environ)
        assert answer["status"] == 200, answer["body"]
        assert answer["body"]["predictions"][1]["error"].startswith(
            f"{ODD}: not scored: missing required field 'event_time'; feature(s) ['days_a_visitor'] "
            "count the days up to the record's own event time (days_since)")
        assert [[r["entity_id"] for r in call] for call in endpoint.calls[-2:]] == [[IDS[0], ODD], [IDS[0]]]
    finally:
        store.close()


def test_the_fronts_required_raw_fields_under_compute_are_exactly_those_serving_refuses_a_raw_record_without(tmp_path):
    """GIVEN a model reading every kind of feature (a days_since one included) under ``compute`` WHEN synth builds its
    front's spec THEN the raw fields it requires are serving's, from the one catalog rule, and no other policy's spec
    carries any."""
    model = _model(tmp_path, ALL_FEATURES)
    contract = records.FeatureContract.create(model.catalog_dataset, ALL_FEATURES)
    raw = {"pages": 3, "seconds": 12.5, "referrer": "search", "device": "mobile", "member": True, "coupon": "c",
           "basket": 1, "spend": 2.0, "newsletter": False, "first_visit": "2025-01-01", "event_time": EVENT}
    assert not _serving_refuses(contract, raw)
    refused_by_serving = {name for name in raw if _serving_refuses(contract, {**raw, name: None})}
    assert model.lookup_spec(ById(missing="compute")).required_raw == tuple(contract.required_raw_fields)
    assert set(contract.required_raw_fields) == refused_by_serving
    assert {"event_time", "first_visit"} <= refused_by_serving  # the days_since feature's two dates
    assert model.lookup_spec(ById(missing="missing")).required_raw == ()


# ---------------------------------------------------------------- one rule: the front's required set is serving's


def test_the_dataset_holds_every_kind_of_feature():
    """The agreement below covers each operator, and a column unchanged of each type both nullable and not."""
    dataset = catalog.parse_dataset("visits", VISITS)
    assert {dataset.feature(name).expr.op for name in ALL_FEATURES} == set(catalog.OPERATORS)
    unchanged = {(dataset.column(source).dtype, dataset.column(source).nullable)
                 for source in (dataset.feature(name).source_column for name in ALL_FEATURES) if source}
    kinds = {catalog.STRING, catalog.INTEGER, catalog.DOUBLE, catalog.BOOLEAN}
    assert unchanged == {(kind, nullable) for kind in kinds for nullable in (True, False)}


def _valid_text(dataset: catalog.Dataset, name: str) -> str:
    """A stored value (text, as Feature Store returns it) serving accepts for feature ``name``."""
    feature = dataset.feature(name)
    if feature.expr.op == "bucket":
        return feature.expr.args[2][0]
    if feature.feature_type == catalog.FS_STRING:
        column = dataset.column(feature.source_column) if feature.source_column else None
        return column.allowed[0] if column is not None and column.allowed else "search"
    return "1"


def _sent(spec: lookup.LookupSpec, stored: Dict[str, Optional[str]]) -> tuple[str, Dict[str, Any]]:
    """(verdict, record the front would send) for one stored record under policy ``missing``."""
    values = {key: text for key, text in {"visit_id": "v1", "event_time": EVENT, **stored}.items() if text is not None}
    resolved = lookup.resolve([lookup.Instance("v1", {})], {"v1": lookup.StoredRecord(values)}, spec, NOW)
    return resolved.verdicts[0], resolved.records[0]


def _serving_refuses(contract: records.FeatureContract, record: Dict[str, Any]) -> bool:
    try:
        records.feature_rows(contract, [record])
    except errors.BadRequestError:
        return True
    return False


def test_the_fronts_required_features_are_exactly_those_serving_refuses_missing(tmp_path):
    # GIVEN a model reading every kind of feature, its front's spec as synth builds it, and serving's contract
    model = _model(tmp_path, ALL_FEATURES)
    spec = model.lookup_spec(ById(missing="missing"))
    contract = records.FeatureContract.create(model.catalog_dataset, ALL_FEATURES)
    valid = {name: _valid_text(model.catalog_dataset, name) for name in ALL_FEATURES}
    verdict, sent = _sent(spec, valid)
    assert verdict == lookup.FRESH and not _serving_refuses(contract, sent)
    # WHEN one feature at a time is absent from the stored record
    refused_by_serving = {name for name in ALL_FEATURES if _serving_refuses(contract, {**sent, name: None})}
    invalid_for_the_front = {name for name in ALL_FEATURES if _sent(spec, {**valid, name: None})[0] == lookup.INVALID}
    # THEN the front calls the record unusable exactly when serving would refuse it, and the spec names those features
    assert invalid_for_the_front == refused_by_serving == set(REQUIRED)
    assert spec.required == tuple(REQUIRED)  # the model's order
    # AND every record the front still sends is one serving accepts
    for name in set(ALL_FEATURES) - set(REQUIRED):
        assert not _serving_refuses(contract, _sent(spec, {**valid, name: None})[1]), name


@pytest.mark.parametrize("blank", ["", " ", "   "])
def test_blank_text_of_a_text_feature_is_unusable_to_the_front_exactly_when_serving_refuses_it(tmp_path, blank):
    model = _model(tmp_path, ALL_FEATURES)
    spec = model.lookup_spec(ById(missing="missing"))
    contract = records.FeatureContract.create(model.catalog_dataset, ALL_FEATURES)
    valid = {name: _valid_text(model.catalog_dataset, name) for name in ALL_FEATURES}
    _, sent = _sent(spec, valid)
    texts = [name for name, kind in spec.features if kind == lookup.STRING]
    refused_by_serving = {name for name in texts if _serving_refuses(contract, {**sent, name: blank})}
    invalid_for_the_front = {name for name in texts if _sent(spec, {**valid, name: blank})[0] == lookup.INVALID}
    assert invalid_for_the_front == refused_by_serving == {"referrer", "device"}
