"""Feature ingestion job: curated parquet -> feature parquet (+ SageMaker Feature Store).

The job reads the curated data of one dataset, computes its features with the one
interpreter (:func:`pipeline_code.features.compute.compute_features`), writes the
feature frame as parquet (every record, replaced each run) and, when a feature group is named,
puts the records of the curated partitions that changed since the last ingestion into the Feature
Store with ``sagemaker-featurestore-runtime`` ``PutRecord``.

Incremental puts: the offline store appends every ``PutRecord`` (a record put again with the same
event time is one more row in the offline table), so putting unchanged records each night would
copy the whole history again and cost a PutRecord each. A *partition* is a value of the curated data's
``event_date`` partition column (the curate job rewrites every date the records it read touch - every
date still in raw, on a full read - under new file names: the files say nothing about what changed). The job computes the features
of every record anyway (for the parquet), and from them a digest per partition of its records as they
would be put (:func:`digest_parts`: order-independent, identical on both engines); it puts only the
records of partitions whose digest differs from the ingestion state (``--state_path``), and then writes
the state: every partition read except those with a record that could not be put (retried next run).
The records, not the curate summary's dates, decide: a curate run whose feature run failed or was
skipped, or a hand edit of a partition, is still seen; a rewrite of the same rows is not a change.
Every record is put when there is no state (first run, state deleted), when the state is unreadable
(a one-line notice says so), when ``--full true`` is given, or when the state was written for another
dataset declaration, record-put code (how a row becomes a ``Record``: the digest already covers every
value, so an edit of the feature computation re-puts only the records whose values it changed) or feature group (its name and creation time: a recreated group is empty). A partition removed from
the curated data is dropped from the state; its records stay in the Feature Store.

Two engines run the *same* pandas code:

* ``spark`` (default in Glue): ``mapInPandas`` runs ``compute_features`` on each Spark
  partition, a second digests each curated partition's records (:func:`digests_spark`), and a
  third puts the changed partitions' records from the executors;
* ``pandas`` (default locally): one process, pyarrow I/O (local paths or ``s3://``).

Feature Store writes retry throttling and transient errors a bounded number of
times with exponential backoff. A record that still fails is written, with its
error, to ``failures_path/run_id=<id>/`` as JSON lines, and the run fails
(non-zero exit / raised error) after everything else is written - no record is
lost silently. The online store keeps the newest event time per record identifier, so re-putting
after a failure is safe there; the offline store gets one more copy of a record re-put (the
SageMaker SDK's DatasetBuilder leaves such duplicates out by default; an Athena query must too).

Corrections: ``PutRecord`` replaces an online record only with a *greater* event time, so a record re-sent
with the same id and event time but corrected values would reach the offline store and the snapshot, never
the online store. When the feature group has an online store (``DescribeFeatureGroup``), the writer reads
back the online copies of the ids it put and replaces those with the same event time but other values
(:meth:`FeatureStoreWriter.correct_online`: ``BatchGetRecord``, ``DeleteRecord`` HardDelete, ``PutRecord``
to the online store); the summary's ``ingestion.online_corrections`` counts them.

Arguments (identical names in Glue and locally):

``--dataset``             the dataset declaration: a JSON file, local or s3:// (required)
``--curated_path``        curated parquet root (required)
``--features_path``       output directory of the feature parquet, replaced each run (required)
``--feature_group_name``  Feature Store feature group; absent -> no Feature Store writes (optional)
``--failures_path``       root for failed records; required with ``--feature_group_name``
``--state_path``          file/object of the ingestion state (JSON); required with ``--feature_group_name``
``--full``                ``true`` puts every record whatever the state says (default false)
``--summary_path``        file/object for the JSON run summary (optional)
``--engine``              ``spark`` or ``pandas`` (default: spark in Glue, pandas locally)
``--max_workers``         concurrent PutRecord calls per process/partition (default 8)
``--region``              AWS region of the Feature Store (default: the environment's)
``--run_id``              run identifier (default: Glue JOB_RUN_ID, else ``local-<UTC time>``)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
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
from pipeline_code.core.contract import CURATED_PARTITION_COLUMN
from pipeline_code.core.online_features import parse_time
from pipeline_code.core.retries import TRANSIENT_ERROR_CODES, transient_response
from pipeline_code.features.compute import compute_features
from pipeline_code import job_runtime
from pipeline_code.argtypes import true_or_false
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
# BatchGetRecord takes at most 100 record identifiers a call (RecordIdentifiers: max 100 in the service model).
BATCH_GET_MAX_IDS = 100
FAILURES_FILE = "failures.jsonl"
# 2: partitions are recorded by the digest of their records (1 recorded their files: a version-1 state is
# unreadable, so the first run after the upgrade puts every record once).
STATE_VERSION = 2
# Carried next to each feature row from reading to putting: the curated partition the row came from.
PARTITION_COLUMN = "__curated_partition"
# The directory name Spark and pyarrow give a null partition value.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# SipHash keys (16 bytes each) of a partition's digest; changing one changes every digest (one full re-put).
DIGEST_HASH_KEYS = ("0123456789123456", "mlops-loop-state")

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
    Arg("state_path", "the ingestion state: JSON file/object (required with a feature group)", required=False),
    Arg("full", "true: put every record whatever the state says", required=False, default=False, convert=true_or_false),
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
    online_corrections: int = 0  # same-event-time corrections made to land in the online store (correct_online)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def merge(self, other: "WriteReport") -> None:
        self.succeeded += other.succeeded
        self.failures.extend(other.failures)
        self.retries += other.retries
        self.online_corrections += other.online_corrections


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
        correct_online: after putting a frame, make the same-event-time corrections among its rows land in
            the online store (:meth:`correct_online`); default False (the group has no online store).
        feature_types: Feature Store type per feature name (``Integral`` / ``Fractional`` / ``String``), so that
            :meth:`correct_online` compares numbers as numbers; default None compares the text.
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
        correct_online: bool = False,
        feature_types: Optional[Mapping[str, str]] = None,
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
        self.correct_online_store = correct_online
        self.feature_types = dict(feature_types or {})
        self._random = random.Random(0)  # jitter only; seeded so runs are reproducible
        self._lock = threading.Lock()
        self._local = threading.local()  # each thread's last answer (_call)

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
        """Put every row of a feature frame, then (``correct_online``) make its same-event-time corrections land in
        the online store; never raises for per-record errors."""
        rows = _rows(frame)
        report = WriteReport()
        if self.max_workers == 1 or len(rows) <= 1:
            outcomes: Iterable[WriteReport] = map(self.put_row, rows)
            for outcome in outcomes:
                report.merge(outcome)
        else:
            with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
                for outcome in pool.map(self.put_row, rows):  # map keeps input order
                    report.merge(outcome)
        if self.correct_online_store:
            failed = {(f.record_identifier, f.event_time) for f in report.failures}
            keys = list(rows[0]) if rows else []
            put = [self.to_record(row) for row in rows
                   if (str(row.get(self.record_identifier or keys[0])), str(row.get(self.event_time or keys[1])))
                   not in failed]
            report.merge(self.correct_online(put))
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
        error, attempts, retries = self._call(lambda: self.client.put_record(**request))
        if error is None:
            return WriteReport(succeeded=1, retries=retries)
        return WriteReport(failures=[self._failure(record, str(record_id), str(event_time), error, attempts)],
                           retries=retries)

    def correct_online(self, records: Sequence[List[Dict[str, str]]]) -> WriteReport:
        """Make the records just put that the online store did not take because it holds a record with the *same*
        event time (a correction re-sent with the same record id and event time) land there.

        ``PutRecord`` replaces the online record only with a greater event time; with an equal one the record goes
        to the offline store alone. So the online copies of the records' ids are read (``BatchGetRecord``, at most
        100 ids a call) and, only for an id whose online copy has the same event time as its record here but other
        values, the online copy is removed (``DeleteRecord``, ``HardDelete``, ``TargetStores`` ``OnlineStore``, at
        the event time one millisecond later: a hard delete is refused when the stored event time is not earlier, so
        a newer record that landed since the read is never deleted) and the record is put again to the online store
        alone (its offline copy is already there). An online copy with another event time is left alone: a newer
        one stays, and an older one was replaced by the put. A record whose read, delete or put still fails after
        the retries is reported as a failure (its partition is put again next run); a delete refused because the
        online record is now newer is not. ``online_corrections`` counts the records corrected.
        """
        report = WriteReport()
        rid_name, time_name = self.record_identifier, self.event_time
        latest: Dict[str, List[Dict[str, str]]] = {}
        for record in records:
            values = _record_values(record)
            if rid_name is None or time_name is None:
                rid_name, time_name = record[0]["FeatureName"], record[1]["FeatureName"]
            rid = values.get(rid_name)
            if rid is None:
                continue
            known = latest.get(rid)
            # Only an id's latest record can be the one the online store holds after the puts.
            if known is None or not _later(_record_values(known).get(time_name), values.get(time_name)):
                latest[rid] = record
        ids = list(latest)
        for start in range(0, len(ids), BATCH_GET_MAX_IDS):
            chunk = ids[start:start + BATCH_GET_MAX_IDS]
            online, errors, retries = self._read_online(chunk)
            report.retries += retries
            for rid, (code, message, attempts) in errors.items():
                values = _record_values(latest[rid])
                report.failures.append(self._failure(latest[rid], rid, str(values.get(time_name)),
                                                     (code, f"reading the online record: {message}"), attempts))
            for rid, stored in online.items():
                if rid not in latest:
                    continue
                ours = _record_values(latest[rid])
                event_text = ours.get(time_name)
                event = _instant(event_text)
                if event is None or _instant(stored.get(time_name)) != event or self._same_values(stored, ours):
                    continue
                report.merge(self._correct(latest[rid], rid, event_text, event))
        return report

    def _correct(self, record: List[Dict[str, str]], rid: str, event_text: str, event: dt.datetime) -> WriteReport:
        """Hard-delete the online copy of ``rid`` (same event time, other values) and put ``record`` online again."""
        delete = {
            "FeatureGroupName": self.feature_group_name,
            "RecordIdentifierValueAsString": rid,
            "EventTime": _feature_store_time(event + dt.timedelta(milliseconds=1)),
            "TargetStores": ["OnlineStore"],
            "DeletionMode": "HardDelete",
        }
        error, attempts, retries = self._call(lambda: self.client.delete_record(**delete))
        if error is not None:
            online, _, more = self._read_online([rid])
            retries += more
            if rid in online and _later(online[rid].get(self.event_time or record[1]["FeatureName"]), event_text):
                return WriteReport(retries=retries)  # a newer record landed since the read: it stays
            return WriteReport(failures=[self._failure(record, rid, event_text,
                                                       (error[0], f"deleting the online record: {error[1]}"), attempts)],
                               retries=retries)
        put = {"FeatureGroupName": self.feature_group_name, "Record": record, "TargetStores": ["OnlineStore"]}
        error, attempts, more = self._call(lambda: self.client.put_record(**put))
        retries += more
        if error is not None:
            return WriteReport(failures=[self._failure(record, rid, event_text,
                                                       (error[0], f"putting the correction online: {error[1]}"), attempts)],
                               retries=retries)
        return WriteReport(retries=retries, online_corrections=1)

    def _read_online(self, ids: Sequence[str]) -> Tuple[Dict[str, Dict[str, str]], Dict[str, Tuple[str, str, int]], int]:
        """``({id: online values}, {id: (error code, message, attempts)}, retries)`` of ``ids`` (at most 100) by
        ``BatchGetRecord``: unprocessed ids and retryable errors asked again, within the writer's attempts. An id
        absent from the answer has no online record (never put, deleted or expired)."""
        found: Dict[str, Dict[str, str]] = {}
        errors: Dict[str, Tuple[str, str, int]] = {}
        pending, retries = list(ids), 0
        for attempt in range(1, self.max_attempts + 1):
            request = {"Identifiers": [{"FeatureGroupName": self.feature_group_name,
                                        "RecordIdentifiersValueAsString": pending}]}
            error, _, _ = self._call(lambda: self.client.batch_get_record(**request), max_attempts=1)
            if error is not None:
                if not error[2] or attempt == self.max_attempts:
                    errors.update({rid: (error[0], error[1], attempt) for rid in pending})
                    return found, errors, retries
                retries += 1
                self.sleep(self._backoff(attempt))
                continue
            response = self._last_response
            for item in response.get("Records", []):
                found[item["RecordIdentifierValueAsString"]] = _record_values(item.get("Record", []))
            retry = []
            for item in response.get("Errors", []):
                rid, code = item["RecordIdentifierValueAsString"], item.get("ErrorCode", "")
                if code in TRANSIENT_ERROR_CODES and attempt < self.max_attempts:
                    retry.append(rid)
                else:
                    errors[rid] = (code, item.get("ErrorMessage", ""), attempt)
            retry += [rid for group in response.get("UnprocessedIdentifiers", [])
                      for rid in group.get("RecordIdentifiersValueAsString", [])]
            if not retry:
                return found, errors, retries
            if attempt == self.max_attempts:
                errors.update({rid: ("Unprocessed", "BatchGetRecord left the id unprocessed", attempt) for rid in retry})
                return found, errors, retries
            pending = retry
            retries += 1
            self.sleep(self._backoff(attempt))
        return found, errors, retries  # pragma: no cover - the loop returns

    def _call(self, operation: Callable[[], Any], *,
              max_attempts: Optional[int] = None) -> Tuple[Optional[Tuple[str, str, bool]], int, int]:
        """Call ``operation()`` (one request) with bounded retries: ``(None or (code, message, retryable), attempts,
        retries)``; the answer of a success is left in ``_last_response`` (per thread)."""
        limit = max_attempts or self.max_attempts
        retries = 0
        for attempt in range(1, limit + 1):
            try:
                self._local.response = operation()
                return None, attempt, retries
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed silently
                code, message = _error_code(exc), str(exc)
                retryable = _is_retryable(exc, code)
                if not retryable or attempt == limit:
                    return (code, message, retryable), attempt, retries
                retries += 1
                self.sleep(self._backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def _last_response(self) -> Dict[str, Any]:
        return getattr(self._local, "response", None) or {}

    def _same_values(self, stored: Mapping[str, str], ours: Mapping[str, str]) -> bool:
        """Whether two records hold the same values: the same features present, numbers compared as numbers (the
        store's text of a number may be written differently), text as text."""
        if set(stored) != set(ours):
            return False
        for name, text in ours.items():
            kind = self.feature_types.get(name)
            if kind in (catalog.INTEGRAL, catalog.FRACTIONAL):
                try:
                    if float(stored[name]) != float(text):
                        return False
                    continue
                except ValueError:
                    pass
            if name == (self.event_time or "") and _instant(stored[name]) == _instant(text):
                continue
            if stored[name] != text:
                return False
        return True

    @staticmethod
    def _failure(record: List[Dict[str, str]], record_id: str, event_time: str, error: Tuple[str, str],
                 attempts: int) -> PutFailure:
        return PutFailure(
            record_identifier=record_id,
            event_time=event_time,
            error_code=error[0],
            error_message=error[1],
            attempts=attempts,
            record=tuple((r["FeatureName"], r["ValueAsString"]) for r in record),
        )

    def _backoff(self, attempt: int) -> float:
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        with self._lock:  # random.Random is not thread-safe
            return self._random.uniform(0, cap)


def _record_values(record: Iterable[Mapping[str, Any]]) -> Dict[str, str]:
    """``{FeatureName: ValueAsString}`` of a ``Record``."""
    return {item["FeatureName"]: item.get("ValueAsString") for item in record}


def _instant(text: Optional[str]) -> Optional[dt.datetime]:
    """The instant an event time's text names (ISO-8601 or epoch seconds, as Feature Store takes them); None if
    it names none."""
    return parse_time(text)


def _later(first: Optional[str], second: Optional[str]) -> bool:
    """Whether event time ``first`` is later than ``second`` (an unreadable one is never later)."""
    a, b = _instant(first), _instant(second)
    return a is not None and (b is None or a > b)


def _feature_store_time(moment: dt.datetime) -> str:
    """An event time as Feature Store's String event times take it (``yyyy-MM-dd'T'HH:mm:ss.SSSZ``, UTC)."""
    moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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
    response = getattr(exc, "response", None)
    if code in TRANSIENT_ERROR_CODES or (isinstance(response, dict) and transient_response(response)):
        return True
    try:  # network-level hiccups are transient too
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:  # pragma: no cover - botocore ships with boto3
        return False
    return isinstance(exc, (BotoConnectionError, HTTPClientError))


# --------------------------------------------------------------------------------------
# Incremental ingestion: which curated partitions changed since the last ingestion
# --------------------------------------------------------------------------------------
def partition_labels(values: Optional[pd.Series], rows: int) -> np.ndarray:
    """Each row's partition: ``event_date=<date>`` from the curated data's partition column (text as
    the curate job names the directory), ``""`` for all rows when the data has no such column."""
    if values is None:
        return np.full(rows, "", dtype=object)
    return np.array([f"{CURATED_PARTITION_COLUMN}={HIVE_NULL if v is None or v != v else v}" for v in values],
                    dtype=object)


def with_declared_types(features: pd.DataFrame, dataset: catalog.Dataset) -> pd.DataFrame:
    """``features`` with each feature column in its declared type's dtype (Integral: nullable Int64, Fractional:
    float64), whatever dtype an engine handed over: Spark gives pandas a long column with nulls as float64, whose
    values would be put as ``3.0``, which Feature Store does not take for an Integral feature."""
    typed = features.copy()
    for name, fs_type in dataset.feature_store_definitions():
        if name in typed.columns and fs_type in (catalog.INTEGRAL, catalog.FRACTIONAL):
            typed[name] = typed[name].astype("Int64" if fs_type == catalog.INTEGRAL else "float64")
    return typed


def put_ready(features: pd.DataFrame, dataset: catalog.Dataset) -> pd.DataFrame:
    """The feature columns as the ``ValueAsString`` each value is put with (None: null, not put), by their
    declared types (:func:`with_declared_types`)."""
    typed = with_declared_types(features, dataset)
    return pd.DataFrame({name: typed[name].astype(object).map(format_value) for name, _ in dataset.feature_store_definitions()},
                        index=features.index)


def digest_parts(features: pd.DataFrame, partitions: np.ndarray, dataset: catalog.Dataset) -> Dict[str, Tuple[int, int, int]]:
    """``{partition: (records, sum of hash 1, sum of hash 2)}`` of some of its rows: the records as they are
    put (:func:`put_ready`), each hashed twice (64-bit SipHash, two keys), the hashes summed modulo 2**64.

    Sums do not depend on row order or on how rows are split into batches, so the parts of one
    partition from several batches or executors combine by adding (:func:`combine_digests`).
    """
    if not len(features):
        return {}
    # "" for a null and "=" + text otherwise: a null never hashes like a text, not even "None".
    encoded = put_ready(features, dataset).apply(lambda c: c.map(lambda v: "" if v is None else "=" + v))
    codes, names = pd.factorize(pd.Series(partitions, dtype=object), use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(names))
    sums = []
    for key in DIGEST_HASH_KEYS:
        hashes = pd.util.hash_pandas_object(encoded, index=False, hash_key=key).to_numpy(dtype=np.uint64)
        total = np.zeros(len(names), dtype=np.uint64)
        np.add.at(total, codes, hashes)  # uint64 addition wraps: modulo 2**64
        sums.append(total)
    return {str(name): (int(counts[i]), int(sums[0][i]), int(sums[1][i])) for i, name in enumerate(names)}


def combine_digests(parts: Iterable[Mapping[str, Tuple[int, int, int]]]) -> Dict[str, str]:
    """``{partition: digest}`` from the :func:`digest_parts` of every batch: ``<records>-<32 hex digits>``."""
    totals: Dict[str, List[int]] = {}
    for part in parts:
        for name, (count, first, second) in part.items():
            total = totals.setdefault(name, [0, 0, 0])
            total[0] += count
            total[1] = (total[1] + first) % 2**64
            total[2] = (total[2] + second) % 2**64
    return {name: f"{c}-{a:016x}{b:016x}" for name, (c, a, b) in sorted(totals.items())}


def ingestion_keys(dataset: catalog.Dataset, feature_group_name: str, group_created: str) -> Dict[str, str]:
    """What the records put depend on besides the curated data: a change of any one re-puts every record.

    ``declaration``: the dataset declaration (columns, keys, feature names and expressions: the digest sees values,
    not names); ``code``: the source of what turns a row into a ``Record`` (the values themselves, however the
    feature computation or their formatting changes, are in the digest); ``feature_group``: the group's name and
    creation time (a group deleted and created again is empty).
    """
    declaration = json.dumps(dataset.to_declaration(), sort_keys=True)
    sources = [inspect.getsource(item) for item in (FeatureStoreWriter.to_record, _rows)]
    return {
        "declaration": _sha256(declaration),
        "code": _sha256("\n".join(sources)),
        "feature_group": f"{feature_group_name}@{group_created}",
    }


def feature_group_created(sagemaker_client: Any, feature_group_name: str) -> str:
    """The feature group's creation time (``DescribeFeatureGroup``), as text."""
    return describe_group(sagemaker_client, feature_group_name)[0]


def describe_group(sagemaker_client: Any, feature_group_name: str) -> Tuple[str, bool]:
    """``(creation time as text, whether the group has an online store)`` by one ``DescribeFeatureGroup``."""
    described = sagemaker_client.describe_feature_group(FeatureGroupName=feature_group_name)
    created = described["CreationTime"]
    online = bool((described.get("OnlineStoreConfig") or {}).get("EnableOnlineStore"))
    return (created.isoformat() if hasattr(created, "isoformat") else str(created)), online


_KEY_CHANGES = {
    "declaration": "the dataset declaration changed",
    "code": "the record-put code changed",
    "feature_group": "the feature group is another one (renamed, or deleted and created again)",
}


@dataclass(frozen=True)
class IngestionPlan:
    """Which partitions' records a run puts, and why all of them when it puts all."""

    keys: Dict[str, str]
    digests: Dict[str, str]  # partition -> digest of its records, as this run read and computed them
    to_put: frozenset
    full_reason: Optional[str]  # None: incremental

    def next_state(self, failed_partitions: Iterable[Optional[str]], run_id: str) -> Dict[str, Any]:
        """The state after this run: every partition read but those with a record not put (put again next run).

        A partition is recorded with the digest of the records this run read: if curate changed it
        after the read, the next run computes another digest and puts it (never the reverse).
        """
        failed = set(failed_partitions)
        return {
            "state_version": STATE_VERSION,
            "keys": dict(self.keys),
            "partitions": {p: d for p, d in self.digests.items() if p not in failed},
            "run_id": run_id,
            "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }


def plan_ingestion(
    digests: Dict[str, str], keys: Dict[str, str], state_path: str, *, full: bool = False, s3_client: Any = None
) -> IngestionPlan:
    """Compare the partitions' digests with the state at ``state_path``; every partition when a full put is due."""
    state, problem = read_state(state_path, s3_client=s3_client)
    reason = None
    if full:
        reason = "--full true was given"
    elif state is None:
        reason = problem
    else:
        changed = [name for name in _KEY_CHANGES if state["keys"].get(name) != keys[name]]
        if changed:
            reason = "; ".join(_KEY_CHANGES[name] for name in changed)
    if reason is not None:
        LOG.warning("putting every record into the feature group: %s", reason)
        return IngestionPlan(keys, dict(digests), frozenset(digests), reason)
    recorded = state["partitions"]
    to_put = frozenset(p for p, digest in digests.items() if recorded.get(p) != digest)
    return IngestionPlan(keys, dict(digests), to_put, None)


def read_state(state_path: str, *, s3_client: Any = None) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """The ingestion state (:func:`job_runtime.read_state`): ``(state, None)``, or ``(None, why there is none
    usable)``."""
    return job_runtime.read_state(
        state_path, what="ingestion state", version=STATE_VERSION, s3_client=s3_client,
        valid=lambda state: isinstance(state.get("keys"), dict) and isinstance(state.get("partitions"), dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in state["partitions"].items()))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sagemaker_client(region: Optional[str]) -> Any:
    import boto3

    return boto3.client("sagemaker", region_name=region)


# --------------------------------------------------------------------------------------
# pandas engine
# --------------------------------------------------------------------------------------
def read_curated(curated_path: str, dataset: catalog.Dataset, *, with_partition: bool = False) -> pd.DataFrame:
    """The columns the features need from curated parquet (local path or ``s3://``).

    Integer columns are read as nullable ``Int64`` (not float) and timestamps as
    UTC datetimes. Files starting with ``_`` or ``.`` (Spark's ``_SUCCESS``, CRCs) are skipped.
    With ``with_partition``, a :data:`PARTITION_COLUMN` names each row's partition (:func:`partition_labels`).

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
    partitioned = with_partition and CURATED_PARTITION_COLUMN in data.schema.names
    table = data.to_table(columns=wanted + ([CURATED_PARTITION_COLUMN] if partitioned else []))
    values = None
    if partitioned:
        # As text, whatever type the hive partitioning inferred (a date32 reads 2026-01-05, as Spark's cast does).
        values = table.column(CURATED_PARTITION_COLUMN).cast(pa.string()).to_pandas()
        table = table.drop_columns([CURATED_PARTITION_COLUMN])
    frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype()}.get)
    if with_partition:
        frame[PARTITION_COLUMN] = partition_labels(values, len(frame))
    return frame


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


def run_pandas(args: Dict[str, Any], *, client: Any = None, sagemaker_client: Any = None) -> Dict[str, Any]:
    """The whole job in one process; ``client`` / ``sagemaker_client`` override the Feature Store runtime
    and SageMaker clients (tests)."""
    args = dict(args)  # _keys adds what it learns of the group
    dataset = args["dataset"]
    run_id = args.get("run_id") or default_run_id(args)
    keys = _keys(args, dataset, sagemaker_client)
    curated = read_curated(args["curated_path"], dataset, with_partition=keys is not None)
    partitions = curated.pop(PARTITION_COLUMN).to_numpy() if keys is not None else None
    features = compute_features(curated, dataset)
    write_features_parquet(features, args["features_path"], dataset)
    LOG.info("wrote %d feature rows to %s", len(features), args["features_path"])

    report = WriteReport()
    failed_partitions: set = set()
    plan = None
    if keys is not None:
        digests = combine_digests([digest_parts(features, partitions, dataset)])
        plan = plan_ingestion(digests, keys, args["state_path"], full=bool(args.get("full")))
        client = client or make_featurestore_client(args.get("region"), args.get("max_workers", DEFAULT_MAX_WORKERS))
        selected = np.array([p in plan.to_put for p in partitions], dtype=bool)
        chosen = features[selected].assign(**{PARTITION_COLUMN: partitions[selected]})
        report, failed_partitions = put_by_partition(_writer(client, args, dataset), chosen, dataset)
    failures_location = write_failures_jsonl(report.failures, args.get("failures_path") or "", run_id)
    return _finish(args, dataset, run_id, "pandas", len(features), report.succeeded, report.failed, failures_location,
                   plan, failed_partitions, report.online_corrections)


def put_by_partition(writer: FeatureStoreWriter, frame: pd.DataFrame, dataset: catalog.Dataset) -> Tuple[WriteReport, set]:
    """Put the rows of ``frame`` (with :data:`PARTITION_COLUMN`), each value as its declared type says; return the
    report and the partitions holding a record that could not be put."""
    partitions = frame[PARTITION_COLUMN].to_numpy()
    report = writer.put_frame(with_declared_types(frame.drop(columns=[PARTITION_COLUMN]), dataset))
    failed: set = set()
    if report.failures:
        # A (record identifier, event time) lies in one partition: its event time decides the event date.
        keys = {(f.record_identifier, f.event_time) for f in report.failures}
        columns = list(frame.columns)
        rid, event_time = writer.record_identifier or columns[0], writer.event_time or columns[1]
        pairs = zip(frame[rid].astype(str), frame[event_time].astype(str))
        failed = {partition for partition, pair in zip(partitions, pairs) if pair in keys}
    return report, failed


# --------------------------------------------------------------------------------------
# Spark engine
# --------------------------------------------------------------------------------------
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
    columns = [F.col(c) for c in _needed_columns(dataset)]
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


_OUTCOME_COLUMNS = ("kind", "succeeded", "retries", "failure", "partition", "corrected")


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
    cannot be shipped to executors) and reports one summary row plus one row per
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
                     "partition": None, "corrected": report.online_corrections}]
            rows += [
                {"kind": "failure", "succeeded": 0, "retries": 0, "failure": json.dumps(f.to_json_dict(), sort_keys=True),
                 "partition": None, "corrected": 0}
                for f in report.failures
            ]
            rows += [{"kind": "failed_partition", "succeeded": 0, "retries": 0, "failure": None, "partition": p,
                      "corrected": 0}
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
        ]
    )
    outcome = features.mapInPandas(put, schema).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        # The totals and the failed partitions in one Spark job: a few rows per kind (and failed partition).
        groups = outcome.groupBy("kind", "partition").agg(F.sum("succeeded").alias("succeeded"),
                                                          F.sum("corrected").alias("corrected"),
                                                          F.count(F.lit(1)).alias("rows")).collect()
        succeeded = sum(int(row["succeeded"] or 0) for row in groups)
        corrected = sum(int(row["corrected"] or 0) for row in groups)
        failed = sum(int(row["rows"]) for row in groups if row["kind"] == "failure")
        failed_partitions = {row["partition"] for row in groups if row["kind"] == "failed_partition"}
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
    from pyspark.sql import functions as F

    args = dict(args)  # _keys adds what it learns of the group
    dataset = args["dataset"]
    run_id = args.get("run_id") or default_run_id(args)
    keys = _keys(args, dataset, sagemaker_client)
    curated = spark.read.parquet(args["curated_path"])
    # Persist: the features are written to parquet, digested *and* put into the Feature Store.
    features = compute_features_spark(curated, dataset, with_partition=keys is not None)
    features = features.persist(StorageLevel.MEMORY_AND_DISK)
    failed_partitions: set = set()
    plan = None
    try:
        snapshot = features.drop(PARTITION_COLUMN) if keys is not None else features
        snapshot.write.mode("overwrite").parquet(args["features_path"])
        feature_rows = features.count()
        LOG.info("wrote %d feature rows to %s", feature_rows, args["features_path"])
        succeeded = failed = corrected = 0
        failures_location = None
        if keys is not None:
            plan = plan_ingestion(digests_spark(features, dataset), keys, args["state_path"],
                                  full=bool(args.get("full")))
            if client_factory is None:
                client_factory = _default_client_factory(args)
            chosen = features.filter(F.col(PARTITION_COLUMN).isin(sorted(plan.to_put)))
            succeeded, failed, failures_location, failed_partitions, corrected = put_features_spark(
                chosen,
                dataset,
                args["feature_group_name"],
                client_factory,
                max_workers=args.get("max_workers", DEFAULT_MAX_WORKERS),
                writer_options=_online_options(args, dataset),
                failures_location=join_path(args.get("failures_path") or "", f"run_id={run_id}"),
            )
    finally:
        features.unpersist()
    return _finish(args, dataset, run_id, "spark", feature_rows, succeeded, failed, failures_location,
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
        **_online_options(args, dataset),
    )


def _online_options(args: Dict[str, Any], dataset: catalog.Dataset) -> Dict[str, Any]:
    """The writer's online-store correction options: on when the group has an online store."""
    return {"correct_online": bool(args.get("online_store")), "feature_types": dict(dataset.feature_store_definitions())}


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


def _keys(args: Dict[str, Any], dataset: catalog.Dataset, sagemaker_client: Any) -> Optional[Dict[str, str]]:
    """The run's :func:`ingestion_keys` (None without a feature group), asked before reading: a missing group
    fails the run before any work. Whether the group has an online store goes into ``args["online_store"]``
    (the puts then correct it: :meth:`FeatureStoreWriter.correct_online`)."""
    group = args.get("feature_group_name")
    if not group:
        return None
    sagemaker_client = sagemaker_client or _sagemaker_client(args.get("region"))
    created, args["online_store"] = describe_group(sagemaker_client, group)
    return ingestion_keys(dataset, group, created)


def _finish(
    args: Dict[str, Any],
    dataset: catalog.Dataset,
    run_id: str,
    engine: str,
    feature_rows: int,
    succeeded: int,
    failed: int,
    failures_location: Optional[str],
    plan: Optional[IngestionPlan] = None,
    failed_partitions: Iterable[Optional[str]] = (),
    online_corrections: int = 0,
) -> Dict[str, Any]:
    """Write the ingestion state, build, log and write the run summary; raise if any record failed."""
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
        "ingestion": None,
    }
    if plan is not None:
        failed_read = set(failed_partitions)
        # Written after every put of the run returned: partitions with a failed record stay unrecorded.
        write_json(args["state_path"], plan.next_state(failed_read, run_id))
        summary["ingestion"] = {
            "mode": "full" if plan.full_reason else "incremental",
            "full_reason": plan.full_reason,
            "state_path": args["state_path"],
            "partitions_considered": len(plan.digests),
            "partitions_skipped": len(plan.digests) - len(plan.to_put),
            "partitions_put": len(plan.to_put - failed_read),
            "partitions_failed": len(failed_read),
            "records_put": succeeded,
            # Records put with the event time the online store already held for their id but other values (a
            # correction): their online copy was replaced (FeatureStoreWriter.correct_online).
            "online_corrections": online_corrections,
        }
    LOG.info("run summary: %s", json.dumps(summary, sort_keys=True))
    if args.get("summary_path"):
        write_json(args["summary_path"], summary)
    if failed:
        raise FeatureStoreWriteFailed(
            f"{failed} of {succeeded + failed} records could not be put into feature group "
            f"{args['feature_group_name']!r}; they are in {failures_location}"
            + (f"; their partitions ({len(failed_read)}) are put again next run" if plan is not None else "")
        )
    return summary


def _validate(args: Dict[str, Any], glue: bool) -> Dict[str, Any]:
    if args.get("feature_group_name") and not args.get("failures_path"):
        raise ValueError("--failures_path is required with --feature_group_name (failed records must go somewhere)")
    if args.get("feature_group_name") and not args.get("state_path"):
        raise ValueError("--state_path is required with --feature_group_name (it records which curated partitions "
                         "were put; delete it or pass --full true to put every record)")
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
