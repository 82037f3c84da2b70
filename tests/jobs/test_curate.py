"""Catalog-driven curation on a real local Spark session, with generated data."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import types as T

from pipeline_code import catalog
from pipeline_code.etl.curate import (
    CORRUPT_RECORD_COLUMN,
    EVENT_DATE_COLUMN,
    QUARANTINE_REASON_COLUMN,
    QUARANTINE_RULES_COLUMN,
    check_raw_columns,
    curate,
    spark_schema,
)
from pipeline_code.sample_data.generate import (
    BAD_TIMESTAMP,
    MISSING_REQUIRED,
    NON_NUMERIC,
    OUT_OF_RANGE,
    UNKNOWN_CATEGORY,
    generate,
    generate_batch,
)
from tests.support import datasets as samples

pytestmark = pytest.mark.spark

CHURN = samples.CUSTOMER_CHURN


def raw_frame(spark, rows, columns):
    """A raw DataFrame as the CSV reader gives it: every column a nullable string."""
    schema = T.StructType([T.StructField(c, T.StringType(), True) for c in columns])
    return spark.createDataFrame([tuple(r) for r in rows], schema)


def from_pandas_text(spark, text: pd.DataFrame):
    clean = text.astype(object).where(text.notna(), None)
    return raw_frame(spark, clean.itertuples(index=False, name=None), list(text.columns))


def churn_row(**overrides):
    """One valid raw churn row (strings), with overrides."""
    row = {
        "customer_id": "C-1",
        "event_time": "2026-01-05T13:00:00Z",
        "tenure_months": "12",
        "monthly_charges": "50.5",
        "total_charges": "606.0",
        "contract_type": "one-year",
        "payment_method": "card",
        "support_calls_90d": "1",
        "region": "north",
        "gender": "female",
        "churned": "0",
    }
    row.update(overrides)
    return [row[c.name] for c in CHURN.columns]


def curate_rows(spark, *rows, dataset=CHURN):
    return curate(raw_frame(spark, rows, [c.name for c in dataset.columns]), dataset)


# --------------------------------------------------------------------------------------
# Generated batches with every corruption kind and duplicates
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=sorted(samples.DATASETS))
def generated(request, spark):
    name = request.param
    batch = generate_batch(samples.get_dataset(name), 1500, seed=21, bad_record_rate=0.04, duplicate_rate=0.02)
    dataset = samples.get_dataset(name)
    result = curate(from_pandas_text(spark, batch.frame), dataset)
    quarantine = result.quarantine.toPandas()
    yield {"batch": batch, "dataset": dataset, "result": result, "quarantine": quarantine}
    result.unpersist()


def test_given_generated_batch_when_curated_then_counts_add_up_to_the_input(generated):
    batch, result = generated["batch"], generated["result"]
    assert result.input_rows == len(batch.frame) == 1500
    assert result.quarantined_rows == len(batch.corruptions) == 60
    assert result.duplicate_rows == len(batch.duplicates) == 30
    assert result.curated_rows == 1500 - 60 - 30
    assert result.curated_rows + result.quarantined_rows + result.duplicate_rows == result.input_rows
    # Without a batch expression the whole input is one batch, named None.
    assert [batch.counts() for batch in result.batches] == [{
        "batch": None, "input_rows": 1500, "curated_rows": 1500 - 60 - 30, "quarantined_rows": 60,
        "duplicate_rows": 30, "corrected_rows": 0, "quarantine_ratio": 0.04, "quarantine_reasons": result.counts()["quarantine_reasons"]}]
    # The DataFrames hold exactly what the counts say.
    assert result.curated.count() == result.curated_rows
    assert len(generated["quarantine"]) == result.quarantined_rows
    assert result.duplicates.count() == result.duplicate_rows


def test_curated_columns_have_their_catalog_types_plus_an_event_date_partition(generated):
    dataset, curated = generated["dataset"], generated["result"].curated
    assert [(f.name, f.dataType) for f in curated.schema.fields] == [
        (f.name, f.dataType) for f in spark_schema(dataset).fields
    ]
    types = dict((f.name, f.dataType) for f in curated.schema.fields)
    assert types["event_time"] == T.TimestampType()
    assert types[EVENT_DATE_COLUMN] == T.DateType()
    keys = curated.select(dataset.record_identifier, "event_time").distinct().count()
    assert keys == generated["result"].curated_rows  # one record per key
    # The partitions a write of the curated rows touches, found with the counts.
    dates = sorted(row[0] for row in curated.select(EVENT_DATE_COLUMN).distinct().collect())
    assert list(generated["result"].curated_dates) == dates and len(dates) > 1


EXPECTED_RULE = {
    NON_NUMERIC: lambda c: "not an integer" if c.dtype == catalog.INTEGER else "not a number",
    MISSING_REQUIRED: lambda c: "missing required value",
    UNKNOWN_CATEGORY: lambda c: "not an allowed value",
    BAD_TIMESTAMP: lambda c: "not a timestamp",
}


def test_each_corruption_kind_is_quarantined_with_the_column_and_rule_and_raw_values(generated):
    batch, dataset, quarantine = generated["batch"], generated["dataset"], generated["quarantine"]
    by_id = quarantine.set_index(dataset.record_identifier)
    for corruption in batch.corruptions.itertuples(index=False):
        record_id = batch.frame.at[corruption.row, dataset.record_identifier]
        reason = by_id.at[record_id, QUARANTINE_REASON_COLUMN]
        column = dataset.column(corruption.column)
        if corruption.kind == OUT_OF_RANGE:
            rule = "below minimum" if float(corruption.value) < (column.minimum or 0) else "above maximum"
        else:
            rule = EXPECTED_RULE[corruption.kind](column)
        assert reason.startswith(f"{column.name}: {rule}"), (corruption, reason)
        if corruption.kind != MISSING_REQUIRED:
            assert f": '{corruption.value}'" in reason  # the offending raw value is quoted
        # The original raw values are kept, untouched.
        raw = by_id.at[record_id, column.name]
        assert (raw is None) if corruption.value is None else raw == corruption.value


def test_reason_counts_match_the_injected_corruptions(generated):
    batch, result = generated["batch"], generated["result"]
    timestamps = (batch.corruptions["kind"] == BAD_TIMESTAMP).sum()
    assert result.quarantine_reasons["event_time: not a timestamp"] == timestamps
    assert sum(result.quarantine_reasons.values()) == result.quarantined_rows  # one rule broken per bad row
    assert all(len(rules) == 1 for rules in generated["quarantine"][QUARANTINE_RULES_COLUMN])


def test_nullable_nulls_stay_null_in_the_curated_output(generated):
    dataset, curated = generated["dataset"], generated["result"].curated.toPandas()
    nullable_with_nulls = [c.name for c in dataset.columns if c.nullable and curated[c.name].isna().any()]
    assert len(nullable_with_nulls) >= 2
    for column in dataset.columns:
        if not column.nullable:
            assert curated[column.name].notna().all(), column.name


# --------------------------------------------------------------------------------------
# Hand-made rows: exact rule semantics. All cases go through ONE curate() call (each
# call costs about a second of Spark planning); every case has its own record id.
# --------------------------------------------------------------------------------------
RULE_CASES = {
    "int-fraction": ({"tenure_months": "12.5"}, "tenure_months: not an integer: '12.5'"),
    "int-overflow": ({"tenure_months": "99999999999999999999"}, "tenure_months: not an integer: '99999999999999999999'"),
    "nan": ({"monthly_charges": "NaN"}, "monthly_charges: not a number: 'NaN'"),
    "infinity": ({"monthly_charges": "Infinity"}, "monthly_charges: not a number: 'Infinity'"),
    "overflow": ({"monthly_charges": "1e999"}, "monthly_charges: not a number: '1e999'"),
    "java-suffix": ({"monthly_charges": "1.5d"}, "monthly_charges: not a number: '1.5d'"),
    "decimal-comma": ({"monthly_charges": "12,5"}, "monthly_charges: not a number: '12,5'"),
    "above-max": ({"tenure_months": "601"}, "tenure_months: above maximum 600: '601'"),
    "below-min": ({"tenure_months": "-1"}, "tenure_months: below minimum 0: '-1'"),
    "double-below-min": ({"total_charges": "-0.01"}, "total_charges: below minimum 0: '-0.01'"),
    "feb-30": ({"event_time": "2026-02-30T10:00:00Z"}, "event_time: not a timestamp: '2026-02-30T10:00:00Z'"),
    "date-only": ({"event_time": "2026-01-05"}, "event_time: not a timestamp: '2026-01-05'"),
    # Year 0000 is no year (Spark's parser read it as 1 BC, and collecting its event date crashed the whole job).
    "year-zero": ({"event_time": "0000-06-01T00:00:00Z"}, "event_time: not a timestamp: '0000-06-01T00:00:00Z'"),
    "empty-time": ({"event_time": ""}, "event_time: missing required value"),
    "blank-category": ({"contract_type": "   "}, "contract_type: missing required value"),
    "label-range": ({"churned": "2"}, "churned: above maximum 1: '2'"),
    # A typo'd year: curated, the online store would keep it over every later record of the customer.
    "future-year": ({"event_time": "2062-01-05T13:00:00Z"},
                    "event_time: more than 300 s after the run started (future-dated): '2062-01-05T13:00:00Z'"),
    "several": (
        {"tenure_months": "abc", "region": None, "gender": "robot"},
        "tenure_months: not an integer: 'abc'; region: missing required value; gender: not an allowed value: 'robot'",
    ),
}
VALID_CASES = {
    "normalised": {"contract_type": " Month-To-Month ", "tenure_months": " 12.0 ", "monthly_charges": "5e1"},
    "lowest": {"tenure_months": "0", "total_charges": ""},
    "highest": {"tenure_months": "600", "payment_method": None, "gender": "", "support_calls_90d": " "},
}
TIMESTAMP_CASES = {
    "ts-iso-z": ("2026-01-05T13:00:00Z", "2026-01-05 13:00:00"),
    "ts-space": ("2026-01-05 13:00:00", "2026-01-05 13:00:00"),
    "ts-offset": ("2026-01-05T14:00:00+01:00", "2026-01-05 13:00:00"),
    "ts-offset-compact": ("2026-01-05T14:00:00+0100", "2026-01-05 13:00:00"),
    "ts-millis": ("2026-01-05T13:00:00.250Z", "2026-01-05 13:00:00.250000"),
    "ts-next-utc-day": ("2026-01-05T23:30:00-02:00", "2026-01-06 01:30:00"),
}


@pytest.fixture(scope="module")
def cases(spark):
    rows = [churn_row(customer_id=case, **overrides) for case, (overrides, _) in RULE_CASES.items()]
    rows += [churn_row(customer_id=f" {case} ", **overrides) for case, overrides in VALID_CASES.items()]
    rows += [churn_row(customer_id=case, event_time=text) for case, (text, _) in TIMESTAMP_CASES.items()]
    result = curate_rows(spark, *rows)
    curated = result.curated.selectExpr(
        "*", "date_format(event_time, 'yyyy-MM-dd HH:mm:ss.SSSSSS') AS utc_text"
    ).collect()
    yield {
        "result": result,
        "curated": {r.customer_id: r for r in curated},
        "quarantine": {r.customer_id: r for r in result.quarantine.collect()},
    }
    result.unpersist()


def test_hand_made_cases_land_where_expected(cases):
    result = cases["result"]
    assert result.quarantined_rows == len(RULE_CASES)
    assert result.curated_rows == len(VALID_CASES) + len(TIMESTAMP_CASES)
    assert result.duplicate_rows == 0


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_each_rule_quarantines_with_a_precise_reason(cases, case):
    assert cases["quarantine"][case][QUARANTINE_REASON_COLUMN] == RULE_CASES[case][1]


def test_several_broken_rules_are_all_listed_in_catalog_column_order(cases):
    row = cases["quarantine"]["several"]
    assert list(row[QUARANTINE_RULES_COLUMN]) == [
        "tenure_months: not an integer",
        "region: missing required value",
        "gender: not an allowed value",
    ]
    assert row["gender"] == "robot" and row["region"] is None  # raw values as received
    for rule in row[QUARANTINE_RULES_COLUMN]:
        assert cases["result"].quarantine_reasons[rule] >= 1


def test_each_quarantined_rows_reason_names_its_broken_rules_in_their_order_and_only_its_rows_get_one(cases):
    """The reason text is written for the quarantined rows alone (the rows the counting job stages carry the rule keys,
    not the text: most rows break none), from the checks that gave the row its rules: one fragment per rule, in the
    rules' order."""
    for case, row in cases["quarantine"].items():
        reason, rules = row[QUARANTINE_REASON_COLUMN], list(row[QUARANTINE_RULES_COLUMN])
        assert rules, case
        positions = [reason.find(rule) for rule in rules]
        assert positions[0] == 0 and positions == sorted(positions) and -1 not in positions, (case, reason, rules)
        assert reason.count("; ") >= len(rules) - 1
    assert QUARANTINE_REASON_COLUMN not in cases["result"]._staged.columns


def test_values_are_trimmed_categoricals_lowercased_and_integer_floats_accepted(cases):
    row = cases["curated"]["normalised"]  # the id was " normalised " in the raw data
    assert (row.contract_type, row.tenure_months, row.monthly_charges) == ("month-to-month", 12, 50.0)


def test_bounds_are_inclusive_and_nullable_empties_become_null(cases):
    lowest, highest = cases["curated"]["lowest"], cases["curated"]["highest"]
    assert lowest.tenure_months == 0 and lowest.total_charges is None
    assert highest.tenure_months == 600
    assert (highest.payment_method, highest.gender, highest.support_calls_90d) == (None, None, None)


@pytest.mark.parametrize("case", sorted(TIMESTAMP_CASES))
def test_timestamp_forms_parse_to_the_same_utc_instant_and_event_date(cases, case):
    expected_utc = TIMESTAMP_CASES[case][1]
    row = cases["curated"][case]
    assert row.utc_text.startswith(expected_utc)
    assert row[EVENT_DATE_COLUMN] == dt.date.fromisoformat(expected_utc[:10])


def test_event_date_is_the_utc_date_whatever_the_session_time_zone(spark):
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        result = curate_rows(spark, churn_row(event_time="2026-01-06T02:00:00Z"))  # still Jan 5 in New York
        assert result.curated.collect()[0][EVENT_DATE_COLUMN] == dt.date(2026, 1, 6)
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)


RUN_START = dt.datetime(2026, 1, 5, 13, 0, tzinfo=dt.timezone.utc)


def test_an_event_time_ahead_of_the_run_by_more_than_the_clock_skew_allowed_is_quarantined(spark):
    """GIVEN records dated up to 5 minutes after the run's start (clock skew) and one second more, or two hours more
    (a UTC+2 local time written without its offset) WHEN curated THEN the first is kept, the others quarantined: the
    online store would keep a future-dated record over every later record of that id (docs/environment.md, Future-dated
    records)."""
    result = curate(raw_frame(spark, [
        churn_row(customer_id="at-limit", event_time="2026-01-05T13:05:00Z"),
        churn_row(customer_id="past-limit", event_time="2026-01-05T13:05:01Z"),
        churn_row(customer_id="local-time", event_time="2026-01-05 15:00:00"),
    ], [c.name for c in CHURN.columns]), CHURN, now=RUN_START)
    assert [r.customer_id for r in result.curated.collect()] == ["at-limit"]
    reasons = {r.customer_id: r[QUARANTINE_REASON_COLUMN] for r in result.quarantine.collect()}
    assert reasons == {
        "past-limit": "event_time: more than 300 s after the run started (future-dated): '2026-01-05T13:05:01Z'",
        "local-time": "event_time: more than 300 s after the run started (future-dated): '2026-01-05 15:00:00'",
    }
    assert result.quarantine_reasons == {"event_time: more than 300 s after the run started (future-dated)": 2}


def test_a_future_dated_record_does_not_displace_the_valid_one_of_its_id(spark):
    result = curate(raw_frame(spark, [churn_row(), churn_row(event_time="2062-01-05T13:00:00Z")],
                              [c.name for c in CHURN.columns]), CHURN, now=RUN_START)
    assert (result.curated_rows, result.quarantined_rows) == (1, 1)
    assert result.curated.collect()[0].event_time == dt.datetime(2026, 1, 5, 13, 0)


def test_duplicates_keep_the_most_complete_record_and_are_counted(spark):
    result = curate_rows(
        spark,
        churn_row(payment_method=None, gender=None),  # same key, least complete
        churn_row(),  # the complete one: kept
        churn_row(),  # exact copy
        churn_row(event_time="2026-01-05 13:00:00"),  # same instant, other spelling: same key
        churn_row(customer_id="C-2"),
    )
    assert (result.input_rows, result.curated_rows, result.duplicate_rows, result.quarantined_rows) == (5, 2, 3, 0)
    kept = {r.customer_id: r for r in result.curated.collect()}
    assert kept["C-1"].payment_method == "card" and kept["C-1"].gender == "female"
    assert result.duplicates.count() == 3


def test_an_invalid_copy_never_displaces_the_valid_record(spark):
    result = curate_rows(spark, churn_row(tenure_months="oops"), churn_row())
    assert (result.curated_rows, result.quarantined_rows, result.duplicate_rows) == (1, 1, 0)


def test_the_latest_valid_landing_wins_and_only_a_later_valid_landing_corrects_a_bad_row(spark):
    # GIVEN four landings (the arrival column orders them) of record C-1: valid, bad, valid but less complete, bad;
    # and C-2 valid then bad, C-3 bad then valid, a row with no identifier landing last
    columns = [c.name for c in CHURN.columns] + ["_arrival"]
    rows = [
        churn_row() + ["1"],
        churn_row(tenure_months="x") + ["2"],
        churn_row(payment_method=None) + ["3"],
        churn_row(region=None) + ["4"],
        churn_row(customer_id="C-2", monthly_charges="60.5") + ["1"],
        churn_row(customer_id="C-2", tenure_months="y") + ["2"],
        churn_row(customer_id="C-3", tenure_months="z") + ["1"],
        churn_row(customer_id="C-3", total_charges="700.0") + ["2"],
        churn_row(customer_id=None) + ["9"],
    ]
    # WHEN curated with that landing order, each row its own batch (its landing)
    from pyspark.sql import functions as F

    result = curate(raw_frame(spark, rows, columns), CHURN, metadata_columns=("_arrival",), arrival_column="_arrival",
                    batch=F.concat(F.col("customer_id"), F.lit("@"), F.col("_arrival")))
    # THEN the latest valid landing of a record is curated, whatever the bad landings after it and its blanks
    curated = {r.customer_id: r for r in result.curated.collect()}
    assert sorted(curated) == ["C-1", "C-2", "C-3"]
    assert curated["C-1"].payment_method is None  # landing 3, not the more complete landing 1
    assert (curated["C-2"].monthly_charges, curated["C-3"].total_charges) == (60.5, 700.0)
    assert sorted(r.payment_method for r in result.duplicates.collect()) == ["card"]
    assert (result.curated_rows, result.duplicate_rows, result.quarantined_rows) == (3, 1, 5)
    # AND a bad row counts as corrected only when a valid landing of its record came later (and it names a record)
    corrected = {b.batch: b.corrected_rows for b in result.batches if b.quarantined_rows}
    assert corrected == {"C-1@2": 1, "C-1@4": 0, "C-2@2": 0, "C-3@1": 1, None: 0}


def test_malformed_csv_rows_in_the_corrupt_record_column_are_quarantined(spark):
    columns = [c.name for c in CHURN.columns] + [CORRUPT_RECORD_COLUMN]
    line = "C-9,2026-01-05T13:00:00Z,12,50.5,606.0,one-year,card,1,north,female,0,EXTRA"
    rows = [churn_row() + [None], churn_row(customer_id="C-9") + [line]]
    result = curate(raw_frame(spark, rows, columns), CHURN)
    assert (result.curated_rows, result.quarantined_rows) == (1, 1)
    quarantined = result.quarantine.collect()[0]
    assert quarantined[QUARANTINE_REASON_COLUMN] == (
        f"_corrupt_record: malformed CSV row (wrong number of fields): '{line}'"
    )
    assert quarantined[CORRUPT_RECORD_COLUMN] == line


def test_empty_input_gives_empty_outputs_and_zero_counts(spark):
    result = curate_rows(spark)
    assert (result.input_rows, result.curated_rows, result.quarantined_rows, result.duplicate_rows) == (0, 0, 0, 0)
    assert result.quarantine_ratio == 0.0
    assert result.batches == () and result.counts()["batches"] == []


def test_counts_per_batch_come_from_the_batch_expression_the_unnamed_batch_first(spark):
    # GIVEN rows of batches "b" and "a" (a metadata column names them) and a row of none
    from pyspark.sql import functions as F

    columns = [c.name for c in CHURN.columns] + ["_batch"]
    rows = [
        churn_row(payment_method=None) + ["b"],  # a less complete copy of C-1: the duplicate
        churn_row() + ["a"],
        churn_row(customer_id="C-2", tenure_months="x") + ["a"],
        churn_row(customer_id="C-3") + [None],
    ]
    # WHEN curated with that column as the batch
    result = curate(raw_frame(spark, rows, columns), CHURN, metadata_columns=("_batch",), batch=F.col("_batch"))
    # THEN each batch has its own counts and reasons, which add up to the run's
    assert [(b.batch, b.input_rows, b.curated_rows, b.quarantined_rows, b.duplicate_rows, b.quarantine_reasons)
            for b in result.batches] == [
        (None, 1, 1, 0, 0, {}), ("a", 2, 1, 1, 0, {"tenure_months: not an integer": 1}), ("b", 1, 0, 0, 1, {})]
    assert [b.quarantine_ratio for b in result.batches] == [0.0, 0.5, 0.0]
    assert (result.input_rows, result.curated_rows, result.quarantined_rows, result.duplicate_rows) == (4, 2, 1, 1)
    # AND the batch is only counted: no output carries it beyond the metadata column it came from
    assert result.quarantine.columns[-3:] == ["_batch", QUARANTINE_REASON_COLUMN, QUARANTINE_RULES_COLUMN]
    assert "_batch" not in result.curated.columns


# --------------------------------------------------------------------------------------
# Schema changes fail loudly
# --------------------------------------------------------------------------------------
def test_missing_and_unexpected_columns_raise_naming_them(spark):
    columns = [c.name for c in CHURN.columns if c.name != "region"] + ["Region", "loyalty_tier"]
    frame = raw_frame(spark, [], columns)
    with pytest.raises(ValueError) as excinfo:
        curate(frame, CHURN)
    message = str(excinfo.value)
    assert "missing expected columns ['region']" in message
    assert "unexpected columns ['Region', 'loyalty_tier']" in message


def test_metadata_columns_are_allowed_and_carried_to_the_quarantine(spark):
    columns = [c.name for c in CHURN.columns] + ["_source_file"]
    rows = [churn_row(region="mars") + ["s3://bucket/raw/file.csv"]]
    result = curate(raw_frame(spark, rows, columns), CHURN, metadata_columns=("_source_file",))
    assert result.quarantine.collect()[0]["_source_file"] == "s3://bucket/raw/file.csv"
    assert "_source_file" not in result.curated.columns


def test_typed_raw_columns_are_rejected(spark):
    frame = spark.createDataFrame(generate(samples.CUSTOMER_CHURN, 3).astype({"event_time": str}))
    with pytest.raises(ValueError, match="are not strings: read the raw data with inferSchema=false"):
        curate(frame, CHURN)


def test_column_check_is_pure_python_and_order_insensitive():
    check_raw_columns(reversed([c.name for c in CHURN.columns]), CHURN)
    with pytest.raises(ValueError, match=r"missing expected columns \['churned'\]"):
        check_raw_columns([c.name for c in CHURN.columns][:-1], CHURN)
