"""Incremental Feature Store ingestion: only the curated partitions that changed since the last successful
ingestion are put, on the curate job's real output, with both engines.

The feature job digests the records of each curated partition (``event_date=<date>``) as they would be put, puts
the records of those whose digest differs from the state it wrote last time, and records every partition whose
records were all put. Engine-specific behaviour runs on both engines; the decision logic on pandas (Spark is slow). The Feature Store client is a fake that records each PutRecord's identifier in files (the Spark
engine puts from its Python workers), and rejects the identifiers it is told to.
"""

from __future__ import annotations

import copy
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
from pipeline_code.features.compute import compute_features
from pipeline_code.features.ingestion.pandas_engine import read_curated, run_pandas
from pipeline_code.features.ingestion.plan import PARTITION_COLUMN, STATE_VERSION, combine_digests, digest_parts, read_state
from pipeline_code.features.ingestion.spark_engine import compute_features_spark, digests_spark, run_spark
from pipeline_code.features.ingestion.writer import FeatureStoreWriteFailed
from tests.support import datasets as samples
from tests.support.feature_store import CREATED, FakeSageMaker
from tests.support.credentials import moto_credentials

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


class Job:
    """The feature job of one curated copy, run again and again with one engine, as the nightly workflow does."""

    def __init__(self, engine: str, spark, curated_churn: dict, tmp_path: Path, dataset: catalog.Dataset = CHURN) -> None:
        self.engine, self.spark, self.root = engine, spark, tmp_path
        self.curated = tmp_path / "curated"
        shutil.copytree(curated_churn["curated_path"], self.curated)
        self.dataset = dataset
        self.created = CREATED
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

    def copy(self, tmp_path: Path) -> "Job":
        """This job as it stands (its curated copy, ingestion state, snapshot and put logs, under ``tmp_path``), to
        run on without changing this one: the state holds no path."""
        shutil.copytree(self.root, tmp_path, dirs_exist_ok=True)
        other = copy.copy(self)
        other.root, other.curated, other.state = tmp_path, tmp_path / "curated", tmp_path / "state" / "state.json"
        return other

    @staticmethod
    def puts(log: Path) -> list[str]:
        return sorted(line for part in log.glob("*.txt") for line in part.read_text().splitlines())

    def partitions(self) -> list[str]:
        return sorted(p.name for p in self.curated.iterdir() if p.name.startswith("event_date="))

    def ids(self, *partitions: str) -> list[str]:
        chosen = partitions or self.partitions()
        return sorted(i for p in chosen for i in pd.read_parquet(self.curated / p)["customer_id"])

    def rewrite(self, partition: str, change: str = "correct") -> None:
        """What the curate job's dynamic partition overwrite does to a date it touched: the date's files are
        replaced by a new part file, with one record's charges corrected (``correct``), one record more
        (``add``) or the same rows (``none``: what curate does every night to every date raw still holds)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        directory = self.curated / partition
        table = pq.read_table(directory)
        frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)  # the file's own types, written back
        if change == "correct":
            frame.loc[0, "monthly_charges"] = frame.loc[0, "monthly_charges"] + 1.0
        elif change == "add":
            added = frame.iloc[[0]].copy()
            added["customer_id"] = added["customer_id"] + "-new"
            frame = pd.concat([frame, added], ignore_index=True)
        for old in directory.iterdir():
            old.unlink()
        pq.write_table(pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False),
                       directory / f"part-00000-{uuid.uuid4()}.c000.snappy.parquet")


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture
def pandas_job(spark, curated_churn, tmp_path) -> Job:
    """For what the engines share (the decision, reading the state, the snapshot without a feature group)."""
    return Job("pandas", spark, curated_churn, tmp_path)


@pytest.fixture(scope="module")
def first_runs(spark, curated_churn, tmp_path_factory):
    """GIVEN an ingested curated copy: each engine's first run (every record put, the state written), run once for
    the module when a test first asks for it; each test continues on a copy of it (``Job.copy``). The job keeps
    what its first run did for the test of that run: ``first`` (its summary and the identifiers put),
    ``first_warnings`` (every warning logged meanwhile, as ``warnings(caplog)`` lists them) and ``first_state``
    (the state path it ran with)."""
    runs: dict[str, Job] = {}

    def first_run(engine: str) -> Job:
        if engine not in runs:
            job = Job(engine, spark, curated_churn, tmp_path_factory.mktemp(f"ingested-{engine}"))
            records: list[logging.LogRecord] = []
            handler = logging.Handler(logging.WARNING)
            handler.emit = records.append
            logger, root = logging.getLogger("pipeline_code"), logging.getLogger()
            level = logger.level
            logger.setLevel(logging.WARNING)  # as caplog.at_level(logging.WARNING, logger="pipeline_code")
            root.addHandler(handler)
            try:
                job.first = job.run()
            finally:
                root.removeHandler(handler)
                logger.setLevel(level)
            job.first_warnings = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
            job.first_state = job.state
            runs[engine] = job
        return runs[engine]

    return first_run


@pytest.fixture(params=ENGINES)
def ingested(request, first_runs, tmp_path) -> Job:
    return first_runs(request.param).copy(tmp_path)


@pytest.fixture
def pandas_ingested(first_runs, tmp_path) -> Job:
    return first_runs("pandas").copy(tmp_path)


def files(job: Job) -> set[str]:
    return {str(p.relative_to(job.curated)) for p in job.curated.rglob("*.parquet")}


def test_the_first_run_puts_every_record_and_a_run_with_no_curated_change_puts_none(ingested):
    # GIVEN the curate job's output (ten event dates) and no ingestion state
    # WHEN the feature job runs (the module's first run of this engine: `ingested` is a copy of what it left)
    job = ingested
    (first, put), state_path = job.first, job.first_state
    # THEN every record is put, with a one-line notice why, and every partition is recorded
    assert put == job.ids()
    assert job.first_warnings == [
        f"putting every record into the feature group: no ingestion state at {state_path} (first run, or the state "
        "was deleted)"]
    assert first["ingestion"] == {
        "mode": "full", "full_reason": f"no ingestion state at {state_path} (first run, or the state was deleted)",
        "state_path": str(state_path), "partitions_considered": len(job.partitions()), "partitions_skipped": 0,
        "partitions_put": len(job.partitions()), "partitions_failed": 0, "records_put": len(put),
        "online_corrections": 0,  # the fake group has no online store
    }
    state = json.loads(job.state.read_text())  # the copy of the state it wrote
    assert sorted(state["partitions"]) == job.partitions() and state["run_id"] == "run-1"
    # WHEN it runs again with the curated data unchanged
    second, put = job.run()
    # THEN nothing is put, and the feature snapshot still holds every record
    assert put == []
    assert (second["ingestion"]["mode"], second["ingestion"]["partitions_skipped"], second["put_succeeded"]) == (
        "incremental", len(job.partitions()), 0)
    assert second["feature_rows"] == len(job.ids()) == len(pd.read_parquet(job.root / "features"))
    # ... and the summary says so in full: no put ran, so none failed and no failure was written
    assert (second["status"], second["put_failed"], second["failures_location"]) == ("succeeded", 0, None)
    assert second["ingestion"] == {
        "mode": "incremental", "full_reason": None, "state_path": str(job.state),
        "partitions_considered": len(job.partitions()), "partitions_skipped": len(job.partitions()),
        "partitions_put": 0, "partitions_failed": 0, "records_put": 0, "online_corrections": 0}


def test_only_the_dates_whose_records_changed_are_put_even_when_a_feature_run_was_missed(ingested):
    # GIVEN an ingested curated copy
    job = ingested
    days = job.partitions()
    # WHEN curate rewrites every date with the same rows under new file names (its nightly dynamic overwrite)
    before = files(job)
    for day in days:
        job.rewrite(day, change="none")
    assert files(job).isdisjoint(before)
    summary, put = job.run()
    # THEN nothing is put
    assert put == [] and summary["ingestion"]["partitions_skipped"] == len(days)
    # WHEN one record of one date changed
    job.rewrite(days[3])
    summary, put = job.run()
    # THEN only that date's records are put
    assert put == job.ids(days[3])
    assert (summary["ingestion"]["partitions_put"], summary["ingestion"]["partitions_skipped"]) == (1, len(days) - 1)
    # WHEN one date gained a record
    job.rewrite(days[4], change="add")
    _, put = job.run()
    assert put == job.ids(days[4]) and any(i.endswith("-new") for i in put)
    # WHEN curate rewrites a date, the feature job does not run (failed, skipped), curate rewrites another date
    job.rewrite(days[0])
    job.rewrite(days[7])
    _, put = job.run()
    # THEN the next feature run puts both dates
    assert put == job.ids(days[0], days[7])


def test_a_changed_declaration_code_or_feature_group_puts_every_record(pandas_ingested, caplog):
    job = pandas_ingested
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
    # WHEN the state was written by other record-put code
    state = json.loads(job.state.read_text())
    state["keys"]["code"] = "0" * 64
    job.state.write_text(json.dumps(state))
    summary, put = job.run()
    assert put == job.ids() and summary["ingestion"]["full_reason"] == "the record-put code changed"
    # WHEN a full re-put is asked for
    summary, put = job.run(full=True)
    assert put == job.ids() and summary["ingestion"]["full_reason"] == "--full true was given"


def test_a_failed_put_does_not_advance_its_partition_and_the_next_run_puts_it_again(ingested):
    job = ingested
    days = job.partitions()
    job.rewrite(days[2])
    job.rewrite(days[5])
    job.rewrite(days[7])
    rejected = {job.ids(days[5])[0], *job.ids(days[7])[:2]}
    changed = len(job.ids(days[2], days[5], days[7]))
    # WHEN one record of a rewritten date and two of another cannot be put
    with pytest.raises(FeatureStoreWriteFailed) as excinfo:
        job.run(reject=frozenset(rejected), summary_path=str(job.root / "summary.json"))
    assert str(excinfo.value).startswith(f"3 of {changed} records could not be put")
    assert "their partitions (2) are put again next run" in str(excinfo.value)
    failed = json.loads((job.root / "summary.json").read_text())
    assert (failed["status"], failed["put_succeeded"], failed["put_failed"]) == ("failed", changed - 3, 3)
    assert (failed["ingestion"]["partitions_put"], failed["ingestion"]["partitions_failed"]) == (1, 2)
    # THEN the state records the other rewritten date, not those two
    state = json.loads(job.state.read_text())
    assert days[2] in state["partitions"] and days[5] not in state["partitions"]
    assert sorted(state["partitions"]) == sorted(set(days) - {days[5], days[7]})
    # WHEN the job runs again (the records are accepted now)
    summary, put = job.run()
    # THEN it puts those dates' records again, and only those
    assert put == job.ids(days[5], days[7])
    assert summary["ingestion"]["partitions_put"] == 2 and job.run()[1] == []


def test_spark_runs_in_one_session_each_put_what_changed_for_them(first_runs, tmp_path):
    """Several feature jobs in one Spark session (a test process, a notebook, an interactive Glue session): each run
    computes and puts its own records. A put outcome left cached by one run would answer the next run's identical
    plan (same curated path, same partitions to put, same client factory) without a single put."""
    job = first_runs("spark").copy(tmp_path)
    day = job.partitions()[3]
    log = tmp_path / "puts-shared"
    factory = recording_factory(log)  # one factory for both runs: the same plan, as in a loop over one job
    put_so_far: list[str] = []

    def run() -> tuple[dict, list[str]]:
        job.runs += 1
        summary = run_spark(job.spark, job.args(), client_factory=factory, sagemaker_client=FakeSageMaker(job.created))
        nonlocal put_so_far
        now = Job.puts(log)
        new = list(now)
        for identifier in put_so_far:
            new.remove(identifier)
        put_so_far = now
        return summary, sorted(new)

    # GIVEN one record of a date corrected, and the job run
    job.rewrite(day)
    first, put = run()
    assert put == job.ids(day) and first["put_succeeded"] == len(put)
    # WHEN the same record of that date is corrected again and the job runs again in the same session
    job.rewrite(day)
    second, put = run()
    # THEN that run puts the date's records too, and counts its own puts
    assert put == job.ids(day)
    assert (second["put_succeeded"], second["ingestion"]["partitions_put"]) == (len(put), 1)


@pytest.mark.parametrize("content", ["{not json", json.dumps({"state_version": 99, "keys": {}, "partitions": {}}),
                                     json.dumps({"state_version": 2, "keys": {}, "partitions": {"a": 1}}),
                                     # a state of the version that recorded files: put everything once
                                     json.dumps({"state_version": 1, "keys": {}, "partitions": {"a": "f"}})])
def test_an_unreadable_state_puts_every_record_with_a_one_line_notice(pandas_ingested, caplog, content):
    job = pandas_ingested
    job.state.write_text(content)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pipeline_code"):
        summary, put = job.run()
    assert put == job.ids()
    notice = f"the ingestion state at {job.state} is unreadable (not a version-2 ingestion state)"
    assert warnings(caplog) == [f"putting every record into the feature group: {notice}"]
    assert summary["ingestion"]["full_reason"] == notice
    assert job.run()[1] == []  # a good state again


def test_a_state_that_is_not_text_puts_every_record_instead_of_failing_every_night(pandas_ingested, caplog):
    job = pandas_ingested
    job.state.write_bytes(b"\xff\xfe\x00garbage")
    with caplog.at_level(logging.WARNING, logger="pipeline_code"):
        summary, put = job.run()
    assert put == job.ids()
    assert summary["ingestion"]["full_reason"] == f"the ingestion state at {job.state} is unreadable (not UTF-8 text)"


def test_a_deleted_state_puts_every_record_again(pandas_ingested):
    job = pandas_ingested
    job.state.unlink()
    summary, put = job.run()
    assert put == job.ids() and summary["ingestion"]["mode"] == "full"


def test_without_a_feature_group_there_is_no_state_and_the_snapshot_is_unchanged(pandas_job):
    job = pandas_job
    summary = run_pandas({k: v for k, v in job.args().items() if k not in ("feature_group_name", "state_path")})
    assert summary["ingestion"] is None and not job.state.exists()
    snapshot = pd.read_parquet(job.root / "features")
    assert list(snapshot.columns) == [name for name, _ in CHURN.feature_store_definitions()]


def test_curate_run_again_on_the_same_raw_data_leaves_every_date_unput(pandas_ingested, curated_churn):
    """The nightly case: curate reads the whole raw prefix and rewrites every date it holds, under new files."""
    from pipeline_code.etl import glue_curate_job

    job = pandas_ingested
    before = files(job)
    argv = ["--dataset", samples.declaration_file(job.root, CHURN), "--run_id", "run-2",
            "--raw_path", curated_churn["raw_path"], "--curated_path", str(job.curated),
            "--quarantine_path", str(job.root / "quarantine"), "--summary_path", str(job.root / "curate.json")]
    assert glue_curate_job.main(argv) == 0
    assert files(job).isdisjoint(before)  # every date rewritten
    summary, put = job.run()
    assert put == [] and summary["ingestion"]["partitions_skipped"] == len(job.partitions())


def test_both_engines_digest_the_same_records_alike_and_honour_each_others_state(spark, curated_churn, pandas_ingested):
    # GIVEN the pandas engine's digests and the Spark engine's of the same curated data
    curated = read_curated(curated_churn["curated_path"], CHURN, with_partition=True)
    partitions = curated.pop(PARTITION_COLUMN).to_numpy()
    on_pandas = combine_digests([digest_parts(compute_features(curated, CHURN), partitions, CHURN)])
    features = compute_features_spark(spark.read.parquet(curated_churn["curated_path"]), CHURN, with_partition=True)
    on_spark = digests_spark(features.repartition(7), CHURN)  # batches split differently
    # THEN they are equal, one per event date, each counting its records
    assert on_spark == on_pandas
    assert sorted(on_pandas) == sorted(p.name for p in Path(curated_churn["curated_path"]).glob("event_date=*"))
    assert sum(int(d.split("-")[0]) for d in on_pandas.values()) == len(curated)
    # AND a state written by one engine is honoured by the other
    job = pandas_ingested
    job.engine = "spark"
    assert job.run()[1] == []


def test_a_digest_is_of_the_records_as_put_not_of_their_order_or_dtype():
    frame = pd.DataFrame({n: [None, None] for n, _ in CHURN.feature_store_definitions()})
    integral = next(n for n, t in CHURN.feature_store_definitions() if t == catalog.INTEGRAL and n != CHURN.event_time)
    text = next(n for n, t in CHURN.feature_store_definitions() if t == catalog.FS_STRING and n != CHURN.record_identifier)
    frame[CHURN.record_identifier] = ["a", "b"]
    frame[integral] = pd.array([3, None], dtype="Int64")
    one = combine_digests([digest_parts(frame, ["p", "p"], CHURN)])
    # another row order, and a long column with a null as Spark hands it to pandas (float64)
    other = frame.iloc[::-1].copy()
    other[integral] = other[integral].astype("float64")
    assert combine_digests([digest_parts(other, ["p", "p"], CHURN)]) == one
    # a null is not the text "None"
    changed = frame.copy()
    changed[text] = ["None", None]
    assert combine_digests([digest_parts(changed, ["p", "p"], CHURN)]) != one
    # split into batches, the parts add up
    assert combine_digests([digest_parts(frame.iloc[:1], ["p"], CHURN), digest_parts(frame.iloc[1:], ["p"], CHURN)]) == one
    assert one["p"].startswith("2-")


# ------------------------------------------------------------------ the state on S3
STATE = "s3://features/_ingest-state/churn/state.json"
MISSING = f"no ingestion state at {STATE} (first run, or the state was deleted)"


def test_on_s3_a_missing_state_is_found_by_listing_its_key_and_the_state_round_trips(monkeypatch):
    moto_credentials(monkeypatch, "eu-west-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="features", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        # a longer key under the state's key is not the state
        s3.put_object(Bucket="features", Key="_ingest-state/churn/state.json.old", Body=b"{}")
        assert read_state(STATE, s3_client=s3) == (None, MISSING)
        state = {"state_version": STATE_VERSION, "keys": {"code": "c"}, "partitions": {"event_date=2026-01-05": "1-ab"}}
        s3.put_object(Bucket="features", Key="_ingest-state/churn/state.json", Body=json.dumps(state).encode())
        assert read_state(STATE, s3_client=s3) == (state, None)


def stubbed_s3():
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_without_list_rights_on_the_bucket_a_missing_state_is_never_asked_for():
    # GIVEN S3 as the job role sees it: a GetObject of a missing key would answer 403 AccessDenied
    client, stubber = stubbed_s3()
    listing = {"Bucket": "features", "Prefix": "_ingest-state/churn/state.json", "MaxKeys": 1}
    stubber.add_response("list_objects_v2", {"KeyCount": 0}, listing)
    # WHEN the state is read THEN its listing says it is missing, and no GetObject is sent (the stubber has none)
    with stubber:
        assert read_state(STATE, s3_client=client) == (None, MISSING)
    stubber.assert_no_pending_responses()


def test_access_denied_on_a_listed_state_is_raised_and_one_deleted_since_listed_is_missing():
    client, stubber = stubbed_s3()
    listing = {"Bucket": "features", "Prefix": "_ingest-state/churn/state.json", "MaxKeys": 1}
    found = {"KeyCount": 1, "Contents": [{"Key": "_ingest-state/churn/state.json"}]}
    get = {"Bucket": "features", "Key": "_ingest-state/churn/state.json"}
    stubber.add_response("list_objects_v2", found, listing)
    stubber.add_client_error("get_object", "AccessDenied", "Access Denied", 403, expected_params=get)
    stubber.add_response("list_objects_v2", found, listing)
    stubber.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404, expected_params=get)
    with stubber:
        with pytest.raises(Exception, match="AccessDenied"):
            read_state(STATE, s3_client=client)
        assert read_state(STATE, s3_client=client) == (None, MISSING)
