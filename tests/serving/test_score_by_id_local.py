"""Scoring by id end to end on a trained model: the front's handler, the local online store, the serving code.

The docs' by-id examples (``docs/invocation-contract.md``, blocks marked ``<!-- by-id ... -->``) are
answered here by the real handler, and the by-id path must give the scores the evaluation gives.
"""

from __future__ import annotations

import hashlib
import datetime as dt
import json
import math
from typing import Dict

import pytest

from mlops_cli.local.online_store import LocalEndpoint, LocalOnlineStore, score_by_id
from pipeline_code.core.online_features import LookupSpec, front_environment
from pipeline_code.handlers.score_by_id import FrontError, score
from tests.support.capture import decode_capture
from tests.support.contract_doc import doc_examples

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


BLOCKS = doc_examples("by-id")
REQUESTS = sorted(i for i, kinds in BLOCKS.items() if "request" in kinds)


def _spec(trained, policy: str = "reject", max_age_seconds=None, max_ids: int = 100) -> LookupSpec:
    ds = trained.dataset
    return LookupSpec(
        record_identifier=ds.record_identifier,
        event_time=ds.event_time,
        features=tuple((name, ds.feature(name).feature_type) for name in trained.spec.features),
        policy=policy,
        max_age_seconds=max_age_seconds,
        max_ids=max_ids,
        required=ds.required_features(trained.spec.features),
    )


def _environ(trained, spec: LookupSpec) -> Dict[str, str]:
    return front_environment(environment="dev", model=trained.name, endpoint=f"test-{trained.name}", feature_group="test-group", spec=spec,
                             namespace="test/serving")


def _store_test_rows(store: LocalOnlineStore, trained, n: int, *, event_time: str, ttl_days=None) -> list:
    ds = trained.dataset
    rows = []
    for i, record in enumerate(trained.feature_records(n)):
        rows.append({ds.record_identifier: f"id-{i}", ds.event_time: event_time, **record})
    store.put_records("test-group", rows, record_identifier=ds.record_identifier, event_time=ds.event_time, ttl_days=ttl_days)
    return [r[ds.record_identifier] for r in rows]


@pytest.fixture()
def churn(trained_models):
    return trained_models["churn"]


def test_scores_by_id_equal_the_evaluation_scores_of_the_same_rows(churn, tmp_path):
    # GIVEN the online store holding the features of 40 test rows (as text, as Feature Store returns them)
    store = LocalOnlineStore(str(tmp_path / "store.sqlite"))
    ids = _store_test_rows(store, churn, 40, event_time="2026-05-31T00:00:00Z")
    # WHEN they are scored by id through the front's handler and the serving code
    answer = score_by_id({"ids": ids}, environ=_environ(churn, _spec(churn)), store=store,
                         endpoint=LocalEndpoint(churn.model_dir, model="churn"), now=NOW)
    # THEN each score is the one evaluation gave that row, and each id is marked as read from the store
    assert answer["status"] == 200, answer["body"]
    predictions = answer["body"]["predictions"]
    assert [p["id"] for p in predictions] == ids
    for prediction, expected in zip(predictions, churn.evaluation_scores[:40]):
        assert math.isclose(prediction["score"], float(expected), rel_tol=1e-6, abs_tol=1e-7)
    assert {p["feature_source"] for p in predictions} == {"online_store"}
    assert answer["body"]["lookup"] == {"fresh": 40, "unknown": 0, "expired": 0, "stale": 0, "invalid": 0}


def test_a_record_the_model_refuses_is_the_fronts_422_as_in_aws_not_a_crash(churn):
    """GIVEN the local endpoint WHEN the serving code refuses a record (one with a field missing) THEN it answers as
    SageMaker Runtime does, a ModelError with the container's status and message, which the front makes a 422."""
    with pytest.raises(FrontError) as refused:
        score(LocalEndpoint(churn.model_dir, model="churn"), "local", [{"unknown": 1}])
    assert refused.value.status == 422
    assert str(refused.value).startswith("the model refused the records: record 0: missing required field ")


def test_a_newer_record_replaces_the_online_one_and_an_older_one_does_not(churn, tmp_path):
    store = LocalOnlineStore(str(tmp_path / "store.sqlite"))
    ds = churn.dataset
    first, second = churn.feature_records(2)
    base = {ds.record_identifier: "c-1"}
    put = lambda record, when: store.put_records(  # noqa: E731
        "g", [{**base, ds.event_time: when, **record}], record_identifier=ds.record_identifier, event_time=ds.event_time,
        ttl_days=None)
    assert put(first, "2026-05-02T00:00:00Z") == 1
    assert put(second, "2026-05-01T00:00:00Z") == 0  # older: kept for the offline store only
    got = store.batch_get_record(Identifiers=[{"FeatureGroupName": "g", "RecordIdentifiersValueAsString": ["c-1"]}])
    values = {f["FeatureName"]: f["ValueAsString"] for f in got["Records"][0]["Record"]}
    assert values[ds.event_time] == "2026-05-02T00:00:00Z"
    assert put(second, "2026-05-03T00:00:00Z") == 1
    got = store.batch_get_record(Identifiers=[{"FeatureGroupName": "g", "RecordIdentifiersValueAsString": ["c-1"]}])
    assert {f["FeatureName"]: f["ValueAsString"] for f in got["Records"][0]["Record"]}[ds.event_time] == "2026-05-03T00:00:00Z"


def test_expired_records_are_returned_with_their_expiry_and_treated_as_missing(churn, tmp_path):
    # GIVEN records with a 7-day TTL written 10 days before the request (Feature Store deletes lazily)
    store = LocalOnlineStore(str(tmp_path / "store.sqlite"))
    ids = _store_test_rows(store, churn, 3, event_time="2026-05-22T00:00:00Z", ttl_days=7)
    got = store.batch_get_record(
        Identifiers=[{"FeatureGroupName": "test-group", "RecordIdentifiersValueAsString": ids[:1]}], ExpirationTimeResponse="Enabled"
    )
    assert got["Records"][0]["ExpiresAt"] == "2026-05-29T00:00:00Z"
    # WHEN scored under policy "missing" THEN each is scored with every feature missing, and counted expired
    answer = score_by_id({"ids": ids}, environ=_environ(churn, _spec(churn, "missing")), store=store,
                         endpoint=LocalEndpoint(churn.model_dir, model="churn"), now=NOW)
    assert answer["status"] == 200
    assert [(p["feature_source"], p["lookup"]) for p in answer["body"]["predictions"]] == [("missing", "expired")] * 3
    assert len({p["score"] for p in answer["body"]["predictions"]}) == 1  # the same all-missing input


def test_the_capture_holds_the_features_as_used_and_the_monitor_decodes_it_without_a_schema_change(churn, tmp_path):
    store = LocalOnlineStore(str(tmp_path / "store.sqlite"))
    ids = _store_test_rows(store, churn, 5, event_time="2026-05-31T00:00:00Z")
    capture_dir = tmp_path / "capture"
    endpoint = LocalEndpoint(churn.model_dir, model="churn", capture_dir=str(capture_dir), clock=lambda: NOW)
    answer = score_by_id({"ids": ids}, environ=_environ(churn, _spec(churn)), store=store, endpoint=endpoint, now=NOW)
    assert answer["status"] == 200
    (path,) = list(capture_dir.rglob("*.jsonl"))
    assert path.relative_to(capture_dir).parts[:2] == ("churn", "AllTraffic")
    sent = json.loads(json.loads(path.read_text().splitlines()[0])["captureData"]["endpointInput"]["data"])["instances"]
    assert [r["inference_id"] for r in sent] == ids
    assert {r["feature_source"] for r in sent} == {"online_store"}
    window = decode_capture(churn, capture_dir)
    assert (window.malformed, dict(window.unknown_keys), dict(window.missing_keys)) == (0, {}, {})
    assert len(window.frame) == 5


def test_the_doc_has_by_id_examples_for_a_hit_a_computed_miss_and_two_refusals():
    assert {"by-id-hit", "by-id-compute", "by-id-expired", "by-id-too-many"} <= set(REQUESTS)
    assert "store" in BLOCKS.get("store", {})


@pytest.mark.parametrize("example_id", REQUESTS)
def test_by_id_doc_example_is_answered_by_the_real_handler_as_documented(example_id, trained_models, tmp_path):
    example = BLOCKS[example_id]
    request = example["request"]
    trained = trained_models[request["model"]]
    stored = json.loads(BLOCKS["store"]["store"]["body"])
    ds = trained.dataset
    store = LocalOnlineStore(str(tmp_path / "store.sqlite"))
    ttl = int(request["ttl_days"]) if "ttl_days" in request else None
    store.put_records("test-group", [stored], record_identifier=ds.record_identifier, event_time=ds.event_time, ttl_days=ttl)
    spec = _spec(trained, request["policy"], max_ids=int(request.get("max_ids", 100)))
    now = dt.datetime.fromisoformat(request["now"].replace("Z", "+00:00"))
    answer = score_by_id(json.loads(request["body"]), environ=_environ(trained, spec), store=store,
                         endpoint=LocalEndpoint(trained.model_dir, model=trained.name), now=now)
    if "error" in example:
        assert answer["status"] == int(example["error"]["status"])
        assert answer["body"] == {"error": example["error"]["body"]}
        return
    documented = json.loads(example["response"]["body"])
    assert answer["status"] == int(example["response"]["status"])
    real = answer["body"]
    assert set(real) == set(documented) and real["lookup"] == documented["lookup"]
    for doc, got in zip(documented["predictions"], real["predictions"], strict=True):
        assert set(doc) == set(got)
        assert {k: v for k, v in doc.items() if k not in ("score", "label")} == {k: v for k, v in got.items() if k not in ("score", "label")}
        assert 0.0 <= got["score"] <= 1.0 and got["label"] in (0, 1)


def _snapshot_and_store(trained, tmp_path, n: int, *, serving_bug=None):
    """The training source (a feature snapshot of ``n`` test rows at one event time) and the online store filled
    from the same rows; ``serving_bug`` rewrites a stored record first (a feature computed differently at serving)."""
    import pandas as pd

    ds = trained.dataset
    rows = [{ds.record_identifier: f"id-{i}", ds.event_time: "2026-05-31T00:00:00Z", **record}
            for i, record in enumerate(trained.feature_records(n, with_extras=True))]
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    frame = pd.DataFrame(rows)
    frame[ds.event_time] = pd.to_datetime(frame[ds.event_time], utc=True)
    frame.to_parquet(snapshots / "part-0.parquet", index=False)
    store = LocalOnlineStore(str(tmp_path / "store.sqlite"))
    served = [serving_bug(dict(r)) if serving_bug else r for r in rows]
    store.put_records("test-group", served, record_identifier=ds.record_identifier, event_time=ds.event_time, ttl_days=None)
    return store, str(snapshots), [r[ds.record_identifier] for r in rows]


def _skew_of_scoring_by_id(trained, tmp_path, *, serving_bug=None):
    from pipeline_code.monitoring import skew

    store, snapshots, ids = _snapshot_and_store(trained, tmp_path, 60, serving_bug=serving_bug)
    capture_dir = tmp_path / "capture"
    endpoint = LocalEndpoint(trained.model_dir, model=trained.name, capture_dir=str(capture_dir), clock=lambda: NOW)
    answer = score_by_id({"ids": ids}, environ=_environ(trained, _spec(trained)), store=store, endpoint=endpoint, now=NOW)
    assert answer["status"] == 200
    return skew.skew_section(trained.spec, str(capture_dir), snapshots, max_rate=0.01, min_compared=1)


def test_the_skew_check_is_quiet_when_serving_used_the_training_values(churn, tmp_path):
    section = _skew_of_scoring_by_id(churn, tmp_path)
    assert (section["status"], section["compared"], section["no_snapshot"], section["max_mismatch_rate"]) == ("pass", 60, 0, 0.0)
    assert section["sources"] == {"online_store": 60} and section["stale_lookups"] == 0
    assert all(entry["mismatches"] == 0 and entry["largest"] == [] for entry in section["features"].values())


def test_the_skew_check_finds_a_feature_computed_differently_at_serving(churn, tmp_path):
    # GIVEN a serving-side bug: the store's tenure is in whole years (as months) for every other customer; within
    # the column's declared range, so the model scores it (a value outside it would be refused, a 422)
    def whole_years(record):
        if int(record["customer_id"].split("-")[1]) % 2 == 0 and record["tenure_months"] is not None:
            record["tenure_months"] = record["tenure_months"] // 12 * 12
        return record

    section = _skew_of_scoring_by_id(churn, tmp_path, serving_bug=whole_years)
    # THEN the check fails on that feature alone, with the largest differences first
    tenure = section["features"]["tenure_months"]
    assert section["status"] == "fail"
    assert {name for name, entry in section["features"].items() if entry["mismatches"]} == {"tenure_months"}
    changed = sum(1 for r in churn.feature_records(60)[::2] if r["tenure_months"] is not None and r["tenure_months"] % 12)
    assert tenure["mismatches"] == changed and tenure["rate"] == pytest.approx(changed / 60)
    largest = tenure["largest"]
    # Each example names its customer by pseudonym only (sha256 of the id): served whole years, so the difference is
    # the snapshot's months past them.
    by_pseudonym = {hashlib.sha256(f"id-{i}".encode("utf-8")).hexdigest()[:12]: r  # the ids _snapshot_and_store gives
                    for i, r in enumerate(churn.feature_records(60))}
    assert len(largest) == 5 and all(e["difference"] == by_pseudonym[e["entity_pseudonym"]]["tenure_months"] % 12
                                     for e in largest)
    assert [e["difference"] for e in largest] == sorted((e["difference"] for e in largest), reverse=True)
    assert section["max_mismatch_rate"] == tenure["rate"]
