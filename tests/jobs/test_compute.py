"""Feature-expression interpreter: operator semantics, dtypes and agreement with the catalog."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline_code import catalog
from pipeline_code.catalog import Expr, bucket, clip, coalesce, col, log1p, product, ratio
from pipeline_code.features.compute import (
    PANDAS_DTYPES,
    FeatureComputationError,
    compute_features,
    evaluate,
    feature_frame_schema,
    format_event_time,
    implemented_operators,
)
from pipeline_code.sample_data.generate import generate
from tests.support import datasets as samples
from tests.support.vectorised import python_steps


def values(series: pd.Series) -> list:
    """Series as a plain list with every null as None (NaN/NA/None compare equal)."""
    return [None if pd.isna(v) else v for v in series.tolist()]


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": [10.0, 1.0, np.nan, 2.0, 0.0, -3.0],
            "b": [2.0, 0.0, 2.0, np.nan, 5.0, 4.0],
            "n": pd.array([-5, 10, 99, None, 50, 0], dtype="Int64"),
            "s": ["x", None, "z", None, "w", "v"],
            "t": [None, "fallback", None, "t4", None, "t6"],
        }
    )


# --------------------------------------------------------------------------------------
# Operators
# --------------------------------------------------------------------------------------
def test_operator_table_implements_exactly_the_catalog_operators():
    assert set(implemented_operators()) == set(catalog.OPERATORS)


def test_col_returns_the_column_keeping_integers_exact_and_text_nulls_as_none(frame):
    assert values(evaluate(col("a"), frame)) == [10.0, 1.0, None, 2.0, 0.0, -3.0]
    ints = evaluate(col("n"), frame)
    assert str(ints.dtype) == "Int64"
    assert values(ints) == [-5, 10, 99, None, 50, 0]
    assert evaluate(col("s"), frame).tolist() == ["x", None, "z", None, "w", "v"]


def test_ratio_is_null_on_zero_denominator_or_either_side_null(frame):
    result = evaluate(ratio("a", "b"), frame)
    assert values(result) == [5.0, None, None, None, 0.0, -0.75]
    assert result.dtype == "float64"
    assert not np.isinf(result.to_numpy()).any()


def test_log1p_is_null_for_negatives_and_nulls(frame):
    data = pd.DataFrame({"x": [0.0, math.e - 1, -1.0, -0.5, np.nan, 99.0]})
    result = values(evaluate(log1p("x"), data))
    assert result[0] == 0.0 and result[1] == pytest.approx(1.0)
    assert result[2:5] == [None, None, None]
    assert result[5] == pytest.approx(math.log(100.0))


def test_clip_limits_to_bounds_keeps_nulls_and_integer_type(frame):
    ints = evaluate(clip("n", 0, 50), frame)
    assert str(ints.dtype) == "Int64"
    assert values(ints) == [0, 10, 50, None, 50, 0]
    floats = evaluate(clip("a", -1.5, 5), frame)
    assert values(floats) == [5.0, 1.0, None, 2.0, 0.0, -1.5]


@pytest.mark.parametrize("bounds", [(0, 50), (0.0, 50.0), (0.5, 3), (0, 2.5), (-1.5, 5)])
def test_clip_of_an_integer_column_is_the_type_the_catalog_infers_for_it(frame, bounds):
    """A feature's Feature Store type is inferred from its expression (catalog.infer_feature_type) and its values are
    computed here: clip keeps integers integral only between whole bounds, and the catalog must say so, or a
    clip(n, 0.5, 3) declared Integral yields 0.5 and every record of it is refused."""
    columns = {"n": catalog.Column("n", catalog.INTEGER)}
    expr = clip("n", *bounds)
    inferred = catalog.infer_feature_type(expr, columns)
    assert str(evaluate(expr, frame).dtype) == PANDAS_DTYPES[inferred]


def test_coalesce_takes_the_first_non_null_argument_row_by_row(frame):
    assert values(evaluate(coalesce("a", "b"), frame)) == [10.0, 1.0, 2.0, 2.0, 0.0, -3.0]
    assert evaluate(coalesce("t", "s"), frame).tolist() == ["x", "fallback", "z", "t4", "w", "t6"]
    ints = evaluate(coalesce("n", 7), frame)
    assert str(ints.dtype) == "Int64" and values(ints) == [-5, 10, 99, 7, 50, 0]
    all_null = pd.DataFrame({"p": [np.nan], "q": [np.nan]})
    assert values(evaluate(coalesce("p", "q"), all_null)) == [None]


def test_coalesce_with_a_nested_expression_evaluates_the_fallback(frame):
    """The catalog's total_charges: coalesce(total, monthly * tenure)."""
    data = pd.DataFrame({"total": [100.0, np.nan, np.nan], "monthly": [10.0, 20.0, np.nan], "tenure": [5, 3, 2]})
    assert values(evaluate(coalesce("total", product("monthly", "tenure")), data)) == [100.0, 60.0, None]


def test_coalesce_refuses_to_mix_text_and_numbers(frame):
    with pytest.raises(FeatureComputationError, match="mixes text and numeric"):
        evaluate(coalesce("s", "a"), frame)


def test_bucket_uses_half_open_intervals_and_keeps_nulls():
    ages = pd.DataFrame({"age": [5, 18, 24.999, 25, 39, 40, 59.5, 60, 120, None]})
    labels = evaluate(bucket("age", (25, 40, 60), ("18-24", "25-39", "40-59", "60+")), ages)
    assert labels.tolist() == ["18-24", "18-24", "18-24", "25-39", "25-39", "40-59", "40-59", "60+", "60+", None]
    assert labels.dtype == object


def test_product_multiplies_and_propagates_nulls(frame):
    assert values(evaluate(product("a", "b"), frame)) == [20.0, 0.0, None, None, 0.0, -12.0]
    assert values(evaluate(product("a", 2.5), frame)) == [25.0, 2.5, None, 5.0, 0.0, -7.5]


def test_unknown_operator_raises_naming_it_and_the_known_ones(frame):
    with pytest.raises(ValueError, match=r"unknown operator 'sqrt' \(known operators: \['bucket', 'clip'"):
        evaluate(Expr("sqrt", ("a",)), frame)


def test_unknown_nested_operator_in_a_feature_names_the_feature():
    """The catalog only validates top-level operators; the interpreter catches nested ones."""
    base = samples.CUSTOMER_CHURN
    feature = catalog.FeatureDef("weird", catalog.FRACTIONAL, coalesce(Expr("sqrt", ("monthly_charges",))))
    dataset = catalog.Dataset(
        name="t", description="", record_identifier=base.record_identifier, event_time=base.event_time,
        columns=base.columns, labels=base.labels, features=(feature,),
    )
    with pytest.raises(FeatureComputationError, match="feature 'weird': unknown operator 'sqrt'"):
        compute_features(generate(samples.CUSTOMER_CHURN, 5), dataset)


@pytest.mark.parametrize(
    "expr, message",
    [
        (Expr("ratio", ("a",)), "ratio takes 2 argument"),
        (Expr("clip", ("a", 5.0, 1.0)), "clip needs lo <= hi"),
        (Expr("bucket", ("a", (1.0,), ("x",))), "bucket needs (x, edges, labels)"),
        (Expr("log1p", ("s",)), "log1p needs numbers, got text"),
        (Expr("col", ("missing",)), "missing source column 'missing'"),
        (Expr("coalesce", ()), "coalesce needs at least one argument"),
    ],
)
def test_malformed_expressions_raise_clear_errors(frame, expr, message):
    with pytest.raises(FeatureComputationError) as excinfo:
        evaluate(expr, frame)
    assert message in str(excinfo.value)


# --------------------------------------------------------------------------------------
# Event time, keys, casts
# --------------------------------------------------------------------------------------
def test_event_time_is_formatted_as_iso_utc_from_aware_naive_and_string_inputs():
    aware = pd.Series(pd.to_datetime(["2026-01-05 14:00:00+01:00"], utc=True))
    naive = pd.Series(pd.to_datetime(["2026-01-05 13:00:00"]))
    text = pd.Series(["2026-01-05T13:00:00Z"])
    for series in (aware, naive, text):
        assert format_event_time(series).tolist() == ["2026-01-05T13:00:00Z"]
    berlin = format_event_time(naive, naive_time_zone="Europe/Berlin")
    assert berlin.tolist() == ["2026-01-05T12:00:00Z"]
    millis = pd.Series(pd.to_datetime(["2026-01-05 13:00:00.250", "2026-01-05 13:00:01.000"]))
    assert format_event_time(millis).tolist() == ["2026-01-05T13:00:00.250Z", "2026-01-05T13:00:01Z"]


def test_null_keys_are_rejected():
    curated = generate(samples.CREDIT_RISK, 3)
    curated.loc[1, "event_time"] = pd.NaT
    with pytest.raises(FeatureComputationError, match="event time column 'event_time' has null values"):
        compute_features(curated, samples.CREDIT_RISK)
    curated = generate(samples.CREDIT_RISK, 3)
    curated.loc[0, "application_id"] = None
    with pytest.raises(FeatureComputationError, match="record identifier column 'application_id' has null"):
        compute_features(curated, samples.CREDIT_RISK)


def test_missing_source_column_is_named_with_the_features_that_read_it():
    curated = generate(samples.CUSTOMER_CHURN, 10).drop(columns=["support_calls_90d", "region"])
    with pytest.raises(ValueError) as excinfo:
        compute_features(curated, samples.CUSTOMER_CHURN)
    message = str(excinfo.value)
    assert "'support_calls_90d' (read by ['log_support_calls_90d'])" in message
    assert "'region' (read by ['region'])" in message


def test_integral_feature_from_a_null_widened_float_column_becomes_int64():
    """pandas reads an integer parquet column with nulls as float64 unless told otherwise."""
    curated = generate(samples.CREDIT_RISK, 200, seed=1)
    curated["credit_history_months"] = curated["credit_history_months"].astype("float64")
    features = compute_features(curated, samples.CREDIT_RISK)
    assert str(features["credit_history_months"].dtype) == "Int64"
    assert features["credit_history_months"].isna().sum() == curated["credit_history_months"].isna().sum()


def test_integral_feature_with_fractional_values_is_an_error():
    curated = generate(samples.CREDIT_RISK, 20, seed=1)
    curated["num_open_accounts"] = curated["num_open_accounts"].astype("float64") + 0.5
    with pytest.raises(FeatureComputationError, match="feature 'num_open_accounts': Integral feature has non-integer"):
        compute_features(curated, samples.CREDIT_RISK)


# --------------------------------------------------------------------------------------
# Agreement with the catalog, on generated data
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(samples.DATASETS))
def test_feature_frame_columns_and_types_are_exactly_the_feature_store_definitions(name):
    dataset = samples.get_dataset(name)
    features = compute_features(generate(samples.get_dataset(name), 2000, seed=2), dataset)
    assert tuple(features.columns) == tuple(n for n, _ in dataset.feature_store_definitions())
    assert [(n, t, str(features[n].dtype)) for n, t in dataset.feature_store_definitions()] == list(
        feature_frame_schema(dataset)
    )
    for fs_name, fs_type in dataset.feature_store_definitions():
        assert str(features[fs_name].dtype) == PANDAS_DTYPES[fs_type], fs_name
        if fs_type == catalog.FS_STRING:
            assert all(v is None or isinstance(v, str) for v in features[fs_name]), fs_name
    assert features[dataset.event_time].str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z").all()
    assert features[dataset.record_identifier].notna().all()


def test_churn_features_follow_their_catalog_expressions_on_generated_data():
    curated = generate(samples.CUSTOMER_CHURN, 5000, seed=3)
    features = compute_features(curated, samples.CUSTOMER_CHURN)
    tenure_zero = (curated["tenure_months"] == 0).to_numpy()
    assert tenure_zero.any()
    # total_charges falls back to monthly x tenure (= 0 at tenure 0), so it is never null here.
    assert features["total_charges"].notna().all()
    assert (features.loc[tenure_zero, "total_charges"] == 0).all()
    # ... and the per-month average is null exactly where tenure is 0 (zero denominator).
    assert (features["avg_charge_per_month"].isna().to_numpy() == tenure_zero).all()
    assert (features["log_support_calls_90d"].isna() == curated["support_calls_90d"].isna()).all()
    assert features["gender"].isna().sum() == curated["gender"].isna().sum()


def test_credit_features_follow_their_catalog_expressions_on_generated_data():
    curated = generate(samples.CREDIT_RISK, 20_000, seed=4)
    features = compute_features(curated, samples.CREDIT_RISK)
    zero_income = (curated["annual_income"] == 0).to_numpy()
    assert zero_income.any()
    assert (features["loan_to_income"].isna().to_numpy() == zero_income).all()
    assert features["num_open_accounts"].max() == 50  # generated outliers go above, the clip caps them
    assert (curated["num_open_accounts"] > 50).any()
    expected_age_group = pd.cut(curated["applicant_age"], [0, 25, 40, 60, np.inf], right=False,
                                labels=["18-24", "25-39", "40-59", "60+"]).astype(str)
    assert (features["age_group"] == expected_age_group).all()
    assert features["log_annual_income"].to_numpy() == pytest.approx(np.log1p(curated["annual_income"].to_numpy()))


def test_compute_features_is_vectorised_the_python_lines_it_runs_do_not_grow_with_the_rows():
    """What makes large batches fast: no Python work per row (a wall-clock limit here could fail on a loaded
    machine; speed is measured in bench/)."""
    fewer, more = (generate(samples.CUSTOMER_CHURN, rows, seed=5) for rows in (2_000, 20_000))
    compute_features(fewer, samples.CUSTOMER_CHURN)  # first-call work (imports, caches) out of the counts
    steps = [python_steps(lambda frame=frame: compute_features(frame, samples.CUSTOMER_CHURN)) for frame in (fewer, more)]
    assert steps[1] < steps[0] + 2_000  # a loop over rows would add at least 18,000


# --------------------------------------------------------------------------------------
# days_since: whole days from a date / timestamp column to the record's own event time
# --------------------------------------------------------------------------------------
def _policies(**columns) -> pd.DataFrame:
    base = {"policy_id": ["p1", "p2", "p3", "p4"],
            "event_time": ["2026-01-05T13:00:00Z", "2026-01-05T00:00:00Z", "2026-01-05T23:59:59Z", "2019-04-12T00:30:00Z"],
            "licence_issued": ["2019-04-12", "2026-01-05", "2026-01-06", "0001-01-01"],
            "previous_claim": [None, "2025-12-31", None, "2019-04-11"],
            "quoted_at": ["2026-01-04T13:00:01Z", "2026-01-05T12:00:00Z", None, "2019-04-11T23:30:00-02:00"],
            "vehicle_value": [1.0] * 4, "region": ["north"] * 4}
    base.update(columns)
    return pd.DataFrame(base)


def test_days_since_counts_whole_days_to_each_records_own_event_time_not_to_now():
    import datetime as dt
    from tests.support.datasets import LICENCES

    # GIVEN policies whose dates lie before, on and after their own event times (one in year 1)
    computed = compute_features(_policies(), LICENCES)
    # THEN a date counts the UTC calendar days to the event's day (after it: negative, kept as data), a null is missing,
    # and a timestamp the elapsed time in whole days, floored (12 hours before the event is day -1 when it is after it)
    assert values(computed["licence_age_days"]) == [2460, 0, -1, (dt.date(2019, 4, 12) - dt.date(1, 1, 1)).days]
    assert values(computed["days_since_claim"]) == [None, 5, None, 1]
    # 23:59:59 before the event is day 0; 12 hours after it is -1, clipped to 0 by the feature; 01:30Z the day before: 0
    assert values(computed["quote_age_days"]) == [0, 0, None, 0]
    assert str(computed["licence_age_days"].dtype) == "Int64"
    assert values(computed["licence_band"]) == ["settled", "new", "new", "veteran"]
    # AND unclipped, the timestamp's days are floored: 23:59:59 before is 0, 12 hours and 1 hour after are -1
    from tests.support.datasets import LICENCES_DECLARATION
    unclipped = catalog.parse_dataset("licences", {**LICENCES_DECLARATION, "features": {"q": "days_since(quoted_at)"}})
    assert values(compute_features(_policies(), unclipped)["q"]) == [0, -1, None, -1]


def test_days_since_reads_dates_and_times_in_every_form_the_jobs_and_serving_hand_it_the_same():
    import datetime as dt
    from tests.support.datasets import LICENCES

    text = _policies()
    # parquet / Spark: datetime.date objects and datetimes (Spark's mapInPandas: naive, in the session time zone)
    typed = text.assign(
        licence_issued=[dt.date.fromisoformat(v) for v in text["licence_issued"]],
        previous_claim=[None if v is None else dt.date.fromisoformat(v) for v in text["previous_claim"]],
        event_time=pd.to_datetime(text["event_time"], utc=True).dt.tz_convert("Europe/Paris").dt.tz_localize(None),
        quoted_at=pd.to_datetime(text["quoted_at"], utc=True, format="ISO8601").dt.tz_convert("Europe/Paris").dt.tz_localize(None),
    )
    assert compute_features(typed, LICENCES, naive_time_zone="Europe/Paris").equals(compute_features(text, LICENCES))


def test_days_since_needs_the_event_time_compute_features_provides():
    with pytest.raises(FeatureComputationError, match="days_since needs the record's event time"):
        evaluate(catalog.days_since("licence_issued"), _policies())
