"""A record read as precomputed still gets its computed sensitive attribute and slices.

When every feature of a model is a raw column as it is (``col(x)``), a raw request holds every feature name and
serving reads it as precomputed (docs/invocation-contract.md "Which one?"). The score is right, but a sensitive
attribute or slice the catalog computes (an ``age_group`` bucket of ``applicant_age``), named like no column, is not
in such a record. Serving (:func:`pipeline_code.serving.records.feature_rows`, which every front calls: real-time,
serverless, async, batch transform, the by-id front's records) computes it from the raw columns the record holds
with the feature job's interpreter, and the drift monitor, decoding the captured request
(:func:`~pipeline_code.serving.records.complete_records` in ``read_capture``), does the same, so fairness and slice
monitoring count the record in its group. An extra the record gives is kept; one it neither gives nor holds
readable raw columns for stays missing (the monitor's ``(missing)`` group, never compared). On a dataset of its own,
not the sample models.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List

import pandas as pd
import pytest

from pipeline_code import catalog
from pipeline_code.core import online_features
from pipeline_code.core.thresholds import MISSING_GROUP
from pipeline_code.features.compute import compute_features
from pipeline_code.monitoring import drift, quality
from pipeline_code.monitoring.capture import SCORE, read_capture
from pipeline_code.serving.records import SOURCE_FEATURES, FeatureContract, complete_records, feature_rows

LOANS = catalog.parse_dataset("loans", {
    "record_identifier": "loan_id", "event_time": "event_time", "labels": ["defaulted"],
    "columns": {
        "loan_id": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
        "amount": {"type": "double", "nullable": False, "min": 0, "max": 1000000},
        "purpose": {"type": "string", "nullable": False, "allowed": ["car", "home", "other"]},
        "applicant_age": {"type": "integer", "min": 18, "max": 120},
        "income": {"type": "double", "min": 0},
        "tenure": {"type": "integer", "min": 0},
        "defaulted": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {
        "amount": "amount",                                                          # columns as they are
        "purpose": "purpose",
        "age_group": "bucket(applicant_age, [30, 50], ['young', 'middle', 'senior'])",  # computed extras,
        "income_band": "bucket(income, [30000, 80000], ['low', 'mid', 'high'])",      # named like no column
        "tenure": "log1p(tenure)",                                    # a feature that is not its column ...
        "tenure_band": "bucket(tenure, [12], ['new', 'established'])",  # ... which this extra reads
    },
})
FEATURES = ["amount", "purpose"]
SENSITIVE = "age_group"
SLICES = ["income_band", "tenure_band"]
EXTRAS = [SENSITIVE, *SLICES]
CONTRACT = FeatureContract.create(LOANS, FEATURES, EXTRAS)
# Raw requests: ages and incomes on, below and above each bucket edge, missing (null) ones, text the ETL curates.
RAW: List[Dict[str, Any]] = [
    {"amount": 1200.0, "purpose": "car", "applicant_age": 18, "income": 0.0},
    {"amount": 50.5, "purpose": " Home", "applicant_age": 29, "income": 29999.5},
    {"amount": 7.0, "purpose": "OTHER", "applicant_age": 30, "income": 30000},
    {"amount": 0.0, "purpose": "car", "applicant_age": "49", "income": "79999.99"},
    {"amount": 99.0, "purpose": "home", "applicant_age": 50, "income": 80000.0},
    {"amount": 1.0, "purpose": "other", "applicant_age": 120, "income": None},
    {"amount": 3.0, "purpose": "car", "applicant_age": None, "income": 1e6},
]


def _curated(raw: List[Dict[str, Any]]) -> pd.DataFrame:
    """The curated rows the ETL writes for ``raw`` (typed, trimmed, lower-cased where a set is declared)."""
    def number(value):
        return math.nan if value is None else float(value)

    return pd.DataFrame({
        "loan_id": [f"l{i}" for i in range(len(raw))],
        "event_time": [pd.Timestamp("2026-01-01", tz="UTC")] * len(raw),
        "amount": [float(r["amount"]) for r in raw],
        "purpose": [r["purpose"].strip().lower() for r in raw],
        "applicant_age": pd.array([None if r["applicant_age"] is None else int(r["applicant_age"]) for r in raw],
                                  dtype="Int64"),
        "income": [number(r["income"]) for r in raw],
        "tenure": pd.array([None] * len(raw), dtype="Int64"),
    })


# What the feature job computed for training from those rows.
TRAINING = compute_features(_curated(RAW), LOANS)


def _plain(value: Any) -> Any:
    return None if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else value


def _extras(frame: pd.DataFrame, names=EXTRAS) -> List[Dict[str, Any]]:
    return [{name: _plain(frame[name].iloc[i]) for name in names} for i in range(len(frame))]


def test_the_loader_accepts_the_model_and_a_raw_request_is_read_as_precomputed():
    # GIVEN a model whose features are all columns as they are and whose extras are computed
    assert LOANS.raw_request_problem(FEATURES, EXTRAS) is None
    # WHEN raw requests are scored THEN they are read as precomputed (each holds every feature name)
    assert feature_rows(CONTRACT, [dict(r) for r in RAW]).sources == [SOURCE_FEATURES] * len(RAW)


def test_computed_extras_of_a_record_read_as_precomputed_are_what_the_feature_job_computed():
    # GIVEN raw requests read as precomputed WHEN scored
    rows = feature_rows(CONTRACT, [dict(r) for r in RAW])
    # THEN the sensitive attribute and the slice are the feature job's values for the same raw rows, every one
    served = _extras(rows.frame, [SENSITIVE, "income_band"])
    assert served == _extras(TRAINING, [SENSITIVE, "income_band"])
    assert [row[SENSITIVE] for row in served] == ["young", "young", "middle", "middle", "senior", "senior", None]
    assert [row["income_band"] for row in served] == ["low", "low", "mid", "mid", "high", None, "high"]
    # AND the score's inputs are the record's as before
    assert rows.frame["purpose"].tolist() == ["car", "home", "other", "car", "home", "other", "car"]


def test_an_extra_the_record_gives_is_kept_as_given():
    # GIVEN a record giving its sensitive attribute (another group than its age's) and a null slice
    record = {"amount": 10.0, "purpose": "car", "applicant_age": 25, "income": 90000.0,
              SENSITIVE: "senior", "income_band": None}
    # WHEN scored and WHEN its capture is decoded
    served = _extras(feature_rows(CONTRACT, [record]).frame)[0]
    decoded = complete_records([record], CONTRACT)[0]
    # THEN the given values stand: neither is replaced by one computed from the raw columns
    assert served == {SENSITIVE: "senior", "income_band": None, "tenure_band": None}
    assert decoded == record


@pytest.mark.parametrize("fields, why", [
    ({}, "the column is not in the record"),
    ({"applicant_age": 150}, "outside the column's declared max: the ETL would quarantine the row"),
    ({"applicant_age": "old"}, "not a number the ETL reads"),
    ({"applicant_age": 30.5}, "not an integer"),
    ({"applicant_age": True}, "a boolean is no number"),
], ids=["absent", "out-of-range", "text", "fraction", "boolean"])
def test_an_extra_neither_given_nor_computable_stays_missing_and_the_record_is_still_scored(fields, why):
    # GIVEN a record read as precomputed whose applicant_age cannot give its group
    record = {"amount": 10.0, "purpose": "car", "income": 50000.0, **fields}
    # WHEN scored THEN it is scored (no 400 for a field no model input reads) and its group is missing, not guessed
    rows = feature_rows(CONTRACT, [record])
    assert rows.sources == [SOURCE_FEATURES], why
    assert _extras(rows.frame)[0] == {SENSITIVE: None, "income_band": "mid", "tenure_band": None}, why
    # AND the monitor decoding its capture reads it the same way (the unreadable field left for its own checks)
    decoded = complete_records([record], CONTRACT)[0]
    assert decoded.get(SENSITIVE) is None and decoded["income_band"] == "mid"
    assert {key: decoded[key] for key in fields} == fields


def test_an_extra_read_from_a_column_a_feature_of_its_name_transforms_stays_missing():
    # GIVEN a record holding tenure, which a precomputed record may hold as the feature log1p(tenure)
    record = {"amount": 10.0, "purpose": "car", "tenure": 24}
    # WHEN scored THEN tenure_band is not computed from it: which one it holds cannot be told
    assert _extras(feature_rows(CONTRACT, [record]).frame)[0]["tenure_band"] is None
    assert "tenure_band" not in complete_records([record], CONTRACT)[0]


def test_a_by_id_miss_computed_from_the_instances_raw_fields_gets_its_extras():
    # GIVEN a by-id request under the compute policy for ids the store does not know, each instance with raw fields
    spec = online_features.LookupSpec(record_identifier="loan_id", event_time="event_time",
                                      features=(("amount", catalog.FRACTIONAL), ("purpose", catalog.FS_STRING)),
                                      policy="compute")
    payload = {"instances": [{"loan_id": f"l{i}", **r} for i, r in enumerate(RAW)]}
    resolved = online_features.resolve(online_features.parse_request(payload, spec), {}, spec,
                                       datetime(2026, 1, 1, tzinfo=timezone.utc))
    # WHEN the endpoint reads the records the front sends it
    rows = feature_rows(CONTRACT, resolved.records)
    # THEN they are read as precomputed and carry the feature job's sensitive attribute and slice
    assert rows.sources == [SOURCE_FEATURES] * len(RAW)
    assert _extras(rows.frame, [SENSITIVE, "income_band"]) == _extras(TRAINING, [SENSITIVE, "income_band"])


# ----------------------------------------------------------------------------------------------------------------
# The capture, as the drift monitor reads it
# ----------------------------------------------------------------------------------------------------------------
def _capture_line(records: List[Dict[str, Any]], scores: List[float], *, content_type: str) -> str:
    """One line of a SageMaker data-capture file holding a request of ``records`` and its JSON answer."""
    body = (json.dumps({"instances": records}) if content_type == "application/json"
            else "\n".join(json.dumps(r) for r in records))
    answer = json.dumps({"predictions": [{"score": s, "label": int(s >= 0.5)} for s in scores]})
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": body, "encoding": "JSON"},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": answer,
                               "encoding": "JSON"}},
        "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": "2026-11-26T08:00:00Z"},
        "eventVersion": "0",
    })


def _decode(directory: Path):
    """The window as monitor.py reads it for this model (its dataset given, so requests are read as serving did)."""
    return read_capture(str(directory), FEATURES, categorical=["purpose", *EXTRAS], extra_columns=EXTRAS,
                        dataset=LOANS)


SCORES = [0.9, 0.2, 0.7, 0.4, 0.8, 0.1, 0.6]


@pytest.mark.parametrize("mode", ["realtime-json", "realtime-jsonlines", "batch-transform"])
def test_the_captured_request_carries_the_computed_extras_to_the_monitor(tmp_path, mode):
    # GIVEN the raw requests read as precomputed, captured as SageMaker data capture or batch transform stores them
    if mode == "batch-transform":
        directory = tmp_path / "batch"
        directory.mkdir()
        (directory / "part-0001").write_text("\n".join(json.dumps(r) for r in RAW) + "\n")
        (directory / "part-0001.out").write_text("\n".join(json.dumps({"score": s}) for s in SCORES) + "\n")
    else:
        content_type = "application/json" if mode == "realtime-json" else "application/jsonlines"
        directory = tmp_path / "capture"
        path = directory / "endpoint" / "AllTraffic" / "2026" / "11" / "26" / "08" / "capture.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("\n".join([_capture_line(RAW[:3], SCORES[:3], content_type=content_type),
                                   _capture_line(RAW[3:], SCORES[3:], content_type=content_type)]) + "\n")
    # WHEN the monitor decodes the window
    window = _decode(directory)
    # THEN each record has the sensitive attribute and slice serving computed, the feature job's values
    assert _extras(window.frame, [SENSITIVE, "income_band"]) == _extras(TRAINING, [SENSITIVE, "income_band"])
    assert window.frame[SCORE].tolist() == SCORES
    # AND the raw columns the extras were read from are no schema change
    assert not window.schema_changed, window.summary()["schema"]


def test_the_monitor_counts_such_records_in_their_group(tmp_path):
    # GIVEN a window of raw requests read as precomputed (one without an age: its group is missing)
    directory = tmp_path / "capture"
    path = directory / "endpoint" / "AllTraffic" / "2026" / "11" / "26" / "08" / "capture.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(_capture_line([dict(r) for r in RAW], SCORES, content_type="application/json") + "\n")
    frame = _decode(directory).frame
    # WHEN the monitor's bias section judges the sensitive attribute
    bias = quality.bias_drift(frame, SENSITIVE, None, min_group_rows=1)
    # THEN each record is counted in its age group; only the one without an age is in the missing group
    groups = {name: entry["rows"] for name, entry in bias["groups"].items()}
    assert groups == {"young": 2, "middle": 2, "senior": 2, MISSING_GROUP: 1}
    assert {name: entry["positive_rate"] for name, entry in bias["groups"].items()} == {
        "young": 0.5, "middle": 0.5, "senior": 0.5, MISSING_GROUP: 1.0}  # the scores at the threshold 0.5
    # AND the missing group is reported, never compared: the three age groups flag alike
    assert bias["demographic_parity_difference"] == 0.0
    # AND its data-quality section finds the slice sent, with the one missing value its income left it
    constraints = {"features": {"income_band": {"kind": "categorical", "allowed": ["low", "mid", "high"],
                                                "completeness": 1.0}}}
    section = drift.data_quality(frame, constraints)["features"]["income_band"]
    assert section["missing_rate"] == pytest.approx(1 / len(RAW))
    assert section["unseen_rate"] == 0.0
