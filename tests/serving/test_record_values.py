"""The values serving refuses because training never saw them: blank required fields, missing values of
non-nullable columns, numeric text the ETL does not read. On a dataset of its own (not the sample models), read
through :func:`pipeline_code.serving.records.feature_rows`, the code every serving front calls.

``tests/jobs/test_value_rules_agreement.py`` holds serving to the ETL value by value (Spark).
"""

from __future__ import annotations

import math

import pytest

from pipeline_code import catalog
from pipeline_code.serving import records
from pipeline_code.serving.records import BadRequestError, FeatureContract

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
