"""The ETL and serving refuse the same raw values: one declaration, two readers that agree value by value.

The ETL quarantines a record whose value breaks its column's declared range or allowed set; serving
answers 400 for the same value in a raw request instead of scoring what training never saw.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline_code import catalog
from pipeline_code.sample_data.generate import generate
from pipeline_code.serving import records
from pipeline_code.serving.errors import BadRequestError
from pipeline_code.serving.records import FeatureContract

from tests.support.datasets import CUSTOMER_CHURN

MUTATIONS = [
    ("tenure_months", "0"), ("tenure_months", "600"), ("tenure_months", "601"), ("tenure_months", "-1"),
    ("tenure_months", "1e20"), ("monthly_charges", "10000"), ("monthly_charges", "10000.01"),
    ("monthly_charges", "-0.5"), ("contract_type", " Two-Year "), ("contract_type", "weekly"),
    ("region", "NORTH"), ("region", "north-east"), ("support_calls_90d", "1001"), ("support_calls_90d", "3"),
    ("total_charges", "-1"), ("payment_method", "Cash"),
]


@pytest.mark.spark
def test_the_etl_and_serving_refuse_exactly_the_same_values(spark):
    from pipeline_code.etl.curate import curate

    # GIVEN one valid raw record per mutation, each with one field set to a boundary or outside value
    base = generate(CUSTOMER_CHURN, len(MUTATIONS), seed=9, as_text=True)
    for row, (column, value) in enumerate(MUTATIONS):
        base.loc[row, column] = value
    # WHEN the ETL curates them and serving reads each as a raw request
    result = curate(spark.createDataFrame(base.astype(object).where(base.notna(), None)), CUSTOMER_CHURN)
    quarantined = set(result.quarantine.toPandas()["customer_id"])
    contract = FeatureContract.create(CUSTOMER_CHURN, [f.name for f in CUSTOMER_CHURN.features if f.name != "gender"])
    refused = set()
    for row in range(len(MUTATIONS)):
        record = {k: v for k, v in base.iloc[row].items() if v is not None}
        try:
            records.feature_rows(contract, [record])
        except BadRequestError:
            refused.add(base.iloc[row]["customer_id"])
    # THEN both refuse exactly the values outside the declaration, and accept the boundaries
    expected = {base.iloc[i]["customer_id"] for i, (c, v) in enumerate(MUTATIONS)
                if (c, v) in {("tenure_months", "601"), ("tenure_months", "-1"), ("tenure_months", "1e20"),
                              ("monthly_charges", "10000.01"), ("monthly_charges", "-0.5"), ("contract_type", "weekly"),
                              ("region", "north-east"), ("support_calls_90d", "1001"), ("total_charges", "-1"),
                              ("payment_method", "Cash")}}
    assert quarantined == expected
    assert refused == expected


FREE_TEXT = catalog.parse_dataset("shops", {
    "record_identifier": "shop_id", "event_time": "event_time", "labels": ["closed"],
    "columns": {
        "shop_id": {"type": "string", "nullable": False}, "event_time": {"type": "timestamp", "nullable": False},
        "city": {"type": "string"}, "region": {"type": "string", "allowed": ["north", "south"]},
        "closed": {"type": "integer", "min": 0, "max": 1},
    },
    "features": {"city": "city", "region": "region"},
})
# Free text and a closed set, padded, blank and with the whitespace Spark's trim keeps (a tab, a no-break space).
TEXT_VALUES = [("NYC", "north"), (" NYC", " North "), ("NYC  ", "SOUTH"), ("   ", "south"), ("", " "),
               ("\tNYC", "north"), ("NYC\u00a0", "north"), ("New  York", "north")]


@pytest.mark.spark
def test_serving_reads_text_fields_as_the_etl_curates_them(spark):
    from pipeline_code.etl.curate import curate
    from pipeline_code.features.compute import compute_features

    # GIVEN raw records whose text is padded, blank or carries other whitespace, in a free-text and a closed column
    raw = [{"shop_id": f"s{i}", "event_time": "2026-01-01T00:00:00Z", "city": city, "region": region, "closed": "0"}
           for i, (city, region) in enumerate(TEXT_VALUES)]
    # WHEN the ETL curates them (the feature job computes from curated rows) and serving reads each as a raw request
    curated = curate(spark.createDataFrame(raw), FREE_TEXT).curated.toPandas().sort_values("shop_id")
    trained_on = compute_features(curated, FREE_TEXT).set_index(curated["shop_id"].to_numpy())
    contract = FeatureContract.create(FREE_TEXT, ["city", "region"])
    served = records.feature_rows(contract, [{k: v for k, v in r.items() if k != "closed"} for r in raw]).frame
    # THEN every feature value serving scores is the one training saw (a blank is missing in both)
    for i, record in enumerate(raw):
        for feature in ("city", "region"):
            seen = trained_on.loc[record["shop_id"], feature]
            assert (served.loc[i, feature], i) == (None if pd.isna(seen) else seen, i), feature


# Numeric text Python's float() reads but the ETL's patterns (catalog.INTEGER_PATTERN / DOUBLE_PATTERN) do not, the
# forms both read, and blank text in a required column (tenure_months, monthly_charges, contract_type and region are
# required: nullable: false).
TEXT_MUTATIONS = [
    ("tenure_months", "1_0"), ("tenure_months", "\u0662\u0661"), ("monthly_charges", "\uff14\uff13.\uff14\uff12"),
    ("tenure_months", "1e1"), ("tenure_months", "\t12"), ("total_charges", "1_000.5"), ("region", ""),
    ("contract_type", "   "), ("monthly_charges", ""),
    ("tenure_months", "12.0"), ("tenure_months", "+12"), ("tenure_months", " 12 "), ("tenure_months", "12."),
    ("monthly_charges", "4.5e1"), ("monthly_charges", ".5"), ("total_charges", "1E+3"),
]
REFUSED_TEXT = TEXT_MUTATIONS[:9]


@pytest.mark.spark
def test_the_etl_and_serving_refuse_the_same_numeric_and_blank_text(spark):
    from pipeline_code.etl.curate import curate

    # GIVEN one valid raw record per mutation, each with one field set to numeric or blank text
    base = generate(CUSTOMER_CHURN, len(TEXT_MUTATIONS), seed=11, as_text=True)
    for row, (column, value) in enumerate(TEXT_MUTATIONS):
        base.loc[row, column] = value
    # WHEN the ETL curates them and serving reads each as a raw request
    result = curate(spark.createDataFrame(base.astype(object).where(base.notna(), None)), CUSTOMER_CHURN)
    quarantined = set(result.quarantine.toPandas()["customer_id"])
    contract = FeatureContract.create(CUSTOMER_CHURN, [f.name for f in CUSTOMER_CHURN.features if f.name != "gender"])
    refused = set()
    for row in range(len(TEXT_MUTATIONS)):
        record = {k: v for k, v in base.iloc[row].items() if v is not None}
        try:
            records.feature_rows(contract, [record])
        except BadRequestError:
            refused.add(base.iloc[row]["customer_id"])
    # THEN both refuse the text the ETL's patterns do not match and blank required fields, and read the rest
    expected = {base.iloc[i]["customer_id"] for i, mutation in enumerate(TEXT_MUTATIONS) if mutation in REFUSED_TEXT}
    assert quarantined == expected
    assert refused == expected


def test_the_curate_job_reads_numbers_with_the_catalogs_patterns():
    from pipeline_code.etl import curate

    assert (curate._INTEGER_RE, curate._DOUBLE_RE) == (catalog.INTEGER_PATTERN, catalog.DOUBLE_PATTERN)


# Date text: the forms the ETL curates as a date (catalog.DATE_PATTERN, a real day, trimmed of spaces) and those it
# quarantines as "not a date"; the local run lands a file's text unchanged and curates it with the same job.
DATE_VALUES = [("2019-04-12", True), (" 2019-04-12 ", True), ("2024-02-29", True), ("0001-01-01", True),
               ("9999-12-31", True), ("2023-02-29", False), ("2026-02-30", False), ("2019-13-01", False),
               ("2019-4-12", False), ("12/04/2019", False), ("20190412", False), ("2019-04-12T00:00:00Z", False),
               ("2019-04-12 00:00:00", False), ("\t2019-04-12", False), ("2019-04-12\n", True),
               ("2019-04-12\r\n", True),
               ("0000-01-01", False), ("+2019-04-12", False), ("2019-04-1a", False)]


@pytest.mark.spark
def test_the_etl_and_serving_read_the_same_date_values_and_compute_the_same_age(spark):
    from pipeline_code.etl.curate import RULE_NOT_DATE, curate
    from pipeline_code.features.compute import compute_features
    from tests.support.datasets import LICENCES

    # GIVEN one valid raw policy per date value, its licence_issued set to the value
    base = generate(LICENCES, len(DATE_VALUES), seed=13, as_text=True)
    for row, (value, _) in enumerate(DATE_VALUES):
        base.loc[row, "licence_issued"] = value
    # WHEN the ETL curates them (on a session in another time zone) and serving reads each as a raw request
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Pacific/Kiritimati")
    try:
        result = curate(spark.createDataFrame(base.astype(object).where(base.notna(), None)), LICENCES)
        curated = result.curated.toPandas()
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    quarantined = set(result.quarantine.toPandas()["policy_id"])
    contract = FeatureContract.create(LICENCES, ["licence_age_days", "vehicle_value", "region"])
    served = {}
    for row in range(len(DATE_VALUES)):
        record = {k: v for k, v in base.iloc[row].items() if v is not None}
        try:
            served[record["policy_id"]] = records.feature_rows(contract, [record]).frame.loc[0, "licence_age_days"]
        except BadRequestError:
            pass
    # THEN both refuse exactly the text that is no date, the ETL with the date rule
    bad = {base.iloc[i]["policy_id"] for i, (_, good) in enumerate(DATE_VALUES) if not good}
    assert quarantined == bad
    assert set(base["policy_id"]) - set(served) == bad
    assert result.quarantine_reasons == {f"licence_issued: {RULE_NOT_DATE}": len(bad)}
    # AND the age the feature job computes from the curated date is the one serving computes from the raw text
    # (the curated times came out naive in the session's zone, as the feature job's mapInPandas hands them)
    trained_on = compute_features(curated, LICENCES, naive_time_zone="Pacific/Kiritimati").set_index(
        curated["policy_id"].to_numpy())["licence_age_days"]
    assert {k: int(v) for k, v in trained_on.items()} == {k: int(v) for k, v in served.items()}


def test_the_curate_job_reads_dates_with_the_catalogs_pattern():
    from pipeline_code.etl import curate

    assert curate._DATE_RE == catalog.DATE_PATTERN


# Timestamps at and beyond the range the jobs hold (contract.EARLIEST_TIMESTAMP to before contract.LATEST_TIMESTAMP:
# pandas' datetime64[ns], 1677-09-21T00:12:43Z to 2262-04-11T23:47:16Z): the event time and a timestamp column read by
# days_since, as (event time, quoted_at, held). The event time's later end is the future rule's; an offset counts.
TIMESTAMP_RANGE_VALUES = [
    ("1677-09-22T00:00:00Z", "1677-09-22T00:00:00Z", True), ("2026-01-05T13:00:00Z", "2262-04-10T23:59:59.999Z", True),
    ("1900-01-01T00:00:00Z", "1899-12-31T23:59:59Z", True), ("2026-01-05T13:00:00Z", "1677-09-22T01:00:00+01:00", True),
    ("1500-01-01T00:00:00Z", "2019-04-12T00:00:00Z", False), ("2026-01-05T13:00:00Z", "1500-01-01T00:00:00Z", False),
    ("1677-09-21T23:59:59Z", "2019-04-12T00:00:00Z", False), ("2026-01-05T13:00:00Z", "2262-04-11T00:00:00Z", False),
    ("2026-01-05T13:00:00Z", "2300-01-01T00:00:00Z", False), ("0001-01-01T00:00:00Z", "2019-04-12T00:00:00Z", False),
    ("2026-01-05T13:00:00Z", "1677-09-22T00:59:59+01:00", False), ("2026-01-05T13:00:00Z", "9999-12-31T23:59:59Z", False),
]


@pytest.mark.spark
def test_a_timestamp_column_no_feature_reads_is_curated_whatever_its_year(spark):
    """GIVEN a dataset with a timestamp column no feature reads (valid_to, an export's "no end" sentinel
    9999-12-31T23:59:59Z, or a typo'd 1500) - curated at ae52a04, and never handed to pandas by the feature job, which
    selects only the event time and the columns its features read - WHEN the curate job reads them (as the first run
    after an upgrade does, a full read of every raw file) THEN every record is curated: the range rule guards only the
    times the jobs hold, so an upgrade does not quarantine rows it curated before (or fail its batch on them)."""
    from pipeline_code.etl.curate import curate
    from pipeline_code.features.ingestion.spark_engine import compute_features_spark
    from tests.support.datasets import LICENCES_DECLARATION

    declaration = {**LICENCES_DECLARATION,
                   "columns": {**LICENCES_DECLARATION["columns"], "valid_to": {"type": "timestamp"}}}
    dataset = catalog.parse_dataset("licences", declaration)
    base = generate(dataset, 3, seed=23, as_text=True)
    base["valid_to"] = ["9999-12-31T23:59:59Z", "1500-01-01T00:00:00Z", "2027-01-01T00:00:00Z"]
    result = curate(spark.createDataFrame(base.astype(object).where(base.notna(), None)), dataset)
    assert result.quarantine_reasons == {}
    assert result.curated.count() == 3
    # AND the feature job computes their features (it selects no valid_to)
    assert compute_features_spark(result.curated, dataset).count() == 3


@pytest.mark.spark
def test_the_etl_and_serving_refuse_the_same_timestamps_outside_the_range_the_feature_job_holds(spark):
    from pipeline_code.core.contract import RULE_TIMESTAMP_RANGE
    from pipeline_code.etl.curate import curate
    from pipeline_code.features.compute import compute_features
    from tests.support.datasets import LICENCES

    # GIVEN one valid raw policy per value pair, its event time and quoted_at (read by days_since) set to them
    base = generate(LICENCES, len(TIMESTAMP_RANGE_VALUES), seed=17, as_text=True)
    for row, (event_time, quoted_at, _) in enumerate(TIMESTAMP_RANGE_VALUES):
        base.loc[row, "event_time"], base.loc[row, "quoted_at"] = event_time, quoted_at
    base["licence_issued"] = base["previous_claim"] = "1677-09-22"
    # WHEN the ETL curates them and serving reads each as a raw request
    result = curate(spark.createDataFrame(base.astype(object).where(base.notna(), None)), LICENCES)
    quarantined = set(result.quarantine.toPandas()["policy_id"])
    contract = FeatureContract.create(LICENCES, ["licence_age_days", "quote_age_days", "vehicle_value", "region"])
    refused = {}
    for row in range(len(TIMESTAMP_RANGE_VALUES)):
        record = {k: v for k, v in base.iloc[row].items() if v is not None and k != "claimed"}
        try:
            records.feature_rows(contract, [record])
        except BadRequestError as exc:
            refused[record["policy_id"]] = str(exc)
    # THEN both refuse exactly the times outside the range, the ETL with the range rule naming the column
    bad = {base.iloc[i]["policy_id"] for i, (_, _, held) in enumerate(TIMESTAMP_RANGE_VALUES) if not held}
    assert quarantined == bad
    assert set(refused) == bad
    assert all("outside the times the jobs hold" in message for message in refused.values()), refused
    assert result.quarantine_reasons == {f"event_time: {RULE_TIMESTAMP_RANGE}": 3,
                                         f"quoted_at: {RULE_TIMESTAMP_RANGE}": 5}
    # AND the feature job computes every curated record (as the Glue job hands it: naive times in the session's zone)
    curated = result.curated.toPandas()
    assert len(curated) == len(TIMESTAMP_RANGE_VALUES) - len(bad)
    zone = spark.conf.get("spark.sql.session.timeZone")
    assert compute_features(curated, LICENCES, naive_time_zone=zone)["quote_age_days"].notna().all()
