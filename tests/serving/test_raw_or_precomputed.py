"""A raw request is never read as precomputed features of a model the config loader accepts.

Serving tells the two apart by the feature names an object holds (``records._source``, docs/invocation-contract.md
"Which one?"): every model feature present means precomputed. When every feature of a model has a raw column's name,
a raw request holds them all; synth refuses such a model when one of them (or a sensitive attribute or slice read
with them) transforms its column (:meth:`pipeline_code.catalog.Dataset.raw_request_problem`). On a dataset of its own
(not the sample models), every model of its features is tried: accepted, the model gets what the feature job computed
for training from the same record; refused, serving would indeed have scored a raw value. Read through
:func:`pipeline_code.serving.records.feature_rows`, the code every serving front calls (realtime, serverless, async
and batch transform; the by-id front's records and a by-id miss's fields too) and the drift monitor decodes captured
requests with (:func:`~pipeline_code.serving.records.complete_records`).
"""

from __future__ import annotations

import itertools
import math
import re

import pandas as pd
import pytest

from pipeline_code import catalog
from pipeline_code.features.compute import compute_features
from pipeline_code.serving.errors import BadRequestError
from pipeline_code.serving.records import (
    SOURCE_FEATURES, SOURCE_RAW, FeatureContract, complete_records, feature_rows,
)

PAYMENTS = catalog.parse_dataset("payments", {
    "record_identifier": "payment_id", "event_time": "event_time", "labels": ["fraud"],
    "columns": {
        "payment_id": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
        "amount": {"type": "double", "nullable": False, "min": 0, "max": 50000},
        "transactions_24h": {"type": "integer", "min": 0, "max": 500},
        "fee": {"type": "double", "min": 0},
        "channel": {"type": "string", "nullable": False, "allowed": ["online", "in-store"]},
        "card_present": {"type": "boolean"},
        "segment": {"type": "string"},
        "fraud": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {
        "amount": "log1p(amount)",                              # transforms the column of its name
        "transactions_24h": "clip(transactions_24h, 0, 100)",   # transforms the column of its name
        "fee": "amount",                                        # another column under this one's name
        "channel": "channel",                                   # columns as they are
        "card_present": "card_present",
        "fee_share": "ratio(fee, amount)",                      # named like no column
        "segment": "coalesce(segment, channel)",                # a transformed column, read as an extra
    },
})
MODEL_FEATURES = ("amount", "transactions_24h", "fee", "channel", "card_present", "fee_share")
# Extras (sensitive attribute, slices) are read by name like the features: a column as it is, and a transformed one.
EXTRAS = ((), ("channel",), ("segment",))
# A raw request, with values every transformation changes (log1p, the clip, fee read from amount, segment filled)
# and text serving curates as the ETL does.
RAW = {"amount": 1200.0, "transactions_24h": 300, "fee": 5.0, "channel": " Online", "card_present": True,
       "segment": None}
CURATED = pd.DataFrame({
    "payment_id": ["p1"], "event_time": [pd.Timestamp("2026-01-01", tz="UTC")],
    "amount": [1200.0], "transactions_24h": pd.array([300], dtype="Int64"), "fee": [5.0], "channel": ["online"],
    "card_present": pd.array([True], dtype="boolean"), "segment": pd.Series([None], dtype=object),
})
# What the feature job computed for training from that record.
TRAINING = compute_features(CURATED, PAYMENTS).iloc[0].to_dict()

MODELS = [(list(features), list(extras)) for size in range(1, len(MODEL_FEATURES) + 1)
          for features in itertools.combinations(MODEL_FEATURES, size) for extras in EXTRAS]


def _value(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value) \
        if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _served(features, extras) -> tuple[str, dict]:
    rows = feature_rows(FeatureContract.create(PAYMENTS, features, extras), [dict(RAW)])
    return rows.sources[0], {name: _value(v) for name, v in rows.frame.iloc[0].items()}


def _trained(names) -> dict:
    return {name: _value(TRAINING[name]) for name in names}


@pytest.mark.parametrize("features, extras", MODELS, ids=lambda value: "+".join(value) or "-")
def test_a_model_the_loader_accepts_is_given_from_a_raw_request_what_training_computed(features, extras):
    # GIVEN a model of some of the dataset's features WHEN a raw request is scored
    source, served = _served(features, extras)
    read = [*features, *(e for e in extras if e not in features)]
    problem = PAYMENTS.raw_request_problem(features, extras)
    if problem is None:
        # THEN, accepted, it gets what the feature job computed from that record: features and extras alike
        assert served == _trained(read)
    else:
        # THEN, refused, the refusal was real: read as precomputed, a feature it names would be scored raw
        assert source == SOURCE_FEATURES
        named = PAYMENTS.shadowing_features(read)
        assert named and all(served[name] != _trained([name])[name] for name in named)
        assert all(repr(name) in problem for name in named)


def test_the_models_refused_are_exactly_those_of_column_names_that_transform_one():
    refused = {(tuple(f), tuple(e)) for f, e in MODELS if PAYMENTS.raw_request_problem(f, e)}
    column_named = ("amount", "transactions_24h", "fee", "channel", "card_present")
    assert refused == {(tuple(f), tuple(e)) for f, e in MODELS
                       if set(f) <= set(column_named) and (set(f) - {"channel", "card_present"} or "segment" in e)}


def test_a_transformed_column_beside_a_feature_named_like_no_column_is_computed_from_a_raw_request():
    # GIVEN a model the sample's way: transformed columns under their own names, and fee_share
    features = ["amount", "transactions_24h", "fee_share", "channel"]
    # WHEN a raw request is scored THEN it is read as raw and each feature is computed as training did
    source, served = _served(features, ["segment"])
    assert source == SOURCE_RAW
    assert served == _trained([*features, "segment"])
    assert served["amount"] == pytest.approx(math.log1p(1200.0)) and served["transactions_24h"] == 100.0
    # AND the drift monitor, decoding the captured request, computes the same features
    decoded = complete_records([dict(RAW)], FeatureContract.create(PAYMENTS, features, ["segment"]))[0]
    assert {name: _value(decoded[name]) for name in served} == served


def test_precomputed_features_of_such_a_model_are_still_read_as_sent():
    # GIVEN the same model and a caller sending its features (the feature job's values) WHEN scored
    features = ["amount", "transactions_24h", "fee_share", "channel"]
    sent = {"amount": 7.09, "transactions_24h": 100, "fee_share": 0.004, "channel": "online"}
    rows = feature_rows(FeatureContract.create(PAYMENTS, features), [sent])
    # THEN they are taken as they are
    assert rows.sources == [SOURCE_FEATURES]
    assert rows.frame.iloc[0].to_dict() == {"amount": 7.09, "transactions_24h": 100.0, "fee_share": 0.004,
                                            "channel": "online"}


# A model whose feature list changed (docs/add-your-own-model.md, Changing a deployed model): the dataset keeps
# the feature the model stopped reading (a feature group only takes added features), and a caller still sending the
# previous version's precomputed record meets the new version mid-rollout. Its record holds none of the new model's
# features named like no column, so without a rule it was read as raw: the raw field behind the new feature absent,
# that feature scored as missing, 200 - a silently wrong score.
SUPPORT = catalog.parse_dataset("support", {
    "record_identifier": "ticket_id", "event_time": "event_time", "labels": ["escalated"],
    "columns": {
        "ticket_id": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
        "region": {"type": "string", "nullable": False, "allowed": ["north", "south"]},
        "calls": {"type": "integer", "min": 0, "max": 1000},
        "escalated": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {"region": "region", "log_calls": "log1p(calls)", "capped_calls": "clip(calls, 0, 10)"},
})
EARLIER_RECORD = {"region": "north", "log_calls": 1.0986}  # the earlier version's features [region, log_calls]


def test_a_record_of_an_earlier_feature_list_is_refused_naming_the_field_and_the_fix():
    with pytest.raises(BadRequestError) as caught:
        feature_rows(FeatureContract.create(SUPPORT, ["region", "capped_calls"]), [dict(EARLIER_RECORD)])
    assert str(caught.value) == (
        "record 0: missing feature 'capped_calls': the record was written for another feature list (an earlier "
        "version's?); send every feature of this model (a record may hold the features of both lists while versions "
        "change), or raw fields only. Its 'log_calls' is a feature of dataset 'support' that this model does not read, "
        "and read as raw fields it would be scored with 'capped_calls' missing (a precomputed-feature record needs "
        "every model feature: ['region', 'capped_calls'])")


def test_a_record_of_an_earlier_feature_list_of_a_wide_model_keeps_its_fix_within_the_2048_characters():
    """GIVEN a model of 150 features whose dataset keeps the 150 of an earlier list, and a record of that earlier list
    WHEN refused THEN the 400, cut to the 2048 characters SageMaker hands the caller, still says the record was written
    for another feature list and what to send: the explanation and the fix come before the lists (before, after both:
    the two lists alone are longer than 2048 characters, so the 400 ended mid-list with no word of either)."""
    from pipeline_code.core.contract import MAX_ERROR_MESSAGE, REFUSED_FIELD

    columns = {"rid": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
               "label": {"type": "integer", "min": 0, "max": 1}}
    features = {}
    for i in range(150):
        columns[f"measurement_{i:03d}"] = {"type": "double", "nullable": False}
        features[f"log_measurement_{i:03d}"] = f"log1p(measurement_{i:03d})"
        features[f"capped_measurement_{i:03d}"] = f"clip(measurement_{i:03d}, 0, 10)"
    wide = catalog.load_dataset({"name": "wide", "record_identifier": "rid", "event_time": "event_time",
                                 "labels": ["label"], "columns": columns, "features": features})
    contract = FeatureContract.create(wide, [f"log_measurement_{i:03d}" for i in range(150)])
    earlier = {f"capped_measurement_{i:03d}": 1.0 for i in range(150)}
    with pytest.raises(BadRequestError) as refused:
        feature_rows(contract, [earlier])
    text = str(refused.value)
    assert len(text) <= MAX_ERROR_MESSAGE
    assert text.startswith(
        "record 0: missing feature 'log_measurement_000': the record was written for another feature list (an earlier "
        "version's?); send every feature of this model (a record may hold the features of both lists while versions "
        "change), or raw fields only. Its 'capped_measurement_000', "), text[:400]
    assert re.match(REFUSED_FIELD, text).group(3) == "log_measurement_000"


def test_a_batch_refuses_only_the_record_of_the_earlier_feature_list():
    contract = FeatureContract.create(SUPPORT, ["region", "capped_calls"])
    rows = feature_rows(contract, [dict(EARLIER_RECORD), {"region": "south", "calls": 30}], refuse_records=True)
    assert rows.kept == [1] and rows.refused[0].fields == ["capped_calls", "log_calls"]
    assert rows.frame["capped_calls"].tolist() == [10.0]


def test_a_raw_record_and_a_record_holding_both_lists_are_still_scored():
    contract = FeatureContract.create(SUPPORT, ["region", "capped_calls"])
    rows = feature_rows(contract, [{"region": "north", "calls": 3}, {**EARLIER_RECORD, "capped_calls": 3},
                                   {**EARLIER_RECORD, "calls": 3}])  # its raw fields too: computed from them
    assert rows.sources == [SOURCE_RAW, SOURCE_FEATURES, SOURCE_RAW]
    assert rows.frame["capped_calls"].tolist() == [3.0, 3.0, 3.0]


# A feature computed from either of two columns (coalesce) is not missing when the record holds one of them: a record
# that holds a feature another list reads besides such raw fields is scored from them, not refused as one that would
# be scored with the feature missing.
QUEUE = catalog.parse_dataset("queue", {
    "record_identifier": "ticket_id", "event_time": "event_time", "labels": ["escalated"],
    "columns": {
        "ticket_id": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
        "region": {"type": "string", "nullable": False, "allowed": ["north", "south"]},
        "calls": {"type": "integer", "min": 0, "max": 1000},
        "backlog": {"type": "integer", "min": 0, "max": 1000},
        "escalated": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {"region": "region", "log_calls": "log1p(calls)", "calls_or_backlog": "coalesce(calls, backlog)",
                 "calls_per_backlog": "ratio(calls, backlog)"},
})


def test_a_record_whose_raw_fields_compute_the_feature_another_way_is_scored_from_them():
    contract = FeatureContract.create(QUEUE, ["region", "calls_or_backlog"])
    rows = feature_rows(contract, [{"region": "north", "backlog": 4, "log_calls": 1.0986}])
    assert rows.sources == [SOURCE_RAW]
    assert rows.frame["calls_or_backlog"].tolist() == [4.0]


def test_a_record_whose_raw_fields_leave_the_feature_missing_is_still_refused():
    contract = FeatureContract.create(QUEUE, ["region", "calls_per_backlog"])
    with pytest.raises(BadRequestError) as caught:
        feature_rows(contract, [{"region": "north", "backlog": 4, "log_calls": 1.0986}])
    assert str(caught.value).endswith(
        "read as raw fields it would be scored with 'calls_per_backlog' missing (a precomputed-feature record needs "
        "every model feature: ['region', 'calls_per_backlog'])")
