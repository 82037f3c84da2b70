"""Data capture written by the serving code itself, for endpoints where SageMaker offers none (serverless).

Enabled by the model container's environment (set by the infrastructure for serverless models)::

    MLOPS_CAPTURE_S3_URI      s3://<inference bucket>/capture/<model>/
    MLOPS_CAPTURE_PERCENT     0-100 (sampling; default 100)
    MLOPS_CAPTURE_KMS_KEY_ID  the KMS key for SSE-KMS
    MLOPS_ENDPOINT_NAME       the endpoint, first path segment (as SageMaker's own capture lays it out)
    MLOPS_CAPTURE_REGION      the bucket's region, which the S3 client is made for (unset: boto3's default chain)

On a multi-model endpoint every model shares one container environment, so two settings can be
resolved per model (the name is the ``model`` of the model's feature metadata)::

    MLOPS_CAPTURE_S3_URI      s3://<inference bucket>/capture/{model}/   (literal "{model}", replaced by
                              the model name; with no model name capture is off and a line is logged)
    MLOPS_CAPTURE_PERCENT     {"churn": 100, "credit-risk": 10}          (JSON object model -> percent;
                              a model not in it is not captured)

A plain URI and a plain number behave as before, for every model.

Each sampled request becomes one object
``<uri><endpoint>/AllTraffic/yyyy/mm/dd/hh/<event id>.jsonl`` holding one record in exactly the
format of SageMaker data capture (``captureData.endpointInput/endpointOutput``, ``eventMetadata``), so
the drift monitor reads serverless traffic like any other; ``eventMetadata.model`` adds which model
answered (name, version, artefact digest), which a CSV response does not say. One small object per request suits the
intermittent traffic serverless is chosen for. Capturing never fails or delays a response beyond the
PutObject call: errors are printed to the container log and counted, and the response is returned. Each failure is
also a ``CaptureWriteFailures`` data point (namespace ``mlops-loop/capture``, dimension ``EndpointName``): one log line
in CloudWatch's embedded metric format, which CloudWatch Logs turns into the metric (:func:`failure_metric_line`) on a
serverless endpoint (on a multi-model endpoint the model server prefixes each line its workers print, so no metric is
extracted there: the log line is all there is); the drift monitor, comparing the endpoint's requests with the capture it finds, reports the loss as ``capture_missing``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sys
import uuid
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from pipeline_code.core import emf
from pipeline_code.core.contract import (
    ANSWERED_BY,
    CAPTURE_ENDPOINT_ENV,
    CAPTURE_FAILURE_METRIC,
    CAPTURE_KMS_KEY_ENV,
    CAPTURE_NAMESPACE,
    CAPTURE_PERCENT_ENV,
    CAPTURE_REGION_ENV,
    CAPTURE_URI_ENV,
    MODEL_PLACEHOLDER,
    VARIANT,
    is_smoke_record,
)

_CLIENT: Any = None
FAILURES = {"count": 0}


def settings(environ: Optional[Dict[str, str]] = None, model: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The capture settings of ``model`` from the environment, or None when capture is off or misconfigured.

    ``model`` (default None) is only needed when the URI holds ``{model}`` or the percent is a
    per-model JSON object (multi-model endpoints); see the module docstring.
    """
    env = os.environ if environ is None else environ
    uri = env.get(CAPTURE_URI_ENV, "")
    if not uri:
        return None
    if MODEL_PLACEHOLDER in uri:
        if not model:
            print(f"self_capture: MLOPS_CAPTURE_S3_URI {uri!r} holds {MODEL_PLACEHOLDER} but the model has no name; "
                  "capture is off", file=sys.stderr)
            return None
        uri = uri.replace(MODEL_PLACEHOLDER, model)
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        print(f"self_capture: MLOPS_CAPTURE_S3_URI {uri!r} is not s3://bucket/prefix/; capture is off", file=sys.stderr)
        return None
    percent = _percent(env.get(CAPTURE_PERCENT_ENV, "100"), model)
    if percent is None:
        return None
    bucket, _, prefix = uri[5:].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return {
        "bucket": bucket,
        "prefix": prefix,
        "percent": max(0.0, min(100.0, percent)),
        "kms_key_id": env.get(CAPTURE_KMS_KEY_ENV) or None,
        "endpoint": env.get(CAPTURE_ENDPOINT_ENV) or "endpoint",
        "region": env.get(CAPTURE_REGION_ENV) or None,
    }


def _percent(value: str, model: Optional[str]) -> Optional[float]:
    """A number (unparseable -> 100, as ever), or the model's entry of a JSON object (None = capture off)."""
    if not value.strip().startswith("{"):
        try:
            return float(value)
        except ValueError:
            return 100.0
    try:
        table = json.loads(value)
    except ValueError as exc:
        print(f"self_capture: MLOPS_CAPTURE_PERCENT is not a JSON object of model -> percent ({exc}); capture is off",
              file=sys.stderr)
        return None
    if not isinstance(table, dict) or not model or model not in table:
        return None  # a model the table leaves out is simply not captured
    entry = table[model]
    if isinstance(entry, bool) or not isinstance(entry, (int, float, str)):
        entry = None
    try:
        return float(entry)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        print(f"self_capture: MLOPS_CAPTURE_PERCENT[{model!r}] = {table[model]!r} is not a number; capture is off",
              file=sys.stderr)
        return None


def is_smoke_test(records: Sequence[Any]) -> bool:
    """Whether a request is exactly the deploy handler's smoke request: one record, its inference id
    :data:`~pipeline_code.core.contract.SMOKE_TEST_INFERENCE_ID`, every other field null.

    Only that exact shape is left out of capture: a client that puts the id on real records (or on a
    batch) is captured like any traffic, so the id cannot be used to hide requests from the monitor.
    """
    return len(records) == 1 and is_smoke_record(records[0])


def _encoding(content_type: str) -> str:
    return "CSV" if "csv" in content_type else "JSON"


def capture_record(
    *, request_body: str, request_type: str, response_body: str, response_type: str, event_id: str, when: dt.datetime,
    answered_by: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """One record in SageMaker's data-capture format; ``answered_by`` (the response's model identity, default
    None: none) goes into ``eventMetadata``, so the monitor knows which version answered a CSV response too."""
    metadata: Dict[str, Any] = {"eventId": event_id, "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if answered_by:
        metadata[ANSWERED_BY] = dict(answered_by)
    return {
        "captureData": {
            "endpointInput": {"observedContentType": request_type, "mode": "INPUT", "data": request_body,
                              "encoding": _encoding(request_type)},
            "endpointOutput": {"observedContentType": response_type, "mode": "OUTPUT", "data": response_body,
                               "encoding": _encoding(response_type)},
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }


def capture(
    *,
    request_body: Optional[str],
    request_type: str,
    response_body: bytes,
    response_type: str,
    environ: Optional[Dict[str, str]] = None,
    model: Optional[str] = None,
    answered_by: Optional[Mapping[str, Any]] = None,
    client: Any = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    sample: Callable[[], float] = random.random,
) -> Optional[str]:
    """Write one capture object when capture is on (for ``model``) and this request is sampled; return its key (or None).

    ``model`` (default None): the served model's name, for per-model settings (see :func:`settings`);
    ``answered_by`` (default None): the answering model's identity, recorded with the request (:func:`capture_record`).
    """
    config = settings(environ, model)
    if config is None or request_body is None or sample() * 100.0 >= config["percent"]:
        return None
    try:
        when = now()
        event_id = str(uuid.uuid4())
        key = f"{config['prefix']}{config['endpoint']}/{VARIANT}/{when:%Y/%m/%d/%H}/{event_id}.jsonl"
        record = capture_record(
            request_body=request_body, request_type=request_type,
            response_body=response_body.decode("utf-8", errors="replace"), response_type=response_type,
            event_id=event_id, when=when, answered_by=answered_by,
        )
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": config["kms_key_id"]} if config["kms_key_id"] else {}
        (client or _client(config["region"])).put_object(
            Bucket=config["bucket"], Key=key, Body=(json.dumps(record) + "\n").encode("utf-8"),
            ContentType="application/jsonlines", **extra,
        )
        return key
    except Exception as exc:  # capture must never break serving
        FAILURES["count"] += 1
        print(f"self_capture: could not write capture ({type(exc).__name__}: {exc}); failures so far: "
              f"{FAILURES['count']}", file=sys.stderr)
        print(failure_metric_line(config["endpoint"], exc, now=dt.datetime.now(dt.timezone.utc)), flush=True)
        return None


def failure_metric_line(endpoint: str, error: Exception, *, now: dt.datetime) -> str:
    """One log line that CloudWatch Logs turns into a ``CaptureWriteFailures`` data point of 1 for ``endpoint``
    (embedded metric format: the ``_aws`` directive names the namespace, dimension and metric; the other keys are the
    values), with the error for whoever reads the log."""
    return json.dumps(emf.metric_line(CAPTURE_NAMESPACE, {"EndpointName": endpoint}, {CAPTURE_FAILURE_METRIC: 1},
                                      at_ms=int(now.timestamp() * 1000), error=f"{type(error).__name__}: {error}"[:500]))


def _client(region: Optional[str]) -> Any:
    """The process's S3 client, made once, for ``region`` (None: boto3's default chain, AWS_REGION and the like)."""
    global _CLIENT
    if _CLIENT is None:
        import boto3

        _CLIENT = boto3.client("s3", region_name=region)
    return _CLIENT
