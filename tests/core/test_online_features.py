"""Scoring by entity id, the standard-library part: the request, each stored record's verdict, the
policy's resolution, the caller's answer and the spec as environment variables.

The spec is a small churn-like one built here: record identifier ``customer_id``, event time
``event_time``, three features (one per Feature Store type) and records older than a day stale.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from pipeline_code.core import online_features as of
from pipeline_code.core.online_features import (
    Instance,
    LookupSpec,
    StoredRecord,
    answer,
    front_environment,
    parse_request,
    parse_time,
    resolve,
    verdict,
)
from pipeline_code.core.value_rules import ValueRule

UTC = dt.timezone.utc
DAY = 24 * 3600
SPEC = LookupSpec(
    record_identifier="customer_id",
    event_time="event_time",
    features=(("tenure_months", "Integral"), ("monthly_charges", "Fractional"), ("contract_type", "String")),
    max_age_seconds=DAY,
)
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EVENT = "2026-12-01T08:00:00Z"  # four hours before NOW: fresh
OLD_EVENT = "2026-11-29T12:00:00Z"  # two days before NOW: stale for SPEC
FEATURES = {"tenure_months": 12, "monthly_charges": 70.5, "contract_type": "Two year"}
MISSING = "<absent from the record>"  # stored(name=MISSING): the record lacks that feature
REJECT = "the model's by-id policy is 'reject'"
SHAPE = 'a by-id request is {"ids": [...]} or {"instances": [{"customer_id": ..., ...}]}'


def stored(event: str | None = EVENT, expires_at: dt.datetime | None = None, **values: str | None) -> StoredRecord:
    """A record as the store holds it (text values); ``values`` replace the defaults, MISSING drops one."""
    texts = {"tenure_months": "12", "monthly_charges": "70.5", "contract_type": "Two year", "event_time": event, **values}
    return StoredRecord({name: text for name, text in texts.items() if text is not MISSING}, expires_at)


def refusal(call, *args):
    """(status, message) of the RefusedRequest ``call(*args)`` raises."""
    with pytest.raises(of.RefusedRequest) as raised:
        call(*args)
    return raised.value.status, str(raised.value)


def ids(*entity_ids: str) -> list[Instance]:
    return [Instance(entity_id, {}) for entity_id in entity_ids]


# ---------------------------------------------------------------- the request


def test_ids_become_instances_without_raw_fields():
    assert parse_request({"ids": ["c-1", "c-2"]}, SPEC) == [Instance("c-1", {}, None), Instance("c-2", {}, None)]


def test_instances_keep_raw_fields_and_inference_id_but_not_the_record_identifier():
    payload = {"instances": [{"customer_id": "c-1", "tenure_months": 3, "contract_type": "Month-to-month", "inference_id": "req-7"}]}

    (instance,) = parse_request(payload, SPEC)

    assert instance == Instance("c-1", {"tenure_months": 3, "contract_type": "Month-to-month"}, "req-7")


def test_integer_ids_and_inference_ids_become_strings():
    assert parse_request({"ids": [42]}, SPEC) == [Instance("42", {}, None)]
    assert parse_request({"instances": [{"customer_id": 7, "inference_id": 9}]}, SPEC) == [Instance("7", {}, "9")]


@pytest.mark.parametrize("identifier, words", [
    ({"a": [1, 2]}, 'expected text or a whole number, got dict {"a": [1, 2]}'),
    (True, "expected text or a whole number, got bool true"),
    (1000.0, "got the number 1000.0, written with a decimal point or an exponent, which would not be echoed as sent; "
             "send the id as text or as a whole number without a point or exponent"),
], ids=["object", "boolean", "whole number with a point"])
def test_an_inference_id_serving_refuses_is_refused_in_servings_words(identifier, words):
    """GIVEN an instance whose inference_id is no text or whole number WHEN the front reads the request THEN a 400
    names the instance and the field in serving's words (before: the front echoed str() of it - Python's repr, e.g.
    "{'a': [1, 2]}" or "True", an id no caller sent, the very answer serving stopped giving in 32fa025)."""
    payload = {"instances": [{"customer_id": "c-1", "inference_id": "ok"}, {"customer_id": "c-2", "inference_id": identifier}]}
    assert refusal(parse_request, payload, SPEC) == (400, f"instance 1: field 'inference_id': {words}")


def test_an_id_of_exactly_the_maximum_length_is_accepted():
    entity_id = "x" * of.MAX_ID_LENGTH
    assert parse_request({"ids": [entity_id]}, SPEC) == [Instance(entity_id, {}, None)]


def test_as_many_ids_as_the_spec_allows_are_accepted():
    spec = dataclasses.replace(SPEC, max_ids=2)
    assert [i.entity_id for i in parse_request({"ids": ["c-1", "c-2"]}, spec)] == ["c-1", "c-2"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (["c-1"], SHAPE),
        ("c-1", SHAPE),
        ({"customer_id": "c-1"}, SHAPE),
        ({"instances": {"customer_id": "c-1"}}, SHAPE),
        ({"ids": "c-1"}, "'ids' must be a list of entity ids (customer_id), got str"),
        ({"ids": {"c-1": 1}}, "'ids' must be a list of entity ids (customer_id), got dict"),
        ({"ids": []}, "the request holds no entity id"),
        ({"instances": []}, "the request holds no entity id"),
        ({"instances": ["c-1"]}, "instance 0: expected an object with 'customer_id'"),
        ({"ids": [True]}, "instance 0: 'customer_id' must be a string id, got True"),
        ({"ids": ["c-1", None]}, "instance 1: 'customer_id' must be a string id, got None"),
        ({"ids": [1.5]}, "instance 0: 'customer_id' must be a string id, got 1.5"),
        ({"ids": [{"id": "c-1"}]}, "instance 0: 'customer_id' must be a string id, got {'id': 'c-1'}"),
        ({"instances": [{"tenure_months": 3}]}, "instance 0: 'customer_id' must be a string id, got None"),
        ({"ids": [""]}, "instance 0: 'customer_id' must be 1-1024 printable characters, got ''"),
        ({"ids": ["c\x01d"]}, "instance 0: 'customer_id' must be 1-1024 printable characters, got 'c\\x01d'"),
        ({"ids": ["c\td"]}, "instance 0: 'customer_id' must be 1-1024 printable characters, got 'c\\td'"),
        ({"ids": ["c\x7f"]}, "instance 0: 'customer_id' must be 1-1024 printable characters, got 'c\\x7f'"),
        # The message shows the first 60 characters of a long id.
        ({"ids": ["x" * 1025]}, f"instance 0: 'customer_id' must be 1-1024 printable characters, got '{'x' * 60}'"),
    ],
    ids=["list", "string", "neither-key", "instances-not-a-list", "ids-a-string", "ids-an-object", "no-ids",
         "no-instances", "instance-not-an-object", "bool-id", "null-id", "float-id", "object-id", "instance-without-id",
         "empty-id", "control-character", "tab", "delete", "too-long"],
)
def test_malformed_requests_are_refused_with_400_naming_the_problem(payload, message):
    assert refusal(parse_request, payload, SPEC) == (400, message)


def test_an_id_ending_in_a_newline_is_refused():
    # A trailing newline is a control character too (a regex "$" would let it through).
    assert refusal(parse_request, {"ids": ["c-1\n"]}, SPEC) == (
        400, "instance 0: 'customer_id' must be 1-1024 printable characters, got 'c-1\\n'"
    )


def test_more_ids_than_the_batch_limit_are_refused_with_413():
    payload = {"ids": [f"c-{n}" for n in range(of.MAX_IDS + 1)]}
    assert refusal(parse_request, payload, SPEC) == (413, "101 entity ids in one request; at most 100: split the request")


def test_the_spec_max_ids_is_the_limit():
    spec = dataclasses.replace(SPEC, max_ids=2)
    assert refusal(parse_request, {"instances": [{"customer_id": f"c-{n}"} for n in range(3)]}, spec) == (
        413, "3 entity ids in one request; at most 2: split the request"
    )


# ---------------------------------------------------------------- event times


@pytest.mark.parametrize(
    "text",
    ["2026-12-01T08:00:00Z", "2026-12-01T09:30:00+01:30", "2026-12-01T03:00:00-05:00", "2026-12-01T08:00:00"],
    ids=["Z", "positive-offset", "negative-offset", "naive-is-utc"],
)
def test_iso_event_times_are_the_same_utc_instant(text):
    parsed = parse_time(text)
    assert parsed == dt.datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert parsed.utcoffset() is not None


def test_a_naive_time_is_taken_as_utc():
    assert parse_time("2026-12-01T08:00:00").tzinfo == UTC


def test_fractional_seconds_are_kept():
    assert parse_time("2026-12-01T08:00:00.250Z") == dt.datetime(2026, 12, 1, 8, 0, 0, 250000, tzinfo=UTC)


def test_epoch_seconds_are_a_utc_time():
    moment = dt.datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert parse_time(str(int(moment.timestamp()))) == moment
    assert parse_time(f"{moment.timestamp() + 0.5}") == moment + dt.timedelta(seconds=0.5)


@pytest.mark.parametrize("text", [None, "", "yesterday", "2026-13-01T00:00:00Z", "nan"])
def test_an_unreadable_time_is_none(text):
    assert parse_time(text) is None


def test_an_out_of_range_epoch_is_none_not_an_exception():
    # float("inf") and float("1e20") parse, but no datetime represents them: no time, not an exception.
    assert parse_time("inf") is None


# ---------------------------------------------------------------- a stored record's verdict


def test_no_record_is_unknown():
    assert verdict(None, SPEC, NOW) == ("unknown", {}, None)


def test_a_fresh_record_is_used_with_typed_values():
    assert verdict(stored(tenure_months="12", monthly_charges="3.5"), SPEC, NOW) == (
        "fresh", {"tenure_months": 12, "monthly_charges": 3.5, "contract_type": "Two year"}, EVENT
    )


def test_integral_values_are_ints_and_fractional_values_floats():
    _, features, _ = verdict(stored(tenure_months="12", monthly_charges="70"), SPEC, NOW)
    assert type(features["tenure_months"]) is int
    assert type(features["monthly_charges"]) is float
    assert features["monthly_charges"] == 70.0


@pytest.mark.parametrize("text", ["12.0", "12.", " 12.000 ", "-0.0"])
def test_an_integral_value_written_as_a_float_with_no_fraction_is_that_integer(text):
    """Serving reads such text as the integer (catalog.INTEGER_PATTERN, as the ETL does): so does the front."""
    _, features, _ = verdict(stored(tenure_months=text), SPEC, NOW)
    assert features["tenure_months"] == int(float(text)) and type(features["tenure_months"]) is int


@pytest.mark.parametrize("values", [{"tenure_months": ""}, {"tenure_months": "  "}, {"monthly_charges": ""}],
                         ids=["integral-empty", "integral-spaces", "fractional-empty"])
def test_blank_numeric_text_is_a_missing_value_as_serving_reads_it(values):
    (name, _), = values.items()
    found, features, _ = verdict(stored(**values), SPEC, NOW)
    assert (found, features[name]) == ("fresh", None)


@pytest.mark.parametrize(
    ("values", "shown"),
    [({"monthly_charges": "1e39"}, "'1e39'"), ({"monthly_charges": "-3.5e38"}, "'-3.5e38'"),
     ({"tenure_months": "9" * 39}, f"'{'9' * 39}... (41 characters)"), ({"monthly_charges": "1e400"}, "'1e400'")],
    ids=["fractional", "fractional-negative", "integral", "overflow"],
)
def test_a_number_beyond_float32_is_invalid_as_serving_refuses_it(values, shown):
    """The model computes in float32, so serving refuses such a number (for every id of the request, once sent)."""
    (name, _), = values.items()
    assert of.judge(stored(**values), SPEC, NOW) == ("invalid", {}, EVENT, f"feature {name!r}: stored {shown} is not "
                                                     "within the float32 range the model computes in (±3.403e+38)")


def test_float32_max_is_numpys():
    import numpy as np
    assert of.FLOAT32_MAX == float(np.finfo(np.float32).max)
    assert verdict(stored(monthly_charges=repr(of.FLOAT32_MAX)), SPEC, NOW)[0] == "fresh"


def test_strings_are_kept_as_stored():
    _, features, _ = verdict(stored(contract_type="  One year "), SPEC, NOW)
    assert features["contract_type"] == "  One year "


def test_a_value_the_store_holds_as_none_is_a_missing_value_not_invalid():
    assert verdict(stored(monthly_charges=None), SPEC, NOW) == (
        "fresh", {"tenure_months": 12, "monthly_charges": None, "contract_type": "Two year"}, EVENT
    )


def test_a_feature_absent_from_the_record_is_a_missing_value():
    """Feature Store keeps no value for a null feature: the record simply lacks it."""
    assert verdict(stored(monthly_charges=MISSING), SPEC, NOW) == (
        "fresh", {"tenure_months": 12, "monthly_charges": None, "contract_type": "Two year"}, EVENT
    )


REQUIRED = dataclasses.replace(SPEC, required=("tenure_months", "contract_type"))


@pytest.mark.parametrize(
    "values",
    [
        {"tenure_months": MISSING},
        {"tenure_months": None},
        {"contract_type": MISSING},
        {"contract_type": ""},
        {"contract_type": "   "},
    ],
    ids=["integral-absent", "integral-none", "string-absent", "string-empty", "string-spaces"],
)
def test_a_record_lacking_a_required_feature_is_invalid(values):
    """GIVEN features serving refuses missing (a nullable: false column unchanged) WHEN the stored record lacks one (or
    holds blank text, which serving reads as missing) THEN it is invalid: a miss for the policy, never sent as is."""
    assert verdict(stored(**values), REQUIRED, NOW) == ("invalid", {}, EVENT)


def test_a_required_text_feature_with_spaces_around_a_value_is_used_as_stored():
    """Serving trims it as the ETL does: only a value that is all spaces is missing."""
    assert verdict(stored(contract_type=" One year "), REQUIRED, NOW)[:2] == (
        "fresh", {"tenure_months": 12, "monthly_charges": 70.5, "contract_type": " One year "})


def test_a_feature_not_required_may_still_be_absent_beside_required_ones():
    assert verdict(stored(monthly_charges=MISSING), REQUIRED, NOW) == (
        "fresh", {"tenure_months": 12, "monthly_charges": None, "contract_type": "Two year"}, EVENT
    )


def test_expiry_is_judged_before_a_missing_required_feature():
    assert verdict(stored(expires_at=NOW, tenure_months=MISSING), REQUIRED, NOW) == ("expired", {}, EVENT)


def test_a_record_whose_ttl_expired_at_now_is_expired():
    assert verdict(stored(expires_at=NOW), SPEC, NOW) == ("expired", {}, EVENT)


def test_a_record_expiring_after_now_is_not_expired():
    assert verdict(stored(expires_at=NOW + dt.timedelta(seconds=1)), SPEC, NOW)[0] == "fresh"


def test_expiry_is_judged_before_the_values():
    """GIVEN an expired record that also holds an unreadable value THEN it counts as expired (the TTL decides first)."""
    assert verdict(stored(expires_at=NOW - dt.timedelta(days=1), tenure_months="abc"), SPEC, NOW)[0] == "expired"


def test_an_event_older_than_the_maximum_age_is_stale():
    assert verdict(stored(event=OLD_EVENT), SPEC, NOW) == ("stale", {}, OLD_EVENT)


def test_an_event_exactly_the_maximum_age_old_is_still_fresh():
    exactly = (NOW - dt.timedelta(seconds=DAY)).isoformat()
    assert verdict(stored(event=exactly), SPEC, NOW)[0] == "fresh"
    one_second_older = (NOW - dt.timedelta(seconds=DAY + 1)).isoformat()
    assert verdict(stored(event=one_second_older), SPEC, NOW)[0] == "stale"


def test_a_record_dated_after_now_is_invalid_naming_its_event_time_and_the_cleanup():
    # A future-dated record (a typo'd year, a local time read as UTC) stays online over every later put with an earlier
    # event time, and would pass the maximum age and never expire: its values would be served unchanged, silently.
    future = "2062-12-01T08:00:00Z"
    found, features, event_text, reason = of.judge(stored(event=future), SPEC, NOW)
    assert (found, features, event_text) == ("invalid", {}, future)
    assert reason == (
        "event time 'event_time': stored '2062-12-01T08:00:00Z' is after the lookup time 2026-12-01T12:00:00Z (more "
        "than 300 s ahead): the online store keeps a future-dated record over every put with an earlier event time, so "
        "its values would be served unchanged; delete it (DeleteRecord, HardDelete, with an event time after its own) "
        "and correct its source (docs/invocation-contract.md, Future-dated records)"
    )


def test_a_future_dated_record_is_invalid_without_a_maximum_age_too():
    spec = dataclasses.replace(SPEC, max_age_seconds=None)
    assert verdict(stored(event="2027-01-01T00:00:00Z"), spec, NOW)[0] == "invalid"


def test_an_event_time_ahead_by_no_more_than_the_clock_skew_allowed_is_fresh():
    at_limit = (NOW + dt.timedelta(seconds=of.MAX_EVENT_TIME_AHEAD_SECONDS)).isoformat()
    assert verdict(stored(event=at_limit), SPEC, NOW)[0] == "fresh"
    past_limit = (NOW + dt.timedelta(seconds=of.MAX_EVENT_TIME_AHEAD_SECONDS + 1)).isoformat()
    assert verdict(stored(event=past_limit), SPEC, NOW)[0] == "invalid"


def test_reject_refuses_a_future_dated_record_with_422_saying_why():
    status, message = refusal(resolve, ids("c-1"), store(**{"c-1": stored(event="2062-12-01T08:00:00Z")}), SPEC, NOW)
    assert status == 422
    assert message.startswith(f"no fresh online-store record (invalid: c-1); {REJECT}; c-1: event time 'event_time': "
                              "stored '2062-12-01T08:00:00Z' is after the lookup time")


def test_without_a_maximum_age_an_old_record_is_fresh():
    spec = dataclasses.replace(SPEC, max_age_seconds=None)
    assert verdict(stored(event="2020-01-01T00:00:00Z"), spec, NOW)[0] == "fresh"


@pytest.mark.parametrize(
    ("values", "event"),
    [
        ({"tenure_months": "abc"}, EVENT),
        ({"tenure_months": "12.5"}, EVENT),
        ({"tenure_months": "12.05"}, EVENT),
        ({"tenure_months": "1e1"}, EVENT),
        ({"tenure_months": ".0"}, EVENT),
        ({"monthly_charges": "nan"}, EVENT),
        ({"monthly_charges": "inf"}, EVENT),
        ({"monthly_charges": "lots"}, EVENT),
        ({}, "last tuesday"),
        ({}, MISSING),
    ],
    ids=["integral-not-a-number", "integral-a-fraction", "integral-a-fraction-after-a-zero", "integral-an-exponent",
         "integral-no-digit", "fractional-nan", "fractional-infinite",
         "fractional-not-a-number", "event-time-unreadable", "event-time-absent"],
)
def test_a_record_not_matching_the_catalog_is_invalid(values, event):
    record = stored(event=event, **values)
    assert verdict(record, SPEC, NOW) == ("invalid", {}, None if event is MISSING else event)


# ---------------------------------------------------------------- resolving by the policy


def store(**records: StoredRecord) -> dict[str, StoredRecord]:
    return {name.replace("_", "-"): record for name, record in records.items()}


def test_a_fresh_record_is_scored_from_the_store_with_its_event_time():
    resolved = resolve(ids("c-1"), store(c_1=stored()), SPEC, NOW)
    assert resolved.records == [{**FEATURES, "entity_id": "c-1", "feature_lookup": "fresh", "feature_source": "online_store", "feature_event_time": EVENT, "inference_id": "c-1"}]
    assert resolved.verdicts == ["fresh"]
    assert resolved.event_times == [EVENT]


def test_the_inference_id_defaults_to_the_entity_id_and_a_given_one_is_kept():
    instances = [Instance("c-1", {}), Instance("c-2", {}, "req-2")]
    resolved = resolve(instances, store(c_1=stored(), c_2=stored()), SPEC, NOW)
    assert [r["inference_id"] for r in resolved.records] == ["c-1", "req-2"]


def test_reject_refuses_unknown_ids_with_404_naming_them():
    assert refusal(resolve, ids("c-1", "c-2", "c-3"), store(c_1=stored()), SPEC, NOW) == (
        404, f"no fresh online-store record (unknown: c-2, c-3); {REJECT}"
    )


@pytest.mark.parametrize(
    ("record", "kind"),
    [(stored(event=OLD_EVENT), "stale"), (stored(expires_at=NOW), "expired"), (stored(tenure_months="abc"), "invalid")],
    ids=["stale", "expired", "invalid"],
)
def test_reject_refuses_other_misses_with_422(record, kind):
    why = "; c-2: feature 'tenure_months': stored 'abc' is not of its catalog type Integral" if kind == "invalid" else ""
    assert refusal(resolve, ids("c-1", "c-2"), store(c_1=stored(), c_2=record), SPEC, NOW) == (
        422, f"no fresh online-store record ({kind}: c-2); {REJECT}{why}"
    )


def test_reject_with_unknown_and_stale_ids_is_422_naming_each_kind_in_order_of_appearance():
    stored_records = store(c_2=stored(event=OLD_EVENT), c_4=stored(event=OLD_EVENT))
    assert refusal(resolve, ids("c-1", "c-2", "c-3", "c-4"), stored_records, SPEC, NOW) == (
        422, f"no fresh online-store record (unknown: c-1, c-3; stale: c-2, c-4); {REJECT}"
    )


def test_reject_names_at_most_ten_ids_of_a_kind():
    entity_ids = [f"c-{n}" for n in range(11)]
    assert refusal(resolve, ids(*entity_ids), {}, SPEC, NOW) == (
        404, f"no fresh online-store record (unknown: {', '.join(entity_ids[:10])} …); {REJECT}"
    )


def test_missing_scores_a_miss_with_every_feature_missing_and_no_event_time():
    spec = dataclasses.replace(SPEC, policy="missing")
    resolved = resolve(ids("c-1", "c-2"), store(c_1=stored()), spec, NOW)
    assert resolved.records[1] == {
        "tenure_months": None, "monthly_charges": None, "contract_type": None,
        "entity_id": "c-2", "feature_lookup": "unknown", "feature_source": "missing", "feature_event_time": None, "inference_id": "c-2",
    }
    assert resolved.records[0]["feature_source"] == "online_store"
    assert resolved.verdicts == ["fresh", "unknown"]


def test_missing_does_not_use_a_stale_records_values():
    spec = dataclasses.replace(SPEC, policy="missing")
    resolved = resolve(ids("c-1"), store(c_1=stored(event=OLD_EVENT)), spec, NOW)
    assert resolved.records == [{
        "tenure_months": None, "monthly_charges": None, "contract_type": None,
        "entity_id": "c-1", "feature_lookup": "stale", "feature_source": "missing", "feature_event_time": None, "inference_id": "c-1",
    }]
    assert resolved.verdicts == ["stale"]


HUNDRED = [f"c-{i}" for i in range(100)]


def _hundred_one_lacking_a_required_feature() -> dict[str, StoredRecord]:
    """100 stored records, c-99's written before its required ``tenure_months`` was (Feature Store: no value)."""
    return {**{entity_id: stored() for entity_id in HUNDRED[:99]}, "c-99": stored(tenure_months=MISSING)}


def test_missing_scores_a_record_lacking_a_required_feature_as_a_miss_and_the_rest_from_the_store():
    spec = dataclasses.replace(REQUIRED, policy="missing")
    resolved = resolve(ids(*HUNDRED), _hundred_one_lacking_a_required_feature(), spec, NOW)
    assert resolved.verdicts == ["fresh"] * 99 + ["invalid"]
    assert [r["feature_source"] for r in resolved.records] == ["online_store"] * 99 + ["missing"]
    assert resolved.records[99] == {
        "tenure_months": None, "monthly_charges": None, "contract_type": None,
        "entity_id": "c-99", "feature_lookup": "invalid", "feature_source": "missing", "feature_event_time": None,
        "inference_id": "c-99",
    }
    assert resolved.counts == {"fresh": 99, "unknown": 0, "expired": 0, "stale": 0, "invalid": 1}


def test_compute_scores_a_record_lacking_a_required_feature_from_its_raw_fields():
    spec = dataclasses.replace(REQUIRED, policy="compute")
    raw = {"tenure": 3, "monthly_charges": 20.25, "contract": "Month-to-month"}
    instances = [*ids(*HUNDRED[:99]), Instance("c-99", raw)]
    resolved = resolve(instances, _hundred_one_lacking_a_required_feature(), spec, NOW)
    assert [r["feature_source"] for r in resolved.records] == ["online_store"] * 99 + ["computed"]
    assert resolved.records[99] == {**raw, "entity_id": "c-99", "feature_lookup": "invalid", "feature_source": "computed",
                                    "feature_event_time": None, "inference_id": "c-99"}


@pytest.mark.parametrize(("policy", "fix"), [
    ("reject", REJECT), ("compute", "policy 'compute' needs the instance's raw fields for these ids")])
def test_reject_and_compute_without_raw_fields_refuse_a_record_lacking_a_required_feature_naming_it(policy, fix):
    spec = dataclasses.replace(REQUIRED, policy=policy)
    status, message = refusal(resolve, ids(*HUNDRED), _hundred_one_lacking_a_required_feature(), spec, NOW)
    assert (status, message) == (422, f"no fresh online-store record (invalid: c-99); {fix}; c-99: feature "
                                      "'tenure_months': absent from the stored record, but serving refuses it missing "
                                      "(a required feature)")


def test_compute_scores_a_miss_from_the_instances_raw_fields():
    spec = dataclasses.replace(SPEC, policy="compute")
    raw = {"tenure": 3, "monthly_charges": 20.25, "contract": "Month-to-month"}
    resolved = resolve([Instance("c-1", raw)], {}, spec, NOW)
    assert resolved.records == [{**raw, "entity_id": "c-1", "feature_lookup": "unknown", "feature_source": "computed", "feature_event_time": None, "inference_id": "c-1"}]
    assert resolved.verdicts == ["unknown"]


def test_compute_prefers_a_fresh_record_to_the_raw_fields():
    spec = dataclasses.replace(SPEC, policy="compute")
    resolved = resolve([Instance("c-1", {"tenure": 3})], store(c_1=stored()), spec, NOW)
    assert resolved.records == [{**FEATURES, "entity_id": "c-1", "feature_lookup": "fresh", "feature_source": "online_store", "feature_event_time": EVENT, "inference_id": "c-1"}]


def test_compute_refuses_a_miss_without_raw_fields_with_422():
    spec = dataclasses.replace(SPEC, policy="compute")
    instances = [Instance("c-1", {"tenure": 3}), Instance("c-2", {})]
    stored_records = store(c_1=stored(event=OLD_EVENT), c_2=stored(event=OLD_EVENT))
    assert refusal(resolve, instances, stored_records, spec, NOW) == (
        422, "no fresh online-store record (stale: c-2); policy 'compute' needs the instance's raw fields for these ids"
    )


def test_counts_hold_every_verdict():
    spec = dataclasses.replace(SPEC, policy="missing")
    stored_records = store(
        c_1=stored(), c_2=stored(), c_4=stored(expires_at=NOW), c_5=stored(event=OLD_EVENT), c_6=stored(tenure_months="x")
    )
    resolved = resolve(ids("c-1", "c-2", "c-3", "c-4", "c-5", "c-6"), stored_records, spec, NOW)
    assert resolved.counts == {"fresh": 2, "unknown": 1, "expired": 1, "stale": 1, "invalid": 1}
    assert resolved.verdicts == ["fresh", "fresh", "unknown", "expired", "stale", "invalid"]
    # Every id with a record keeps the record's event time; an unknown id has none.
    assert resolved.event_times == [EVENT, EVENT, None, EVENT, OLD_EVENT, EVENT]


def test_counts_are_zero_for_verdicts_not_seen():
    assert resolve(ids("c-1"), store(c_1=stored()), SPEC, NOW).counts == {
        "fresh": 1, "unknown": 0, "expired": 0, "stale": 0, "invalid": 0
    }


# ---------------------------------------------------------------- the caller's answer


def test_answer_adds_the_id_source_event_time_and_verdict_to_each_prediction():
    spec = dataclasses.replace(SPEC, policy="missing")
    instances = [Instance("c-1", {}, "req-1"), Instance("c-2", {})]
    resolved = resolve(instances, store(c_1=stored()), spec, NOW)
    predictions = [{"score": 0.8, "label": 1, "inference_id": "req-1"}, {"score": 0.3, "label": 0, "inference_id": "c-2"}]

    assert answer(instances, resolved, predictions) == [
        {"score": 0.8, "label": 1, "inference_id": "req-1", "id": "c-1", "feature_source": "online_store",
         "feature_event_time": EVENT, "lookup": "fresh"},
        {"score": 0.3, "label": 0, "inference_id": "c-2", "id": "c-2", "feature_source": "missing",
         "feature_event_time": None, "lookup": "unknown"},
    ]


def test_answer_tells_the_caller_a_stale_records_event_time_though_its_values_were_not_used():
    """The endpoint's record has no event time (its features are missing), but the caller learns how old
    the stored record was (resolve keeps the event time of every id the store knows)."""
    spec = dataclasses.replace(SPEC, policy="missing")
    instances = ids("c-1")
    resolved = resolve(instances, store(c_1=stored(event=OLD_EVENT)), spec, NOW)

    (answered,) = answer(instances, resolved, [{"score": 0.5}])

    assert resolved.records[0]["feature_event_time"] is None
    assert answered == {"score": 0.5, "id": "c-1", "feature_source": "missing", "feature_event_time": OLD_EVENT, "lookup": "stale"}


def test_answer_fields_override_same_named_prediction_fields():
    instances = ids("c-1")
    resolved = resolve(instances, store(c_1=stored()), SPEC, NOW)
    (answered,) = answer(instances, resolved, [{"score": 0.5, "id": "from-the-model", "lookup": "x"}])
    assert (answered["id"], answered["lookup"]) == ("c-1", "fresh")


# ---------------------------------------------------------------- the spec as configuration


def test_spec_lookup_names_are_the_keys_then_the_features_in_order():
    assert SPEC.lookup_names == ["customer_id", "event_time", "tenure_months", "monthly_charges", "contract_type"]


def test_spec_encodes_as_environment_variables():
    assert SPEC.encode() == {
        "RECORD_IDENTIFIER": "customer_id",
        "EVENT_TIME": "event_time",
        "FEATURES": "tenure_months:Integral,monthly_charges:Fractional,contract_type:String",
        "MISSING_POLICY": "reject",
        "MAX_AGE_SECONDS": "86400",
        "MAX_IDS": "100",
        "REQUIRED_FEATURES": "",
        "FEATURE_RULES": "{}",
    }


def test_spec_encodes_its_required_features_in_the_models_order():
    spec = dataclasses.replace(SPEC, required=("tenure_months", "contract_type"))
    assert spec.encode()["REQUIRED_FEATURES"] == "tenure_months,contract_type"


@pytest.mark.parametrize(
    "spec",
    [
        SPEC,
        dataclasses.replace(SPEC, max_age_seconds=None),
        dataclasses.replace(SPEC, max_age_seconds=0),
        dataclasses.replace(SPEC, policy="compute", max_ids=10),
        dataclasses.replace(SPEC, policy="missing", features=(("amount", "Fractional"),)),
        dataclasses.replace(SPEC, required=("tenure_months",)),
        dataclasses.replace(SPEC, required=("tenure_months", "monthly_charges", "contract_type")),
        dataclasses.replace(SPEC, rules=(("tenure_months", ValueRule(minimum=0, maximum=60.5)),
                                         ("contract_type", ValueRule(allowed=("one year", "two \"year\"", "é"))))),
        dataclasses.replace(SPEC, rules=(("contract_type", ValueRule(allowed=("short", "Long"), buckets=True)),)),
        dataclasses.replace(SPEC, rules=(("tenure_months", ValueRule(boolean=True)),)),
    ],
    ids=["max-age", "no-max-age", "max-age-zero", "compute-10-ids", "one-feature", "one-required", "all-required",
         "bounds-and-allowed", "buckets", "boolean"],
)
def test_spec_decodes_what_it_encodes(spec):
    assert LookupSpec.decode(spec.encode()) == spec


def test_spec_decode_defaults_the_optional_variables():
    decoded = LookupSpec.decode({"RECORD_IDENTIFIER": "customer_id", "EVENT_TIME": "event_time", "FEATURES": "tenure_months:Integral"})
    assert decoded == LookupSpec("customer_id", "event_time", (("tenure_months", "Integral"),), "reject", None, of.MAX_IDS)
    assert decoded.required == ()  # a front deployed before REQUIRED_FEATURES existed: every feature may be missing
    assert decoded.rules == ()  # nor FEATURE_RULES: every stored value is used, as then


def test_a_required_feature_that_is_not_a_feature_is_refused_naming_it():
    """GIVEN a hand-edited REQUIRED_FEATURES naming what FEATURES lacks THEN decoding fails (the front answers 500
    saying so) rather than never requiring it."""
    environ = {**SPEC.encode(), "REQUIRED_FEATURES": "tenure_months,tenure"}
    with pytest.raises(ValueError) as refused:
        LookupSpec.decode(environ)
    assert str(refused.value) == ("REQUIRED_FEATURES 'tenure': not one of the model's FEATURES "
                                  "(tenure_months, monthly_charges, contract_type)")


def test_front_environment_is_the_environment_model_endpoint_group_and_spec():
    environ = front_environment(environment="dev", model="churn", endpoint="mlops-loop-dev-churn",
                                feature_group="mlops-loop-dev-customers", spec=SPEC, namespace="mlops-loop/serving")
    assert environ == {"ENVIRONMENT_NAME": "dev", "MODEL_NAME": "churn", "ENDPOINT_NAME": "mlops-loop-dev-churn",
                       "FEATURE_GROUP": "mlops-loop-dev-customers", "METRIC_NAMESPACE": "mlops-loop/serving",
                       **SPEC.encode()}
    assert LookupSpec.decode(environ) == SPEC


@pytest.mark.parametrize(("kind", "name"), [("fresh", "ByIdFresh"), ("unknown", "ByIdUnknown"), ("expired", "ByIdExpired"),
                                            ("stale", "ByIdStale"), ("invalid", "ByIdInvalid")])
def test_each_verdict_has_its_metric(kind, name):
    assert of.verdict_metric(kind) == name


# ---------------------------------------------------------------- a stored value breaking a rule tightened since


RULED = dataclasses.replace(SPEC, rules=(("tenure_months", ValueRule(minimum=0, maximum=60)),
                                         ("monthly_charges", ValueRule(minimum=0.5)),
                                         ("contract_type", ValueRule(allowed=("one year", "two year")))))


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"tenure_months": "-1"}, "feature 'tenure_months': stored -1 is below the minimum 0"),
        ({"tenure_months": "61"}, "feature 'tenure_months': stored 61 is above the maximum 60"),
        ({"monthly_charges": "0.25"}, "feature 'monthly_charges': stored 0.25 is below the minimum 0.5"),
        ({"contract_type": "Monthly"},
         "feature 'contract_type': stored 'Monthly' is not an allowed value; allowed: one year, two year"),
        ({"monthly_charges": "0.25", "contract_type": "Monthly"},
         "feature 'monthly_charges': stored 0.25 is below the minimum 0.5"),
        ({"tenure_months": "61", "monthly_charges": "0", "contract_type": "Monthly"},
         "feature 'tenure_months': stored 61 is above the maximum 60"),
    ],
    ids=["min", "max", "fractional-min", "allowed", "min-and-allowed", "all-three"],
)
def test_a_stored_value_breaking_a_rule_is_invalid_naming_the_feature_the_value_and_the_rule(values, reason):
    assert of.judge(stored(**values), RULED, NOW) == ("invalid", {}, EVENT, reason)
    assert verdict(stored(**values), RULED, NOW) == ("invalid", {}, EVENT)


@pytest.mark.parametrize(
    "values",
    [{"tenure_months": "0"}, {"tenure_months": "60"}, {"monthly_charges": "0.5"}, {"contract_type": "  TWO year "},
     {"contract_type": " "}, {"contract_type": MISSING}, {"tenure_months": MISSING}],
    ids=["at-min", "at-max", "fractional-at-min", "other-case-and-spacing", "blank-is-missing", "absent-text",
         "absent-number"],
)
def test_a_stored_value_keeping_the_rules_or_missing_is_used(values):
    found, _, _, reason = of.judge(stored(**values), RULED, NOW)
    assert (found, reason) == ("fresh", None)


def test_a_record_breaking_a_rule_is_judged_only_when_not_expired():
    assert of.judge(stored(expires_at=NOW, tenure_months="61"), RULED, NOW) == ("expired", {}, EVENT, None)


def test_missing_scores_a_record_breaking_a_rule_as_a_miss_with_its_reason_and_the_rest_from_the_store():
    spec = dataclasses.replace(RULED, policy="missing")
    records = {**{entity_id: stored() for entity_id in HUNDRED[:99]}, "c-99": stored(contract_type="Monthly")}
    resolved = resolve(ids(*HUNDRED), records, spec, NOW)
    assert resolved.verdicts == ["fresh"] * 99 + ["invalid"]
    assert resolved.reasons == [None] * 99 + [
        "feature 'contract_type': stored 'Monthly' is not an allowed value; allowed: one year, two year"]
    answered = answer(ids(*HUNDRED), resolved, [{"score": 0.5}] * 100)
    assert "lookup_reason" not in answered[0]
    assert answered[99] == {"score": 0.5, "id": "c-99", "feature_source": "missing", "feature_event_time": EVENT,
                            "lookup": "invalid", "lookup_reason": "feature 'contract_type': stored 'Monthly' is not an "
                            "allowed value; allowed: one year, two year"}


def test_a_refusal_names_at_most_three_reasons():
    records = {f"c-{i}": stored(tenure_months=str(61 + i)) for i in range(5)}
    status, message = refusal(resolve, ids(*records), records, RULED, NOW)
    assert (status, message) == (422, "no fresh online-store record (invalid: c-0, c-1, c-2, c-3, c-4); "
                                      f"{REJECT}; c-0: feature 'tenure_months': stored 61 is above the maximum 60; "
                                      "c-1: feature 'tenure_months': stored 62 is above the maximum 60; "
                                      "c-2: feature 'tenure_months': stored 63 is above the maximum 60")


def test_spec_encodes_its_rules_as_compact_json_in_the_models_order():
    assert RULED.encode()["FEATURE_RULES"] == ('{"tenure_months":{"min":0,"max":60},"monthly_charges":{"min":0.5},'
                                               '"contract_type":{"allowed":["one year","two year"]}}')


def test_spec_names_the_rules_file_instead_when_told_one():
    environ = RULED.encode(rules_file="feature_rules.json")
    assert environ["FEATURE_RULES_FILE"] == "feature_rules.json" and "FEATURE_RULES" not in environ


def test_spec_names_the_spec_file_instead_of_every_list_when_told_one_and_reads_it_back(tmp_path, monkeypatch):
    # GIVEN a spec told its file WHEN encoded THEN the environment keeps the scalars and names the file
    environ = RULED.encode(spec_file="feature_spec.json")
    assert environ["FEATURE_SPEC_FILE"] == "feature_spec.json"
    assert not {"FEATURES", "REQUIRED_FEATURES", "FEATURE_RULES", "FEATURE_RULES_FILE"} & set(environ)
    # AND the file's content (spec_document) decodes back to the same spec
    (tmp_path / "feature_spec.json").write_text(RULED.spec_document(), encoding="utf-8")
    monkeypatch.setattr(of, "CODE_ROOT", tmp_path)
    of._code_file.cache_clear()
    try:
        assert LookupSpec.decode(environ) == RULED
        (tmp_path / "bad.json").write_text("[1]", encoding="utf-8")
        with pytest.raises(ValueError) as refused:
            LookupSpec.decode({**environ, "FEATURE_SPEC_FILE": "bad.json"})
        assert str(refused.value) == "FEATURE_SPEC_FILE 'bad.json': expected an object with 'features', 'required' and 'rules', got [1]"
    finally:
        of._code_file.cache_clear()


def test_a_rule_for_what_is_not_a_feature_is_refused_naming_it():
    with pytest.raises(ValueError) as refused:
        LookupSpec.decode({**SPEC.encode(), "FEATURE_RULES": '{"tenure": {"max": 1}}'})
    assert str(refused.value) == ("FEATURE_RULES 'tenure': not one of the model's FEATURES "
                                  "(tenure_months, monthly_charges, contract_type)")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"tenure_months": {"max": "60"}}', "FEATURE_RULES: max must be a number, got '60'"),
        ('{"tenure_months": {"max": true}}', "FEATURE_RULES: max must be a number, got True"),
        ('{"contract_type": {"allowed": "one year"}}', "FEATURE_RULES: allowed must be a list of strings, got 'one year'"),
        ('{"contract_type": {"allowed": ["a"], "buckets": ["a"]}}',
         "FEATURE_RULES: unknown rule kinds ['allowed', 'buckets']; known: min, max, allowed, buckets, boolean"),
        ('{"contract_type": []}', "FEATURE_RULES: a rule is an object of min, max, allowed, buckets, boolean, got []"),
        ('{"tenure_months": {"boolean": false}}', "FEATURE_RULES: boolean must be true, got False"),
        ('{"tenure_months": {"boolean": 1}}', "FEATURE_RULES: boolean must be true, got 1"),
        ("{not json", "FEATURE_RULES: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ],
    ids=["text-bound", "boolean-bound", "allowed-not-a-list", "allowed-and-buckets", "rule-not-an-object",
         "boolean-false", "boolean-one", "not-json"],
)
def test_hand_edited_rules_are_refused_naming_the_variable_and_the_problem(body, message):
    with pytest.raises(ValueError) as refused:
        LookupSpec.decode({**SPEC.encode(), "FEATURE_RULES": body})
    assert str(refused.value) == message


# ---------------------------------------------------------------- a boolean feature, typed as serving types it


# tenure_months stands in for a boolean column as it is: Integral in the store, true or false to serving.
BOOLEAN_SPEC = dataclasses.replace(SPEC, rules=(("tenure_months", ValueRule(boolean=True)),))


@pytest.mark.parametrize(
    ("text", "sent"),
    [("1", 1), ("0", 0), ("true", 1), (" TRUE ", 1), ("False", 0), ("yes", 1), ("n", 0), ("1.0", 1), ("0.0", 0)],
)
def test_a_boolean_features_stored_word_is_used_as_1_or_0(text, sent):
    """GIVEN a stored value serving reads as true or false (1 / 0 or a boolean word, any case) THEN it is used, sent as
    1 / 0 as the feature job writes it."""
    found, features, _ = verdict(stored(tenure_months=text), BOOLEAN_SPEC, NOW)
    assert (found, features["tenure_months"]) == ("fresh", sent)
    assert type(features["tenure_months"]) is int


@pytest.mark.parametrize("text", ["2", "-1", "01", "+1", "1.5", "maybe", "", " ", "nan", "\u0661"])
def test_a_boolean_features_stored_value_serving_does_not_read_as_true_or_false_is_invalid(text):
    """GIVEN a stored value serving refuses for a boolean feature (a 422 for every id of the request once sent) THEN
    the record is invalid, saying why, and the policy resolves that id alone."""
    assert of.judge(stored(tenure_months=text), BOOLEAN_SPEC, NOW) == (
        "invalid", {}, EVENT,
        f"feature 'tenure_months': stored {text!r} is not true or false, as serving reads a boolean feature")


def test_a_boolean_feature_absent_from_the_record_is_a_missing_value():
    assert verdict(stored(tenure_months=MISSING), BOOLEAN_SPEC, NOW)[:2] == (
        "fresh", {"tenure_months": None, "monthly_charges": 70.5, "contract_type": "Two year"})


def test_without_the_boolean_rule_a_stored_2_is_sent_and_a_stored_true_is_invalid():
    """Break-it: a front told no boolean rule (a spec as before) types the feature as any Integral: it would send 2,
    which serving refuses for the whole request, and refuse "true", which serving reads."""
    assert verdict(stored(tenure_months="2"), SPEC, NOW)[:2] == (
        "fresh", {"tenure_months": 2, "monthly_charges": 70.5, "contract_type": "Two year"})
    assert verdict(stored(tenure_months="true"), SPEC, NOW)[0] == "invalid"


def test_spec_encodes_a_boolean_feature_as_its_rule():
    assert BOOLEAN_SPEC.encode()["FEATURE_RULES"] == '{"tenure_months":{"boolean":true}}'
