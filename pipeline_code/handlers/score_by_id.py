"""The score-by-id front: look an entity's features up in the online Feature Store, then score them.

A Lambda function behind an IAM-authenticated (SigV4) function URL, one per model with
``serving.by_id.enabled``. Per request: parse the ids (:mod:`pipeline_code.core.online_features`),
one ``BatchGetRecord`` for all of them (unprocessed ids and throttling retried), resolve each id by
the model's policy, one ``InvokeEndpoint`` with the records as used, answer with the scores, the ids,
where each id's features came from and their event time. Why a front and not the container: the
real-time endpoint runs with network isolation (it can reach no AWS API), and a front costs nothing
while idle and holds read-only access to exactly this model's feature group.

Configuration (environment): ``ENDPOINT_NAME``, ``FEATURE_GROUP``, ``METRIC_NAMESPACE`` and the spec's variables
(:func:`pipeline_code.core.online_features.front_environment`). Answers: 200 with ``{"predictions": [...],
"model": {...}, "lookup": {counts}}``; the caller's mistakes are 400 (not JSON, bad shape or id), 404 and 422
(no fresh record under the policy, see :func:`~pipeline_code.core.online_features.resolve`; under ``compute`` an
instance lacking a required raw field is answered alone, unscored, and the others are scored), 405 (not POST),
413 (too many ids), 415 (not JSON), and 422 when the model refuses the request or every record of it (its 4xx; a
record it names alone is answered alone, unscored, in its words, and the others scored again: :func:`score_refusing_alone`); 502 when the endpoint
fails or the feature group is missing or refuses the catalog's feature names; 503 while no version is deployed
or the store or endpoint throttles or does not answer (with ``Retry-After``); 504 when the endpoint does not
answer in time. Each request logs one CloudWatch embedded-metric line (:func:`metric_line`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline_code.core import contract, emf
from pipeline_code.core import online_features as lookup
from pipeline_code.core.value_rules import json_object

# Unprocessed identifiers (the store's partial answer under load) are asked again this many times.
UNPROCESSED_RETRIES = 3
# The store: standard retries (throttling, 5xx; 5 attempts in all). The endpoint: one attempt with a read timeout above
# SageMaker's 60 s real-time limit, since a retried InvokeEndpoint would score the request twice.
_CONFIGS = {
    "sagemaker-featurestore-runtime": Config(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=2, read_timeout=10),
    "sagemaker-runtime": Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=62),
}
_THROTTLED = {"ThrottlingException", "ThrottledException", "ServiceUnavailable", "TooManyRequestsException"}

_clients: Dict[str, Any] = {}


def _client(name: str) -> Any:
    if name not in _clients:
        _clients[name] = boto3.client(name, config=_CONFIGS[name])
    return _clients[name]


class FrontError(lookup.RefusedRequest):
    """A failure behind the front (store, endpoint) answered with ``status`` and, if set, Retry-After; ``refused``
    holds the model's own words when it refused the records (its 4xx)."""

    def __init__(self, status: int, message: str, retry_after: Optional[int] = None,
                 refused: Optional[str] = None) -> None:
        super().__init__(status, message)
        self.retry_after = retry_after
        self.refused = refused


# Serving's 400 names each record it refuses ("record 3: field ...", joined by "; ", at most 10 - fewer when their
# words would pass 2048 characters - and a count of the rest): those instances are refused alone in its words and the others scored again, at most this many times.
RESCORES = 3
# Read by the grammar the 400 keeps for its callers (core.contract, docs/invocation-contract.md "Reading a 400 by
# machine"), one definition with serving's words.
_RECORD_PROBLEM = re.compile(contract.REFUSED_RECORD)
_MORE_PROBLEMS = re.compile(contract.MORE_PROBLEMS_PATTERN)


def refused_records(message: str, count: int) -> Optional[Dict[int, str]]:
    """Serving's words per record its 400 ``message`` names, for a request of ``count`` records ({index: words}); None
    when the message does not start with a record's problem or names no record of the request (the request as a
    whole was refused: an envelope, a body)."""
    text = _MORE_PROBLEMS.sub("", message)
    starts = list(_RECORD_PROBLEM.finditer(text))
    if not starts or starts[0].start() != 0:
        return None
    words: Dict[int, List[str]] = {}
    for match, following in zip(starts, [*starts[1:], None]):
        index = int(match.group(1))
        if index >= count:
            return None
        words.setdefault(index, []).append(text[match.end():following.start() if following else len(text)])
    return {index: "; ".join(parts) for index, parts in words.items()}


def score_refusing_alone(client: Any, endpoint: str, resolved: lookup.Resolved) -> Dict[str, Any]:
    """:func:`score` of ``resolved.records``; when the model refuses some of them (its 400 naming the records), those
    instances are refused alone in its words (``resolved`` is updated: the front's own refusals and serving's read
    alike) and the others scored again, as the front refuses alone an instance lacking a required raw field. A model
    refusing the request as a whole, or every record of it, is still the caller's 422."""
    for attempt in range(RESCORES + 1):
        try:
            return score(client, endpoint, resolved.records)
        except FrontError as error:
            named = refused_records(error.refused, len(resolved.records)) if error.refused else None
            if attempt == RESCORES or not named or len(named) == len(resolved.records) or not resolved.refusals:
                raise
            sent = [i for i, refusal in enumerate(resolved.refusals) if refusal is None]
            for index, words in named.items():
                record = resolved.records[index]
                resolved.refusals[sent[index]] = f"{record[lookup.ENTITY_ID]}: not scored: {words}"
            resolved.records = [record for index, record in enumerate(resolved.records) if index not in named]
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_records(
    client: Any, feature_group: str, ids: List[str], spec: lookup.LookupSpec, sleep: Callable[[float], None] = time.sleep
) -> Dict[str, lookup.StoredRecord]:
    """The stored records of ``ids`` (absent ids are unknown), by ``BatchGetRecord``, TTL expiry included.

    Raises:
        FrontError: 503 while throttled after the retries, 502 when the group is missing or refuses the
            catalog's feature names.
    """
    wanted = list(dict.fromkeys(ids))
    found: Dict[str, lookup.StoredRecord] = {}
    for attempt in range(UNPROCESSED_RETRIES + 1):
        try:
            response = client.batch_get_record(
                Identifiers=[{
                    "FeatureGroupName": feature_group,
                    "RecordIdentifiersValueAsString": wanted,
                    "FeatureNames": spec.lookup_names,
                }],
                ExpirationTimeResponse="Enabled",
            )
        except BotoCoreError as error:  # no answer at all: a timeout or a connection failure
            raise FrontError(503, f"the online store did not answer ({type(error).__name__}); retry later", retry_after=1) from error
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _THROTTLED:
                raise FrontError(503, f"the online store is throttling ({code}); retry later", retry_after=1) from error
            raise FrontError(
                502, f"feature group {feature_group} refused the lookup ({code}: {error.response.get('Error', {}).get('Message', '')}); "
                "check that it exists and matches the catalog"
            ) from error
        for item in response.get("Records", []):
            values = {f["FeatureName"]: f["ValueAsString"] if "ValueAsString" in f else f.get("ValueAsStringList")
                      for f in item.get("Record", [])}
            found[item["RecordIdentifierValueAsString"]] = lookup.StoredRecord(values, lookup.parse_time(item.get("ExpiresAt")))
        errors = [e for e in response.get("Errors", []) if e.get("ErrorCode") not in _THROTTLED]
        if errors:
            first = errors[0]
            raise FrontError(
                502, f"feature group {feature_group} answered {first.get('ErrorCode')} for "
                f"{first.get('RecordIdentifierValueAsString')}: {first.get('ErrorMessage', '')}"
            )
        unprocessed = [
            value for group in response.get("UnprocessedIdentifiers", []) for value in group.get("RecordIdentifiersValueAsString", [])
        ] + [e["RecordIdentifierValueAsString"] for e in response.get("Errors", []) if e.get("ErrorCode") in _THROTTLED]
        if not unprocessed:
            return found
        wanted = unprocessed
        if attempt < UNPROCESSED_RETRIES:
            sleep(0.05 * 2**attempt)
    raise FrontError(503, f"the online store left {len(wanted)} ids unprocessed after {UNPROCESSED_RETRIES} retries; retry later", retry_after=1)


def score(client: Any, endpoint: str, records: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The endpoint's JSON answer for ``records`` (the invocation contract's ``{"predictions": [...]}``)."""
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint,
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps({"instances": records}),
        )
    except BotoCoreError as error:  # no answer within the timeout, or no connection
        raise FrontError(504, f"the endpoint did not answer ({type(error).__name__})") from error
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "ValidationError" and "not found" in message.lower():
            raise FrontError(503, f"no version of this model is deployed yet (endpoint {endpoint} not found)", retry_after=60) from error
        if code == "ModelError":
            original = int(error.response.get("OriginalStatusCode", 0) or 0)
            status = 422 if 400 <= original < 500 else 502
            original_message = error.response.get("OriginalMessage", message)
            if status == 422:
                raise FrontError(status, f"the model refused the records: {original_message}",
                                 refused=original_message) from error
            # Not a refusal: the records were fine and the model failed (its 5xx): said so, not "refused".
            said = f" (its status {original})" if original else ""
            raise FrontError(status, f"the model failed to answer{said}: {original_message}") from error
        if code in _THROTTLED or code == "ModelNotReadyException":
            raise FrontError(503, f"the endpoint is busy ({code}); retry later", retry_after=1) from error
        raise FrontError(502, f"the endpoint failed ({code}: {message})") from error
    body = response["Body"].read()
    try:
        return json.loads(body)
    except ValueError as error:
        raise FrontError(502, f"the endpoint answered something that is not JSON: {body[:200]!r}") from error


def _http(status: int, body: Mapping[str, Any], retry_after: Optional[int] = None) -> Dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return {"statusCode": status, "headers": headers, "body": json.dumps(body)}


def metric_line(namespace: str, environment: str, model: str, counts: Mapping[str, int], status: int) -> Dict[str, Any]:
    """One request's CloudWatch embedded-metric log line in ``namespace``: requests, 5xx answers and ids per verdict,
    per environment and model."""
    values = {
        lookup.REQUESTS_METRIC: 1,
        lookup.SERVER_ERRORS_METRIC: int(status >= 500),
        **{lookup.verdict_metric(kind): n for kind, n in counts.items()},
    }
    return emf.metric_line(namespace, dict(zip(lookup.METRIC_DIMENSIONS, (environment, model))), values,
                           at_ms=int(time.time() * 1000), Status=status)


def _metrics(environ: Mapping[str, str], counts: Mapping[str, int], status: int) -> None:
    # Embedded metric format: Lambda's log line becomes the metrics, with no API call per request.
    namespace = environ.get(lookup.NAMESPACE_ENV)
    if not namespace:
        # A hand-edited function (synth always sets it, and handle() answers 500 saying so): the request is answered,
        # not failed for its metrics.
        print(json.dumps({"metrics_skipped": f"{lookup.NAMESPACE_ENV} is not set", "status": status}))
        return
    print(json.dumps(metric_line(namespace, environ.get(lookup.ENVIRONMENT_ENV, ""), environ.get("MODEL_NAME", ""),
                                 counts, status)))


def handle(
    event: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    store: Any,
    runtime: Any,
    now: Optional[datetime] = None,
) -> Dict[str, Any]:
    """One function-URL request, with the clients given (the tests pass stubbed ones)."""
    try:
        spec = lookup.LookupSpec.decode(environ)
        if not environ.get(lookup.NAMESPACE_ENV):
            raise KeyError(lookup.NAMESPACE_ENV)
    except (KeyError, ValueError) as error:  # synth writes a valid spec: this is a hand-edited function
        _metrics(environ, {}, 500)
        return _http(500, {"error": f"the score-by-id front is misconfigured: {error}"})
    counts: Dict[str, int] = {}
    try:
        method = (event.get("requestContext", {}).get("http", {}) or {}).get("method", "POST")
        if method != "POST":
            raise lookup.RefusedRequest(405, f"{method}: score by id with POST")
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise lookup.RefusedRequest(415, f"Content-Type {content_type}: a by-id request is application/json")
        body = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(body, validate=True).decode("utf-8", errors="replace")
            except ValueError as error:
                raise lookup.RefusedRequest(400, f"the body is not valid base64 ({error})") from error
        try:
            payload = json.loads(body, object_pairs_hook=json_object)  # a field given twice is refused, not read last
        except ValueError as error:
            raise lookup.RefusedRequest(400, f"the body is not JSON ({error})") from error
        instances = lookup.parse_request(payload, spec)
        stored = fetch_records(store, environ["FEATURE_GROUP"], [i.entity_id for i in instances], spec)
        resolved = lookup.resolve(instances, stored, spec, now or datetime.now(timezone.utc))
        counts = resolved.counts
        answer = score_refusing_alone(runtime, environ["ENDPOINT_NAME"], resolved)
        predictions = answer.get("predictions", []) if isinstance(answer, dict) else []
        if len(predictions) != len(resolved.records):
            raise FrontError(502, f"the endpoint answered {len(predictions)} predictions for {len(resolved.records)} records")
        body_out = {
            "predictions": lookup.answer(instances, resolved, predictions),
            "model": answer.get("model", {}),
            "lookup": counts,
        }
        _metrics(environ, counts, 200)
        return _http(200, body_out)
    except lookup.RefusedRequest as error:
        _metrics(environ, error.counts or counts, error.status)
        return _http(error.status, {"error": str(error)}, getattr(error, "retry_after", None))


def handler(event: Mapping[str, Any], context: Any) -> Dict[str, Any]:
    return handle(event, os.environ, store=_client("sagemaker-featurestore-runtime"), runtime=_client("sagemaker-runtime"))
