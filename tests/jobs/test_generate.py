"""Sample-data generator: determinism, schema, realism, knobs and CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code import catalog
from pipeline_code.sample_data import generate as gen
from pipeline_code.sample_data.generate import CORRUPTION_KINDS, generate, generate_batch, main
from tests.support import datasets as samples
from tests.support.vectorised import python_steps

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASETS = sorted(samples.DATASETS)
LABEL = {"customer_churn": "churned", "credit_risk": "defaulted"}
EXPECTED_DTYPES = {
    catalog.INTEGER: "Int64",
    catalog.DOUBLE: "float64",
    catalog.TIMESTAMP: "datetime64[ns, UTC]",
    catalog.STRING: "object",
}


# --------------------------------------------------------------------------------------
# Determinism and schema
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DATASETS)
def test_given_same_seed_when_generating_twice_then_frames_are_identical(name):
    first = generate(samples.get_dataset(name), 500, seed=3, drift=0.2, bad_record_rate=0.05, duplicate_rate=0.02)
    second = generate(samples.get_dataset(name), 500, seed=3, drift=0.2, bad_record_rate=0.05, duplicate_rate=0.02)
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize("name", DATASETS)
def test_given_different_seeds_when_generating_then_rows_differ(name):
    a, b = generate(samples.get_dataset(name), 500, seed=1), generate(samples.get_dataset(name), 500, seed=2)
    assert not a[samples.get_dataset(name).record_identifier].equals(b[samples.get_dataset(name).record_identifier])
    assert not a["event_time"].equals(b["event_time"])


@pytest.mark.parametrize("name", DATASETS)
def test_every_catalog_dataset_generates_exactly_its_raw_columns_in_catalog_order(name):
    dataset = samples.get_dataset(name)
    frame = generate(samples.get_dataset(name), 300, seed=0)
    assert list(frame.columns) == [c.name for c in dataset.columns]
    assert {c.name: str(frame[c.name].dtype) for c in dataset.columns} == {
        c.name: EXPECTED_DTYPES[c.dtype] for c in dataset.columns
    }
    assert frame[dataset.record_identifier].is_unique


@pytest.mark.parametrize("name", DATASETS)
def test_generated_values_respect_the_catalog_schema(name):
    dataset = samples.get_dataset(name)
    frame = generate(samples.get_dataset(name), 5000, seed=4, drift=1.0)  # the drifted extreme must stay valid too
    for column in dataset.columns:
        values = frame[column.name]
        if not column.nullable:
            assert values.notna().all(), column.name
        present = values.dropna()
        if column.minimum is not None:
            assert (present >= column.minimum).all(), column.name
        if column.maximum is not None:
            assert (present <= column.maximum).all(), column.name
        if column.allowed is not None:
            assert set(present) <= set(column.allowed), column.name


def test_nullable_columns_have_a_few_percent_nulls_and_total_charges_is_null_exactly_at_tenure_zero():
    frame = generate(samples.CUSTOMER_CHURN, 20_000, seed=5)
    for column in ("payment_method", "gender", "support_calls_90d"):
        assert 0.005 < frame[column].isna().mean() < 0.05, column
    assert (frame["total_charges"].isna() == (frame["tenure_months"] == 0)).all()
    assert (frame["tenure_months"] == 0).any()


def test_event_times_are_whole_utc_seconds_spread_over_the_window():
    frame = generate(samples.CREDIT_RISK, 5000, seed=6, start="2026-02-01", days=30)
    times = frame["event_time"]
    assert times.min() >= pd.Timestamp("2026-02-01", tz="UTC")
    assert times.max() < pd.Timestamp("2026-03-03", tz="UTC")
    assert times.dt.date.nunique() == 30
    assert (times.dt.microsecond == 0).all()


# --------------------------------------------------------------------------------------
# Realistic relationships
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DATASETS)
def test_label_base_rate_is_between_15_and_25_percent(name):
    rate = generate(samples.get_dataset(name), 20_000, seed=7)[LABEL[name]].mean()
    assert 0.15 <= rate <= 0.25


def test_churn_follows_contract_tenure_and_support_calls():
    frame = generate(samples.CUSTOMER_CHURN, 40_000, seed=8)
    by_contract = frame.groupby("contract_type")["churned"].mean()
    assert by_contract["month-to-month"] > 2 * by_contract["one-year"] > 2 * by_contract["two-year"]
    short = frame["tenure_months"] < 12
    assert frame.loc[short, "churned"].mean() > frame.loc[~short, "churned"].mean()
    many_calls = frame["support_calls_90d"] >= 3
    assert frame.loc[many_calls, "churned"].mean() > frame.loc[~many_calls, "churned"].mean()


def test_default_follows_loan_to_income_and_credit_history():
    frame = generate(samples.CREDIT_RISK, 40_000, seed=9)
    lti = frame["loan_amount"] / (frame["annual_income"] + 1)
    high_lti = lti > lti.quantile(0.75)
    assert frame.loc[high_lti, "defaulted"].mean() > 1.5 * frame.loc[~high_lti, "defaulted"].mean()
    short_history = frame["credit_history_months"] < 36
    assert frame.loc[short_history, "defaulted"].mean() > frame.loc[~short_history, "defaulted"].mean()


def test_sensitive_attributes_have_a_mild_nonzero_effect():
    churn = generate(samples.CUSTOMER_CHURN, 60_000, seed=10)
    by_gender = churn.groupby("gender")["churned"].mean()
    assert 0.005 < by_gender["female"] - by_gender["male"] < 0.1
    credit = generate(samples.CREDIT_RISK, 60_000, seed=10)
    young = credit["applicant_age"] < 25
    gap = credit.loc[young, "defaulted"].mean() - credit.loc[~young, "defaulted"].mean()
    assert 0.01 < gap < 0.25


# --------------------------------------------------------------------------------------
# Drift knobs
# --------------------------------------------------------------------------------------
def test_drift_zero_is_the_reference_distribution():
    pd.testing.assert_frame_equal(generate(samples.CUSTOMER_CHURN, 300, seed=1), generate(samples.CUSTOMER_CHURN, 300, seed=1, drift=0.0))


@pytest.mark.parametrize(
    "name, statistic, direction",
    [
        ("customer_churn", lambda f: f["monthly_charges"].mean(), +1),
        ("customer_churn", lambda f: (f["contract_type"] == "month-to-month").mean(), +1),
        ("customer_churn", lambda f: f["tenure_months"].mean(), -1),
        ("credit_risk", lambda f: f["loan_amount"].mean(), +1),
        ("credit_risk", lambda f: f["applicant_age"].mean(), -1),
        ("credit_risk", lambda f: (f["purpose"] == "business").mean(), +1),
    ],
)
def test_drift_moves_input_distributions_monotonically_with_its_magnitude(name, statistic, direction):
    values = [statistic(generate(samples.get_dataset(name), 10_000, seed=12, drift=d)) for d in (0.0, 0.25, 0.5, 1.0)]
    steps = np.diff(values) * direction
    assert (steps > 0).all(), values
    # Proportional: the shift from 0 to 1 is about twice the shift from 0 to 0.5.
    assert 1.5 < (values[3] - values[0]) / (values[2] - values[0]) < 2.5, values


@pytest.mark.parametrize("name", DATASETS)
def test_concept_drift_changes_labels_but_not_inputs(name):
    label = LABEL[name]
    reference = generate(samples.get_dataset(name), 20_000, seed=13)
    drifted = generate(samples.get_dataset(name), 20_000, seed=13, concept_drift=1.0)
    inputs = [c for c in reference.columns if c != label]
    pd.testing.assert_frame_equal(reference[inputs], drifted[inputs])
    changed = (reference[label] != drifted[label]).mean()
    assert changed > 0.05
    assert 0.12 <= drifted[label].mean() <= 0.3  # still a plausible base rate


def test_concept_drift_weakens_the_contract_effect_on_churn():
    def contract_gap(frame):
        by_contract = frame.groupby("contract_type")["churned"].mean()
        return by_contract["month-to-month"] - by_contract["two-year"]

    gaps = [contract_gap(generate(samples.CUSTOMER_CHURN, 20_000, seed=14, concept_drift=c)) for c in (0.0, 0.5, 1.0)]
    assert gaps[0] > gaps[1] > gaps[2]


# --------------------------------------------------------------------------------------
# Corruption and duplicates
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DATASETS)
def test_bad_record_rate_corrupts_exactly_that_many_distinct_rows_in_every_kind(name):
    dataset = samples.get_dataset(name)
    batch = generate_batch(samples.get_dataset(name), 2000, seed=15, bad_record_rate=0.03)
    corruptions = batch.corruptions
    assert len(corruptions) == 60
    assert corruptions["row"].is_unique
    assert set(corruptions["kind"]) == set(CORRUPTION_KINDS)
    # Corrupted data is text, and every corrupted value is really in the frame.
    assert all(batch.frame[c].dtype == object for c in batch.frame.columns)
    for row, column, value in corruptions[["row", "column", "value"]].itertuples(index=False):
        assert batch.frame.at[row, column] == value
        if row % 7 == 0:  # keys are never corrupted except the event time
            assert column not in (dataset.record_identifier, *dataset.labels)


def test_corruption_is_an_overlay_on_the_clean_rows_of_the_same_seed():
    clean = generate(samples.CUSTOMER_CHURN, 1000, seed=16, as_text=True)
    batch = generate_batch(samples.CUSTOMER_CHURN, 1000, seed=16, bad_record_rate=0.05)
    untouched = ~clean.index.isin(batch.corruptions["row"])
    pd.testing.assert_frame_equal(clean[untouched], batch.frame[untouched])


def test_duplicate_rate_injects_exact_copies_that_share_the_key():
    batch = generate_batch(samples.CREDIT_RISK, 1000, seed=17, duplicate_rate=0.02, bad_record_rate=0.02)
    assert len(batch.duplicates) == 20
    frame = batch.frame
    for row, source in batch.duplicates[["row", "source_row"]].itertuples(index=False):
        pd.testing.assert_series_equal(frame.loc[row], frame.loc[source], check_names=False)
    touched = set(batch.duplicates["row"]) | set(batch.duplicates["source_row"])
    assert touched.isdisjoint(batch.corruptions["row"])
    assert frame.duplicated(["application_id", "event_time"]).sum() == 20


def test_text_rendering_uses_iso_utc_times_plain_integers_and_empty_nulls():
    text = generate(samples.CUSTOMER_CHURN, 200, seed=18, as_text=True)
    assert text["event_time"].str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z").all()
    assert text["tenure_months"].str.fullmatch(r"\d+").all()
    assert text["total_charges"].isna().sum() == (text["tenure_months"] == "0").sum()
    assert all(v is None or isinstance(v, str) for v in text["gender"])


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_rows": -1}, "n_rows must be a non-negative integer"),
        ({"n_rows": 1.5}, "n_rows must be a non-negative integer"),
        ({"seed": -3}, "seed must be a non-negative integer"),
        ({"days": 0}, "days must be an integer >= 1"),
        ({"start": "01/02/2026"}, "start must be a date YYYY-MM-DD"),
        ({"drift": 1.5}, "drift must be in [0, 1]"),
        ({"concept_drift": -0.1}, "concept_drift must be in [0, 1]"),
        ({"bad_record_rate": 2}, "bad_record_rate must be in [0, 1]"),
        ({"duplicate_rate": float("nan")}, "duplicate_rate must be in [0, 1]"),
        ({"bad_record_rate": 0.6, "duplicate_rate": 0.3}, "bad_record_rate + 2 * duplicate_rate"),
        ({"bad_record_rate": 0.1, "as_text": False}, "as_text=False is impossible"),
    ],
)
def test_invalid_arguments_raise_a_clear_value_error(kwargs, message):
    params = {"n_rows": 100, **kwargs}
    with pytest.raises(ValueError) as excinfo:
        generate(samples.CUSTOMER_CHURN, params.pop("n_rows"), **params)
    assert message in str(excinfo.value)


def test_a_dataset_without_a_hand_written_simulator_is_simulated_from_its_schema():
    # GIVEN a dataset declared only in configuration (the sample churn schema under another name)
    declared = {**samples.CUSTOMER_CHURN.to_declaration(), "name": "subscribers"}
    subscribers = catalog.parse_dataset("subscribers", declared)
    # WHEN sample data is generated for it, at a rare-event base rate
    frame = generate(subscribers, 20_000, seed=3, positive_rate=0.02)
    # THEN every declared column is there and within its declaration, and the label is rare
    assert list(frame.columns) == [c.name for c in subscribers.columns]
    assert frame["tenure_months"].between(0, 600).all() and frame["customer_id"].is_unique
    assert set(frame["contract_type"].dropna()) <= set(subscribers.column("contract_type").allowed)
    assert 0.01 < frame["churned"].mean() < 0.03


def test_a_declared_sample_positive_rate_sets_the_generated_base_rate_and_round_trips():
    # GIVEN a dataset declared with a rare-event base rate for its generated sample data
    declared = {**samples.CUSTOMER_CHURN.to_declaration(), "name": "subscribers", "sample_positive_rate": 0.02}
    subscribers = catalog.parse_dataset("subscribers", declared)
    assert catalog.parse_dataset("subscribers", subscribers.to_declaration()) == subscribers
    # WHEN data is generated without a rate: the declared one; an explicit rate still wins
    assert 0.01 < generate(subscribers, 20_000, seed=3)["churned"].mean() < 0.03
    assert 0.25 < generate(subscribers, 20_000, seed=3, positive_rate=0.3)["churned"].mean() < 0.35
    # AND a dataset without one keeps the generator's default
    plain = catalog.parse_dataset("subscribers", {**declared, "sample_positive_rate": None})
    assert 0.17 < generate(plain, 20_000, seed=3)["churned"].mean() < 0.23
    # AND a sample dataset with its own simulator refuses a rate it would ignore
    churn = catalog.parse_dataset("customer_churn", {**declared, "name": "customer_churn"})
    with pytest.raises(ValueError, match="has a hand-written simulator with its own base rate"):
        generate(churn, 100, seed=3)


def test_zero_rows_gives_an_empty_frame_with_the_catalog_columns():
    frame = generate(samples.CREDIT_RISK, 0)
    assert frame.empty
    assert list(frame.columns) == [c.name for c in samples.CREDIT_RISK.columns]


def test_generation_is_vectorised_the_python_lines_it_runs_do_not_grow_with_the_rows():
    """What makes a million rows generate in seconds: no Python work per row (a wall-clock limit here failed on a
    loaded machine; speed is measured in bench/)."""
    generate(samples.CUSTOMER_CHURN, 100, seed=19)  # first-call work (imports, caches) out of the counts
    fewer = python_steps(lambda: generate(samples.CUSTOMER_CHURN, 2_000, seed=19))
    more = python_steps(lambda: generate(samples.CUSTOMER_CHURN, 20_000, seed=19))
    assert more < fewer + 2_000  # a loop over rows would add at least 18,000


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def test_cli_writes_the_raw_lake_layout(tmp_path, capsys):
    code = main(
        ["--dataset", samples.declaration_file(tmp_path, samples.CUSTOMER_CHURN), "--rows", "300", "--seed", "7", "--out", str(tmp_path),
         "--bad-record-rate", "0.02", "--drift", "0.3", "--start", "2026-03-01", "--days", "10"]
    )
    assert code == 0
    path = tmp_path / "customer_churn" / "ingest_date=2026-03-11" / "part-00000.csv"
    assert path.is_file()
    assert f"to {path}" in capsys.readouterr().out
    written = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    expected = generate(samples.CUSTOMER_CHURN, 300, seed=7, start="2026-03-01", days=10, drift=0.3, bad_record_rate=0.02
    )
    assert list(written.columns) == [c.name for c in samples.CUSTOMER_CHURN.columns]
    pd.testing.assert_frame_equal(written.astype(object).where(written.notna(), None), expected)


def test_cli_refuses_to_overwrite_an_existing_part_file_unless_asked(tmp_path, capsys):
    argv = ["--dataset", samples.declaration_file(tmp_path, samples.CREDIT_RISK), "--rows", "10", "--out", str(tmp_path),
            "--ingest-date", "2026-05-01"]
    assert main(argv) == 0
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 2
    assert "already exists" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0


@pytest.mark.parametrize(
    "bad_args, message",
    [
        (["--dataset", "nope"], "argument --dataset: 'nope' is neither a JSON dataset declaration nor a readable file"),
        (["--rows", "-5"], "argument --rows: must be a non-negative integer, got '-5'"),
        (["--rows", "ten"], "argument --rows: must be a non-negative integer, got 'ten'"),
        (["--bad-record-rate", "1.5"], "argument --bad-record-rate: must be in [0, 1], got '1.5'"),
        (["--drift", "-0.1"], "argument --drift: must be in [0, 1], got '-0.1'"),
        (["--days", "0"], "argument --days: must be an integer >= 1, got '0'"),
        (["--start", "2026-02-30"], "argument --start: must be a date YYYY-MM-DD"),
        (["--format", "xlsx"], "invalid choice: 'xlsx'"),
    ],
)
def test_cli_rejects_bad_arguments_with_a_clear_message(tmp_path, capsys, bad_args, message):
    argv = {"--dataset": samples.declaration_file(tmp_path, samples.CUSTOMER_CHURN), "--rows": "10", "--out": str(tmp_path)}
    argv.update(dict(zip(bad_args[::2], bad_args[1::2])))
    with pytest.raises(SystemExit) as excinfo:
        main([token for pair in argv.items() for token in pair])
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_runs_as_a_module(tmp_path, capsys):
    """GIVEN the documented command line WHEN run as `python -m` THEN it writes the file; without its required
    arguments the CLI exits 2 naming them (argparse's answer, the same in-process: main() is what `python -m` runs)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_code.sample_data.generate", "--dataset",
         samples.declaration_file(tmp_path, samples.CREDIT_RISK),
         "--rows", "50", "--seed", "1", "--out", str(tmp_path)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "credit_risk" / "ingest_date=2026-04-01" / "part-00000.csv").is_file()
    with pytest.raises(SystemExit) as missing:
        main(["--rows", "5"])
    assert missing.value.code == 2
    assert "the following arguments are required: --dataset, --out" in capsys.readouterr().err


def test_the_sample_datasets_keep_their_hand_written_simulators():
    assert set(gen._SAMPLES) == set(samples.DATASETS)


def test_a_column_declared_beside_a_samples_own_is_generated_from_its_declaration():
    """GIVEN a sample dataset with a column a user added to its declaration WHEN generated THEN the added column keeps
    its declared bounds and the sample's own columns (and labels) are what they were without it: the local run works
    on the extended declaration (before: a RuntimeError, 'simulator ... did not produce columns')."""
    sample = samples.CUSTOMER_CHURN
    declaration = sample.to_declaration()
    declaration["columns"] = [*declaration["columns"], {"name": "num_devices", "type": "integer", "min": 0, "max": 5}]
    extended = catalog.parse_dataset(sample.name, declaration)
    before, after = generate(sample, 800, seed=4), generate(extended, 800, seed=4)
    devices = after["num_devices"].dropna()
    assert len(devices) > 700 and devices.between(0, 5).all() and devices.nunique() > 1
    pd.testing.assert_frame_equal(after[list(before.columns)], before)
