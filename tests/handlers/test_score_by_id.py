"""The score-by-id front, against real boto3 clients with botocore's Stubber: ``BatchGetRecord`` and
``InvokeEndpoint`` answers in the APIs' own shapes, the requests the front sends checked parameter by
parameter, and the HTTP answer and embedded-metric line it gives the caller and CloudWatch.

No network: a call the test did not queue fails the test (the Stubber raises), so a test that queues
nothing also shows that no AWS call was made.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import json
from typing import Any, Dict, List, Optional

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from pipeline_code.core import online_features as lookup
from pipeline_code.core.online_features import LookupSpec, front_environment
from pipeline_code.core.value_rules import ValueRule
from pipeline_code.handlers import score_by_id as front

REGION = "eu-west-1"
MODEL = "churn"
ENDPOINT = "mlops-loop-dev-churn"
GROUP = "mlops-loop-dev-customers"
SPEC = LookupSpec(
    record_identifier="customer_id",
    event_time="event_time",
    features=(("tenure_months", "Integral"), ("monthly_charges", "Fractional"), ("contract_type", "String")),
    max_age_seconds=24 * 3600,
)
FEATURE_NAMES = ["customer_id", "event_time", "tenure_months", "monthly_charges", "contract_type"]
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
EVENT = "2026-12-01T08:00:00Z"  # four hours before NOW: fresh
OLD_EVENT = "2026-11-29T12:00:00Z"  # two days before NOW: stale (max age one day)
EXPIRES = "2026-12-31T08:00:00Z"  # the online TTL, after NOW
EXPIRED = "2026-12-01T11:00:00Z"  # before NOW
MODEL_INFO = {"name": MODEL, "version": "3", "artefact_sha256": "ab" * 32, "trained_at": "2026-11-20T00:00:00Z"}
REJECT = "the model's by-id policy is 'reject'"
NO_COUNTS = {"fresh": 0, "unknown": 0, "expired": 0, "stale": 0, "invalid": 0}


def environ(**spec_changes: Any) -> Dict[str, str]:
    spec = dataclasses.replace(SPEC, **spec_changes)
    return front_environment(environment="dev", model=MODEL, endpoint=ENDPOINT, feature_group=GROUP, spec=spec,
                             namespace="shop/serving")


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture()
def store():
    with Stubber(boto3.client("sagemaker-featurestore-runtime", region_name=REGION)) as stubber:
        yield stubber


@pytest.fixture()
def runtime():
    with Stubber(boto3.client("sagemaker-runtime", region_name=REGION)) as stubber:
        yield stubber


class JsonOf:
    """Equal to a JSON text that decodes to ``value`` (the Stubber compares expected != actual)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (str, bytes)) and json.loads(other) == self.value

    def __repr__(self) -> str:
        return f"JsonOf({self.value!r})"


# ---------------------------------------------------------------- building requests and AWS answers


def event(body: Any = None, *, method: str = "POST", content_type: str = "application/json", encoded: bool = False,
          raw: Optional[str] = None) -> Dict[str, Any]:
    """A function-URL event carrying ``body`` as JSON (or ``raw`` text as is)."""
    text = raw if raw is not None else json.dumps(body)
    if encoded:
        text = base64.b64encode(text.encode()).decode()
    return {"requestContext": {"http": {"method": method}}, "headers": {"content-type": content_type},
            "body": text, "isBase64Encoded": encoded}


def stored(entity_id: str, *, event_time: str = EVENT, expires: str = EXPIRES, drop: tuple = (), **values: str) -> Dict[str, Any]:
    """One ``BatchGetRecord`` record: the keys and the three features as text (``values`` replace them)."""
    texts = {"customer_id": entity_id, "event_time": event_time, "tenure_months": "12", "monthly_charges": "70.5",
             "contract_type": "Two year", **values}
    return {
        "FeatureGroupName": GROUP,
        "RecordIdentifierValueAsString": entity_id,
        "Record": [{"FeatureName": name, "ValueAsString": text} for name, text in texts.items() if name not in drop],
        "ExpiresAt": expires,
    }


def expect_lookup(store: Stubber, ids: List[str], records: List[Dict[str, Any]], *,
                  errors: List[Dict[str, Any]] = (), unprocessed: List[str] = ()) -> None:
    """The front asks the store for ``ids`` (with the keys, the features and the TTL) and gets ``records``."""
    response = {"Records": records, "Errors": list(errors), "UnprocessedIdentifiers": []}
    if unprocessed:
        response["UnprocessedIdentifiers"] = [
            {"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": list(unprocessed), "FeatureNames": FEATURE_NAMES}
        ]
    store.add_response("batch_get_record", response, lookup_request(ids))


def lookup_request(ids: List[str]) -> Dict[str, Any]:
    return {
        "Identifiers": [{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ids, "FeatureNames": FEATURE_NAMES}],
        "ExpirationTimeResponse": "Enabled",
    }


def expect_scoring(runtime: Stubber, records: List[Dict[str, Any]], predictions: List[Dict[str, Any]]) -> None:
    """The endpoint gets exactly ``{"instances": records}`` and answers ``predictions``."""
    body = json.dumps({"predictions": predictions, "model": MODEL_INFO}).encode()
    runtime.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
        scoring_request(records),
    )


def scoring_request(records: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {"EndpointName": ENDPOINT, "ContentType": "application/json", "Accept": "application/json",
            "Body": JsonOf({"instances": records})}


def from_store(entity_id: str, **features: Any) -> Dict[str, Any]:
    """The record the endpoint gets for a fresh stored record (typed values)."""
    typed = {"tenure_months": 12, "monthly_charges": 70.5, "contract_type": "Two year", **features}
    return {**typed, "entity_id": entity_id, "feature_lookup": "fresh", "feature_source": "online_store", "feature_event_time": EVENT, "inference_id": entity_id}


def handled(request: Dict[str, Any], store: Stubber, runtime: Stubber, environment: Optional[Dict[str, str]] = None):
    """(status, headers, decoded body) of the front's answer; every queued AWS answer must have been used."""
    answer = front.handle(request, environment or environ(), store=store.client, runtime=runtime.client, now=NOW)
    store.assert_no_pending_responses()
    runtime.assert_no_pending_responses()
    return answer["statusCode"], answer["headers"], json.loads(answer["body"])


def metric(capsys) -> Dict[str, Any]:
    """The one embedded-metric line the request printed."""
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


# ---------------------------------------------------------------- answers


def test_all_ids_found_are_scored_with_their_source_and_event_time(store, runtime):
    """GIVEN two fresh records (the store answers them in another order) WHEN scored by id THEN the endpoint
    gets their typed features in the request's order and the caller each score with its id and source."""
    expect_lookup(store, ["c-1", "c-2"], [stored("c-2", tenure_months="3", contract_type="Month-to-month"), stored("c-1")])
    expect_scoring(
        runtime,
        [from_store("c-1"), from_store("c-2", tenure_months=3, contract_type="Month-to-month")],
        [{"score": 0.2, "label": 0, "inference_id": "c-1"}, {"score": 0.9, "label": 1, "inference_id": "c-2"}],
    )

    status, headers, body = handled(event({"ids": ["c-1", "c-2"]}), store, runtime)

    assert (status, headers) == (200, {"Content-Type": "application/json"})
    assert body == {
        "predictions": [
            {"score": 0.2, "label": 0, "inference_id": "c-1", "id": "c-1", "feature_source": "online_store",
             "feature_event_time": EVENT, "lookup": "fresh"},
            {"score": 0.9, "label": 1, "inference_id": "c-2", "id": "c-2", "feature_source": "online_store",
             "feature_event_time": EVENT, "lookup": "fresh"},
        ],
        "model": MODEL_INFO,
        "lookup": {**NO_COUNTS, "fresh": 2},
    }


def test_a_repeated_id_is_looked_up_once_and_scored_twice(store, runtime):
    expect_lookup(store, ["c-1"], [stored("c-1")])
    expect_scoring(runtime, [from_store("c-1"), from_store("c-1")], [{"score": 0.2}, {"score": 0.2}])

    status, _, body = handled(event({"ids": ["c-1", "c-1"]}), store, runtime)

    assert status == 200
    assert [p["id"] for p in body["predictions"]] == ["c-1", "c-1"]


def test_a_base64_encoded_body_is_read(store, runtime):
    expect_lookup(store, ["c-1"], [stored("c-1")])
    expect_scoring(runtime, [from_store("c-1")], [{"score": 0.2}])

    status, _, body = handled(event({"ids": ["c-1"]}, encoded=True), store, runtime)

    assert status == 200 and body["predictions"][0]["id"] == "c-1"


def test_a_json_content_type_with_a_charset_is_accepted(store, runtime):
    expect_lookup(store, ["c-1"], [stored("c-1")])
    expect_scoring(runtime, [from_store("c-1")], [{"score": 0.2}])

    status, _, _ = handled(event({"ids": ["c-1"]}, content_type="application/json; charset=utf-8"), store, runtime)

    assert status == 200


def test_an_unknown_id_is_refused_under_reject_and_nothing_is_scored(store, runtime):
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1")])

    status, _, body = handled(event({"ids": ["c-1", "c-2"]}), store, runtime)

    assert (status, body) == (404, {"error": f"no fresh online-store record (unknown: c-2); {REJECT}"})


def test_an_unknown_id_is_scored_with_missing_features_under_missing(store, runtime):
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1")])
    missing = {"tenure_months": None, "monthly_charges": None, "contract_type": None,
               "entity_id": "c-2", "feature_lookup": "unknown", "feature_source": "missing", "feature_event_time": None, "inference_id": "c-2"}
    expect_scoring(runtime, [from_store("c-1"), missing], [{"score": 0.2}, {"score": 0.5}])

    status, _, body = handled(event({"ids": ["c-1", "c-2"]}), store, runtime, environ(policy="missing"))

    assert status == 200
    assert body["predictions"][1] == {"score": 0.5, "id": "c-2", "feature_source": "missing", "feature_event_time": None,
                                      "lookup": "unknown"}
    assert body["lookup"] == {**NO_COUNTS, "fresh": 1, "unknown": 1}


def test_an_unknown_id_is_scored_from_its_raw_fields_under_compute(store, runtime):
    raw = {"tenure": 3, "MonthlyCharges": 20.25, "Contract": "Month-to-month"}
    expect_lookup(store, ["c-2"], [])
    expect_scoring(runtime, [{**raw, "entity_id": "c-2", "feature_lookup": "unknown", "feature_source": "computed", "feature_event_time": None, "inference_id": "req-9"}],
                   [{"score": 0.7, "inference_id": "req-9"}])

    request = {"instances": [{"customer_id": "c-2", "inference_id": "req-9", **raw}]}
    status, _, body = handled(event(request), store, runtime, environ(policy="compute"))

    assert status == 200
    assert body["predictions"] == [{"score": 0.7, "inference_id": "req-9", "id": "c-2", "feature_source": "computed",
                                    "feature_event_time": None, "lookup": "unknown"}]


def test_a_stale_id_without_raw_fields_is_refused_under_compute(store, runtime):
    expect_lookup(store, ["c-1"], [stored("c-1", event_time=OLD_EVENT)])

    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime, environ(policy="compute"))

    assert (status, body) == (422, {"error": "no fresh online-store record (stale: c-1); "
                                             "policy 'compute' needs the instance's raw fields for these ids"})


def test_a_future_dated_stored_record_is_a_miss_with_its_reason_not_served_as_fresh(store, runtime):
    """GIVEN c-2's online record dated 2062 (a typo'd year: the store keeps it over every later put, it never turns stale
    and its TTL runs from 2062) WHEN scored under policy missing THEN c-2 is sent with every feature missing and its
    answer says why, while c-1 is scored from the store; the invalid id is counted."""
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1"), stored("c-2", event_time="2062-12-01T08:00:00Z",
                                                                  expires="2062-12-31T08:00:00Z")])
    missing = {"tenure_months": None, "monthly_charges": None, "contract_type": None, "entity_id": "c-2",
               "feature_lookup": "invalid", "feature_source": "missing", "feature_event_time": None, "inference_id": "c-2"}
    expect_scoring(runtime, [from_store("c-1"), missing], [{"score": 0.2}, {"score": 0.5}])

    status, _, body = handled(event({"ids": ["c-1", "c-2"]}), store, runtime, environ(policy="missing"))

    assert status == 200
    answer = body["predictions"][1]
    assert (answer["lookup"], answer["feature_source"], answer["feature_event_time"]) == (
        "invalid", "missing", "2062-12-01T08:00:00Z")
    assert answer["lookup_reason"].startswith("event time 'event_time': stored '2062-12-01T08:00:00Z' is after the "
                                              "lookup time 2026-12-01T12:00:00Z")
    assert body["lookup"] == {**NO_COUNTS, "fresh": 1, "invalid": 1}


def test_a_feature_absent_from_the_stored_record_is_sent_as_missing(store, runtime):
    """Feature Store keeps no value for a null feature: the Record list lacks it, the endpoint gets null."""
    expect_lookup(store, ["c-1"], [stored("c-1", drop=("monthly_charges",))])
    expect_scoring(runtime, [from_store("c-1", monthly_charges=None)], [{"score": 0.4}])

    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime)

    assert status == 200 and body["predictions"][0]["lookup"] == "fresh"


def test_a_stored_record_lacking_a_required_feature_is_scored_as_a_miss_and_the_others_from_the_store(store, runtime):
    """GIVEN tenure_months required (a nullable: false column unchanged: serving refuses it missing) and c-2's record
    written before it was WHEN scored under policy missing THEN c-2 is sent with every feature missing and c-1 as stored:
    the endpoint never gets a record it refuses, which would fail both ids."""
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1"), stored("c-2", drop=("tenure_months",))])
    missing = {"tenure_months": None, "monthly_charges": None, "contract_type": None, "entity_id": "c-2",
               "feature_lookup": "invalid", "feature_source": "missing", "feature_event_time": None, "inference_id": "c-2"}
    expect_scoring(runtime, [from_store("c-1"), missing], [{"score": 0.2}, {"score": 0.5}])

    status, _, body = handled(event({"ids": ["c-1", "c-2"]}), store, runtime,
                              environ(policy="missing", required=("tenure_months",)))

    assert status == 200
    assert [(p["id"], p["feature_source"], p["lookup"]) for p in body["predictions"]] == [
        ("c-1", "online_store", "fresh"), ("c-2", "missing", "invalid")]
    assert body["lookup"] == {**NO_COUNTS, "fresh": 1, "invalid": 1}


def test_a_stored_record_lacking_a_required_feature_is_refused_under_reject_naming_it_and_nothing_is_scored(store, runtime):
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1"), stored("c-2", drop=("contract_type",))])

    status, _, body = handled(event({"ids": ["c-1", "c-2"]}), store, runtime, environ(required=("contract_type",)))

    assert (status, body) == (422, {"error": f"no fresh online-store record (invalid: c-2); {REJECT}; c-2: feature "
                                             "'contract_type': absent from the stored record, but serving refuses it "
                                             "missing (a required feature)"})


# ---------------------------------------------------------------- a stored value breaking a tightened rule
# The rules as synth writes them (Dataset.feature_rules): tenure_months at most 60 (it was 120 when c-2 was stored),
# contract_type one of two categories (a third was dropped since). Values are checked as serving checks them.
TIGHTENED = (("tenure_months", ValueRule(minimum=0, maximum=60)), ("contract_type", ValueRule(allowed=("one year", "two year"))))


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"tenure_months": "-1"}, "feature 'tenure_months': stored -1 is below the minimum 0"),
        ({"tenure_months": "61"}, "feature 'tenure_months': stored 61 is above the maximum 60"),
        ({"contract_type": "Month-to-month"},
         "feature 'contract_type': stored 'Month-to-month' is not an allowed value; allowed: one year, two year"),
        # Both broken: the first feature in the model's order is named, as serving's first problem is.
        ({"tenure_months": "61", "contract_type": "Month-to-month"},
         "feature 'tenure_months': stored 61 is above the maximum 60"),
    ],
    ids=["min", "max", "allowed", "max-and-allowed"],
)
def test_a_stored_value_breaking_a_tightened_rule_is_scored_as_a_miss_saying_why_and_the_others_from_the_store(
        store, runtime, values, reason):
    """GIVEN c-2's stored record breaking a rule tightened after it was written WHEN c-1 and c-2 are scored under
    policy missing THEN c-2 is sent with every feature missing, c-1 as stored, and the caller learns why c-2 was."""
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1"), stored("c-2", **values)])
    missing = {"tenure_months": None, "monthly_charges": None, "contract_type": None, "entity_id": "c-2",
               "feature_lookup": "invalid", "feature_source": "missing", "feature_event_time": None, "inference_id": "c-2"}
    expect_scoring(runtime, [from_store("c-1"), missing], [{"score": 0.2}, {"score": 0.5}])

    status, _, body = handled(event({"ids": ["c-1", "c-2"]}), store, runtime, environ(policy="missing", rules=TIGHTENED))

    assert status == 200
    assert body["predictions"] == [
        {"score": 0.2, "id": "c-1", "feature_source": "online_store", "feature_event_time": EVENT, "lookup": "fresh"},
        {"score": 0.5, "id": "c-2", "feature_source": "missing", "feature_event_time": EVENT, "lookup": "invalid",
         "lookup_reason": reason},
    ]
    assert body["lookup"] == {**NO_COUNTS, "fresh": 1, "invalid": 1}


def test_values_keeping_the_rules_are_scored_as_stored_in_any_case_and_spacing(store, runtime):
    """The bounds are inclusive and a category is compared in normal form (trimmed, lower-cased), as serving does."""
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1", tenure_months="60", contract_type=" Two Year"),
                                          stored("c-2", tenure_months="0", monthly_charges="-5")])
    expect_scoring(runtime, [from_store("c-1", tenure_months=60, contract_type=" Two Year"),
                             from_store("c-2", tenure_months=0, monthly_charges=-5.0)], [{"score": 0.2}, {"score": 0.3}])

    status, _, body = handled(event({"ids": ["c-1", "c-2"]}), store, runtime, environ(rules=TIGHTENED))

    assert status == 200 and [p["lookup"] for p in body["predictions"]] == ["fresh", "fresh"]


def test_a_stored_value_breaking_a_rule_under_compute_is_scored_from_the_raw_fields_sent(store, runtime):
    expect_lookup(store, ["c-1"], [stored("c-1", contract_type="Month-to-month")])
    raw = {"tenure_months": 3, "contract_type": "one year"}
    expect_scoring(runtime, [{**raw, "feature_source": "computed", "feature_event_time": None, "entity_id": "c-1",
                              "feature_lookup": "invalid", "inference_id": "c-1"}], [{"score": 0.6}])

    status, _, body = handled(event({"instances": [{"customer_id": "c-1", **raw}]}), store, runtime,
                              environ(policy="compute", rules=TIGHTENED))

    assert status == 200
    assert body["predictions"] == [{"score": 0.6, "id": "c-1", "feature_source": "computed", "feature_event_time": EVENT,
                                    "lookup": "invalid", "lookup_reason": "feature 'contract_type': stored 'Month-to-month' "
                                    "is not an allowed value; allowed: one year, two year"}]


def test_a_stored_value_breaking_a_rule_under_reject_refuses_naming_the_id_the_value_and_the_rule(store, runtime, capsys):
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1"), stored("c-2", tenure_months="61")])

    status, _, body = handled(event({"ids": ["c-1", "c-2"]}), store, runtime, environ(rules=TIGHTENED))

    assert (status, body) == (422, {"error": f"no fresh online-store record (invalid: c-2); {REJECT}; c-2: feature "
                                             "'tenure_months': stored 61 is above the maximum 60"})
    assert metric(capsys)["ByIdInvalid"] == 1


def test_a_bucket_label_no_longer_declared_is_invalid(store, runtime):
    spec_rules = (("contract_type", ValueRule(allowed=("short", "long"), buckets=True)),)
    expect_lookup(store, ["c-1"], [stored("c-1", contract_type="medium")])

    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime, environ(rules=spec_rules))

    assert (status, body) == (422, {"error": f"no fresh online-store record (invalid: c-1); {REJECT}; c-1: feature "
                                             "'contract_type': stored 'medium' is not one of the feature's buckets; "
                                             "allowed: short, long"})


def test_the_rules_are_read_from_the_code_s_file_when_the_environment_names_one(store, runtime, tmp_path, monkeypatch):
    """GIVEN rules too large for the environment shipped as a file of the function's code (FEATURE_RULES_FILE)
    THEN the front holds stored values to them as to inline ones."""
    spec = dataclasses.replace(SPEC, rules=TIGHTENED)
    (tmp_path / "feature_rules.json").write_text(spec.rules_document())
    monkeypatch.setattr(lookup, "CODE_ROOT", tmp_path)
    lookup._code_file.cache_clear()
    environment = front_environment(environment="dev", model=MODEL, endpoint=ENDPOINT, feature_group=GROUP, spec=spec,
                                    namespace="shop/serving", rules_file="feature_rules.json")
    assert "FEATURE_RULES" not in environment
    expect_lookup(store, ["c-1"], [stored("c-1", tenure_months="61")])

    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime, environment)

    assert (status, body["error"]) == (422, f"no fresh online-store record (invalid: c-1); {REJECT}; c-1: feature "
                                            "'tenure_months': stored 61 is above the maximum 60")
    lookup._code_file.cache_clear()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"FEATURE_RULES": '{"tenure": {"max": 60}}'},
         "FEATURE_RULES 'tenure': not one of the model's FEATURES (tenure_months, monthly_charges, contract_type)"),
        ({"FEATURE_RULES": '{"tenure_months": {"maximum": 60}}'},
         "FEATURE_RULES: unknown rule kinds ['maximum']; known: min, max, allowed, buckets, boolean"),
        ({"FEATURE_RULES": "[60]"}, "FEATURE_RULES: expected an object of feature -> rule, got [60]"),
        ({"FEATURE_RULES_FILE": "absent.json"}, "FEATURE_RULES_FILE 'absent.json': [Errno 2] No such file or directory: "),
    ],
    ids=["unknown-feature", "unknown-kind", "not-an-object", "no-such-file"],
)
def test_hand_edited_rules_are_a_500_naming_the_variable(store, runtime, capsys, changes, message):
    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime, {**environ(), **changes})
    assert status == 500 and body["error"].startswith(f"the score-by-id front is misconfigured: {message}")
    assert metric(capsys)["ByIdServerErrors"] == 1


def test_a_hand_edited_required_feature_the_model_lacks_is_a_500_naming_it(store, runtime, capsys):
    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime, {**environ(), "REQUIRED_FEATURES": "tenure"})
    assert (status, body) == (500, {"error": "the score-by-id front is misconfigured: REQUIRED_FEATURES 'tenure': not one "
                                             "of the model's FEATURES (tenure_months, monthly_charges, contract_type)"})
    assert metric(capsys)["ByIdServerErrors"] == 1


@pytest.mark.parametrize(
    ("record", "kind", "reason"),
    [
        (stored("c-1", event_time=OLD_EVENT), "stale", ""),
        (stored("c-1", expires=EXPIRED), "expired", ""),
        (stored("c-1", tenure_months="twelve"), "invalid",
         "; c-1: feature 'tenure_months': stored 'twelve' is not of its catalog type Integral"),
        (stored("c-1", monthly_charges="NaN"), "invalid",
         "; c-1: feature 'monthly_charges': stored 'NaN' is not of its catalog type Fractional"),
        (stored("c-1", event_time="not a time"), "invalid", "; c-1: event time 'event_time': stored 'not a time' is not a time"),
        (stored("c-1", drop=("event_time",)), "invalid", "; c-1: event time 'event_time': absent from the stored record"),
    ],
    ids=["stale", "expired", "integral-not-a-number", "fractional-nan", "unreadable-event-time", "no-event-time"],
)
def test_a_record_not_fit_to_use_is_refused_with_422_under_reject_saying_why_an_invalid_one_is(store, runtime, record, kind,
                                                                                               reason):
    expect_lookup(store, ["c-1"], [record])

    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime)

    assert (status, body) == (422, {"error": f"no fresh online-store record ({kind}: c-1); {REJECT}{reason}"})


def test_a_stale_record_under_missing_tells_the_caller_its_event_time(store, runtime):
    expect_lookup(store, ["c-1"], [stored("c-1", event_time=OLD_EVENT)])
    expect_scoring(runtime, [{"tenure_months": None, "monthly_charges": None, "contract_type": None,
                              "entity_id": "c-1", "feature_lookup": "stale", "feature_source": "missing", "feature_event_time": None, "inference_id": "c-1"}],
                   [{"score": 0.5}])

    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime, environ(policy="missing"))

    assert status == 200
    assert body["predictions"] == [{"score": 0.5, "id": "c-1", "feature_source": "missing", "feature_event_time": OLD_EVENT,
                                    "lookup": "stale"}]
    assert body["lookup"] == {**NO_COUNTS, "stale": 1}


def test_a_list_value_for_a_scalar_feature_is_invalid(store, runtime):
    # A feature the group holds as a collection comes back as ValueAsStringList: not the catalog's type,
    # so invalid, never read as a missing value.
    record = stored("c-1", drop=("tenure_months",))
    record["Record"].append({"FeatureName": "tenure_months", "ValueAsStringList": ["1", "2"]})
    expect_lookup(store, ["c-1"], [record])

    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime)

    assert (status, body) == (422, {"error": f"no fresh online-store record (invalid: c-1); {REJECT}; c-1: feature "
                                             "'tenure_months': stored ['1', '2'] is not of its catalog type Integral"})


# ---------------------------------------------------------------- the store: retries, throttling, errors


def test_unprocessed_ids_are_asked_again_and_then_found(store):
    """GIVEN the store leaves c-2 unprocessed once WHEN fetching THEN c-2 alone is asked again, after a pause."""
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1")], unprocessed=["c-2"])
    expect_lookup(store, ["c-2"], [stored("c-2", tenure_months="3")])
    pauses: List[float] = []

    found = front.fetch_records(store.client, GROUP, ["c-1", "c-2"], SPEC, sleep=pauses.append)

    store.assert_no_pending_responses()
    assert sorted(found) == ["c-1", "c-2"]
    assert found["c-2"].values["tenure_months"] == "3"
    assert found["c-2"].expires_at == dt.datetime(2026, 12, 31, 8, 0, tzinfo=dt.timezone.utc)
    assert pauses == [0.05]


def test_ids_throttled_in_the_errors_list_are_asked_again(store):
    throttled = {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": "c-2", "ErrorCode": "ThrottlingException",
                 "ErrorMessage": "Rate exceeded"}
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1")], errors=[throttled])
    expect_lookup(store, ["c-2"], [stored("c-2")])

    found = front.fetch_records(store.client, GROUP, ["c-1", "c-2"], SPEC, sleep=lambda seconds: None)

    store.assert_no_pending_responses()
    assert sorted(found) == ["c-1", "c-2"]


def test_the_pause_between_retries_doubles(store):
    for _ in range(3):
        expect_lookup(store, ["c-1"], [], unprocessed=["c-1"])
    expect_lookup(store, ["c-1"], [stored("c-1")])
    pauses: List[float] = []

    found = front.fetch_records(store.client, GROUP, ["c-1"], SPEC, sleep=pauses.append)

    store.assert_no_pending_responses()
    assert list(found) == ["c-1"]
    assert pauses == [0.05, 0.1, 0.2]


def test_ids_still_unprocessed_after_the_retries_are_a_503(store):
    """GIVEN the store leaves an id unprocessed on the first ask and on every one of the retries THEN 503."""
    for _ in range(1 + front.UNPROCESSED_RETRIES):
        expect_lookup(store, ["c-1"], [], unprocessed=["c-1"])

    with pytest.raises(front.FrontError) as raised:
        front.fetch_records(store.client, GROUP, ["c-1"], SPEC, sleep=lambda seconds: None)

    store.assert_no_pending_responses()
    assert (raised.value.status, str(raised.value), raised.value.retry_after) == (
        503, "the online store left 1 ids unprocessed after 3 retries; retry later", 1
    )


def test_a_throttled_store_is_a_503_with_retry_after(store, runtime):
    store.add_client_error("batch_get_record", service_error_code="ThrottlingException", service_message="Rate exceeded",
                           http_status_code=400, expected_params=lookup_request(["c-1"]))

    status, headers, body = handled(event({"ids": ["c-1"]}), store, runtime)

    assert (status, headers, body) == (
        503, {"Content-Type": "application/json", "Retry-After": "1"},
        {"error": "the online store is throttling (ThrottlingException); retry later"},
    )


def test_a_missing_feature_group_is_a_502_naming_it(store, runtime):
    message = f"Resource Not Found: Amazon SageMaker can't find a feature group with name {GROUP}"
    store.add_client_error("batch_get_record", service_error_code="ResourceNotFound", service_message=message,
                           http_status_code=404, expected_params=lookup_request(["c-1"]))

    status, headers, body = handled(event({"ids": ["c-1"]}), store, runtime)

    assert (status, headers) == (502, {"Content-Type": "application/json"})
    assert body == {"error": f"feature group {GROUP} refused the lookup (ResourceNotFound: {message}); "
                             "check that it exists and matches the catalog"}


def test_a_record_error_from_the_store_is_a_502_naming_the_id(store, runtime):
    error = {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": "c-1", "ErrorCode": "ValidationError",
             "ErrorMessage": "Feature tenure_months is not in the feature group"}
    expect_lookup(store, ["c-1"], [], errors=[error])

    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime)

    assert (status, body) == (502, {"error": f"feature group {GROUP} answered ValidationError for c-1: "
                                             "Feature tenure_months is not in the feature group"})


# ---------------------------------------------------------------- the endpoint's failures


def test_an_endpoint_not_yet_deployed_is_a_503_with_retry_after(store, runtime):
    expect_lookup(store, ["c-1"], [stored("c-1")])
    runtime.add_client_error("invoke_endpoint", service_error_code="ValidationError",
                             service_message=f"Endpoint {ENDPOINT} of account 111111111111 not found.",
                             expected_params=scoring_request([from_store("c-1")]))

    status, headers, body = handled(event({"ids": ["c-1"]}), store, runtime)

    assert (status, headers, body) == (
        503, {"Content-Type": "application/json", "Retry-After": "60"},
        {"error": f"no version of this model is deployed yet (endpoint {ENDPOINT} not found)"},
    )


@pytest.mark.parametrize(("original", "status", "words"), [
    (400, 422, "the model refused the records: record 0: tenure_months is not a number"),
    # Not a refusal: the caller's records were fine (a retry may help, a changed request would not).
    (500, 502, "the model failed to answer (its status 500): record 0: tenure_months is not a number"),
])
def test_a_model_error_is_the_caller_s_422_or_the_model_s_502(store, runtime, original, status, words):
    """The container's own status decides: 4xx (it refused the records) or anything else (it failed)."""
    expect_lookup(store, ["c-1"], [stored("c-1")])
    runtime.add_client_error(
        "invoke_endpoint", service_error_code="ModelError",
        service_message=f"Received client error ({original}) from primary with message ...", http_status_code=424,
        modeled_fields={"OriginalStatusCode": original, "OriginalMessage": "record 0: tenure_months is not a number"},
        expected_params=scoring_request([from_store("c-1")]),
    )

    answered, headers, body = handled(event({"ids": ["c-1"]}), store, runtime)

    assert (answered, headers, body) == (
        status, {"Content-Type": "application/json"}, {"error": words},
    )


def test_fewer_predictions_than_records_is_a_502(store, runtime):
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1"), stored("c-2")])
    expect_scoring(runtime, [from_store("c-1"), from_store("c-2")], [{"score": 0.2}])

    status, _, body = handled(event({"ids": ["c-1", "c-2"]}), store, runtime)

    assert (status, body) == (502, {"error": "the endpoint answered 1 predictions for 2 records"})


# ---------------------------------------------------------------- requests refused before any AWS call


@pytest.mark.parametrize(
    ("request_event", "status", "message"),
    [
        (event({"ids": ["c-1"]}, method="GET"), 405, "GET: score by id with POST"),
        (event({"ids": ["c-1"]}, content_type="text/csv"), 415, "Content-Type text/csv: a by-id request is application/json"),
        (event(raw="ids=c-1"), 400, "the body is not JSON (Expecting value: line 1 column 1 (char 0))"),
        (event({"ids": []}), 400, "the request holds no entity id"),
        (event({"ids": [f"c-{n}" for n in range(101)]}), 413, "101 entity ids in one request; at most 100: split the request"),
        # A field given twice: json keeps the last value, a gateway in front may have checked the first (serving's rule)
        (event(raw='{"instances": [{"customer_id": "c-1", "inference_id": "a", "inference_id": "b"}]}'), 400,
         "instance 0: field 'inference_id' is given more than once in one object (JSON parsers disagree on which value "
         "counts); send each field once"),
        (event(raw='{"ids": ["c-1"], "ids": ["c-2"]}'), 400,
         "request body: field 'ids' is given more than once in one object (JSON parsers disagree on which value "
         "counts); send each field once"),
    ],
    ids=["get", "csv", "not-json", "no-ids", "too-many-ids", "field-twice-in-an-instance", "field-twice-in-the-body"],
)
def test_a_request_refused_before_any_aws_call(store, runtime, request_event, status, message):
    """Nothing is queued on either client: any call would raise, so reaching the answer shows none was made."""
    assert handled(request_event, store, runtime)[::2] == (status, {"error": message})


# ---------------------------------------------------------------- the embedded-metric line


def test_a_scored_request_logs_its_metrics(store, runtime, capsys):
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1")])
    expect_scoring(runtime, [from_store("c-1"), {"tenure_months": None, "monthly_charges": None, "contract_type": None,
                                                 "entity_id": "c-2", "feature_lookup": "unknown", "feature_source": "missing",
                                                 "feature_event_time": None, "inference_id": "c-2"}],
                   [{"score": 0.2}, {"score": 0.5}])

    assert handled(event({"ids": ["c-1", "c-2"]}), store, runtime, environ(policy="missing"))[0] == 200

    line = metric(capsys)
    assert isinstance(line["_aws"].pop("Timestamp"), int)
    names = ["ByIdRequests", "ByIdServerErrors", "ByIdFresh", "ByIdUnknown", "ByIdExpired", "ByIdStale", "ByIdInvalid"]
    assert line == {
        "_aws": {"CloudWatchMetrics": [{"Namespace": "shop/serving", "Dimensions": [["Environment", "Model"]],
                                        "Metrics": [{"Name": name, "Unit": "Count"} for name in names]}]},
        "Environment": "dev", "Model": MODEL, "Status": 200,
        "ByIdRequests": 1, "ByIdServerErrors": 0,
        "ByIdFresh": 1, "ByIdUnknown": 1, "ByIdExpired": 0, "ByIdStale": 0, "ByIdInvalid": 0,
    }


def test_a_5xx_answer_counts_as_a_server_error_with_the_lookup_counts(store, runtime, capsys):
    expect_lookup(store, ["c-1"], [stored("c-1")])
    runtime.add_client_error("invoke_endpoint", service_error_code="ValidationError",
                             service_message=f"Endpoint {ENDPOINT} of account 111111111111 not found.")

    assert handled(event({"ids": ["c-1"]}), store, runtime)[0] == 503

    line = metric(capsys)
    assert (line["Status"], line["ByIdRequests"], line["ByIdServerErrors"]) == (503, 1, 1)
    assert (line["ByIdFresh"], line["ByIdUnknown"]) == (1, 0)


def test_a_4xx_answer_is_a_request_but_no_server_error(store, runtime, capsys):
    assert handled(event({"ids": ["c-1"]}, method="GET"), store, runtime)[0] == 405

    line = metric(capsys)
    assert (line["Model"], line["Status"], line["ByIdRequests"], line["ByIdServerErrors"]) == (MODEL, 405, 1, 0)
    assert [m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["ByIdRequests", "ByIdServerErrors"]


def test_a_request_refused_under_reject_still_counts_its_ids_per_verdict(store, runtime, capsys):
    # Under "reject" a miss refuses the request, and the refused request's ids are still counted per verdict.
    expect_lookup(store, ["c-1", "c-2"], [stored("c-1")])

    assert handled(event({"ids": ["c-1", "c-2"]}), store, runtime)[0] == 404

    line = metric(capsys)
    assert (line.get("ByIdFresh"), line.get("ByIdUnknown")) == (1, 1)


def test_no_pause_follows_the_last_attempt(store):
    for _ in range(1 + front.UNPROCESSED_RETRIES):
        expect_lookup(store, ["c-1"], [], unprocessed=["c-1"])
    pauses: List[float] = []

    with pytest.raises(front.FrontError):
        front.fetch_records(store.client, GROUP, ["c-1"], SPEC, sleep=pauses.append)

    assert pauses == [0.05, 0.1, 0.2]  # one per retry; the 503 is answered at once


def test_an_endpoint_answer_that_is_not_json_is_a_502(store, runtime):
    expect_lookup(store, ["c-1"], [stored("c-1")])
    runtime.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(b"<html>oops"), 10), "ContentType": "text/html"},
                         scoring_request([from_store("c-1")]))

    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime)

    assert (status, body) == (502, {"error": "the endpoint answered something that is not JSON: b'<html>oops'"})


def test_the_content_type_is_matched_without_regard_to_case_or_parameters(store, runtime):
    expect_lookup(store, ["c-1"], [stored("c-1")])
    expect_scoring(runtime, [from_store("c-1")], [{"score": 0.25, "label": 0, "inference_id": "c-1"}])

    status, _, _ = handled(event({"ids": ["c-1"]}, content_type="Application/JSON; charset=utf-8"), store, runtime)

    assert status == 200


def test_a_body_that_is_not_base64_is_a_400(store, runtime):
    request = {**event(raw="not base64!"), "isBase64Encoded": True}

    status, _, body = handled(request, store, runtime)

    assert status == 400 and body["error"].startswith("the body is not valid base64 (")


def test_compute_without_raw_fields_for_an_unknown_id_is_a_422_naming_the_fix(store, runtime):
    expect_lookup(store, ["c-9"], [])

    status, _, body = handled(event({"ids": ["c-9"]}), store, runtime, environ(policy="compute"))

    assert (status, body) == (
        422, {"error": "no fresh online-store record (unknown: c-9); policy 'compute' needs the instance's raw fields for these ids"}
    )


def test_a_store_that_does_not_answer_is_a_503_not_a_crash(store, runtime, monkeypatch):
    from botocore.exceptions import ReadTimeoutError

    def timeout(**_):
        raise ReadTimeoutError(endpoint_url="https://featurestore-runtime.sagemaker.eu-west-1.amazonaws.com")

    monkeypatch.setattr(store.client, "batch_get_record", timeout)
    status, headers, body = handled(event({"ids": ["c-1"]}), store, runtime)
    assert (status, headers.get("Retry-After"), body) == (
        503, "1", {"error": "the online store did not answer (ReadTimeoutError); retry later"})


def test_an_endpoint_that_does_not_answer_in_time_is_a_504_and_is_not_retried(store, runtime, monkeypatch):
    from botocore.exceptions import ReadTimeoutError

    calls = []

    def timeout(**kwargs):
        calls.append(kwargs)
        raise ReadTimeoutError(endpoint_url="https://runtime.sagemaker.eu-west-1.amazonaws.com")

    expect_lookup(store, ["c-1"], [stored("c-1")])
    monkeypatch.setattr(runtime.client, "invoke_endpoint", timeout)
    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime)
    assert (status, body) == (504, {"error": "the endpoint did not answer (ReadTimeoutError)"})
    assert len(calls) == 1


def test_the_endpoint_client_never_retries_and_waits_past_sagemakers_60_second_limit():
    """A retried InvokeEndpoint would score the request twice: the client botocore builds from the front's config makes
    one attempt (its max_attempts of 1 made two: botocore reads it as retries) and waits past SageMaker's 60 s."""
    config = boto3.client("sagemaker-runtime", region_name="eu-west-1", config=front._CONFIGS["sagemaker-runtime"]).meta.config
    assert config.retries["total_max_attempts"] == 1 and config.read_timeout > 60


def test_a_hand_edited_policy_is_a_500_naming_the_setting(store, runtime, capsys):
    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime, {**environ(), "MISSING_POLICY": "impute"})
    assert (status, body) == (500, {"error": "the score-by-id front is misconfigured: MISSING_POLICY 'impute': not a by-id "
                                             "policy; allowed: reject, missing, compute"})
    assert metric(capsys)["ByIdServerErrors"] == 1


def test_a_front_not_told_its_metric_namespace_answers_500_saying_so_and_does_not_crash(store, runtime, capsys):
    settings = {k: v for k, v in environ().items() if k != "METRIC_NAMESPACE"}
    status, _, body = handled(event({"ids": ["c-1"]}), store, runtime, settings)
    assert (status, body) == (500, {"error": "the score-by-id front is misconfigured: 'METRIC_NAMESPACE'"})
    # AND its log says why no metric line was written
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "metrics_skipped": "METRIC_NAMESPACE is not set", "status": 500}


# ---------------------------------------------------------------- compute: an instance lacking a required raw field

# The raw fields a compute instance must carry, as synth derives them from the catalog (Dataset.required_raw_fields):
# here a non-nullable column and the event time a days_since feature counts to.
REQUIRED_RAW = ("tenure", "event_time")
RAW = {"tenure": 3, "MonthlyCharges": 20.25, "event_time": "2026-11-30T00:00:00Z"}


def test_under_compute_an_instance_lacking_a_required_raw_field_is_refused_alone_and_the_others_are_scored(
        store, runtime, capsys):
    """GIVEN policy compute and three unknown ids, c-2 sent without its event time and c-3 with blank tenure WHEN scored
    THEN the endpoint gets only c-1, and c-2 and c-3 answer per id naming the fields they lack, not a 422 for all."""
    expect_lookup(store, ["c-1", "c-2", "c-3"], [])
    expect_scoring(runtime, [{**RAW, "entity_id": "c-1", "feature_lookup": "unknown", "feature_source": "computed",
                              "feature_event_time": None, "inference_id": "c-1"}], [{"score": 0.7}])
    request = {"instances": [{"customer_id": "c-1", **RAW},
                             {"customer_id": "c-2", **{k: v for k, v in RAW.items() if k != "event_time"}},
                             {"customer_id": "c-3", **RAW, "tenure": " "}]}

    status, _, body = handled(event(request), store, runtime, environ(policy="compute", required_raw=REQUIRED_RAW))

    assert status == 200, body
    assert body["predictions"] == [
        {"score": 0.7, "id": "c-1", "feature_source": "computed", "feature_event_time": None, "lookup": "unknown"},
        {"id": "c-2", "feature_source": None, "feature_event_time": None, "lookup": "unknown",
         "error": "c-2: not scored: policy 'compute' scores it from the raw fields sent with it, which lack 'event_time' "
                  "(missing, null or blank); a raw instance must carry tenure, event_time"},
        {"id": "c-3", "feature_source": None, "feature_event_time": None, "lookup": "unknown",
         "error": "c-3: not scored: policy 'compute' scores it from the raw fields sent with it, which lack 'tenure' "
                  "(missing, null or blank); a raw instance must carry tenure, event_time"},
    ]
    assert body["lookup"] == {**NO_COUNTS, "unknown": 3}
    assert metric(capsys)["ByIdUnknown"] == 3


def test_under_compute_a_fresh_id_is_scored_from_the_store_whatever_raw_fields_it_carries(store, runtime):
    expect_lookup(store, ["c-1"], [stored("c-1")])
    expect_scoring(runtime, [from_store("c-1")], [{"score": 0.2}])

    request = {"instances": [{"customer_id": "c-1", "MonthlyCharges": 20.25}]}
    status, _, body = handled(event(request), store, runtime, environ(policy="compute", required_raw=REQUIRED_RAW))

    assert status == 200 and [p["score"] for p in body["predictions"]] == [0.2]


def test_under_compute_when_every_instance_lacks_a_required_raw_field_nothing_is_scored_and_each_is_named(store, runtime):
    expect_lookup(store, ["c-1", "c-2"], [stored("c-2", event_time=OLD_EVENT)])
    request = {"instances": [{"customer_id": "c-1", "tenure": 3}, {"customer_id": "c-2", "tenure": None, "event_time": ""}]}

    status, _, body = handled(event(request), store, runtime, environ(policy="compute", required_raw=REQUIRED_RAW))

    # The endpoint is not called (the Stubber would fail an unqueued call).
    assert (status, body) == (422, {"error": "no instance could be scored: c-1: not scored: policy 'compute' scores it from "
                                             "the raw fields sent with it, which lack 'event_time' (missing, null or "
                                             "blank); a raw instance must carry tenure, event_time; c-2: not scored: "
                                             "policy 'compute' scores it from the raw fields sent with it, which lack "
                                             "'tenure', 'event_time' (missing, null or blank); a raw instance must carry "
                                             "tenure, event_time"})


@pytest.mark.parametrize("spec_file", [False, True])
def test_the_required_raw_fields_travel_in_the_fronts_environment_or_its_spec_file(spec_file, monkeypatch):
    spec = dataclasses.replace(SPEC, policy="compute", required_raw=REQUIRED_RAW)
    if spec_file:
        monkeypatch.setattr(lookup, "_code_file", lambda name: spec.spec_document())
    assert LookupSpec.decode(spec.encode(spec_file=lookup.SPEC_FILE if spec_file else None)) == spec


def test_the_records_a_models_refusal_names_are_read_with_their_words_and_a_whole_request_refusal_is_not():
    """Serving's 400 names each record it refuses ('record 3: ...', joined by '; ', and a count past 10): the front
    refuses those instances alone; a refusal of the request as a whole, or naming no record it sent, is no such list."""
    assert front.refused_records("record 0: field 'a': bad; x; record 2 (line 3): field 'b': worse; record 0: also "
                                 "(+4 more problems)", 3) == {0: "field 'a': bad; x; also", 2: "field 'b': worse"}
    assert front.refused_records("request body: field 'instances' is given more than once", 3) is None
    assert front.refused_records("record 5: field 'a': bad", 3) is None


def test_the_front_reads_serving_s_own_400_cut_to_2048_characters():
    """The words serving writes (records.refusal_message, core.contract's grammar: one definition) are those the front
    reads: a first problem cut short after its record and field, and the count of the rest, name record 1 alone."""
    from pipeline_code.core.contract import MAX_ERROR_MESSAGE
    from pipeline_code.serving.records import refusal_message

    long = "record 1 (line 2): missing required field 'a' (a raw record needs " + "['x'], " * 600 + ")"
    message = refusal_message([long, "record 2 (line 3): field 'b': bad"], 3)
    cut = long[:MAX_ERROR_MESSAGE - len(" ... (+2 more problems)")]
    assert front.refused_records(message, 3) == {1: cut[len("record 1 (line 2): "):] + " ..."}
