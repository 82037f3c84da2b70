"""Dates as model inputs at serving and in the monitor: a raw request's date field becomes the feature training had.

A feature ``days_since(licence_issued)`` counts the days from the date to the record's own event time
(:mod:`pipeline_code.features.compute`). Serving computes it with the same interpreter from the raw request, so the
request must carry its event time: without it the age would be counted to some other time, a wrong value scored
silently, so the record is refused naming the field. The drift monitor decodes captured raw requests the same way
(:func:`pipeline_code.serving.records.complete_records`), so drift compares the values training saw.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from pipeline_code.features.compute import compute_features
from pipeline_code.monitoring.capture import read_capture
from pipeline_code.sample_data.generate import generate
from pipeline_code.serving import records
from pipeline_code.serving.errors import BadRequestError
from pipeline_code.serving.records import FeatureContract

from tests.support.datasets import LICENCES

FEATURES = ["licence_age_days", "days_since_claim", "quote_age_days", "vehicle_value", "region"]
CONTRACT = FeatureContract.create(LICENCES, FEATURES, ["licence_band"])
RAW = {"policy_id": "p1", "event_time": "2026-01-05T13:00:00Z", "licence_issued": "2019-04-12",
       "previous_claim": "2025-12-31", "quoted_at": "2026-01-04T08:00:00Z", "vehicle_value": 12000.0, "region": "north"}


def _raw_requests(rows: int = 40) -> list:
    """Generated policies (dates drawn before each record's event time) as raw requests, text as a caller sends it."""
    text = generate(LICENCES, rows, seed=3, as_text=True)
    return [{k: v for k, v in row.items() if k != "claimed" and v is not None} for row in text.to_dict("records")]


def test_a_raw_request_needs_its_event_time_to_compute_an_age_and_the_refusal_names_it():
    # GIVEN a model reading days_since features WHEN a raw record comes without its event time
    assert CONTRACT.required_raw_fields == ["licence_issued", "event_time", "vehicle_value", "region"]
    with pytest.raises(BadRequestError) as refused:
        records.feature_rows(CONTRACT, [{k: v for k, v in RAW.items() if k != "event_time"}])
    # THEN it is a 400 naming the field and why, never an age counted to another time
    assert str(refused.value) == (
        "record 0: missing required field 'event_time'; feature(s) ['licence_age_days', 'days_since_claim', "
        "'quote_age_days'] count the days up to the record's own event time (days_since), which a raw record must "
        "carry: an age counted to any other time would be a wrong value (a raw record needs ['licence_issued', "
        "'event_time', 'vehicle_value', 'region'], optionally ['previous_claim', 'quoted_at']; or send every model "
        "feature ['licence_age_days', 'days_since_claim', 'quote_age_days', 'vehicle_value', 'region'])")
    assert refused.value.status_code == 400


def test_a_raw_request_with_its_event_time_is_scored_with_the_age_at_that_time():
    frame = records.feature_rows(CONTRACT, [RAW, {**RAW, "event_time": "2027-01-05T13:00:00+02:00",
                                                   "previous_claim": None}]).frame
    assert frame["licence_age_days"].tolist() == [2460.0, 2825.0]
    assert frame["days_since_claim"].tolist()[0] == 5.0 and math.isnan(frame["days_since_claim"].tolist()[1])
    assert frame["licence_band"].tolist() == ["settled", "settled"]


@pytest.mark.parametrize("field, value, message", [
    ("licence_issued", "2019-4-12", "expected a date written yyyy-MM-dd (a real day, e.g. 2019-04-12), got text "
                                    "'2019-4-12'"),
    ("licence_issued", "2026-02-30", "expected a date written yyyy-MM-dd (a real day, e.g. 2019-04-12), got text "
                                     "'2026-02-30'"),
    ("licence_issued", "2019-04-12T00:00:00Z", "expected a date written yyyy-MM-dd (a real day, e.g. 2019-04-12), got "
                                               "text '2019-04-12T00:00:00Z'"),
    ("licence_issued", 20190412, "expected a date written yyyy-MM-dd (a real day, e.g. 2019-04-12), got int 20190412"),
    ("event_time", "2026-01-05", "expected a timestamp written yyyy-MM-ddTHH:mm:ss[.fraction][Z|+HH:MM] (UTC without "
                                 "an offset), got text '2026-01-05'"),
    ("event_time", "2026-01-05T24:00:00Z", "expected a timestamp written yyyy-MM-ddTHH:mm:ss[.fraction][Z|+HH:MM] "
                                           "(UTC without an offset), got text '2026-01-05T24:00:00Z'"),
    ("event_time", "1500-01-01T00:00:00Z", "1500-01-01T00:00:00Z is outside the times the jobs hold (from "
                                           "1677-09-22T00:00:00Z to before 2262-04-11T00:00:00Z)"),
    ("quoted_at", "2300-01-01T00:00:00+02:00", "2300-01-01T00:00:00+02:00 is outside the times the jobs hold (from "
                                               "1677-09-22T00:00:00Z to before 2262-04-11T00:00:00Z)"),
    ("quoted_at", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00+01:00 is outside the times the jobs hold (from "
                                               "1677-09-22T00:00:00Z to before 2262-04-11T00:00:00Z)"),
])
def test_a_date_or_event_time_the_etl_would_quarantine_is_refused_naming_the_field(field, value, message):
    with pytest.raises(BadRequestError) as refused:
        records.feature_rows(CONTRACT, [{**RAW, field: value}])
    assert str(refused.value) == f"record 0: field {field!r}: {message}"


@pytest.mark.parametrize("features", [["log_value", "region"], ["vehicle_value", "region"]],
                         ids=["raw", "read-as-precomputed"])
def test_an_extra_counting_days_without_the_event_time_is_missing_never_counted_to_a_placeholder(features):
    # GIVEN a model with no days_since input whose slice (licence_band) counts days WHEN a raw record lacks its event time
    # (a model whose features are all columns as they are reads a raw request as precomputed: its extras are computed
    # from the raw columns the record holds)
    contract = FeatureContract.create(LICENCES, features, ["licence_band"])
    assert "event_time" not in contract.required_raw_fields and "event_time" in contract.optional_raw_fields
    frame = records.feature_rows(contract, [{k: v for k, v in RAW.items() if k != "event_time"}, RAW]).frame
    # THEN the slice is missing for it (not the band of an age counted to 1970), and computed for the record with one
    assert frame["licence_band"].tolist() == [None, "settled"]


def test_serving_computes_the_age_training_had_for_every_generated_record():
    # GIVEN generated policies, curated (typed) for the feature job and sent as raw requests (text)
    typed = generate(LICENCES, 40, seed=3)
    trained_on = compute_features(typed, LICENCES)
    # WHEN serving reads the raw requests
    served = records.feature_rows(CONTRACT, _raw_requests(40)).frame
    # THEN every value is the one the feature job computed (dates drawn before their event times: no negative age)
    for name in ["licence_age_days", "days_since_claim", "quote_age_days", "licence_band"]:
        want = [None if pd.isna(v) else v for v in trained_on[name].tolist()]
        got = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in served[name].tolist()]
        assert got == want, name
    assert (trained_on["licence_age_days"] >= 0).all()


def _capture_line(request: list, scores: list) -> str:
    def block(data: str, mode: str) -> dict:
        return {"observedContentType": "application/json", "mode": mode, "data": data, "encoding": "JSON"}

    return json.dumps({"captureData": {"endpointInput": block(json.dumps(request), "INPUT"),
                                       "endpointOutput": block(json.dumps({"predictions": scores}), "OUTPUT")},
                       "eventMetadata": {"eventId": "e1", "inferenceTime": "2026-03-01T08:00:00Z"}, "eventVersion": "0"})


def test_the_monitor_reads_a_captured_raw_request_with_dates_as_the_feature_values_training_had(tmp_path: Path):
    # GIVEN captured raw-field requests carrying date fields and their event times
    requests = _raw_requests(30)
    path = tmp_path / "capture" / "endpoint" / "AllTraffic" / "2026" / "03" / "01" / "08" / "capture.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(_capture_line(requests[:12], [0.1] * 12) + "\n" + _capture_line(requests[12:], [0.2] * 18) + "\n")
    # WHEN the drift monitor decodes the window
    window = read_capture(str(tmp_path / "capture"), FEATURES, categorical=["region", "licence_band"],
                          extra_columns=["licence_band"], dataset=LICENCES)
    # THEN each numeric age is the training data's value for that record: drift compares like with like
    assert window.summary()["malformed"]["count"] == 0 and window.records == 30
    trained_on = compute_features(generate(LICENCES, 30, seed=3), LICENCES)
    for name in ["licence_age_days", "days_since_claim", "quote_age_days"]:
        want = [None if pd.isna(v) else float(v) for v in trained_on[name].tolist()]
        got = [None if pd.isna(v) else float(v) for v in window.frame[name].tolist()]
        assert got == want, name
    assert window.frame["licence_band"].tolist() == trained_on["licence_band"].tolist()
