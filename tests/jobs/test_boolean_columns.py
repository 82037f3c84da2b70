"""A boolean column from raw text to a served score: one set of words, read the same by the ETL and serving."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline_code import catalog
from pipeline_code.features.compute import compute_features
from pipeline_code.sample_data.generate import generate, to_text
from pipeline_code.serving import records
from pipeline_code.serving.errors import BadRequestError
from pipeline_code.serving.records import FeatureContract

CARDS = catalog.parse_dataset("cards", {
    "record_identifier": "card_id",
    "event_time": "event_time",
    "labels": ["blocked"],
    "columns": {
        "card_id": {"type": "string", "nullable": False},
        "event_time": {"type": "timestamp", "nullable": False},
        "contactless": {"type": "boolean", "nullable": False},
        "abroad": "boolean",
        "amount": {"type": "double", "min": 0},
        "blocked": "boolean",
    },
    "features": {"contactless": "contactless", "abroad": "abroad", "amount": "amount"},
})


def test_a_boolean_column_is_an_integral_feature_and_a_binary_label():
    assert CARDS.feature("contactless").feature_type == catalog.INTEGRAL
    assert [catalog.parse_boolean(w) for w in (" TRUE", "yes", "0", "F", "maybe")] == [True, True, False, False, None]


@pytest.mark.parametrize("mistake, problem", [
    ({"type": "boolean", "min": 0}, "columns.abroad.min: only integer and double columns have bounds"),
    ({"type": "boolean", "allowed": ["yes"]}, "columns.abroad.allowed: only string columns have allowed values"),
])
def test_a_boolean_column_takes_no_bounds_or_allowed_values(mistake, problem):
    declaration = {**CARDS.to_declaration()}
    declaration["columns"] = [c if c["name"] != "abroad" else {"name": "abroad", **mistake} for c in declaration["columns"]]
    with pytest.raises(catalog.DeclarationError) as caught:
        catalog.parse_dataset("cards", declaration)
    assert caught.value.problems == [problem]


@pytest.mark.spark
def test_the_etl_reads_every_boolean_word_and_quarantines_the_rest(spark):
    from pipeline_code.etl.curate import curate

    raw = pd.DataFrame({
        "card_id": ["a", "b", "c", "d", "e"],
        "event_time": ["2026-01-01T00:00:00Z"] * 5,
        "contactless": ["TRUE", " no ", "1", "maybe", "1.0"],  # 1.0: pandas' way with a boolean column that has nulls
        "abroad": ["f", None, "Yes", "false", "t"],
        "amount": ["1.5", "2", "3", "4", "5"],
        "blocked": ["0.0", "1", "false", "true", "no"],
    })
    result = curate(spark.createDataFrame(raw.astype(object).where(raw.notna(), None)), CARDS)
    curated = result.curated.toPandas().set_index("card_id")
    assert curated["contactless"].to_dict() == {"a": True, "b": False, "c": True, "e": True}
    assert curated["abroad"].to_dict() == {"a": False, "b": None, "c": True, "e": True}
    assert result.quarantine_reasons == {"contactless: not a boolean": 1}


def test_features_of_booleans_are_one_and_zero_with_nulls_kept():
    curated = pd.DataFrame({
        "card_id": ["a", "b", "c"],
        "event_time": pd.to_datetime(["2026-01-01"] * 3, utc=True),
        "contactless": [True, False, True],
        "abroad": pd.Series([True, None, False], dtype=object),  # parquet booleans with a null
        "amount": [1.0, 2.0, 3.0],
    })
    features = compute_features(curated, CARDS)
    assert features["contactless"].tolist() == [1, 0, 1] and str(features["contactless"].dtype) == "Int64"
    assert features["abroad"].iloc[0] == 1 and features["abroad"].iloc[2] == 0 and pd.isna(features["abroad"].iloc[1])


def test_serving_reads_json_booleans_and_words_for_raw_fields_and_features():
    contract = FeatureContract.create(CARDS, ["contactless", "abroad", "amount"])
    raw = [{"contactless": True, "abroad": "no", "amount": 2.5}, {"contactless": "YES", "abroad": None, "amount": 1}]
    features = [{"contactless": False, "abroad": 1, "amount": 3.0}]
    computed = records.feature_rows(contract, raw).frame
    assert computed["contactless"].tolist() == [1.0, 1.0]
    assert computed["abroad"].iloc[0] == 0.0 and math.isnan(computed["abroad"].iloc[1])
    assert records.feature_rows(contract, features).frame[["contactless", "abroad"]].iloc[0].tolist() == [0.0, 1.0]
    as_csv = [{"contactless": "0.0", "abroad": "1.0", "amount": "3.0"}]  # a CSV row pandas wrote from a column with nulls
    assert records.feature_rows(contract, as_csv).frame[["contactless", "abroad"]].iloc[0].tolist() == [0.0, 1.0]
    with pytest.raises(BadRequestError, match="field 'contactless': expected true or false, got 'maybe'"):
        records.feature_rows(contract, [{"contactless": "maybe", "abroad": True, "amount": 1.0}])
    with pytest.raises(BadRequestError, match="field 'abroad': expected true or false, got '2'"):
        records.feature_rows(contract, [{"contactless": True, "abroad": 2, "amount": 1.0}])


def test_generated_booleans_are_written_as_the_words_the_etl_reads():
    frame = generate(CARDS, 2000, seed=1, positive_rate=0.1)
    assert str(frame["contactless"].dtype) == "boolean" and not frame["contactless"].isna().any()
    assert 0.05 < frame["contactless"].mean() < 0.95 and 0.06 < frame["blocked"].mean() < 0.14
    text = to_text(frame, CARDS)
    assert set(text["contactless"]) == {"true", "false"}
    assert np.array_equal(text["contactless"] == "true", frame["contactless"].to_numpy(dtype=bool))
