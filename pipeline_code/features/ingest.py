"""Feature ingestion job: curated parquet -> feature parquet (+ SageMaker Feature Store).

The job reads the curated data of one dataset, computes its features with the one
interpreter (:func:`pipeline_code.features.compute.compute_features`), writes the
feature frame as parquet and, when a feature group is named, puts every record
into the Feature Store with ``sagemaker-featurestore-runtime`` ``PutRecord``.

Two engines run the *same* pandas code:

* ``spark`` (default in Glue): ``mapInPandas`` runs ``compute_features`` on each
  partition, and a second ``mapInPandas`` puts the records from the executors;
* ``pandas`` (default locally): one process, pyarrow I/O (local paths or ``s3://``).

Feature Store writes retry throttling and transient errors a bounded number of
times with exponential backoff. A record that still fails is written, with its
error, to ``failures_path/run_id=<id>/`` as JSON lines, and the run fails
(non-zero exit / raised error) after everything else is written - no record is
lost silently. ``PutRecord`` is an upsert on (record identifier, event time), so
re-running after a failure is safe.

Arguments (identical names in Glue and locally):

``--dataset``             the dataset declaration: a JSON file, local or s3:// (required)
``--curated_path``        curated parquet root (required)
``--features_path``       output directory of the feature parquet, replaced each run (required)
``--feature_group_name``  Feature Store feature group; absent -> no Feature Store writes (optional)
``--failures_path``       root for failed records; required with ``--feature_group_name``
``--summary_path``        file/object for the JSON run summary (optional)
``--engine``              ``spark`` or ``pandas`` (default: spark in Glue, pandas locally)
``--max_workers``         concurrent PutRecord calls per process/partition (default 8)
``--region``              AWS region of the Feature Store (default: the environment's)
``--run_id``              run identifier (default: Glue JOB_RUN_ID, else ``local-<UTC time>``)
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pipeline_code import catalog
from pipeline_code.features.compute import compute_features
from pipeline_code.job_runtime import (
    LOG,
    Arg,
    configure_logging,
    dataset_declaration,
    default_run_id,
    glue_available,
    join_path,
    parse_job_args,
    positive_int,
    start_spark,
    write_json,
)

PROG = "python -m pipeline_code.features.ingest"
ENGINES = ("spark", "pandas")
DEFAULT_MAX_WORKERS = 8
FAILURES_FILE = "failures.jsonl"

# Error codes worth retrying: throttling and transient server-side failures.
RETRYABLE_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def _engine(value: str) -> str:
    if value not in ENGINES:
        raise ValueError(f"must be one of {list(ENGINES)}, got {value!r}")
    return value


ARGS = (
    Arg("dataset", "the dataset's declaration: a JSON file (local or s3://) or JSON text", convert=dataset_declaration),
    Arg("curated_path", "curated parquet root"),
    Arg("features_path", "output directory of the feature parquet (replaced each run)"),
    Arg("feature_group_name", "Feature Store feature group (absent: no Feature Store writes)", required=False),
    Arg("failures_path", "root for records that could not be put (required with a feature group)", required=False),
    Arg("summary_path", "where to write the JSON run summary", required=False),
    Arg("engine", "spark or pandas (default: spark in Glue, pandas locally)", required=False, convert=_engine),
    Arg(
        "max_workers",
        "concurrent PutRecord calls per process/partition",
        required=False,
        default=DEFAULT_MAX_WORKERS,
        convert=positive_int,
    ),
    Arg("region", "AWS region of the Feature Store (default: the environment's)", required=False),
    Arg("run_id", "run identifier (default: Glue JOB_RUN_ID or a UTC timestamp)", required=False),
)


class FeatureStoreWriteFailed(RuntimeError):
    """Some records could not be put into the Feature Store (they were written to the failures path)."""


# --------------------------------------------------------------------------------------
# Feature Store writer
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PutFailure:
    """A record that could not be put, with the last error and how often it was tried."""

    record_identifier: str
    event_time: str
    error_code: str
    error_message: str
    attempts: int
    record: Tuple[Tuple[str, str], ...]  # (FeatureName, ValueAsString) pairs as sent

    def to_json_dict(self) -> Dict[str, Any]:
        return {
            "record_identifier": self.record_identifier,
            "event_time": self.event_time,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "attempts": self.attempts,
            "record": [{"FeatureName": n, "ValueAsString": v} for n, v in self.record],
        }


@dataclass
class WriteReport:
    """Outcome of putting a batch of records."""

    succeeded: int = 0
    failures: List[PutFailure] = field(default_factory=list)
    retries: int = 0  # extra attempts spent on retryable errors

    @property
    def failed(self) -> int:
        return len(self.failures)

    def merge(self, other: "WriteReport") -> None:
        self.succeeded += other.succeeded
        self.failures.extend(other.failures)
        self.retries += other.retries


class FeatureStoreWriter:
    """Puts feature-frame rows into one feature group, one ``PutRecord`` per row.

    Args:
        client: a boto3 ``sagemaker-featurestore-runtime`` client (see
            :func:`make_featurestore_client`, which turns botocore's own retries
            off so that attempts are bounded here, in one place).
        feature_group_name: target feature group.
        record_identifier / event_time: names of the key features, used to
            report failures (default: the first two columns of the frame).
        max_attempts: attempts per record on retryable errors (default 5).
        base_delay / max_delay: exponential backoff with full jitter, in seconds
            (defaults 0.1 and 5.0): attempt n sleeps uniform(0, min(max, base*2^(n-1))).
        max_workers: concurrent puts (default 1; boto3 clients are thread-safe).
        sleep: injectable for tests (default ``time.sleep``).
        target_stores: optional ``TargetStores`` (e.g. ``["OnlineStore"]``);
            default None lets the feature group's configuration decide.
    """

    def __init__(
        self,
        client: Any,
        feature_group_name: str,
        *,
        record_identifier: Optional[str] = None,
        event_time: Optional[str] = None,
        max_attempts: int = 5,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        max_workers: int = 1,
        sleep: Callable[[float], None] = time.sleep,
        target_stores: Optional[Sequence[str]] = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.client = client
        self.feature_group_name = feature_group_name
        self.record_identifier = record_identifier
        self.event_time = event_time
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_workers = max_workers
        self.sleep = sleep
        self.target_stores = list(target_stores) if target_stores else None
        self._random = random.Random(0)  # jitter only; seeded so runs are reproducible
        self._lock = threading.Lock()

    @staticmethod
    def to_record(row: Mapping[str, Any]) -> List[Dict[str, str]]:
        """The ``Record`` for one row: ``[{FeatureName, ValueAsString}]``, nulls omitted.

        Feature Store has no null value: an absent feature *is* the null. Integers
        are written without a decimal point, floats as their shortest round-trip
        repr, text as is.
        """
        record = []
        for name, value in row.items():
            text = format_value(value)
            if text is not None:
                record.append({"FeatureName": name, "ValueAsString": text})
        return record

    def put_frame(self, frame: pd.DataFrame) -> WriteReport:
        """Put every row of a feature frame; never raises for per-record errors."""
        rows = _rows(frame)
        report = WriteReport()
        if self.max_workers == 1 or len(rows) <= 1:
            outcomes: Iterable[WriteReport] = map(self.put_row, rows)
            for outcome in outcomes:
                report.merge(outcome)
            return report
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            for outcome in pool.map(self.put_row, rows):  # map keeps input order
                report.merge(outcome)
        return report

    def put_row(self, row: Mapping[str, Any]) -> WriteReport:
        """Put one row with bounded retries; the report holds 1 success or 1 failure."""
        record = self.to_record(row)
        keys = list(row)
        record_id = row.get(self.record_identifier or keys[0])
        event_time = row.get(self.event_time or keys[1])
        request = {"FeatureGroupName": self.feature_group_name, "Record": record}
        if self.target_stores:
            request["TargetStores"] = self.target_stores
        retries = 0
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.client.put_record(**request)
                return WriteReport(succeeded=1, retries=retries)
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed silently
                code, message = _error_code(exc), str(exc)
                if not _is_retryable(exc, code) or attempt == self.max_attempts:
                    failure = PutFailure(
                        record_identifier=str(record_id),
                        event_time=str(event_time),
                        error_code=code,
                        error_message=message,
                        attempts=attempt,
                        record=tuple((r["FeatureName"], r["ValueAsString"]) for r in record),
                    )
                    return WriteReport(failures=[failure], retries=retries)
                retries += 1
                self.sleep(self._backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        with self._lock:  # random.Random is not thread-safe
            return self._random.uniform(0, cap)


def format_value(value: Any) -> Optional[str]:
    """``ValueAsString`` for one value; None for null (NaN, NA, None)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else repr(float(value))
    return str(value)


def make_featurestore_client(region: Optional[str] = None, max_workers: int = DEFAULT_MAX_WORKERS) -> Any:
    """A ``sagemaker-featurestore-runtime`` client with botocore retries off.

    :class:`FeatureStoreWriter` does the retrying, so botocore must not multiply
    the attempts; the connection pool is sized for ``max_workers`` threads.
    """
    import boto3
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=max(10, max_workers))
    return boto3.client("sagemaker-featurestore-runtime", region_name=region, config=config)


def _rows(frame: pd.DataFrame) -> List[Dict[str, Any]]:
    """Rows as plain dicts with ``None`` for every kind of null."""
    as_objects = frame.astype(object).where(frame.notna(), None)
    return as_objects.to_dict("records")


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def _is_retryable(exc: Exception, code: str) -> bool:
    if code in RETRYABLE_ERROR_CODES:
        return True
    try:  # network-level hiccups are transient too
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:  # pragma: no cover - botocore ships with boto3
        return False
    return isinstance(exc, (BotoConnectionError, HTTPClientError))


# --------------------------------------------------------------------------------------
# pandas engine
# --------------------------------------------------------------------------------------
def read_curated(curated_path: str, dataset: catalog.Dataset) -> pd.DataFrame:
    """The columns the features need from curated parquet (local path or ``s3://``).

    Integer columns are read as nullable ``Int64`` (not float) and timestamps as
    UTC datetimes. Files starting with ``_`` or ``.`` (Spark's ``_SUCCESS``, CRCs) are skipped.

    Raises:
        FileNotFoundError: no parquet file under ``curated_path``.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        data = ds.dataset(curated_path, format="parquet", partitioning="hive")
    except (FileNotFoundError, OSError) as exc:
        raise FileNotFoundError(f"cannot read curated parquet at {curated_path!r}: {exc}") from None
    if not data.files:
        raise FileNotFoundError(f"no parquet file under curated_path {curated_path!r}")
    wanted = [c for c in _needed_columns(dataset) if c in data.schema.names]
    table = data.to_table(columns=wanted)
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype()}.get)


def feature_arrow_schema(dataset: catalog.Dataset) -> Any:
    """pyarrow schema of the feature frame (fixed, so all-null columns keep their type)."""
    import pyarrow as pa

    types = {catalog.INTEGRAL: pa.int64(), catalog.FRACTIONAL: pa.float64(), catalog.FS_STRING: pa.string()}
    return pa.schema([pa.field(name, types[fs_type]) for name, fs_type in dataset.feature_store_definitions()])


def write_features_parquet(features: pd.DataFrame, features_path: str, dataset: catalog.Dataset) -> str:
    """Replace the contents of ``features_path`` with one parquet file; return its path."""
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    filesystem, root = pafs.FileSystem.from_uri(_as_uri(features_path))
    filesystem.create_dir(root, recursive=True)
    filesystem.delete_dir_contents(root, missing_dir_ok=True)  # the output is a full snapshot
    table = pa.Table.from_pandas(features, schema=feature_arrow_schema(dataset), preserve_index=False)
    path = f"{root.rstrip('/')}/part-00000.parquet"
    pq.write_table(table, path, filesystem=filesystem)
    return path


def write_failures_jsonl(failures: Sequence[PutFailure], failures_path: str, run_id: str) -> Optional[str]:
    """Write failed records as JSON lines under ``failures_path/run_id=<id>/``; return the location."""
    if not failures:
        return None
    import pyarrow.fs as pafs

    location = join_path(failures_path, f"run_id={run_id}")
    filesystem, root = pafs.FileSystem.from_uri(_as_uri(location))
    filesystem.create_dir(root, recursive=True)
    payload = "".join(json.dumps(f.to_json_dict(), sort_keys=True) + "\n" for f in failures)
    with filesystem.open_output_stream(f"{root.rstrip('/')}/{FAILURES_FILE}") as stream:
        stream.write(payload.encode("utf-8"))
    return location


def run_pandas(args: Dict[str, Any], *, client: Any = None) -> Dict[str, Any]:
    """The whole job in one process; ``client`` overrides the Feature Store client (tests)."""
    dataset = args["dataset"]
    run_id = args.get("run_id") or default_run_id(args)
    features = compute_features(read_curated(args["curated_path"], dataset), dataset)
    write_features_parquet(features, args["features_path"], dataset)
    LOG.info("wrote %d feature rows to %s", len(features), args["features_path"])

    report = WriteReport()
    if args.get("feature_group_name"):
        client = client or make_featurestore_client(args.get("region"), args.get("max_workers", DEFAULT_MAX_WORKERS))
        writer = _writer(client, args, dataset)
        report = writer.put_frame(features)
    failures_location = write_failures_jsonl(report.failures, args.get("failures_path") or "", run_id)
    return _finish(args, dataset, run_id, "pandas", len(features), report.succeeded, report.failed, failures_location)


# --------------------------------------------------------------------------------------
# Spark engine
# --------------------------------------------------------------------------------------
def feature_spark_schema(dataset: catalog.Dataset) -> Any:
    """Spark schema of the feature frame (Integral -> long, Fractional -> double, String -> string)."""
    from pyspark.sql import types as T

    types = {catalog.INTEGRAL: T.LongType(), catalog.FRACTIONAL: T.DoubleType(), catalog.FS_STRING: T.StringType()}
    return T.StructType([T.StructField(n, types[t], True) for n, t in dataset.feature_store_definitions()])


def compute_features_spark(curated: Any, dataset: catalog.Dataset) -> Any:
    """``compute_features`` over a Spark DataFrame, partition by partition (``mapInPandas``)."""
    # Spark hands timestamps to pandas as naive wall-clock times of the session zone.
    session_tz = curated.sparkSession.conf.get("spark.sql.session.timeZone")

    def compute(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:  # the (frozen, picklable) dataset travels to the executors with the closure
            yield compute_features(batch, dataset, naive_time_zone=session_tz)

    return curated.select(*_needed_columns(dataset)).mapInPandas(compute, feature_spark_schema(dataset))


_OUTCOME_COLUMNS = ("kind", "succeeded", "retries", "failure")


def put_features_spark(
    features: Any,
    dataset: catalog.Dataset,
    feature_group_name: str,
    client_factory: Callable[[], Any],
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    writer_options: Optional[Dict[str, Any]] = None,
) -> Tuple[int, int, Any]:
    """Put a Spark feature frame from the executors; return (succeeded, failed, failures DataFrame).

    Each partition builds its own client with ``client_factory`` (boto3 clients
    cannot be shipped to executors) and reports one summary row plus one row per
    failed record (``failure`` holds the failure as JSON). The outcome is
    persisted so the puts run once; if Spark recomputes a partition the puts are
    repeated, which PutRecord's upsert semantics make harmless.
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
            report = writer.put_frame(batch)
            rows = [{"kind": "summary", "succeeded": report.succeeded, "retries": report.retries, "failure": None}]
            rows += [
                {"kind": "failure", "succeeded": 0, "retries": 0, "failure": json.dumps(f.to_json_dict(), sort_keys=True)}
                for f in report.failures
            ]
            yield pd.DataFrame(rows, columns=list(_OUTCOME_COLUMNS))

    schema = T.StructType(
        [
            T.StructField("kind", T.StringType()),
            T.StructField("succeeded", T.LongType()),
            T.StructField("retries", T.LongType()),
            T.StructField("failure", T.StringType()),
        ]
    )
    outcome = features.mapInPandas(put, schema).persist(StorageLevel.MEMORY_AND_DISK)
    totals = outcome.agg(
        F.coalesce(F.sum("succeeded"), F.lit(0)).alias("succeeded"),
        F.sum(F.when(F.col("kind") == "failure", 1).otherwise(0)).alias("failed"),
    ).collect()[0]
    failures = outcome.filter(F.col("kind") == "failure").select("failure")
    return int(totals["succeeded"] or 0), int(totals["failed"] or 0), failures


def run_spark(spark: Any, args: Dict[str, Any], *, client_factory: Optional[Callable[[], Any]] = None) -> Dict[str, Any]:
    """The whole job on Spark; ``client_factory`` overrides how executors build clients (tests)."""
    from pyspark import StorageLevel

    dataset = args["dataset"]
    run_id = args.get("run_id") or default_run_id(args)
    curated = spark.read.parquet(args["curated_path"])
    # Persist: the features are written to parquet *and* put into the Feature Store.
    features = compute_features_spark(curated, dataset).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        features.write.mode("overwrite").parquet(args["features_path"])
        feature_rows = features.count()
        LOG.info("wrote %d feature rows to %s", feature_rows, args["features_path"])
        succeeded = failed = 0
        failures_location = None
        if args.get("feature_group_name"):
            if client_factory is None:
                client_factory = _default_client_factory(args)
            succeeded, failed, failures = put_features_spark(
                features,
                dataset,
                args["feature_group_name"],
                client_factory,
                max_workers=args.get("max_workers", DEFAULT_MAX_WORKERS),
            )
            if failed:
                failures_location = join_path(args["failures_path"], f"run_id={run_id}")
                # The JSON strings are written verbatim: one failed record per line.
                failures.coalesce(1).write.mode("overwrite").text(failures_location)
    finally:
        features.unpersist()
    return _finish(args, dataset, run_id, "spark", feature_rows, succeeded, failed, failures_location)


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


# --------------------------------------------------------------------------------------
# Shared
# --------------------------------------------------------------------------------------
def _writer(client: Any, args: Dict[str, Any], dataset: catalog.Dataset) -> FeatureStoreWriter:
    return FeatureStoreWriter(
        client,
        args["feature_group_name"],
        record_identifier=dataset.record_identifier,
        event_time=dataset.event_time,
        max_workers=args.get("max_workers", DEFAULT_MAX_WORKERS),
    )


def _needed_columns(dataset: catalog.Dataset) -> List[str]:
    names = [dataset.record_identifier, dataset.event_time]
    for feature in dataset.features:
        names.extend(c for c in feature.expr.source_columns() if c not in names)
    return names


def _as_uri(path: str) -> str:
    """pyarrow wants a URI or an absolute path."""
    if "://" in path:
        return path
    import os

    return os.path.abspath(path)


def _finish(
    args: Dict[str, Any],
    dataset: catalog.Dataset,
    run_id: str,
    engine: str,
    feature_rows: int,
    succeeded: int,
    failed: int,
    failures_location: Optional[str],
) -> Dict[str, Any]:
    """Build, log and write the run summary; raise if any record failed."""
    summary = {
        "dataset": dataset.name,
        "run_id": run_id,
        "engine": engine,
        "status": "failed" if failed else "succeeded",
        "feature_rows": feature_rows,
        "features_path": args["features_path"],
        "feature_group_name": args.get("feature_group_name"),
        "put_succeeded": succeeded,
        "put_failed": failed,
        "failures_location": failures_location,
    }
    LOG.info("run summary: %s", json.dumps(summary, sort_keys=True))
    if args.get("summary_path"):
        write_json(args["summary_path"], summary)
    if failed:
        raise FeatureStoreWriteFailed(
            f"{failed} of {succeeded + failed} records could not be put into feature group "
            f"{args['feature_group_name']!r}; they are in {failures_location}"
        )
    return summary


def _validate(args: Dict[str, Any], glue: bool) -> Dict[str, Any]:
    if args.get("feature_group_name") and not args.get("failures_path"):
        raise ValueError("--failures_path is required with --feature_group_name (failed records must go somewhere)")
    args = dict(args)
    args["engine"] = args.get("engine") or ("spark" if glue else "pandas")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point for Glue and ``python -m``; returns the exit code.

    In Glue, failures propagate as exceptions (the job run fails with the message);
    locally they are printed to stderr and turned into exit code 1.
    """
    configure_logging()
    glue = glue_available()
    try:
        args = _validate(parse_job_args(ARGS, argv, prog=PROG, glue=glue), glue)
    except ValueError as exc:
        if glue:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    runtime = None
    try:
        if args["engine"] == "spark":
            runtime = start_spark("feature_ingest", args, glue=glue)
            run_spark(runtime.spark, args)
            runtime.commit()
        else:
            run_pandas(args)
    except (FeatureStoreWriteFailed, FileNotFoundError, ValueError) as exc:
        if glue:
            raise
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        if runtime is not None:
            runtime.stop()
    return 0


if __name__ == "__main__":
    exit_code = main()
    if exit_code:  # never call sys.exit(0) in Glue: a clean return is the success signal
        sys.exit(exit_code)
