"""The Spark engine of the feature job (default in Glue): ``mapInPandas`` runs the same pandas code on each Spark
partition: features, digests per curated partition and the puts from the executors."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import pandas as pd

from pipeline_code import catalog
from pipeline_code.core.contract import CURATED_PARTITION_COLUMN
from pipeline_code.features.compute import compute_features
from pipeline_code.features.ingestion.plan import (
    PARTITION_COLUMN,
    combine_digests,
    digest_parts,
    partition_labels,
    plan_ingestion,
)
from pipeline_code.features.ingestion.run import finish, needed_columns, online_options, put_by_partition, run_keys
from pipeline_code.features.ingestion.writer import DEFAULT_MAX_WORKERS, FeatureStoreWriter, make_featurestore_client
from pipeline_code.job_runtime import LOG, default_run_id, join_path


def feature_spark_schema(dataset: catalog.Dataset) -> Any:
    """Spark schema of the feature frame (Integral -> long, Fractional -> double, String -> string)."""
    from pyspark.sql import types as T

    types = {catalog.INTEGRAL: T.LongType(), catalog.FRACTIONAL: T.DoubleType(), catalog.FS_STRING: T.StringType()}
    return T.StructType([T.StructField(n, types[t], True) for n, t in dataset.feature_store_definitions()])


def compute_features_spark(curated: Any, dataset: catalog.Dataset, *, with_partition: bool = False) -> Any:
    """``compute_features`` over a Spark DataFrame, partition by partition (``mapInPandas``).

    With ``with_partition`` the result has :data:`PARTITION_COLUMN` too: each row's curated partition
    (:func:`partition_labels`).
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    # Spark hands timestamps to pandas as naive wall-clock times of the session zone.
    session_tz = curated.sparkSession.conf.get("spark.sql.session.timeZone")
    columns = [F.col(c) for c in needed_columns(dataset)]
    schema = feature_spark_schema(dataset)
    partitioned = with_partition and CURATED_PARTITION_COLUMN in curated.columns
    if with_partition:
        # The partition value as text (a DateType casts to 2026-01-05), labelled below.
        columns.append((F.col(CURATED_PARTITION_COLUMN).cast("string") if partitioned else F.lit(None).cast("string"))
                       .alias(PARTITION_COLUMN))
        schema = T.StructType(schema.fields + [T.StructField(PARTITION_COLUMN, T.StringType(), True)])

    def compute(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:  # the (frozen, picklable) dataset travels to the executors with the closure
            features = compute_features(batch, dataset, naive_time_zone=session_tz)
            if with_partition:
                values = batch[PARTITION_COLUMN] if partitioned else None
                features[PARTITION_COLUMN] = partition_labels(values, len(batch))
            yield features

    return curated.select(*columns).mapInPandas(compute, schema)


def digests_spark(features: Any, dataset: catalog.Dataset) -> Dict[str, str]:
    """``{partition: digest}`` of a Spark feature frame (with :data:`PARTITION_COLUMN`): each batch's
    :func:`digest_parts` computed on the executors, the few rows per batch combined on the driver."""
    from pyspark.sql import types as T

    def digest(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            parts = digest_parts(batch.drop(columns=[PARTITION_COLUMN]), batch[PARTITION_COLUMN].to_numpy(), dataset)
            # As text: a sum modulo 2**64 does not fit a (signed) long.
            yield pd.DataFrame([(p, c, str(a), str(b)) for p, (c, a, b) in parts.items()],
                               columns=["partition", "records", "first", "second"])

    schema = T.StructType([T.StructField("partition", T.StringType()), T.StructField("records", T.LongType()),
                           T.StructField("first", T.StringType()), T.StructField("second", T.StringType())])
    rows = features.mapInPandas(digest, schema).collect()
    return combine_digests({r["partition"]: (int(r["records"]), int(r["first"]), int(r["second"]))} for r in rows)


_OUTCOME_COLUMNS = ("kind", "succeeded", "retries", "failure", "partition", "corrected", "failed")


def put_features_spark(
    features: Any,
    dataset: catalog.Dataset,
    feature_group_name: str,
    client_factory: Callable[[], Any],
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    writer_options: Optional[Dict[str, Any]] = None,
    failures_location: Optional[str] = None,
) -> Tuple[int, int, Optional[str], set, int]:
    """Put a Spark feature frame (with :data:`PARTITION_COLUMN`) from the executors; return (succeeded,
    failed, where the failures were written (``failures_location``, or None when every record was put),
    partitions holding a record that could not be put, online corrections).

    Each partition builds its own client with ``client_factory`` (boto3 clients
    cannot be shipped to executors) and reports one summary row (counting its failures) plus one row per
    failed record (``failure`` holds the failure as JSON, written one per line to ``failures_location``)
    and per partition with one. The outcome is persisted so the puts run once within this call, and
    released before it returns; if Spark recomputes a partition the puts are repeated (the online store
    keeps the newest event time; the offline store gets another copy).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    record_identifier, event_time = dataset.record_identifier, dataset.event_time
    options = dict(writer_options or {})

    def put(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        writer = FeatureStoreWriter(
            client_factory(),
            feature_group_name,
            record_identifier=record_identifier,
            event_time=event_time,
            max_workers=max_workers,
            **options,
        )
        for batch in batches:
            report, failed_partitions = put_by_partition(writer, batch, dataset)
            rows = [{"kind": "summary", "succeeded": report.succeeded, "retries": report.retries, "failure": None,
                     "partition": None, "corrected": report.online_corrections, "failed": report.failed}]
            rows += [
                {"kind": "failure", "succeeded": 0, "retries": 0, "failure": json.dumps(f.to_json_dict(), sort_keys=True),
                 "partition": None, "corrected": 0, "failed": 0}
                for f in report.failures
            ]
            rows += [{"kind": "failed_partition", "succeeded": 0, "retries": 0, "failure": None, "partition": p,
                      "corrected": 0, "failed": 0}
                     for p in failed_partitions]
            yield pd.DataFrame(rows, columns=list(_OUTCOME_COLUMNS))

    schema = T.StructType(
        [
            T.StructField("kind", T.StringType()),
            T.StructField("succeeded", T.LongType()),
            T.StructField("retries", T.LongType()),
            T.StructField("failure", T.StringType()),
            T.StructField("partition", T.StringType()),
            T.StructField("corrected", T.LongType()),
            T.StructField("failed", T.LongType()),
        ]
    )
    outcome = features.mapInPandas(put, schema).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        # The totals and the failed partitions in one Spark job of one stage: a summary row per batch (which counts its
        # failures) and a row per failed partition of a batch; the failures themselves stay in Spark.
        counted = outcome.filter(F.col("kind") != "failure").select("kind", "succeeded", "corrected", "failed",
                                                                     "partition").collect()
        succeeded = sum(int(row["succeeded"] or 0) for row in counted)
        corrected = sum(int(row["corrected"] or 0) for row in counted)
        failed = sum(int(row["failed"] or 0) for row in counted)
        failed_partitions = {row["partition"] for row in counted if row["kind"] == "failed_partition"}
        written = None
        if failed and failures_location:
            # The JSON strings are written verbatim: one failed record per line.
            failures = outcome.filter(F.col("kind") == "failure").select("failure")
            failures.coalesce(1).write.mode("overwrite").text(failures_location)
            written = failures_location
    finally:
        # Released before returning: a cached outcome outlives the run in its Spark session, and Spark answers
        # any later plan equal to this one (same curated path, partitions to put and client factory: the next
        # run of a loop in one session) from the cache, so that run would put nothing and report these puts.
        outcome.unpersist()
    return succeeded, failed, written, failed_partitions, corrected


def run_spark(
    spark: Any,
    args: Dict[str, Any],
    *,
    client_factory: Optional[Callable[[], Any]] = None,
    sagemaker_client: Any = None,
) -> Dict[str, Any]:
    """The whole job on Spark; ``client_factory`` overrides how executors build clients and
    ``sagemaker_client`` the driver's SageMaker client (tests)."""
    from pyspark import StorageLevel
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    args = dict(args)  # run_keys adds what it learns of the group
    dataset = args["dataset"]
    run_id = args.get("run_id") or default_run_id(args)
    keys = run_keys(args, dataset, sagemaker_client)
    curated = spark.read.parquet(args["curated_path"])
    # Persisted with a feature group: the features are written to parquet, digested *and* put into the Feature Store
    # (without one they are only written, once).
    features = compute_features_spark(curated, dataset, with_partition=keys is not None)
    if keys is not None:
        features = features.persist(StorageLevel.MEMORY_AND_DISK)
    failed_partitions: set = set()
    plan = None
    try:
        snapshot = features.drop(PARTITION_COLUMN) if keys is not None else features
        # The rows are counted by the write (an observed metric of its job), not by a Spark job of their own: without
        # a feature group nothing is persisted, and a count computed every feature again.
        written = Observation("feature_rows")
        snapshot.observe(written, F.count(F.lit(1)).alias("rows")).write.mode("overwrite").parquet(args["features_path"])
        feature_rows = written.get["rows"]
        LOG.info("wrote %d feature rows to %s", feature_rows, args["features_path"])
        succeeded = failed = corrected = 0
        failures_location = None
        if keys is not None:
            plan = plan_ingestion(digests_spark(features, dataset), keys, args["state_path"],
                                  full=bool(args.get("full")))
            if client_factory is None:
                client_factory = _default_client_factory(args)
        if plan is not None and plan.to_put:  # nothing changed: no Spark job to put no record
            chosen = features.filter(F.col(PARTITION_COLUMN).isin(sorted(plan.to_put)))
            succeeded, failed, failures_location, failed_partitions, corrected = put_features_spark(
                chosen,
                dataset,
                args["feature_group_name"],
                client_factory,
                max_workers=args.get("max_workers", DEFAULT_MAX_WORKERS),
                writer_options=online_options(args, dataset),
                failures_location=join_path(args.get("failures_path") or "", f"run_id={run_id}"),
            )
    finally:
        if keys is not None:
            features.unpersist()
    return finish(args, dataset, run_id, "spark", feature_rows, succeeded, failed, failures_location,
                   plan, failed_partitions, corrected)


def _default_client_factory(args: Dict[str, Any]) -> Callable[[], Any]:
    region = args.get("region") or _resolve_region()
    max_workers = args.get("max_workers", DEFAULT_MAX_WORKERS)

    def factory() -> Any:
        return make_featurestore_client(region, max_workers)

    return factory


def _resolve_region() -> str:
    """The driver's AWS region, so executors (which may lack the env) use the same one."""
    import boto3

    region = boto3.session.Session().region_name
    if not region:
        raise ValueError("cannot determine the AWS region: pass --region or set AWS_REGION")
    return region

