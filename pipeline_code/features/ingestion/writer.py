"""The Feature Store writer of the feature job: ``PutRecord`` with bounded retries and backoff, the failures it
could not put, and the correction of online records re-sent with the same event time (``BatchGetRecord``,
``DeleteRecord``, ``PutRecord``). Used by both engines (:mod:`.pandas_engine`, :mod:`.spark_engine`)."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pipeline_code import catalog
from pipeline_code.core.online_features import parse_time
from pipeline_code.core.retries import TRANSIENT_ERROR_CODES, transient_response

DEFAULT_MAX_WORKERS = 8
# BatchGetRecord takes at most 100 record identifiers a call (RecordIdentifiers: max 100 in the service model).
BATCH_GET_MAX_IDS = 100


class FeatureStoreWriteFailed(RuntimeError):
    """Some records could not be put into the Feature Store (they were written to the failures path)."""


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

