"""Feature ingestion: curated parquet -> features parquet, Spark/pandas parity, Feature Store writes.

moto 5.2.5 has no ``sagemaker-featurestore-runtime`` backend, so Feature Store calls
are checked with ``botocore.stub.Stubber`` (which validates every request against
the real service model) and, where Spark executors make the calls, with a small
fake client.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from pipeline_code.features import ingest
from pipeline_code.features.compute import compute_features
from pipeline_code.features.ingestion.pandas_engine import feature_arrow_schema, read_curated, run_pandas
from pipeline_code.features.ingestion.plan import PARTITION_COLUMN, ingestion_keys
from pipeline_code.features.ingestion.run import put_by_partition
from pipeline_code.features.ingestion.spark_engine import compute_features_spark, run_spark
from pipeline_code.features.ingestion.writer import (
    FeatureStoreWriteFailed,
    FeatureStoreWriter,
    format_value,
    make_featurestore_client,
)
from tests.support import datasets as samples
from tests.support.feature_store import FakeSageMaker
from tests.support.spark_jobs import spark_jobs

CHURN = samples.CUSTOMER_CHURN
GROUP = "customer-churn-features"


def hand_made_curated() -> pd.DataFrame:
    """Two curated churn rows whose features are easy to work out by hand."""
    return pd.DataFrame(
        {
            "customer_id": ["C-1", "C-2"],
            "event_time": pd.to_datetime(["2026-01-05 13:00:00", "2026-01-06 08:30:00"], utc=True),
            "tenure_months": pd.array([0, 10], dtype="Int64"),
            "monthly_charges": [20.0, 30.25],
            "total_charges": [np.nan, 300.0],
            "contract_type": ["month-to-month", "two-year"],
            "payment_method": [None, "card"],
            "support_calls_90d": pd.array([None, 3], dtype="Int64"),
            "region": ["north", "west"],
            "gender": ["female", None],
            "churned": pd.array([1, 0], dtype="Int64"),
        }
    )


def record(**values: str) -> list:
    return [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]


# Nulls are omitted: C-1 has no avg (tenure 0), no support calls, no payment method.
EXPECTED_RECORDS = {
    "C-1": record(
        customer_id="C-1", event_time="2026-01-05T13:00:00Z", tenure_months="0", monthly_charges="20.0",
        total_charges="0.0", contract_type="month-to-month", region="north", gender="female",
    ),
    "C-2": record(
        customer_id="C-2", event_time="2026-01-06T08:30:00Z", tenure_months="10", monthly_charges="30.25",
        total_charges="300.0", avg_charge_per_month="30.0", log_support_calls_90d=repr(float(np.log1p(3.0))),
        contract_type="two-year", payment_method="card", region="west",
    ),
}


def stubbed_client():
    client = boto3.client(
        "sagemaker-featurestore-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


def throttle(stubber: Stubber) -> None:
    stubber.add_client_error(
        "put_record", service_error_code="ThrottlingException", service_message="Rate exceeded", http_status_code=400
    )


def expect_put(stubber: Stubber, record_id: str) -> None:
    stubber.add_response("put_record", {}, {"FeatureGroupName": GROUP, "Record": EXPECTED_RECORDS[record_id]})


def write_curated(frame: pd.DataFrame, root: Path) -> str:
    """Curated parquet as the ETL lays it out (one event_date partition)."""
    partition = root / "curated" / "event_date=2026-01-05"
    partition.mkdir(parents=True)
    frame.to_parquet(partition / "part-00000.parquet", index=False)
    return str(root / "curated")


# --------------------------------------------------------------------------------------
# FeatureStoreWriter
# --------------------------------------------------------------------------------------
def test_given_feature_rows_when_put_then_records_have_the_put_record_shape_with_nulls_omitted():
    features = compute_features(hand_made_curated(), CHURN)
    client, stubber = stubbed_client()
    expect_put(stubber, "C-1")
    expect_put(stubber, "C-2")
    with stubber:
        report = FeatureStoreWriter(client, GROUP).put_frame(features)
        stubber.assert_no_pending_responses()
    assert (report.succeeded, report.failed, report.retries) == (2, 0, 0)


# The ingestion state's "code" key as every deployed feature job has recorded it (see the test below).
RECORD_PUT_CODE_KEY = "102ee365b3285935267cbc360cf9f1d77f0699ea09a89ec2761615a74e16e101"


def test_the_record_put_code_key_is_the_one_deployed_feature_jobs_recorded():
    """The ingestion state's ``code`` key digests the source text of what turns a row into a ``Record``
    (``FeatureStoreWriter.to_record`` and ``_rows``); a state recorded under another key makes the next run of every
    deployed feature job put every record of every partition again. Moving, renaming or re-indenting either function
    (a module split, a formatter) changes that text while nothing put changes: this makes it a decision. When the
    record-put code really changed, update the key here and say so in the upgrade notes (one full re-put)."""
    assert ingestion_keys(CHURN, GROUP, "2026-01-01T00:00:00+00:00")["code"] == RECORD_PUT_CODE_KEY


def test_throttling_is_retried_with_backoff_then_succeeds():
    features = compute_features(hand_made_curated(), CHURN).iloc[[0]]
    client, stubber = stubbed_client()
    throttle(stubber)
    throttle(stubber)
    expect_put(stubber, "C-1")
    sleeps = []
    with stubber:
        report = FeatureStoreWriter(client, GROUP, sleep=sleeps.append, base_delay=0.1).put_frame(features)
        stubber.assert_no_pending_responses()
    assert (report.succeeded, report.failed, report.retries) == (1, 0, 2)
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.1 and 0 <= sleeps[1] <= 0.2  # full jitter under a doubling cap


def test_persistent_throttling_gives_up_after_max_attempts_and_reports_the_failure():
    features = compute_features(hand_made_curated(), CHURN).iloc[[1]]
    client, stubber = stubbed_client()
    for _ in range(3):
        throttle(stubber)
    with stubber:
        writer = FeatureStoreWriter(client, GROUP, max_attempts=3, sleep=lambda s: None, record_identifier="customer_id")
        report = writer.put_frame(features)
        stubber.assert_no_pending_responses()
    assert (report.succeeded, report.failed) == (0, 1)
    failure = report.failures[0]
    assert (failure.record_identifier, failure.event_time, failure.error_code, failure.attempts) == (
        "C-2", "2026-01-06T08:30:00Z", "ThrottlingException", 3,
    )
    assert "Rate exceeded" in failure.error_message
    assert failure.to_json_dict()["record"] == EXPECTED_RECORDS["C-2"]


def test_validation_errors_are_not_retried():
    features = compute_features(hand_made_curated(), CHURN).iloc[[0]]
    client, stubber = stubbed_client()
    stubber.add_client_error("put_record", service_error_code="ValidationError", service_message="bad feature")
    sleeps = []
    with stubber:
        report = FeatureStoreWriter(client, GROUP, sleep=sleeps.append).put_frame(features)
    assert report.failures[0].error_code == "ValidationError" and report.failures[0].attempts == 1
    assert sleeps == []


def test_concurrent_puts_count_every_record_once():
    class FlakyClient:
        """Thread-safe fake: every 10th record is throttled once."""

        def __init__(self):
            self.lock, self.seen, self.calls = threading.Lock(), set(), 0

        def put_record(self, FeatureGroupName, Record):
            record_id = Record[0]["ValueAsString"]
            with self.lock:
                self.calls += 1
                first_time = record_id not in self.seen
                self.seen.add(record_id)
            if first_time and int(record_id.rsplit("-", 1)[1]) % 10 == 0:
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutRecord")
            return {}

    from pipeline_code.sample_data.generate import generate

    features = compute_features(generate(samples.CUSTOMER_CHURN, 200, seed=1), CHURN)
    client = FlakyClient()
    report = FeatureStoreWriter(client, GROUP, max_workers=4, sleep=lambda s: None).put_frame(features)
    assert (report.succeeded, report.failed, report.retries) == (200, 0, 20)
    assert client.calls == 220


@pytest.mark.parametrize(
    "value, text",
    [
        (None, None), (np.nan, None), (pd.NA, None), (float("nan"), None),
        (3, "3"), (np.int64(-7), "-7"), (0.1, "0.1"), (np.float64(2.5), "2.5"), (1e-7, "1e-07"),
        ("north", "north"), (True, "1"),
    ],
)
def test_values_are_formatted_as_feature_store_strings(value, text):
    assert format_value(value) == text


def test_the_default_client_leaves_retrying_to_the_writer():
    client = make_featurestore_client("eu-west-1", max_workers=32)
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert client.meta.config.max_pool_connections == 32


# --------------------------------------------------------------------------------------
# pandas engine, end to end
# --------------------------------------------------------------------------------------
def test_given_curated_parquet_when_ingested_locally_then_features_parquet_matches_the_catalog(tmp_path):
    curated_path = write_curated(hand_made_curated(), tmp_path)
    summary = run_pandas(
        {"dataset": samples.CUSTOMER_CHURN, "curated_path": curated_path, "features_path": str(tmp_path / "features"),
         "run_id": "r1"}
    )
    assert summary["feature_rows"] == 2 and summary["status"] == "succeeded"
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "features")
    assert table.schema.equals(feature_arrow_schema(CHURN))
    features = table.to_pandas().set_index("customer_id")
    assert features.loc["C-1", "event_time"] == "2026-01-05T13:00:00Z"
    assert math.isnan(features.loc["C-1", "avg_charge_per_month"])
    assert features.loc["C-2", "avg_charge_per_month"] == 30.0


def test_reading_curated_parquet_keeps_integers_as_nullable_int64(tmp_path):
    curated_path = write_curated(hand_made_curated(), tmp_path)
    curated = read_curated(curated_path, CHURN)
    assert str(curated["support_calls_90d"].dtype) == "Int64"
    assert "churned" not in curated.columns and "event_date" not in curated.columns  # only what features read


def test_failed_records_are_written_with_their_error_and_the_run_fails(tmp_path):
    curated_path = write_curated(hand_made_curated(), tmp_path)
    client, stubber = stubbed_client()
    expect_put(stubber, "C-1")
    stubber.add_client_error("put_record", service_error_code="ValidationError", service_message="no such feature")
    args = {
        "dataset": samples.CUSTOMER_CHURN, "curated_path": curated_path, "features_path": str(tmp_path / "features"),
        "feature_group_name": GROUP, "failures_path": str(tmp_path / "failures"),
        "state_path": str(tmp_path / "state.json"), "summary_path": str(tmp_path / "summary.json"), "run_id": "r2",
        "max_workers": 1,
    }
    with stubber, pytest.raises(FeatureStoreWriteFailed) as excinfo:
        run_pandas(args, client=client, sagemaker_client=FakeSageMaker())
    assert "1 of 2 records could not be put into feature group 'customer-churn-features'" in str(excinfo.value)
    lines = (tmp_path / "failures" / "run_id=r2" / "failures.jsonl").read_text().splitlines()
    failure = json.loads(lines[0])
    assert len(lines) == 1
    assert (failure["record_identifier"], failure["error_code"]) == ("C-2", "ValidationError")
    assert "no such feature" in failure["error_message"]
    assert failure["record"] == EXPECTED_RECORDS["C-2"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["status"], summary["put_succeeded"], summary["put_failed"]) == ("failed", 1, 1)
    assert (tmp_path / "features" / "part-00000.parquet").is_file()  # features written regardless


def test_local_entry_point_writes_features_and_validates_arguments(tmp_path, capsys):
    curated_path = write_curated(hand_made_curated(), tmp_path)
    base = ["--dataset", samples.declaration_file(tmp_path, samples.CUSTOMER_CHURN), "--curated_path", curated_path, "--features_path", str(tmp_path / "f")]
    assert ingest.main(base) == 0
    assert len(pd.read_parquet(tmp_path / "f")) == 2
    assert ingest.main(base + ["--feature_group_name", GROUP]) == 2
    assert "--failures_path is required with --feature_group_name" in capsys.readouterr().err
    assert ingest.main(base + ["--feature_group_name", GROUP, "--failures_path", str(tmp_path / "x")]) == 2
    assert "--state_path is required with --feature_group_name" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ingest.main(base + ["--full", "yes"])
    assert "argument --full: must be true or false, got 'yes'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ingest.main(base + ["--engine", "dask"])
    assert "argument --engine: must be one of ['spark', 'pandas'], got 'dask'" in capsys.readouterr().err
    assert ingest.main(["--dataset", samples.declaration_file(tmp_path, samples.CREDIT_RISK), "--curated_path", str(tmp_path / "none"),
                        "--features_path", str(tmp_path / "g")]) == 1
    assert "cannot read curated parquet" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# Spark engine
# --------------------------------------------------------------------------------------
def normalised(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Sorted by key, every null as None, numbers as Python numbers: dtype-agnostic comparison."""
    frame = frame.sort_values(key).reset_index(drop=True).astype(object)
    return frame.where(frame.notna(), None)


@pytest.mark.spark
def test_spark_map_in_pandas_produces_the_same_features_as_the_pandas_path(spark, curated_churn):
    path = curated_churn["curated_path"]
    from_pandas = compute_features(read_curated(path, CHURN), CHURN)
    from_spark = compute_features_spark(spark.read.parquet(path), CHURN).toPandas()
    assert list(from_spark.columns) == list(from_pandas.columns)
    pd.testing.assert_frame_equal(normalised(from_spark, "customer_id"), normalised(from_pandas, "customer_id"))


@pytest.mark.spark
def test_spark_engine_writes_the_same_feature_parquet_as_the_pandas_engine(spark, curated_churn, tmp_path):
    common = {"dataset": samples.CUSTOMER_CHURN, "curated_path": curated_churn["curated_path"], "run_id": "p"}
    run_pandas({**common, "features_path": str(tmp_path / "pandas")})
    with spark_jobs(spark, "feature-run-without-group") as jobs:
        summary = run_spark(spark, {**common, "features_path": str(tmp_path / "spark")})
    assert summary["feature_rows"] == curated_churn["batch"].frame.shape[0] - 24 - 12
    # Two Spark jobs (each a scheduling round in Glue, issue #16): the curated data's schema and the write, which
    # counts the rows it writes (no job of its own, which computed every feature again)
    assert len(jobs) == 2
    by_pandas = pd.read_parquet(tmp_path / "pandas")
    by_spark = pd.read_parquet(tmp_path / "spark")
    pd.testing.assert_frame_equal(normalised(by_spark, "customer_id"), normalised(by_pandas, "customer_id"))


@pytest.mark.spark
def test_spark_engine_puts_from_executors_and_writes_failures(spark, curated_churn, tmp_path):
    def client_factory():
        # Defined inside the test so cloudpickle ships it to the Python workers by value.
        class RejectingClient:
            def put_record(self, FeatureGroupName, Record):
                record_id = Record[0]["ValueAsString"]
                if record_id.endswith("7"):
                    raise ClientError({"Error": {"Code": "ValidationError", "Message": "rejected"}}, "PutRecord")
                return {}

        return RejectingClient()

    args = {
        "dataset": samples.CUSTOMER_CHURN, "curated_path": curated_churn["curated_path"],
        "features_path": str(tmp_path / "features"), "feature_group_name": GROUP,
        "failures_path": str(tmp_path / "failures"), "state_path": str(tmp_path / "state.json"), "run_id": "s1",
        "max_workers": 2,
    }
    with pytest.raises(FeatureStoreWriteFailed) as excinfo, spark_jobs(spark, "feature-run-with-failures") as jobs:
        run_spark(spark, args, client_factory=client_factory, sagemaker_client=FakeSageMaker())
    # The curated data's schema, the snapshot write (which counts the rows), the digests, the puts and the failures
    assert len(jobs) == 5
    curated_ids = pd.read_parquet(curated_churn["curated_path"], columns=["customer_id"])["customer_id"]
    rejected = sorted(i for i in curated_ids if i.endswith("7"))
    assert f"{len(rejected)} of {len(curated_ids)} records could not be put" in str(excinfo.value)
    lines = [
        json.loads(line)
        for part in (tmp_path / "failures" / "run_id=s1").glob("part-*")
        for line in part.read_text().splitlines()
    ]
    assert sorted(f["record_identifier"] for f in lines) == rejected
    assert {f["error_code"] for f in lines} == {"ValidationError"}


def test_an_integral_feature_handed_over_as_float64_is_put_as_an_integer():
    """GIVEN a feature frame as Spark hands it to pandas: a long column with nulls arrives as float64 (3.0, NaN)
    WHEN it is put THEN the Integral feature is sent as "3" (Feature Store does not take "3.0" for an Integral
    feature) and the null is left out, as the pandas engine's nullable integers are."""
    integral = [name for name, kind in CHURN.feature_store_definitions() if kind == "Integral"]
    assert integral
    row = {name: ("c-1" if name == CHURN.record_identifier else "2026-01-05T00:00:00Z" if name == CHURN.event_time
                  else 3.0 if kind in ("Integral", "Fractional") else "x")
           for name, kind in CHURN.feature_store_definitions()}
    frame = pd.DataFrame([row, {**row, CHURN.record_identifier: "c-2", **{n: np.nan for n in integral}}])
    assert all(frame[n].dtype == np.float64 for n in integral)
    sent = []

    class Client:
        def put_record(self, FeatureGroupName, Record):  # noqa: N803 (boto3's names)
            sent.append({f["FeatureName"]: f["ValueAsString"] for f in Record})
            return {}

    writer = FeatureStoreWriter(Client(), "group", record_identifier=CHURN.record_identifier,
                                event_time=CHURN.event_time)
    report, failed = put_by_partition(writer, frame.assign(**{PARTITION_COLUMN: "event_date=2026-01-05"}),
                                      CHURN)
    assert (report.succeeded, failed) == (2, set())
    first, second = sorted(sent, key=lambda r: r[CHURN.record_identifier])
    assert {n: first[n] for n in integral} == {n: "3" for n in integral}
    assert not any(n in second for n in integral)
    # Fractional features keep their decimal form
    assert all(first[n] == "3.0" for n, kind in CHURN.feature_store_definitions() if kind == "Fractional")


@pytest.mark.spark
def test_a_date_column_goes_through_the_curate_job_and_both_feature_engines_to_the_same_ages(spark, tmp_path):
    """Dates as model inputs, end to end in the jobs: the Glue curate job types a date column (quarantining text that is
    no date), and the feature job's Spark engine (mapInPandas, dates as Spark dates) and pandas engine (parquet dates)
    compute the same days_since ages, the ones the generator drew."""
    from pipeline_code.etl import glue_curate_job
    from pipeline_code.etl.curate import RULE_NOT_DATE
    from pipeline_code.sample_data.generate import generate, write_raw

    dataset = samples.LICENCES
    text = generate(dataset, 300, seed=17, days=5, as_text=True)
    text.loc[0, "licence_issued"], text.loc[1, "licence_issued"] = "12/04/2019", "2026-02-30"
    write_raw(text, str(tmp_path / "raw"), dataset, "2026-01-06")
    summary_path = tmp_path / "curate.json"
    argv = ["--dataset", samples.declaration_file(tmp_path, dataset), "--run_id", "r1",
            "--raw_path", str(tmp_path / "raw" / "licences"), "--curated_path", str(tmp_path / "curated"),
            "--quarantine_path", str(tmp_path / "quarantine"), "--summary_path", str(summary_path)]
    assert glue_curate_job.main(argv) == 0
    assert json.loads(summary_path.read_text())["quarantine_reasons"] == {f"licence_issued: {RULE_NOT_DATE}": 2}
    common = {"dataset": dataset, "curated_path": str(tmp_path / "curated"), "run_id": "p"}
    run_pandas({**common, "features_path": str(tmp_path / "pandas")})
    run_spark(spark, {**common, "features_path": str(tmp_path / "spark")})
    by_pandas = normalised(pd.read_parquet(tmp_path / "pandas"), "policy_id")
    by_spark = normalised(pd.read_parquet(tmp_path / "spark"), "policy_id")
    pd.testing.assert_frame_equal(by_spark, by_pandas)
    expected = compute_features(generate(dataset, 300, seed=17, days=5), dataset).iloc[2:]
    assert by_pandas["licence_age_days"].tolist() == normalised(expected, "policy_id")["licence_age_days"].tolist()
