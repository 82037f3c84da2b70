"""The local twin of scoring by id: an online store in SQLite and the endpoint as a local model.

::

    python -m mlops_cli.local.online_store --workdir .local-run --model churn --ids c-000001 c-000002 \\
        [--version N] [--now 2026-06-01T00:00:00Z] [--capture-dir DIR]

The local run fills ``<workdir>/online-store.sqlite`` from each run's feature job output
(:func:`fill_from_features`) with the online store's semantics: one record per entity id, a newer event
time replaces an older one (an older one never does), and ``ExpiresAt = EventTime + TtlDuration``
(the environment's ``feature_store.online_ttl_days``), expired records kept until asked for, as
Feature Store deletes them lazily; ``DeleteRecord`` as Feature Store documents it (:meth:`LocalOnlineStore.delete_record`).
A same-event-time correction reaches the twin as it reaches the online store: the feature job's
:meth:`~pipeline_code.features.ingestion.writer.FeatureStoreWriter.correct_online` runs against it
(:meth:`LocalOnlineStore.runtime_client`). The command answers a by-id request with the very handler the
front function runs (:func:`pipeline_code.handlers.score_by_id.handle`), given this store for
``BatchGetRecord`` and the latest approved local model (or ``--version``) for ``InvokeEndpoint``;
with ``--capture-dir`` each scored request is written as SageMaker data capture, as the endpoint would.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import math
import os
import sqlite3
import sys
import uuid
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from pipeline_code.core.contract import VARIANT, endpoint_name, environment_prefix, feature_group_name, serving_namespace
from pipeline_code.core.online_features import front_environment, parse_time

STORE_FILE = "online-store.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    feature_group TEXT NOT NULL,
    record_id TEXT NOT NULL,
    event_epoch REAL NOT NULL,
    expires_epoch REAL,
    record_json TEXT NOT NULL,
    PRIMARY KEY (feature_group, record_id)
)
"""


def _iso(moment: dt.datetime) -> str:
    # A naive time is UTC, as everywhere in the loop (not the machine's local time).
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_text(value: Any) -> Optional[str]:
    """A value as Feature Store's ``ValueAsString`` holds it; None (feature absent) for a missing one."""
    # The kinds a feature row is made of, answered first (a run puts every value of every row, twice over: the put and
    # the correction); each answer is the general rules' below.
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    if kind is float:
        if value != value:  # NaN
            return None
        return str(int(value)) if value.is_integer() else str(value)
    # pandas' missing markers first: NaT is a datetime too.
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.datetime):  # pandas Timestamps included
        return _iso(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        # As the feature job writes an integral value ("21"; Feature Store refuses "21.0" for an Integral feature).
        return str(int(value))
    return str(value)


def _as_record(row: Mapping[str, Any]) -> Dict[str, str]:
    """A row (feature name -> value) as the store holds it: each value's :func:`_as_text`, the missing ones left out."""
    record = {}
    for name, value in row.items():
        text = _as_text(value)
        if text is not None:
            record[name] = text
    return record


class LocalOnlineStore:
    """A SQLite file answering ``batch_get_record`` and ``delete_record`` as the Feature Store runtime does (one group
    per call). A soft-deleted record is kept as a marker (its ``record_json`` is ``null``) with the delete's event
    time, which no ``BatchGetRecord`` returns and which an older record does not replace."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def put_records(
        self, feature_group: str, rows: Iterable[Mapping[str, Any]], *, record_identifier: str, event_time: str,
        ttl_days: Optional[int],
    ) -> int:
        """Write ``rows`` (feature name -> value); returns how many became the entity's current record. A row
        without a record id or a readable event time is skipped, as PutRecord would refuse it."""
        written = 0
        with self._db:
            for row in rows:
                record = _as_record(row)
                record_id, event_text = record.get(record_identifier), record.get(event_time)
                event = parse_time(event_text)
                if record_id is None or event is None:  # PutRecord refuses a record without both keys
                    continue
                expires = (event + dt.timedelta(days=ttl_days)).timestamp() if ttl_days else None
                # PutRecord: a record with a newer event time replaces the online one; an older one does not.
                cursor = self._db.execute(
                    "INSERT INTO records VALUES (?, ?, ?, ?, ?) ON CONFLICT(feature_group, record_id) DO UPDATE SET "
                    "event_epoch = excluded.event_epoch, expires_epoch = excluded.expires_epoch, "
                    "record_json = excluded.record_json WHERE excluded.event_epoch > records.event_epoch",
                    (feature_group, record_id, event.timestamp(), expires, json.dumps(record, sort_keys=True)),
                )
                written += cursor.rowcount
        return written

    def delete_record(self, *, FeatureGroupName: str, RecordIdentifierValueAsString: str, EventTime: str,  # noqa: N803
                      TargetStores: Optional[Sequence[str]] = None, DeletionMode: str = "SoftDelete") -> Dict[str, Any]:
        """``DeleteRecord`` of the online store, as the API reference documents it: the delete happens only when its
        ``EventTime`` is later than the stored record's; ``HardDelete`` removes the record (a later put of any event
        time lands) and is refused otherwise with a ``ValidationError``; ``SoftDelete`` (default) leaves a marker at the
        delete's event time (only a later put replaces it) and does nothing otherwise. With ``TargetStores`` not naming
        ``OnlineStore`` nothing happens here (the twin has no offline store)."""
        from botocore.exceptions import ClientError

        if DeletionMode not in ("SoftDelete", "HardDelete"):
            raise ClientError({"Error": {"Code": "ValidationError", "Message": f"DeletionMode {DeletionMode!r}"}},
                              "DeleteRecord")
        when = parse_time(EventTime)
        if when is None:
            raise ClientError({"Error": {"Code": "ValidationError", "Message": f"EventTime {EventTime!r}"}}, "DeleteRecord")
        if TargetStores is not None and "OnlineStore" not in TargetStores:
            return {}
        group, record_id = FeatureGroupName, RecordIdentifierValueAsString
        with self._db:
            row = self._db.execute("SELECT event_epoch FROM records WHERE feature_group = ? AND record_id = ?",
                                   (group, record_id)).fetchone()
            later = row is None or when.timestamp() > row[0]
            if DeletionMode == "HardDelete":
                if not later:
                    raise ClientError({"Error": {"Code": "ValidationError", "Message": "EventTime: the deletion's event "
                                       "time must be later than the record's in the online store"}}, "DeleteRecord")
                self._db.execute("DELETE FROM records WHERE feature_group = ? AND record_id = ?", (group, record_id))
            elif later:
                self._db.execute(
                    "INSERT INTO records VALUES (?, ?, ?, NULL, 'null') ON CONFLICT(feature_group, record_id) DO UPDATE SET "
                    "event_epoch = excluded.event_epoch, expires_epoch = NULL, record_json = 'null'",
                    (group, record_id, when.timestamp()))
        return {}

    def runtime_client(self, feature_group: str, *, record_identifier: str, event_time: str,
                       ttl_days: Optional[int]) -> "LocalRuntimeClient":
        """This store as a ``sagemaker-featurestore-runtime`` client of one feature group (its keys and TTL): what the
        feature job's writer calls."""
        return LocalRuntimeClient(self, feature_group, record_identifier=record_identifier, event_time=event_time,
                                  ttl_days=ttl_days)

    def batch_get_record(self, *, Identifiers: Sequence[Mapping[str, Any]], ExpirationTimeResponse: str = "Disabled") -> Dict[str, Any]:  # noqa: N803 - the API's names
        records: List[Dict[str, Any]] = []
        for identifier in Identifiers:
            group, names = identifier["FeatureGroupName"], identifier.get("FeatureNames")
            for record_id in identifier["RecordIdentifiersValueAsString"]:
                row = self._db.execute(
                    "SELECT record_json, expires_epoch FROM records WHERE feature_group = ? AND record_id = ?", (group, record_id)
                ).fetchone()
                stored = json.loads(row[0]) if row is not None else None
                if stored is None:  # never put, hard-deleted, or soft-deleted (no longer retrievable)
                    continue
                item: Dict[str, Any] = {
                    "FeatureGroupName": group,
                    "RecordIdentifierValueAsString": record_id,
                    "Record": [{"FeatureName": k, "ValueAsString": v} for k, v in stored.items() if names is None or k in names],
                }
                if ExpirationTimeResponse == "Enabled" and row[1] is not None:
                    item["ExpiresAt"] = _iso(dt.datetime.fromtimestamp(row[1], tz=dt.timezone.utc))
                records.append(item)
        return {"Records": records, "Errors": [], "UnprocessedIdentifiers": []}


class LocalRuntimeClient:
    """``put_record`` / ``delete_record`` / ``batch_get_record`` of one feature group of a :class:`LocalOnlineStore`,
    shaped as the boto3 client's. ``put_record`` writes the online store only (there is no offline store here)."""

    def __init__(self, store: LocalOnlineStore, feature_group: str, *, record_identifier: str, event_time: str,
                 ttl_days: Optional[int]) -> None:
        self.store, self.feature_group = store, feature_group
        self.record_identifier, self.event_time, self.ttl_days = record_identifier, event_time, ttl_days

    def _group(self, name: str) -> None:
        if name != self.feature_group:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ResourceNotFound", "Message": f"feature group {name!r}"}}, "PutRecord")

    def put_record(self, *, FeatureGroupName: str, Record: Sequence[Mapping[str, str]],  # noqa: N803
                   TargetStores: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        self._group(FeatureGroupName)
        if TargetStores is None or "OnlineStore" in TargetStores:
            self.store.put_records(FeatureGroupName, [{r["FeatureName"]: r["ValueAsString"] for r in Record}],
                                   record_identifier=self.record_identifier, event_time=self.event_time,
                                   ttl_days=self.ttl_days)
        return {}

    def delete_record(self, **request: Any) -> Dict[str, Any]:
        self._group(request["FeatureGroupName"])
        return self.store.delete_record(**request)

    def batch_get_record(self, **request: Any) -> Dict[str, Any]:
        return self.store.batch_get_record(**request)


def fill_from_features(store_path: str, features_dir: str, *, feature_group: str, record_identifier: str, event_time: str,
                       ttl_days: Optional[int]) -> int:
    """Fill the local online store from a feature job's parquet output, as the feature job fills the online store:
    every row put (a newer event time replaces the stored record), then the feature job's own correction of the
    records the store holds with the same event time but other values
    (:meth:`~pipeline_code.features.ingestion.writer.FeatureStoreWriter.correct_online`). Returns how many rows
    became or replaced an entity's current record.

    Raises:
        RuntimeError: a correction could not be made (its error).
    """
    import pandas as pd

    from pipeline_code.features.ingestion.writer import FeatureStoreWriter

    frame = pd.read_parquet(features_dir)
    # Each row as the text the store holds, once: put as it is (text puts as itself), and the correction's records.
    texts = [_as_record(row) for row in frame.to_dict("records")]
    store = LocalOnlineStore(store_path)
    try:
        written = store.put_records(feature_group, texts, record_identifier=record_identifier, event_time=event_time,
                                    ttl_days=ttl_days)
        client = store.runtime_client(feature_group, record_identifier=record_identifier, event_time=event_time,
                                      ttl_days=ttl_days)
        writer = FeatureStoreWriter(client, feature_group, record_identifier=record_identifier, event_time=event_time,
                                    max_attempts=1)
        report = writer.correct_online(_correctable(store, feature_group, texts, record_identifier, event_time))
        if report.failures:
            failure = report.failures[0]
            raise RuntimeError(f"the local online store: {failure.error_code}: {failure.error_message}")
        return written + report.online_corrections
    finally:
        store.close()


def _correctable(store: LocalOnlineStore, feature_group: str, texts: List[Dict[str, str]],
                 record_identifier: str, event_time: str) -> List[List[Dict[str, str]]]:
    """The records of ``texts`` (each a row's :func:`_as_record`), as ``PutRecord`` records, whose id :meth:`~pipeline_code.features.ingestion.writer.FeatureStoreWriter.correct_online`
    could correct, in their order: every record of an id whose stored record has the event time of one of its records
    here and other text than one of those. correct_online corrects an id only when its latest record has the stored
    record's event time and other values, so the other ids' records - most of a run's - need no read back through
    the client (the store is read here in one query)."""
    stored: Dict[str, Dict[str, str]] = {}
    for record_id, record_json in store._db.execute(
            "SELECT record_id, record_json FROM records WHERE feature_group = ?", (feature_group,)):
        record = json.loads(record_json)
        if record is not None:  # a soft-delete marker: no BatchGetRecord returns it
            stored[record_id] = record
    correctable: set = set()
    for values in texts:
        record_id = values.get(record_identifier)
        held = stored.get(record_id) if record_id is not None else None
        if held is None or record_id in correctable:
            continue
        # Other text first (most rows are what was just put): only then are the event times read.
        if values != held:
            event = parse_time(values.get(event_time))
            if event is not None and event == parse_time(held.get(event_time)):
                correctable.add(record_id)
    return [[{"FeatureName": name, "ValueAsString": value} for name, value in values.items()]
            for values in texts if values.get(record_identifier) in correctable]


class LocalEndpoint:
    """``invoke_endpoint`` answered by a local model through the serving code the container runs.

    With ``capture_dir`` each request and response are appended as SageMaker data capture
    (``<capture_dir>/<model>/AllTraffic/YYYY/MM/DD/HH/by-id.jsonl``).
    """

    def __init__(self, model_dir: str, *, model: str, capture_dir: Optional[str] = None,
                 clock: Any = lambda: dt.datetime.now(dt.timezone.utc)) -> None:
        from pipeline_code.serving.inference import load_serving_model

        self.model = load_serving_model(model_dir)
        self.model_name = model
        self.capture_dir = capture_dir
        self.clock = clock

    def invoke_endpoint(self, *, EndpointName: str, ContentType: str, Accept: str, Body: str) -> Dict[str, Any]:  # noqa: N803
        from botocore.exceptions import ClientError

        from pipeline_code.serving.inference import invoke
        from pipeline_code.serving.errors import InvocationError
        from pipeline_code.serving.self_capture import capture_record

        try:
            body, content_type = invoke(self.model, Body, content_type=ContentType, accept=Accept)
        except InvocationError as error:
            # What SageMaker Runtime answers when the container refuses a request: a ModelError carrying the
            # container's status and message (the front turns a 4xx into its 422).
            side = "client" if 400 <= error.status_code < 500 else "server"
            raise ClientError({"Error": {"Code": "ModelError", "Message": f"Received {side} error ({error.status_code}) "
                                         f"from primary with message \"{error.message}\""},
                               "OriginalStatusCode": error.status_code, "OriginalMessage": error.message},
                              "InvokeEndpoint") from error
        if self.capture_dir:
            when = self.clock()
            folder = os.path.join(self.capture_dir, self.model_name, VARIANT, when.strftime("%Y/%m/%d/%H"))
            os.makedirs(folder, exist_ok=True)
            line = capture_record(request_body=Body, request_type=ContentType, response_body=body.decode("utf-8"),
                                  response_type=content_type, event_id=str(uuid.uuid4()), when=when)
            with open(os.path.join(folder, "by-id.jsonl"), "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
        return {"Body": io.BytesIO(body), "ContentType": content_type}


def local_environ(config_path: str, environment: str, model: str) -> Dict[str, str]:
    """The front function's environment for ``model`` as synth writes it (same config loader, same spec).

    Raises:
        ValueError: an unknown environment or model, or a model not scored by id there.
    """
    from mlops_loop.config import load_config

    app = load_config(config_path)
    if environment not in app.environments:
        raise ValueError(f"unknown environment {environment!r}; known: {sorted(app.environments)}")
    env = app.environments[environment]
    if model not in env.models:
        raise ValueError(f"model {model!r} is not in environment {environment!r}; it runs {list(env.models)}")
    model_config = app.models[model]
    settings = app.serving_of(env, model_config).by_id
    if not settings.enabled:
        raise ValueError(f"model {model!r}: serving.by_id.enabled is false in environment {environment!r}; "
                         "turn it on in the config to score it by id")
    prefix = environment_prefix(app.project, environment)
    return front_environment(environment=environment, model=model, endpoint=endpoint_name(prefix, model),
                             feature_group=feature_group_name(prefix, model_config.dataset),
                             spec=model_config.lookup_spec(settings), namespace=serving_namespace(app.project))


def local_feature_group(project: str, environment: str, dataset: str) -> str:
    """The feature group a dataset's features go to in ``environment``: the cloud's name, locally too."""
    return feature_group_name(environment_prefix(project, environment), dataset)


def score_by_id(
    request: Mapping[str, Any],
    *,
    environ: Mapping[str, str],
    store: LocalOnlineStore,
    endpoint: LocalEndpoint,
    now: Optional[dt.datetime] = None,
) -> Dict[str, Any]:
    """One by-id request through the front's own handler: ``{"status": ..., "body": {...}}``."""
    from pipeline_code.handlers.score_by_id import handle

    event = {"requestContext": {"http": {"method": "POST"}}, "headers": {"content-type": "application/json"},
             "body": json.dumps(request)}
    answer = handle(event, environ, store=store, runtime=endpoint, now=now)
    return {"status": answer["statusCode"], "body": json.loads(answer["body"])}


def build_parser() -> argparse.ArgumentParser:
    from mlops_cli.local.run_loop import DEFAULT_CONFIG

    parser = argparse.ArgumentParser(prog="python -m mlops_cli.local.online_store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=".local-run", help="the local run's work directory (default .local-run)")
    parser.add_argument("--model", required=True, help="a model scored by id (serving.by_id.enabled)")
    parser.add_argument("--ids", nargs="+", required=True, help="entity ids (the dataset's record identifier)")
    parser.add_argument("--fields", default=None,
                        help='raw fields sent with every id, as JSON (used by policy "compute" for ids without a fresh record)')
    parser.add_argument("--version", type=int, default=None, help="a registered version (default: the latest approved)")
    parser.add_argument("--now", default=None, help="the time the lookup judges freshness at (ISO-8601; default: now): after "
                        "a record's event time (a record dated more than 5 minutes after it is future-dated, invalid) and "
                        "within the store's TTL of it")
    parser.add_argument("--capture-dir", default=None, help="write each scored request as SageMaker data capture here")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="the app's config (default: the repository's)")
    parser.add_argument("--environment", default="dev")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from mlops_cli.local.registry import LocalRegistry

    args = build_parser().parse_args(argv)
    try:
        environ = local_environ(args.config, args.environment, args.model)
        registry = LocalRegistry(os.path.join(args.workdir, "registry"))
        version = registry.get(args.model, args.version) if args.version is not None else registry.latest_approved(args.model)
        if version is None:
            raise ValueError(f"model {args.model!r} has no approved version in {args.workdir}/registry: run the local loop first")
        fields = json.loads(args.fields) if args.fields else {}
        if not isinstance(fields, dict):
            raise ValueError("--fields: a JSON object of raw fields")
        now = parse_time(args.now) if args.now else None
        if args.now and now is None:
            raise ValueError(f"--now {args.now!r}: not an ISO-8601 time")
    except (ValueError, KeyError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    store = LocalOnlineStore(os.path.join(args.workdir, STORE_FILE))
    try:
        endpoint = LocalEndpoint(version.model_dir, model=args.model, capture_dir=args.capture_dir)
        request = {"instances": [{environ["RECORD_IDENTIFIER"]: entity_id, **fields} for entity_id in args.ids]}
        # The handler's metric line belongs in the function's log, not in this command's answer.
        with contextlib.redirect_stdout(sys.stderr):
            answer = score_by_id(request, environ=environ, store=store, endpoint=endpoint, now=now)
    finally:
        store.close()
    print(json.dumps(answer["body"], indent=2))
    return 0 if answer["status"] == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
