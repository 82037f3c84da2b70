"""The values serving refuses because training never saw them: blank required fields, missing values of
non-nullable columns, numeric text the ETL does not read. On a dataset of its own (not the sample models), read
through :func:`pipeline_code.serving.records.feature_rows`, the code every serving front calls.

``tests/jobs/test_value_rules_agreement.py`` holds serving to the ETL value by value (Spark).
"""

from __future__ import annotations

import json
import math

import pytest

from pipeline_code import catalog
from pipeline_code.core.contract import SMOKE_TEST_INFERENCE_ID
from pipeline_code.core.online_features import ENTITY_ID, FEATURE_LOOKUP, FEATURE_SOURCE, SOURCE_MISSING, SOURCE_STORE
from pipeline_code.core.media_types import CSV
from pipeline_code.serving import records, request_body
from pipeline_code.serving.errors import BadRequestError
from pipeline_code.serving.records import FeatureContract

VISITS = catalog.parse_dataset("visits", {
    "record_identifier": "visit_id", "event_time": "event_time", "labels": ["returned"],
    "columns": {
        "visit_id": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
        "pages": {"type": "integer", "nullable": False, "min": 0},
        "seconds": {"type": "double", "nullable": False},
        "city": {"type": "string", "nullable": False},
        "channel": {"type": "string", "nullable": False, "allowed": ["web", "app"]},
        "note": {"type": "string"},
        "spend": {"type": "double"},
        "returned": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {"pages": "pages", "seconds": "seconds", "city": "city", "channel": "channel", "note": "note",
                 "spend": "spend", "seconds_per_page": "ratio(seconds, pages)"},
})
FEATURES = ["pages", "seconds", "city", "channel", "note", "spend", "seconds_per_page"]
CONTRACT = FeatureContract.create(VISITS, FEATURES)
RAW = {"pages": 4, "seconds": 50.0, "city": "Lyon", "channel": "web", "note": "first", "spend": 12.5}
PRECOMPUTED = {**RAW, "seconds_per_page": 12.5}
NEEDS = ("a raw record needs ['pages', 'seconds', 'city', 'channel'], optionally ['note', 'spend']; or send every "
         f"model feature {FEATURES}")


def _rows(*recs, positions=None):
    return records.feature_rows(CONTRACT, list(recs), positions).frame


def _refusal(*recs, positions=None) -> str:
    with pytest.raises(BadRequestError) as refused:
        _rows(*recs, positions=positions)
    assert refused.value.status_code == 400
    return str(refused.value)


def _same(left, right) -> bool:
    return all((a is None and b is None) or a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
               for a, b in zip(left, right))


# --- a blank required raw field is missing ---------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["pages", "seconds", "city", "channel"])
@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_required_raw_field_is_a_missing_required_field(field, blank):
    """GIVEN a raw record whose required field is blank text WHEN read THEN 400 naming it, as for null (the ETL reads
    blank text as null and quarantines the record)."""
    assert _refusal({**RAW, field: blank}) == (
        f"record 0: missing required field {field!r} (blank text {blank!r} is a missing value, as the ETL reads it; "
        f"{NEEDS})")


def test_a_null_required_raw_field_keeps_its_message():
    assert _refusal(RAW, {**RAW, "city": None}) == f"record 1: missing required field 'city' ({NEEDS})"


def test_a_blank_optional_text_field_is_scored_as_missing_as_when_it_is_left_out():
    blank = _rows({**RAW, "note": "  "}).iloc[0].tolist()
    omitted = _rows({k: v for k, v in RAW.items() if k != "note"}).iloc[0].tolist()
    assert _same(blank, omitted) and blank[FEATURES.index("note")] is None


def test_padded_required_text_is_trimmed_not_refused():
    assert _rows({**RAW, "city": " Lyon ", "channel": " WEB"}).iloc[0].tolist() == _rows(RAW).iloc[0].tolist()


# --- a precomputed feature that is a non-nullable column unchanged must have a value ---------------------------------
MISSING = ("missing (null, or an empty CSV field), but its column {0!r} is declared nullable: false, so training never "
           "saw it missing; send its value (declared for dataset 'visits')")


@pytest.mark.parametrize("feature", ["pages", "seconds", "city", "channel"])
def test_a_null_precomputed_feature_of_a_non_nullable_column_is_refused(feature):
    assert _refusal({**PRECOMPUTED, feature: None}) == f"record 0: field {feature!r}: " + MISSING.format(feature)


def test_an_empty_csv_field_of_a_non_nullable_column_is_refused_naming_the_line():
    body = "4,50,Lyon,web,,,12.5\n,50,Lyon,web,first,12.5,12.5\n"
    parsed = request_body.parse_request(body, CSV)
    assert _refusal(*parsed.records, positions=parsed.positions) == "record 1 (line 2): field 'pages': " + MISSING.format("pages")


def test_a_blank_precomputed_text_of_a_non_nullable_column_is_refused_too():
    assert _refusal({**PRECOMPUTED, "city": "  "}) == "record 0: field 'city': " + MISSING.format("city")


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_text_for_a_number_is_a_missing_value_as_the_etl_reads_it(blank):
    """GIVEN blank text where a number goes WHEN read THEN it is missing, as null is (the ETL reads blank text as null):
    an optional raw field is scored as missing, a precomputed feature of a non-nullable column is refused as missing
    (both were refused as "expected a number, got text ''" before)."""
    blank_row = _rows({**RAW, "spend": blank}).iloc[0].tolist()
    null_row = _rows({**RAW, "spend": None}).iloc[0].tolist()
    assert _same(blank_row, null_row) and math.isnan(blank_row[FEATURES.index("spend")])
    assert _refusal({**PRECOMPUTED, "seconds": blank}) == "record 0: field 'seconds': " + MISSING.format("seconds")
    assert math.isnan(_rows({**PRECOMPUTED, "spend": blank})["spend"].iloc[0])


def test_nullable_columns_and_computed_features_may_be_missing_in_a_precomputed_record():
    frame = _rows({**PRECOMPUTED, "note": None, "spend": None, "seconds_per_page": None},
                  [4, 50, "Lyon", "web", None, None, None])
    assert frame["note"].tolist() == [None, None] and frame[["spend", "seconds_per_page"]].isna().all().all()


def test_the_deploy_handlers_smoke_record_is_scored_with_every_feature_missing():
    """GIVEN the smoke record (every feature null, the smoke inference id) WHEN read THEN scored all-missing: it tests
    that the model answers, and serving does not capture it."""
    smoke = {**{f: None for f in FEATURES}, "inference_id": SMOKE_TEST_INFERENCE_ID}
    rows = records.feature_rows(CONTRACT, [smoke])
    assert rows.inference_ids == [SMOKE_TEST_INFERENCE_ID] and rows.frame.iloc[0].isna().all()


def test_the_smoke_inference_id_does_not_excuse_a_record_with_values():
    almost = {**{f: None for f in FEATURES}, "seconds": 50.0, "inference_id": SMOKE_TEST_INFERENCE_ID}
    assert _refusal(almost).startswith("record 0: field 'pages': " + MISSING.format("pages") + "; record 0: field 'city'")


def test_a_by_id_miss_the_missing_policy_scores_all_missing_is_scored():
    """GIVEN the by-id front's record for a miss under policy ``missing`` WHEN read THEN scored all-missing, as the
    model's ``serving.by_id.missing: missing`` asks."""
    miss = {**{f: None for f in FEATURES}, FEATURE_SOURCE: SOURCE_MISSING, ENTITY_ID: "v-1", FEATURE_LOOKUP: "unknown",
            "inference_id": "v-1"}
    assert _rows(miss).iloc[0].isna().all()


def test_a_stored_or_partly_missing_by_id_record_keeps_the_rule():
    stored = {**PRECOMPUTED, "pages": None, FEATURE_SOURCE: SOURCE_STORE}
    partly = {**{f: None for f in FEATURES}, "city": "Lyon", FEATURE_SOURCE: SOURCE_MISSING}
    assert _refusal(stored) == "record 0: field 'pages': " + MISSING.format("pages")
    assert _refusal(partly).startswith("record 0: field 'pages': " + MISSING.format("pages"))


# --- numeric text is read as the ETL reads it ------------------------------------------------------------------------
NOT_ETL_NUMBER = "expected a number written as the ETL reads one (ASCII digits 0-9, an optional sign, decimal point and exponent), got text {0!r}"
NOT_ETL_INTEGER = ("expected an integer written as the ETL reads one (at most 18 digits 0-9 and an optional sign, "
                   "optionally followed by .0), got text {0!r}")


@pytest.mark.parametrize("field, text, message", [
    ("pages", "1_0", NOT_ETL_NUMBER),
    ("pages", "\u0662\u0661", NOT_ETL_NUMBER),  # Arabic-Indic 21
    ("seconds", "\uff14\uff13.\uff14\uff12", NOT_ETL_NUMBER),  # full-width 43.42
    ("seconds", "1_000.5", NOT_ETL_NUMBER),
    ("pages", "\t3", NOT_ETL_NUMBER),  # the ETL trims spaces only
    ("seconds", "0x1p3", "expected a number, got text {0!r}"),
    ("pages", "1e1", NOT_ETL_INTEGER),
    ("pages", "1234567890123456789", NOT_ETL_INTEGER),
    ("pages", "1.5", "expected an integer, got {0!r}"),
    ("seconds", "nan", "expected a number, got {0!r}; a missing value is null (an empty value in CSV)"),
])
@pytest.mark.parametrize("kind", ["raw", "precomputed"])
def test_numeric_text_the_etl_does_not_read_is_refused(field, text, message, kind):
    record = {**(RAW if kind == "raw" else PRECOMPUTED), field: text}
    assert _refusal(record) == f"record 0: field {field!r}: " + message.format(text)


@pytest.mark.parametrize("field, text, number", [
    ("pages", "3", 3), ("pages", " 3 ", 3), ("pages", "+3", 3), ("pages", "3.0", 3), ("pages", "3.", 3),
    ("pages", "003", 3), ("seconds", "12", 12.0), ("seconds", "1.25e1", 12.5), ("seconds", ".5", 0.5),
    ("seconds", "-0.5E+01", -5.0), ("seconds", "5.", 5.0),
])
@pytest.mark.parametrize("kind", ["raw", "precomputed"])
def test_numeric_text_the_etl_reads_scores_as_its_number(field, text, number, kind):
    base = RAW if kind == "raw" else PRECOMPUTED
    assert _rows({**base, field: text}).iloc[0].tolist() == _rows({**base, field: number}).iloc[0].tolist()


def test_a_csv_line_of_numeric_text_is_read_as_before():
    parsed = request_body.parse_request(" 4 , 50.0,Lyon,web,first,12.5,1.25e1\n", CSV)
    assert _rows(*parsed.records).iloc[0].tolist() == _rows(PRECOMPUTED).iloc[0].tolist()


def test_json_numbers_are_not_held_to_the_text_form():
    """A JSON number is no text: 1e1 parses to 10.0, a whole number, as before."""
    record = json.loads('{"pages": 1e1, "seconds": 50, "city": "Lyon", "channel": "web"}')
    assert _rows(record)["pages"].tolist() == [10.0]
