"""Incremental Feature Store ingestion: only the curated partitions that changed since the last successful
ingestion are put, on the curate job's real output, with both engines.

The feature job lists the curated partitions (``event_date=<date>/``) and their files before reading, puts the
records of those whose files differ from the state it wrote last time, and records every partition whose records
were all put. The Feature Store client is a fake that records each PutRecord's identifier in files (the Spark
engine puts from its Python workers), and rejects the identifiers it is told to.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from pathlib import Path

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from pipeline_code import catalog
from pipeline_code.features.ingest import (
    FeatureStoreWriteFailed,
    PartitionOf,
    list_partitions,
    read_state,
    run_pandas,
    run_spark,
)
from tests.support import datasets as samples

pytestmark = pytest.mark.spark  # the curated data is the curate job's output (the curated_churn fixture)

CHURN = samples.CUSTOMER_CHURN
GROUP = "customer-churn-features"
ENGINES = ("pandas", "spark")


def recording_factory(log_dir: Path, reject: frozenset = frozenset()):
    """A client factory whose clients append each put record's identifier to a file in ``log_dir`` and reject
    the identifiers in ``reject`` (ValidationError: not retried). Built inside a function so cloudpickle ships
    it to Spark's Python workers by value."""
    log_dir.mkdir(parents=True, exist_ok=True)

    def factory():
        import os
        import threading

        from botocore.exceptions import ClientError

        class RecordingClient:
            def put_record(self, FeatureGroupName, Record):
                record_id = Record[0]["ValueAsString"]
                if record_id in reject:
                    raise ClientError({"Error": {"Code": "ValidationError", "Message": "rejected"}}, "PutRecord")
                name = f"{os.getpid()}-{threading.get_ident()}.txt"
                with open(os.path.join(str(log_dir), name), "a", encoding="utf-8") as handle:
                    handle.write(record_id + "\n")
                return {}

        return RecordingClient()

    return factory


class FakeSageMaker:
    def __init__(self, created: str) -> None:
        self.created = created

    def describe_feature_group(self, FeatureGroupName):
        return {"FeatureGroupName": FeatureGroupName, "CreationTime": self.created}


class Job:
    """The feature job of one curated copy, run again and again with one engine, as the nightly workflow does."""

    def __init__(self, engine: str, spark, curated_churn: dict, tmp_path: Path, dataset: catalog.Dataset = CHURN) -> None:
        self.engine, self.spark, self.root = engine, spark, tmp_path
        self.curated = tmp_path / "curated"
        shutil.copytree(curated_churn["curated_path"], self.curated)
        self.dataset = dataset
        self.created = "2026-01-01T00:00:00+00:00"
        self.state = tmp_path / "state" / "state.json"
        self.runs = 0

    def args(self, **overrides) -> dict:
        return {
            "dataset": self.dataset, "curated_path": str(self.curated), "features_path": str(self.root / "features"),
            "feature_group_name": GROUP, "failures_path": str(self.root / "failures"), "state_path": str(self.state),
            "run_id": f"run-{self.runs}", "max_workers": 2, **overrides,
        }

    def run(self, reject: frozenset = frozenset(), **overrides) -> tuple[dict, list[str]]:
        """WHEN the job runs: (its summary, the identifiers it put)."""
        self.runs += 1
        log = self.root / "puts" / f"run-{self.runs}"
        factory = recording_factory(log, reject)
        args = self.args(**overrides)
        sagemaker = FakeSageMaker(self.created)
        if self.engine == "pandas":
            summary = run_pandas(args, client=factory(), sagemaker_client=sagemaker)
        else:
            summary = run_spark(self.spark, args, client_factory=factory, sagemaker_client=sagemaker)
        return summary, self.puts(log)

    @staticmethod
    def puts(log: Path) -> list[str]:
        return sorted(line for part in log.glob("*.txt") for line in part.read_text().splitlines())

    def partitions(self) -> list[str]:
        return sorted(p.name for p in self.curated.iterdir() if p.name.startswith("event_date="))

    def ids(self, *partitions: str) -> list[str]:
        chosen = partitions or self.partitions()
        return sorted(i for p in chosen for i in pd.read_parquet(self.curated / p)["customer_id"])

    def rewrite(self, partition: str) -> None:
        """What the curate job's dynamic partition overwrite does to a date it touched: the date's files are
        replaced by a new part file (here with one record's charges corrected)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        directory = self.curated / partition
        table = pq.read_table(directory)
        frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)  # the file's own types, written back
        frame.loc[0, "monthly_charges"] = frame.loc[0, "monthly_charges"] + 1.0
        for old in directory.iterdir():
            old.unlink()
        pq.write_table(pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False),
                       directory / f"part-00000-{uuid.uuid4()}.c000.snappy.parquet")


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture(params=ENGINES)
def job(request, spark, curated_churn, tmp_path) -> Job:
    return Job(request.param, spark, curated_churn, tmp_path)


@pytest.fixture
def pandas_job(spark, curated_churn, tmp_path) -> Job:
    """For what the engines share (reading the state, the snapshot without a feature group)."""
    return Job("pandas", spark, curated_churn, tmp_path)


def test_the_first_run_puts_every_record_and_a_run_with_no_curated_change_puts_none(job, caplog):
    # GIVEN the curate job's output (ten event dates) and no ingestion state
    # WHEN the feature job runs
    with caplog.at_level(logging.WARNING, logger="pipeline_code"):
        first, put = job.run()
    # THEN every record is put, with a one-line notice why, and every partition is recorded
    assert put == job.ids()
    assert warnings(caplog) == [
        f"putting every record into the feature group: no ingestion state at {job.state} (first run, or the state "
        "was deleted)"]
    assert first["ingestion"] == {
        "mode": "full", "full_reason": f"no ingestion state at {job.state} (first run, or the state was deleted)",
        "state_path": str(job.state), "partitions_considered": len(job.partitions()), "partitions_skipped": 0,
        "partitions_put": len(job.partitions()), "partitions_failed": 0, "records_put": len(put),
    }
    state = json.loads(job.state.read_text())
    assert sorted(state["partitions"]) == job.partitions() and state["run_id"] == "run-1"
    # WHEN it runs again with the curated data unchanged
    second, put = job.run()
    # THEN nothing is put, and the feature snapshot still holds every record
    assert put == []
    assert (second["ingestion"]["mode"], second["ingestion"]["partitions_skipped"], second["put_succeeded"]) == (
        "incremental", len(job.partitions()), 0)
    assert second["feature_rows"] == len(job.ids()) == len(pd.read_parquet(job.root / "features"))


def test_only_the_dates_curate_rewrote_are_put_even_when_a_feature_run_was_missed(job):
    # GIVEN an ingested curated copy
    job.run()
    days = job.partitions()
    # WHEN curate rewrites one date and the feature job runs
    job.rewrite(days[3])
    summary, put = job.run()
    # THEN only that date's records are put
    assert put == job.ids(days[3])
    assert (summary["ingestion"]["partitions_put"], summary["ingestion"]["partitions_skipped"]) == (1, len(days) - 1)
    # WHEN curate rewrites a date, the feature job does not run (failed, skipped), curate rewrites another date
    job.rewrite(days[0])
    job.rewrite(days[7])
    _, put = job.run()
    # THEN the next feature run puts both dates
    assert put == job.ids(days[0], days[7])


def test_a_changed_declaration_code_or_feature_group_puts_every_record(job, caplog):
    job.run()
    # WHEN the dataset declaration changed (here only a column's description)
    declaration = CHURN.to_declaration()
    declaration["columns"][2]["description"] = "months as a customer, as of the event"
    job.dataset = catalog.load_dataset(declaration)
    with caplog.at_level(logging.WARNING, logger="pipeline_code"):
        summary, put = job.run()
    # THEN every record is put, and said why
    assert put == job.ids()
    assert summary["ingestion"]["full_reason"] == "the dataset declaration changed"
    assert warnings(caplog)[-1] == "putting every record into the feature group: the dataset declaration changed"
    assert job.run()[1] == []  # and recorded under the new declaration
    # WHEN the feature group was deleted and created again (same name: a new creation time)
    job.created = "2026-02-01T00:00:00+00:00"
    summary, put = job.run()
    assert put == job.ids()
    assert summary["ingestion"]["full_reason"] == "the feature group is another one (renamed, or deleted and created again)"
    # WHEN the state was written for other feature-computation code
    state = json.loads(job.state.read_text())
    state["keys"]["code"] = "0" * 64
    job.state.write_text(json.dumps(state))
    summary, put = job.run()
    assert put == job.ids() and summary["ingestion"]["full_reason"] == "the feature-computation code changed"
    # WHEN a full re-put is asked for
    summary, put = job.run(full=True)
    assert put == job.ids() and summary["ingestion"]["full_reason"] == "--full true was given"


def test_a_failed_put_does_not_advance_its_partition_and_the_next_run_puts_it_again(job):
    job.run()
    days = job.partitions()
    job.rewrite(days[2])
    job.rewrite(days[5])
    rejected = job.ids(days[5])[0]
    # WHEN one record of a rewritten date cannot be put
    with pytest.raises(FeatureStoreWriteFailed) as excinfo:
        job.run(reject=frozenset({rejected}))
    assert "their partitions (1) are put again next run" in str(excinfo.value)
    # THEN the state records the other rewritten date, not that one
    state = json.loads(job.state.read_text())
    assert days[2] in state["partitions"] and days[5] not in state["partitions"]
    assert sorted(state["partitions"]) == sorted(set(days) - {days[5]})
    # WHEN the job runs again (the record is accepted now)
    summary, put = job.run()
    # THEN it puts that date's records again, and only those
    assert put == job.ids(days[5])
    assert summary["ingestion"]["partitions_put"] == 1 and job.run()[1] == []


@pytest.mark.parametrize("content", ["{not json", json.dumps({"state_version": 99, "keys": {}, "partitions": {}}),
                                     json.dumps({"state_version": 1, "keys": {}, "partitions": {"a": 1}})])
def test_an_unreadable_state_puts_every_record_with_a_one_line_notice(pandas_job, caplog, content):
    job = pandas_job
    job.run()
    job.state.write_text(content)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pipeline_code"):
        summary, put = job.run()
    assert put == job.ids()
    notice = f"the ingestion state at {job.state} is unreadable (not a version-1 state)"
    assert warnings(caplog) == [f"putting every record into the feature group: {notice}"]
    assert summary["ingestion"]["full_reason"] == notice
    assert job.run()[1] == []  # a good state again


def test_a_deleted_state_puts_every_record_again(job):
    job.run()
    job.state.unlink()
    summary, put = job.run()
    assert put == job.ids() and summary["ingestion"]["mode"] == "full"


def test_without_a_feature_group_there_is_no_state_and_the_snapshot_is_unchanged(pandas_job):
    job = pandas_job
    summary = run_pandas({k: v for k, v in job.args().items() if k not in ("feature_group_name", "state_path")})
    assert summary["ingestion"] is None and not job.state.exists()
    snapshot = pd.read_parquet(job.root / "features")
    assert list(snapshot.columns) == [name for name, _ in CHURN.feature_store_definitions()]


# ------------------------------------------------------------------ the listing and the state on S3
def test_on_s3_a_partition_is_its_objects_names_sizes_and_etags_and_the_state_round_trips(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="curated", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for key in ("churn/event_date=2026-01-05/part-0.parquet", "churn/event_date=2026-01-06/part-0.parquet",
                    "churn/_SUCCESS", "churn/event_date=2026-01-05_$folder$", "churn_other/event_date=2026-01-05/x"):
            s3.put_object(Bucket="curated", Key=key, Body=b"one")
        before = list_partitions("s3://curated/churn/", s3_client=s3)
        assert sorted(before) == ["event_date=2026-01-05", "event_date=2026-01-06"]
        # a rewrite with the same name and size has another ETag
        s3.put_object(Bucket="curated", Key="churn/event_date=2026-01-06/part-0.parquet", Body=b"two")
        after = list_partitions("s3://curated/churn", s3_client=s3)
        assert after["event_date=2026-01-05"] == before["event_date=2026-01-05"]
        assert after["event_date=2026-01-06"] != before["event_date=2026-01-06"]
        # a missing state object is "no state", not an error
        s3.create_bucket(Bucket="features", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        assert read_state("s3://features/_ingest-state/churn/state.json", s3_client=s3) == (
            None, "no ingestion state at s3://features/_ingest-state/churn/state.json (first run, or the state was deleted)")


def test_a_rows_partition_is_its_files_directory_whatever_the_uri_form():
    partition_of = PartitionOf(["event_date=2026-01-05", "event_date=2026-01-06"])
    assert partition_of("file:///tmp/x%20y/curated/event_date=2026-01-05/part-0.parquet") == "event_date=2026-01-05"
    assert partition_of("s3://b/churn/event_date=2026-01-06/part-0.parquet") == "event_date=2026-01-06"
    assert partition_of("/tmp/curated/event_date=2026-01-07/part-0.parquet") is None  # written after the listing
    assert PartitionOf(["", "a=1"])("/r/a=1/p.parquet") == "a=1" and PartitionOf(["", "a=1"])("/r/p.parquet") == ""
