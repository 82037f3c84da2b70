"""A correction re-sent with the same (record id, event time) reaches the online store; a newer online record is
never replaced by an older one.

``PutRecord`` replaces the online record only with a greater event time, so the feature job reads the online copies
of the ids it put (``BatchGetRecord``) and, for those with the same event time but other values, hard-deletes the
online copy one millisecond later than its event time and puts the record again to the online store
(:meth:`FeatureStoreWriter.correct_online`). The requests are checked against the service model with
``botocore.stub.Stubber``; the outcomes against the local twin of the online store, which keeps the documented
``PutRecord`` / ``DeleteRecord`` semantics (tests/cli/test_online_store.py).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from mlops_cli.local.online_store import LocalOnlineStore
from pipeline_code.features.ingestion.pandas_engine import run_pandas
from pipeline_code.features.ingestion.writer import BATCH_GET_MAX_IDS, FeatureStoreWriter
from tests.support import datasets as samples
from tests.support.feature_store import FakeSageMaker

GROUP = "shop-dev-orders"
ID, EVENT = "order_id", "ordered_at"
T = "2026-05-01T00:00:00Z"


def record(**values: str) -> list:
    return [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]


def row(order_id: str = "o-1", when: str = T, amount: float = 9.5) -> dict:
    return {ID: order_id, EVENT: when, "amount": amount}


def writer(client, **options) -> FeatureStoreWriter:
    return FeatureStoreWriter(client, GROUP, record_identifier=ID, event_time=EVENT, sleep=lambda _: None,
                              correct_online=True, feature_types={ID: "String", EVENT: "String", "amount": "Fractional"},
                              **options)


def stubbed():
    client = boto3.client("sagemaker-featurestore-runtime", region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    return client, Stubber(client)


def expect_put(stubber: Stubber, rec: list, online_only: bool = False) -> None:
    request = {"FeatureGroupName": GROUP, "Record": rec}
    if online_only:
        request["TargetStores"] = ["OnlineStore"]
    stubber.add_response("put_record", {}, request)


def expect_read(stubber: Stubber, ids: list, online: dict) -> None:
    stubber.add_response(
        "batch_get_record",
        {"Records": [{"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": i, "Record": r} for i, r in online.items()],
         "Errors": [], "UnprocessedIdentifiers": []},
        {"Identifiers": [{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ids}]},
    )


def expect_hard_delete(stubber: Stubber, record_id: str, when: str) -> None:
    stubber.add_response("delete_record", {}, {
        "FeatureGroupName": GROUP, "RecordIdentifierValueAsString": record_id, "EventTime": when,
        "TargetStores": ["OnlineStore"], "DeletionMode": "HardDelete"})


CORRECTED = record(order_id="o-1", ordered_at=T, amount="9.5")
STALE = record(order_id="o-1", ordered_at=T, amount="1.5")


# ---- the requests (Stubber: every request checked against the service model) -----------------------
def test_a_same_event_time_correction_is_read_back_hard_deleted_a_millisecond_later_and_put_online_again():
    client, stubber = stubbed()
    expect_put(stubber, CORRECTED)
    expect_read(stubber, ["o-1"], {"o-1": STALE})
    expect_hard_delete(stubber, "o-1", "2026-05-01T00:00:00.001Z")
    expect_put(stubber, CORRECTED, online_only=True)  # its offline copy is already there
    with stubber:
        report = writer(client).put_frame(pd.DataFrame([row()]))
    stubber.assert_no_pending_responses()
    assert (report.succeeded, report.failed, report.online_corrections) == (1, 0, 1)


@pytest.mark.parametrize("online", [
    record(order_id="o-1", ordered_at="2026-05-02T00:00:00Z", amount="7.0"),  # newer: it stays
    record(order_id="o-1", ordered_at=T, amount="9.50"),  # the same values (a number written otherwise)
    record(order_id="o-1", ordered_at="2026-05-01T00:00:00.000Z", amount="9.5"),  # the same instant, other text
], ids=["newer-online", "same-values", "same-instant"])
def test_an_online_copy_that_is_newer_or_already_holds_the_values_is_left_alone(online):
    client, stubber = stubbed()
    expect_put(stubber, CORRECTED)
    expect_read(stubber, ["o-1"], {"o-1": online})
    with stubber:
        report = writer(client).put_frame(pd.DataFrame([row()]))
    stubber.assert_no_pending_responses()  # no DeleteRecord, no second put
    assert (report.succeeded, report.failed, report.online_corrections) == (1, 0, 0)


def test_ids_are_read_back_at_most_a_hundred_a_call_and_an_id_absent_online_needs_nothing():
    client, stubber = stubbed()
    rows = [row(f"o-{i:03d}", amount=1.0) for i in range(BATCH_GET_MAX_IDS + 1)]
    for r in rows:
        expect_put(stubber, record(order_id=r[ID], ordered_at=T, amount="1.0"))
    ids = [r[ID] for r in rows]
    expect_read(stubber, ids[:BATCH_GET_MAX_IDS], {})
    expect_read(stubber, ids[BATCH_GET_MAX_IDS:], {})
    with stubber:
        report = writer(client).put_frame(pd.DataFrame(rows))
    stubber.assert_no_pending_responses()
    assert (report.succeeded, report.online_corrections) == (BATCH_GET_MAX_IDS + 1, 0)


def test_a_throttled_read_and_unprocessed_ids_are_asked_again():
    client, stubber = stubbed()
    expect_put(stubber, CORRECTED)
    stubber.add_client_error("batch_get_record", service_error_code="ThrottlingException", http_status_code=400)
    stubber.add_response("batch_get_record", {"Records": [], "Errors": [], "UnprocessedIdentifiers": [
        {"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ["o-1"]}]})
    expect_read(stubber, ["o-1"], {"o-1": STALE})
    expect_hard_delete(stubber, "o-1", "2026-05-01T00:00:00.001Z")
    expect_put(stubber, CORRECTED, online_only=True)
    with stubber:
        report = writer(client).put_frame(pd.DataFrame([row()]))
    stubber.assert_no_pending_responses()
    assert (report.failed, report.online_corrections, report.retries) == (0, 1, 2)


def test_a_delete_refused_because_a_newer_record_landed_since_the_read_is_not_a_failure():
    client, stubber = stubbed()
    expect_put(stubber, CORRECTED)
    expect_read(stubber, ["o-1"], {"o-1": STALE})
    stubber.add_client_error("delete_record", service_error_code="ValidationError", http_status_code=400,
                             service_message="EventTime")
    expect_read(stubber, ["o-1"], {"o-1": record(order_id="o-1", ordered_at="2026-05-03T00:00:00Z", amount="3.0")})
    with stubber:
        report = writer(client).put_frame(pd.DataFrame([row()]))
    stubber.assert_no_pending_responses()  # the newer record is not touched: no put after the refused delete
    assert (report.failed, report.online_corrections) == (0, 0)


@pytest.mark.parametrize("step", ["read", "delete", "put"])
def test_a_correction_that_cannot_be_made_is_listed_as_a_failure_of_its_record(step):
    client, stubber = stubbed()
    expect_put(stubber, CORRECTED)
    if step == "read":
        stubber.add_response("batch_get_record", {"Records": [], "UnprocessedIdentifiers": [], "Errors": [
            {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": "o-1", "ErrorCode": "AccessForbidden",
             "ErrorMessage": "not allowed"}]})
    else:
        expect_read(stubber, ["o-1"], {"o-1": STALE})
    if step == "delete":
        stubber.add_client_error("delete_record", service_error_code="AccessForbidden", http_status_code=403)
        expect_read(stubber, ["o-1"], {"o-1": STALE})  # still the stale copy: a failure
    if step == "put":
        expect_hard_delete(stubber, "o-1", "2026-05-01T00:00:00.001Z")
        stubber.add_client_error("put_record", service_error_code="ValidationError", http_status_code=400,
                                 expected_params={"FeatureGroupName": GROUP, "Record": CORRECTED, "TargetStores": ["OnlineStore"]})
    with stubber:
        report = writer(client).put_frame(pd.DataFrame([row()]))
    stubber.assert_no_pending_responses()
    assert (report.succeeded, report.failed, report.online_corrections) == (1, 1, 0)
    failure = report.failures[0]
    assert (failure.record_identifier, failure.event_time) == ("o-1", T)
    assert failure.error_code == {"read": "AccessForbidden", "delete": "AccessForbidden", "put": "ValidationError"}[step]
    assert failure.error_message.startswith({"read": "reading the online record", "delete": "deleting the online record",
                                             "put": "putting the correction online"}[step])
    assert dict(failure.record)["amount"] == "9.5"


def test_a_record_whose_put_failed_is_not_read_back():
    client, stubber = stubbed()
    stubber.add_client_error("put_record", service_error_code="ValidationError", http_status_code=400)
    with stubber:
        report = writer(client).put_frame(pd.DataFrame([row()]))
    stubber.assert_no_pending_responses()
    assert (report.failed, report.online_corrections) == (1, 0)


# ---- the outcome (the local twin keeps PutRecord's and DeleteRecord's documented semantics) ----------
@pytest.fixture()
def twin(tmp_path):
    store = LocalOnlineStore(str(tmp_path / "online.sqlite"))
    yield store
    store.close()


def online(store: LocalOnlineStore, *ids: str) -> dict:
    answer = store.batch_get_record(Identifiers=[{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": list(ids)}])
    return {i["RecordIdentifierValueAsString"]: {f["FeatureName"]: f["ValueAsString"] for f in i["Record"]}
            for i in answer["Records"]}


def test_against_the_twin_the_correction_becomes_the_online_record_and_an_older_one_never_replaces_a_newer(twin):
    client = twin.runtime_client(GROUP, record_identifier=ID, event_time=EVENT, ttl_days=None)
    # GIVEN o-1 and o-2 online at T, o-3 online at a later time
    writer(client).put_frame(pd.DataFrame([row("o-1", amount=1.5), row("o-2", amount=2.0),
                                           row("o-3", "2026-05-09T00:00:00Z", 3.0)]))
    # WHEN corrections with the same event time arrive for o-1 and o-3 (o-3's is older than its online record)
    report = writer(client).put_frame(pd.DataFrame([row("o-1", amount=9.5), row("o-2", amount=2.0),
                                                    row("o-3", amount=30.0)]))
    # THEN o-1's correction is online, o-2 unchanged, o-3's newer record stays
    assert (report.failed, report.online_corrections) == (0, 1)
    assert {k: v["amount"] for k, v in online(twin, "o-1", "o-2", "o-3").items()} == {"o-1": "9.5", "o-2": "2.0", "o-3": "3.0"}
    assert online(twin, "o-3")["o-3"][EVENT] == "2026-05-09T00:00:00Z"


def test_of_an_ids_several_records_only_its_latest_is_compared(twin):
    client = twin.runtime_client(GROUP, record_identifier=ID, event_time=EVENT, ttl_days=None)
    writer(client).put_frame(pd.DataFrame([row("o-1", "2026-05-02T00:00:00Z", 2.0)]))
    report = writer(client).put_frame(pd.DataFrame([row("o-1", "2026-05-02T00:00:00Z", 5.0), row("o-1", T, 1.0)]))
    assert report.online_corrections == 1
    assert online(twin, "o-1")["o-1"]["amount"] == "5.0"


# ---- the job: the trial's repro (a corrected record, same id and event time, re-sent by curate) -----
def _curated(root: Path, frame: pd.DataFrame) -> str:
    """The date's curated partition rewritten, under a new file name as the curate job writes it."""
    partition = root / "event_date=2026-01-05"
    partition.mkdir(parents=True, exist_ok=True)
    existing = sorted(partition.glob("*.parquet"))
    for old in existing:
        old.unlink()
    # Microseconds, as the curate job writes timestamps (Spark reads no nanosecond timestamps).
    frame.to_parquet(partition / f"part-{len(existing):05d}-{uuid.uuid4().hex}.parquet", index=False,
                     coerce_timestamps="us")
    return str(root)


def _churn_rows(support_calls: int) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["C-1", "C-2"],
        "event_time": pd.to_datetime(["2026-01-05 13:00:00", "2026-01-05 14:00:00"], utc=True),
        "tenure_months": pd.array([5, 10], dtype="Int64"),
        "monthly_charges": [20.0, 30.25],
        "total_charges": [100.0, 300.0],
        "contract_type": ["month-to-month", "one-year"],
        "payment_method": ["card", "card"],
        "support_calls_90d": pd.array([1, support_calls], dtype="Int64"),
        "region": ["north", "west"],
        "gender": ["female", "male"],
        "churned": pd.array([0, 0], dtype="Int64"),
    })


@pytest.mark.parametrize("online_store", [True, False])
def test_after_a_correction_the_online_values_are_the_training_snapshots_values(tmp_path, online_store):
    dataset = samples.CUSTOMER_CHURN
    group = "customer-churn-features"
    store = LocalOnlineStore(str(tmp_path / "online.sqlite"))
    client = store.runtime_client(group, record_identifier=dataset.record_identifier, event_time=dataset.event_time,
                                  ttl_days=None)
    args = {"dataset": dataset, "curated_path": str(tmp_path / "curated"), "features_path": str(tmp_path / "features"),
            "feature_group_name": group, "failures_path": str(tmp_path / "failures"),
            "state_path": str(tmp_path / "state.json"), "max_workers": 1}
    try:
        # GIVEN a first run; WHEN curate re-sends C-2 corrected (10 support calls) with the same id and event time
        _curated(tmp_path / "curated", _churn_rows(3))
        run_pandas(dict(args, run_id="r1"), client=client, sagemaker_client=FakeSageMaker(online=online_store))
        _curated(tmp_path / "curated", _churn_rows(10))
        summary = run_pandas(dict(args, run_id="r2", summary_path=str(tmp_path / "summary.json")), client=client,
                             sagemaker_client=FakeSageMaker(online=online_store))
        answer = store.batch_get_record(Identifiers=[{"FeatureGroupName": group, "RecordIdentifiersValueAsString": ["C-2"]}])
    finally:
        store.close()
    stored = {f["FeatureName"]: f["ValueAsString"] for f in answer["Records"][0]["Record"]}
    snapshot = pd.read_parquet(tmp_path / "features").set_index("customer_id").loc["C-2"]
    assert summary["ingestion"]["records_put"] == 2
    if online_store:
        # THEN the online store serves what training reads
        assert summary["ingestion"]["online_corrections"] == 1
        assert float(stored["log_support_calls_90d"]) == pytest.approx(snapshot["log_support_calls_90d"])
        assert json.loads((tmp_path / "summary.json").read_text())["ingestion"]["online_corrections"] == 1
    else:
        # Without an online store the job reads nothing back (the twin here still shows PutRecord's own rule).
        assert summary["ingestion"]["online_corrections"] == 0
        assert float(stored["log_support_calls_90d"]) != pytest.approx(snapshot["log_support_calls_90d"])


def _twin_factory(path: str, group: str, dataset):
    """A client factory the Spark workers call: each opens the twin's SQLite file (built inside a function so
    cloudpickle ships it by value)."""
    rid, event = dataset.record_identifier, dataset.event_time

    def factory():
        from mlops_cli.local.online_store import LocalOnlineStore

        return LocalOnlineStore(path).runtime_client(group, record_identifier=rid, event_time=event, ttl_days=None)

    return factory


@pytest.mark.spark
def test_the_spark_engine_corrects_the_online_store_from_its_executors_and_counts_it(spark, tmp_path):
    from pipeline_code.features.ingestion.spark_engine import run_spark

    dataset, group = samples.CUSTOMER_CHURN, "customer-churn-features"
    path = str(tmp_path / "online.sqlite")
    args = {"dataset": dataset, "curated_path": str(tmp_path / "curated"), "features_path": str(tmp_path / "features"),
            "feature_group_name": group, "failures_path": str(tmp_path / "failures"),
            "state_path": str(tmp_path / "state.json"), "max_workers": 1}
    factory = _twin_factory(path, group, dataset)
    _curated(tmp_path / "curated", _churn_rows(3))
    run_spark(spark, dict(args, run_id="r1"), client_factory=factory, sagemaker_client=FakeSageMaker(online=True))
    # The same curated path, factory and partition in the same Spark session: the second run puts again (the first
    # run's put outcome is not left cached to answer it: tests/jobs/test_ingest_incremental.py).
    _curated(tmp_path / "curated", _churn_rows(10))
    summary = run_spark(spark, dict(args, run_id="r2"), client_factory=factory,
                        sagemaker_client=FakeSageMaker(online=True))
    assert (summary["put_failed"], summary["ingestion"]["online_corrections"]) == (0, 1)
    store = LocalOnlineStore(path)
    try:
        answer = store.batch_get_record(Identifiers=[{"FeatureGroupName": group, "RecordIdentifiersValueAsString": ["C-2"]}])
    finally:
        store.close()
    stored = {f["FeatureName"]: f["ValueAsString"] for f in answer["Records"][0]["Record"]}
    snapshot = pd.read_parquet(tmp_path / "features").set_index("customer_id").loc["C-2"]
    assert float(stored["log_support_calls_90d"]) == pytest.approx(snapshot["log_support_calls_90d"])
