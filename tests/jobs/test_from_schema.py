"""Schema-only sample data: schema respected, deterministic, drift knobs, a learnable label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from pipeline_code import catalog
from pipeline_code.catalog import Column
from pipeline_code.sample_data import generate as gen
from pipeline_code.sample_data.streams import Streams
from pipeline_code.sample_data.from_schema import NULL_RATE, TIMESTAMP_DAYS, TIMESTAMP_START, simulate

KEYS = ("record_id", "event_time")
FS_TYPE = {catalog.INTEGER: catalog.INTEGRAL, catalog.DOUBLE: catalog.FRACTIONAL, catalog.STRING: catalog.FS_STRING}


def _dataset(*columns: Column, labels=("churned",), features=None, name="toy") -> catalog.Dataset:
    """The two keys then ``columns``; by default one ``col`` feature per non-label, non-timestamp column."""
    keys = (Column("record_id", catalog.STRING, nullable=False), Column("event_time", catalog.TIMESTAMP, nullable=False))
    if features is None:
        features = [c.name for c in columns if c.name not in labels and c.dtype != catalog.TIMESTAMP]
    by_name = {c.name: c for c in columns}
    defs = tuple(catalog.FeatureDef(f, FS_TYPE[by_name[f].dtype], catalog.col(f)) for f in features)
    return catalog.Dataset(name=name, description="test", record_identifier="record_id", event_time="event_time",
                           columns=keys + tuple(columns), labels=tuple(labels), features=defs)


INPUTS = (
    Column("amount", catalog.DOUBLE, minimum=0),
    Column("score", catalog.DOUBLE, nullable=False, minimum=-1, maximum=1),
    Column("calls", catalog.INTEGER, minimum=0, maximum=1000),
    Column("age", catalog.INTEGER, nullable=False, minimum=18, maximum=120),
    Column("level", catalog.INTEGER, maximum=10),
    Column("offset", catalog.DOUBLE, nullable=False),
    Column("tiny", catalog.INTEGER, nullable=False, minimum=0.5, maximum=3.5),
    Column("plan", catalog.STRING, nullable=False, allowed=("basic", "plus", "pro")),
    Column("channel", catalog.STRING),
    Column("signup_time", catalog.TIMESTAMP),
)
# The label is declared nullable on purpose: labels are never null all the same.
TOY = _dataset(*INPUTS, Column("churned", catalog.INTEGER, minimum=0, maximum=1))
INPUT_NAMES = [c.name for c in INPUTS]


def _run(dataset=TOY, n=5_000, drift=0.0, concept_drift=0.0, seed=0, **kwargs):
    return simulate(dataset, Streams(seed), n, drift, concept_drift, **kwargs)


def _typed(dataset, columns, n):
    """The frame generate.py builds from a simulator's output, keys added the way it adds them."""
    columns = dict(columns)
    columns[dataset.record_identifier] = gen._record_ids(dataset.name, 0, n)
    start = np.datetime64("2026-01-01", "s")
    columns[dataset.event_time] = gen._event_times(Streams(0).get("event_time"), n, start, 90)
    return gen._typed_frame(dataset, columns)


def _features_matrix(frame: pd.DataFrame, names) -> pd.DataFrame:
    x = frame[list(names)].copy()
    for name in names:
        x[name] = x[name].astype("category") if x[name].dtype == object else x[name].astype(float)
    return x


@pytest.fixture
def one_thread():
    """Fit models on one thread: OpenMP threads on a busy machine slow a small fit down several-fold."""
    with threadpool_limits(1):
        yield


def _assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)  # NaN == NaN and NaT == NaT here


def test_every_column_but_the_keys_in_catalog_order_in_the_conventions_typed_frame_expects():
    # GIVEN a dataset of every column type and bounds case
    # WHEN simulating it
    columns = _run(n=300)
    # THEN every non-key column comes back, in catalog order, with n values
    assert list(columns) == [c.name for c in TOY.columns if c.name not in KEYS]
    assert all(len(v) == 300 for v in columns.values())
    # AND generate.py's typed frame accepts it with the catalog's dtypes
    frame = _typed(TOY, columns, 300)
    assert {c: str(frame[c].dtype) for c in ("calls", "amount", "plan", "signup_time")} == {
        "calls": "Int64", "amount": "float64", "plan": "object", "signup_time": "datetime64[ns, UTC]"}


@pytest.mark.parametrize("drift", [0.0, 1.0])
def test_values_respect_ranges_types_allowed_values_and_nullability(drift):
    # GIVEN the reference distribution and the drifted extreme
    columns = _run(n=20_000, drift=drift, seed=3)
    for column in TOY.columns:
        if column.name in KEYS:
            continue
        values = columns[column.name]
        missing = pd.isna(values)
        # THEN non-nullable columns and labels are never null; nullable inputs have ~NULL_RATE nulls
        if not column.nullable or column.name in TOY.labels:
            assert not missing.any(), column.name
        else:
            assert abs(missing.mean() - NULL_RATE) < 0.01, column.name
        present = values[~missing]
        # AND numbers stay inside their inclusive bounds, integers are whole numbers
        if column.dtype in (catalog.INTEGER, catalog.DOUBLE):
            assert present.dtype == float and np.isfinite(present).all(), column.name
            if column.minimum is not None:
                assert present.min() >= column.minimum, column.name
            if column.maximum is not None:
                assert present.max() <= column.maximum, column.name
            if column.dtype == catalog.INTEGER:
                assert (present == np.round(present)).all(), column.name
    assert set(columns["tiny"]) == {1.0, 2.0, 3.0}  # the whole numbers of [0.5, 3.5]
    assert set(columns["churned"]) == {0.0, 1.0}
    # AND strings come from `allowed`, or from a small readable vocabulary when there is none
    assert set(columns["plan"]) == {"basic", "plus", "pro"}
    tokens = set(columns["channel"]) - {None}
    assert 3 <= len(tokens) <= 8 and all(t.startswith("channel-") and t[8:].isdigit() for t in tokens)
    # AND other timestamps fall in the documented window
    times = columns["signup_time"]
    present = times[~np.isnat(times)]
    assert times.dtype == np.dtype("datetime64[s]")
    assert present.min() >= TIMESTAMP_START
    assert present.max() < TIMESTAMP_START + np.timedelta64(TIMESTAMP_DAYS, "D")


def test_category_mixes_are_uneven_yet_every_category_is_common():
    # GIVEN a string column with five allowed values
    dataset = _dataset(Column("colour", catalog.STRING, allowed=("red", "green", "blue", "grey", "black")),
                       Column("churned", catalog.INTEGER, minimum=0, maximum=1))
    # WHEN simulating many rows
    shares = pd.Series(_run(dataset, n=20_000)["colour"]).value_counts(normalize=True)
    # THEN every category appears with at least ~1/(2k), and the mix is not uniform
    assert len(shares) == 5 and shares.min() > 0.08
    assert shares.max() - shares.min() > 0.03


def test_same_arguments_give_identical_arrays_and_another_seed_other_values():
    first = _run(n=2_000, drift=0.3, concept_drift=0.4, seed=7)
    second = _run(n=2_000, drift=0.3, concept_drift=0.4, seed=7)
    for name in first:
        _assert_same(first[name], second[name])
    other = _run(n=2_000, drift=0.3, concept_drift=0.4, seed=8)
    assert not np.array_equal(first["offset"], other["offset"])
    assert not np.array_equal(first["plan"], other["plan"])


def test_another_seed_samples_the_same_world(one_thread):
    """GIVEN two runs with different seeds WHEN a model is trained on the first THEN it does as well on the second:
    the mixes, shapes and the true model are the dataset's, only the rows are the seed's (a second local run is
    judged on the first run's frozen test set)."""
    names = [f.name for f in TOY.features]
    first, second = (_typed(TOY, _run(n=20_000, seed=seed), 20_000) for seed in (5, 6))
    for column in ("plan", "channel"):
        shares = [f[column].value_counts(normalize=True).sort_index() for f in (first, second)]
        np.testing.assert_allclose(shares[0].to_numpy(), shares[1].to_numpy(), atol=0.02)
    x = _features_matrix(first, names)
    model = HistGradientBoostingClassifier(max_iter=60, categorical_features="from_dtype", random_state=0)
    model.fit(x[:14_000], first["churned"][:14_000].astype(int))
    own = roc_auc_score(first["churned"][14_000:].astype(int), model.predict_proba(x[14_000:])[:, 1])
    other = roc_auc_score(second["churned"].astype(int), model.predict_proba(_features_matrix(second, names))[:, 1])
    assert other == pytest.approx(own, abs=0.03)


def test_signal_features_decide_which_columns_the_label_follows():
    # GIVEN the label driven only by the 'plan' feature WHEN the other inputs are shuffled THEN the label is unchanged
    only_plan = _run(n=3_000, seed=2, signal_features=["plan"])
    grouped = pd.DataFrame({"plan": only_plan["plan"], "churned": only_plan["churned"]}).groupby("plan")["churned"].mean()
    assert grouped.max() - grouped.min() > 0.05  # the plan matters
    for name in ("amount", "score", "age"):
        values = pd.Series(only_plan[name]).astype(float)
        assert abs(np.corrcoef(values.fillna(values.mean()), only_plan["churned"])[0, 1]) < 0.05


def test_adding_a_column_leaves_the_other_inputs_unchanged():
    # GIVEN the same dataset with one more column in the middle
    wider = _dataset(*INPUTS[:3], Column("extra", catalog.DOUBLE, minimum=5, maximum=9), *INPUTS[3:],
                     Column("churned", catalog.INTEGER, minimum=0, maximum=1))
    # WHEN simulating both with the same seed
    base, extended = _run(n=1_000, drift=0.5), _run(wider, n=1_000, drift=0.5)
    # THEN every input column shared by both is identical (one stream per column)
    for name in INPUT_NAMES:
        _assert_same(base[name], extended[name])


def test_drift_shifts_numbers_about_one_sd_and_moves_category_mixes():
    # GIVEN the reference and the fully drifted distribution
    ref, drifted = _run(n=20_000, drift=0.0), _run(n=20_000, drift=1.0)
    # THEN an unbounded normal column moves by ~1 standard deviation (in a seeded direction)
    shift = (drifted["offset"].mean() - ref["offset"].mean()) / ref["offset"].std()
    assert 0.9 < abs(shift) < 1.1
    # AND bounded columns move too, while staying in range (checked above)
    for name in ("score", "age", "amount"):
        assert abs(np.nanmedian(drifted[name]) - np.nanmedian(ref[name])) > 0.2 * np.nanstd(ref[name]), name
    # AND the category mix moves (total variation distance)
    mix = lambda values: pd.Series(values).value_counts(normalize=True)
    tv = 0.5 * mix(ref["plan"]).sub(mix(drifted["plan"]), fill_value=0).abs().sum()
    assert tv > 0.05
    # AND a little drift moves little: values change smoothly with the knob
    slight = _run(n=20_000, drift=0.1)
    assert abs(np.mean(slight["offset"]) - np.mean(ref["offset"])) < 0.2 * abs(shift) * ref["offset"].std()


def test_concept_drift_changes_the_labels_but_not_the_inputs():
    # GIVEN one seed simulated with and without concept drift
    before, after = _run(n=20_000, concept_drift=0.0, seed=2), _run(n=20_000, concept_drift=1.0, seed=2)
    # THEN every input is identical
    for name in INPUT_NAMES:
        _assert_same(before[name], after[name])
    # AND the labels differ on many rows, at the same positive rate
    assert (before["churned"] != after["churned"]).mean() > 0.1
    assert abs(after["churned"].mean() - 0.2) < 0.01


@pytest.mark.parametrize("rate, tolerance", [(0.2, 0.01), (0.02, 0.004)])
def test_binary_positive_rate_matches_the_request(rate, tolerance):
    labels = _run(n=50_000, seed=11, positive_rate=rate)["churned"]
    assert abs(labels.mean() - rate) < tolerance


def test_the_binary_label_is_learnable_from_the_features_and_concept_drift_degrades_the_model(one_thread):
    # GIVEN 20k reference rows and a gradient-boosted model trained on 14k of them
    names = [f.name for f in TOY.features]
    frame = _typed(TOY, _run(n=20_000, seed=5), 20_000)
    x, y = _features_matrix(frame, names), frame["churned"].astype(int)
    model = HistGradientBoostingClassifier(max_iter=60, categorical_features="from_dtype", random_state=0)
    model.fit(x[:14_000], y[:14_000])
    # THEN it ranks held-out rows well
    auc = roc_auc_score(y[14_000:], model.predict_proba(x[14_000:])[:, 1])
    assert auc >= 0.7
    # AND on concept-drifted rows (same inputs, new relationship) it does clearly worse
    drifted = _typed(TOY, _run(n=20_000, seed=5, concept_drift=1.0), 20_000)["churned"].astype(int)
    assert roc_auc_score(drifted[14_000:], model.predict_proba(x[14_000:])[:, 1]) < auc - 0.1


def test_a_multiclass_label_takes_only_allowed_values_every_class_present_and_depends_on_the_inputs(one_thread):
    # GIVEN a string label with allowed values (nullable: still never null)
    dataset = _dataset(*INPUTS, Column("tier", catalog.STRING, allowed=("bronze", "silver", "gold", "platinum")),
                       labels=("tier",))
    columns = _run(dataset, n=20_000, seed=4)
    tier = columns["tier"]
    # THEN it holds only allowed classes, every one of them, and no nulls
    shares = pd.Series(tier).value_counts(normalize=True)
    assert set(shares.index) == {"bronze", "silver", "gold", "platinum"}
    assert shares.min() > 0.05 and not pd.isna(tier).any()
    # AND a model of the features predicts it far better than the majority class
    frame = _typed(dataset, columns, 20_000)
    x = _features_matrix(frame, [f.name for f in dataset.features])
    model = HistGradientBoostingClassifier(max_iter=40, categorical_features="from_dtype", random_state=0)
    model.fit(x[:14_000], tier[:14_000])
    accuracy = (model.predict(x[14_000:]) == tier[14_000:]).mean()
    assert accuracy > shares.max() + 0.1


def test_a_string_label_without_allowed_values_takes_every_token_of_its_vocabulary():
    dataset = _dataset(*INPUTS, Column("segment", catalog.STRING, nullable=False), labels=("segment",))
    segment = _run(dataset, n=20_000)["segment"]
    tokens = set(segment)
    assert 3 <= len(tokens) <= 8 and tokens == {f"segment-{k}" for k in range(1, len(tokens) + 1)}


@pytest.mark.parametrize("label", [
    Column("spend", catalog.DOUBLE, minimum=0, maximum=250),
    Column("rating", catalog.INTEGER, minimum=1, maximum=5),
    Column("balance", catalog.DOUBLE, nullable=False),
])
def test_a_regression_label_stays_in_range_and_follows_only_the_columns_the_features_read(label):
    # GIVEN a label with two inputs of which only `x` is read by a feature
    dataset = _dataset(Column("x", catalog.DOUBLE, minimum=0), Column("unread", catalog.DOUBLE), label,
                       labels=(label.name,), features=["x"])
    columns = _run(dataset, n=20_000, seed=6)
    values = columns[label.name]
    # THEN it is never null, inside its range, whole for integers
    assert not np.isnan(values).any()
    assert values.min() >= (label.minimum if label.minimum is not None else -np.inf)
    assert values.max() <= (label.maximum if label.maximum is not None else np.inf)
    if label.dtype == catalog.INTEGER:
        assert (values == np.round(values)).all()
    # AND it is strongly rank-correlated with the read input and not with the unread one
    present = ~np.isnan(columns["x"]) & ~np.isnan(columns["unread"])
    assert abs(stats.spearmanr(values[present], columns["x"][present])[0]) > 0.6
    assert abs(stats.spearmanr(values[present], columns["unread"][present])[0]) < 0.05


def test_a_dataset_without_inputs_still_gets_labels_at_the_requested_rate():
    dataset = _dataset(Column("churned", catalog.INTEGER, minimum=0, maximum=1), features=[])
    labels = _run(dataset, n=20_000, positive_rate=0.3)["churned"]
    assert abs(labels.mean() - 0.3) < 0.015


def test_zero_rows_give_empty_columns_of_the_right_dtypes():
    columns = _run(n=0)
    assert all(len(v) == 0 for v in columns.values())
    frame = _typed(TOY, columns, 0)
    assert frame.empty and str(frame["calls"].dtype) == "Int64"


@pytest.mark.parametrize("kwargs, message", [
    ({"n": -1}, "n must"),
    ({"n": True}, "n must"),
    ({"drift": 1.5}, "drift must be in"),
    ({"drift": float("nan")}, "drift must be in"),
    ({"concept_drift": -0.1}, "concept_drift must be in"),
    ({"positive_rate": 0.0}, "positive_rate must be in"),
    ({"positive_rate": 1.0}, "positive_rate must be in"),
])
def test_arguments_out_of_range_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _run(**{"n": 10, **kwargs})


@pytest.mark.parametrize("columns, labels, message", [
    ((Column("when", catalog.TIMESTAMP),), ("when",), "timestamp label"),
    ((Column("half", catalog.INTEGER, minimum=0.2, maximum=0.8), Column("y", catalog.INTEGER, minimum=0, maximum=1)),
     ("y",), "no whole number"),
    ((Column("upside_down", catalog.DOUBLE, minimum=2, maximum=1), Column("y", catalog.INTEGER, minimum=0, maximum=1)),
     ("y",), "minimum 2 > maximum 1"),
])
def test_schemas_that_cannot_be_simulated_are_refused_with_the_reason(columns, labels, message):
    with pytest.raises(ValueError, match=message):
        _run(_dataset(*columns, labels=labels, features=[]), n=10)


def test_a_dataset_whose_identifier_is_an_integer_gets_unique_integer_ids():
    # GIVEN a dataset declaring its record identifier an integer
    keys = (Column("order_id", catalog.INTEGER, nullable=False), Column("event_time", catalog.TIMESTAMP, nullable=False))
    dataset = catalog.Dataset(name="orders", description="test", record_identifier="order_id", event_time="event_time",
                              columns=keys + (Column("amount", catalog.DOUBLE, minimum=0),
                                              Column("returned", catalog.INTEGER, minimum=0, maximum=1)),
                              labels=("returned",), features=(catalog.FeatureDef("amount", catalog.FRACTIONAL, catalog.col("amount")),))
    # WHEN sample records are generated (they were text ids: 'could not convert string to float')
    frame = gen.generate(dataset, 500, seed=7)
    # THEN the ids are distinct integers, another seed's distinct from these
    assert pd.api.types.is_integer_dtype(frame["order_id"]) and frame["order_id"].is_unique
    assert not set(gen.generate(dataset, 500, seed=8)["order_id"]) & set(frame["order_id"])


def test_a_declared_date_column_is_drawn_before_each_records_own_event_time_and_carries_signal():
    import datetime as dt

    from pipeline_code.features.compute import compute_features
    from pipeline_code.sample_data import from_schema
    from tests.support.datasets import LICENCES

    generate = gen.generate
    # GIVEN a dataset simulated from its schema with date columns (one required, one nullable)
    typed = generate(LICENCES, 2000, seed=21)
    ages = compute_features(typed, LICENCES)
    # THEN each date is a day before its record's event time (an age of 0 to ~20 years), nullable ones sometimes null
    licence = ages["licence_age_days"]
    assert licence.notna().all() and licence.min() >= 0 and licence.max() <= from_schema.DATE_DAYS
    assert typed["licence_issued"].map(type).eq(dt.date).all()
    assert 0 < typed["previous_claim"].isna().mean() < 0.5
    # AND the age drives the label like a number would: the claim rate differs between young and old licences
    young = typed["claimed"][licence < licence.median()].astype(float).mean()
    old = typed["claimed"][licence >= licence.median()].astype(float).mean()
    assert abs(young - old) > 0.02, (young, old)
    # AND the text form is yyyy-MM-dd, as an export writes a date
    text = generate(LICENCES, 5, seed=21, as_text=True)
    assert text["licence_issued"].str.fullmatch(r"\d{4}-\d\d-\d\d").all()
