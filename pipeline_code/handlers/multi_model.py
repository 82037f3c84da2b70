"""Multi-model endpoint (MME) helpers of the deploy handler: stage a version's artefact, smoke-test it.

Several models share one SageMaker multi-model endpoint whose Model has ``Mode=MultiModel`` and
``ModelDataUrl = s3://<inference bucket>/<prefix>`` (prefix ``mme/<endpoint name>/``). Clients pick
a model per request with ``TargetModel=<model>/v<N>.tar.gz`` (:func:`target_model`), relative to
that prefix. The MME caches loaded models by that name, so a key is written once and never
overwritten: every version gets its own key, and a rollback re-uses the key staged earlier.

* :func:`stage_artifact` copies a version's ``model.tar.gz`` (the registry's ``ModelDataUrl``) to
  its key with SSE-KMS, unless the key already exists.
* :func:`smoke_request` reads ``feature_metadata.json`` from the staged archive (streamed, bounded)
  and builds a one-record request holding every model feature as null (a missing value).
* :func:`smoke_test` sends it to the live endpoint under the new key and checks the answer's shape
  for the model's problem type (``docs/invocation-contract.md``, Responses).

Runs on the stock Lambda Python runtime: standard library and boto3 only.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping, Optional

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from pipeline_code.core.contract import S3_OBJECT_URI, SMOKE_TEST_INFERENCE_ID
from pipeline_code.core import integrity
from pipeline_code.core.integrity import METADATA_FILE
from pipeline_code.core.problem import BINARY, MULTICLASS, REGRESSION
from pipeline_code.handlers.s3_archive import (  # noqa: F401 - DEFAULT_READ_CAP re-exported for the deploy handler's callers
    DEFAULT_READ_CAP,
    ERROR_PREVIEW,
    ArchiveReadError,
    cause as _cause,
    read_archive_member,
)

JSON_TYPE = "application/json"
# feature_metadata.json of a real model is a few kB; anything this large is not one.
MAX_METADATA_BYTES = 16 * 1024 * 1024
# How far a multiclass answer's probabilities may sum from 1 (they are float32 softmax outputs).
PROBABILITY_SUM_TOLERANCE = 1e-3
# User metadata on the staged copy: where it came from, so a key holding another artefact is noticed.
SOURCE_METADATA = "source-model-data-url"
PACKAGE_METADATA = "model-package-arn"
_MISSING_CODES = ("404", "NoSuchKey", "NotFound")


class StagingError(RuntimeError):
    """A version's artefact could not be staged for (or read from) the multi-model endpoint."""


class SmokeTestError(RuntimeError):
    """The endpoint did not answer the smoke request under the new target model as the contract says."""


@dataclasses.dataclass(frozen=True)
class SmokeAnswer:
    """The one prediction a passed smoke test got: ``score`` (binary: P(target = 1); multiclass: the
    probability of ``label``), ``label`` (multiclass: the class name) or ``value`` (regression)."""

    problem_type: str
    score: Optional[float] = None
    label: Optional[str] = None
    value: Optional[float] = None

    def summary(self) -> str:
        """``score 0.31``, ``label 'premium', score 0.52`` or ``value 41.7`` (for the deploy decision)."""
        if self.problem_type == MULTICLASS:
            return f"label {self.label!r}, score {self.score:.6g}"
        if self.problem_type == REGRESSION:
            return f"value {self.value:.6g}"
        return f"score {self.score:.6g}"


@dataclasses.dataclass(frozen=True)
class Staged:
    """Where a version was staged; ``copied`` is False when the key already existed (re-used)."""

    bucket: str
    key: str
    target_model: str
    copied: bool

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def target_model(model: str, version: int) -> str:
    """``TargetModel`` of ``model`` version ``version``, relative to the endpoint's prefix: ``churn/v7.tar.gz``."""
    return f"{model}/v{version}.tar.gz"


def model_data_url(description: Mapping[str, Any]) -> Optional[str]:
    """``InferenceSpecification.Containers[0].ModelDataUrl`` of a DescribeModelPackage response, or None."""
    containers = (description.get("InferenceSpecification") or {}).get("Containers") or []
    if not containers or not isinstance(containers[0], Mapping):
        return None
    return containers[0].get("ModelDataUrl") or None


def stage_artifact(
    s3: Any,
    *,
    model: str,
    version: int,
    source: Optional[str],
    bucket: str,
    prefix: str,
    kms_key_id: str,
    package_arn: str = "",
    expected_sha256: Optional[str] = None,
) -> Staged:
    """Copy ``source`` (an ``s3://`` URI of model.tar.gz) to ``s3://<bucket>/<prefix><target_model>`` with SSE-KMS.

    Idempotent: when the key already exists it is re-used, not copied again (a rollback to an
    earlier version finds its staged copy). The copy carries its source in its user metadata; an
    existing key whose recorded source differs is refused rather than overwritten, because
    endpoint instances that loaded the old object would keep serving it under that name. With
    ``expected_sha256`` (the package's archive digest), the staged copy - new or re-used - must hold
    exactly those bytes (its stored checksum, else its bytes read).

    Raises:
        StagingError: no source (no inference container), not an ``s3://`` URI, the source is
            missing or unreadable, the copy failed, the key holds another artefact, or the staged
            bytes are not the expected ones; the message names the version, the source and the cause.
    """
    name = target_model(model, version)
    key = f"{prefix}{name}"
    where = f"v{version} of {model} ({source or 'no ModelDataUrl'} -> s3://{bucket}/{key})"
    if not source:
        raise StagingError(f"cannot stage {where}: the package has no inference container with a ModelDataUrl")
    match = S3_OBJECT_URI.match(source)
    if not match:
        raise StagingError(f"cannot stage {where}: ModelDataUrl is not an s3:// URI of an object")
    existing = _head(s3, bucket, key, where)
    if existing is not None:
        recorded = (existing.get("Metadata") or {}).get(SOURCE_METADATA)
        if recorded and recorded != source:
            raise StagingError(
                f"cannot stage {where}: the key already holds another artefact (staged from {recorded}); keys are never overwritten"
            )
        _check_staged(s3, bucket, key, where, expected_sha256)
        return Staged(bucket=bucket, key=key, target_model=name, copied=False)
    metadata = {SOURCE_METADATA: source}
    if package_arn:
        metadata[PACKAGE_METADATA] = package_arn
    try:
        # The managed copy switches to a multipart copy for large artefacts (CopyObject stops at 5 GB).
        s3.copy(
            {"Bucket": match.group(1), "Key": match.group(2)},
            bucket,
            key,
            ExtraArgs={
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": kms_key_id,
                "Metadata": metadata,
                "MetadataDirective": "REPLACE",
                # S3 keeps the copy's sha256, so checking it needs no download.
                "ChecksumAlgorithm": "SHA256",
            },
        )
    except (ClientError, BotoCoreError, Boto3Error) as error:
        raise StagingError(f"cannot stage {where}: copy failed: {_cause(error)}") from error
    _check_staged(s3, bucket, key, where, expected_sha256)
    return Staged(bucket=bucket, key=key, target_model=name, copied=True)


def _check_staged(s3: Any, bucket: str, key: str, where: str, expected: Optional[str]) -> None:
    if expected is None:
        return
    try:
        actual = integrity.stored_sha256(s3, bucket, key)
    except (ClientError, BotoCoreError, Boto3Error) as error:
        raise StagingError(f"cannot verify the staged copy of {where}: {_cause(error)}") from error
    if actual != expected:
        raise StagingError(
            f"the staged copy of {where} has sha256 {actual}, but the package recorded {expected} at registration"
        )


def smoke_request(s3: Any, bucket: str, key: str, *, model: Optional[str] = None, max_bytes: int = DEFAULT_READ_CAP) -> bytes:
    """A one-record ``application/json`` request for the model archived at ``s3://bucket/key``.

    The archive is streamed (``tarfile`` mode ``r|gz``) until ``feature_metadata.json`` (at the
    archive's root, ``./`` or not) is found; reading stops there, and after ``max_bytes`` (default
    512 MiB, compressed or decompressed) without it. The request is
    ``{"instances": [{<every feature in feature_order>: null, "inference_id": "mlops-loop-smoke-test"}]}``:
    a record holding every model feature is taken as precomputed and null is a missing value, so
    it is valid for any model; ``inference_id`` is per record, which is where serving reads it.
    With ``model`` given, the metadata's ``model`` must name it.

    Raises:
        StagingError: unreadable object, not a gzipped tar, no (or bad) feature_metadata.json
            within ``max_bytes``, or metadata of another model.
    """
    where = f"s3://{bucket}/{key}"
    try:
        raw = read_archive_member(s3, bucket, key, METADATA_FILE, max_bytes=max_bytes, max_member_bytes=MAX_METADATA_BYTES,
                                  what="a feature metadata file")
    except ArchiveReadError as error:
        raise StagingError(str(error)) from error
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise StagingError(f"{METADATA_FILE} in {where} is not JSON: {error}") from None
    order = metadata.get("feature_order") if isinstance(metadata, dict) else None
    if not isinstance(order, list) or not order or not all(isinstance(f, str) and f for f in order):
        raise StagingError(f"{METADATA_FILE} in {where} has no feature_order (a non-empty list of feature names)")
    if model is not None and metadata.get("model") != model:
        raise StagingError(f"{METADATA_FILE} in {where} describes model {metadata.get('model')!r}, not {model!r}")
    record: dict = {name: None for name in order}
    record["inference_id"] = SMOKE_TEST_INFERENCE_ID
    return json.dumps({"instances": [record]}, separators=(",", ":")).encode("utf-8")


def smoke_test(runtime: Any, endpoint: str, target_model: str, body: bytes) -> SmokeAnswer:
    """Invoke ``endpoint`` with ``TargetModel=target_model`` and ``body``; return the one prediction.

    Passes only when the call succeeds and the JSON answer has ``predictions`` with exactly one
    entry of one of the contract's shapes (``docs/invocation-contract.md``, Responses):

    * multiclass (the entry has ``probabilities``): an object of class name -> finite number in
      [0, 1] summing to 1, a ``label`` that is one of its classes, a ``score`` equal to its probability;
    * regression (the entry has ``value`` and no ``score``): ``value`` a finite number;
    * binary (any other entry): ``score`` a finite number in [0, 1].

    Raises:
        SmokeTestError: naming the endpoint, the target model and the cause (with the first 300
            characters of an error or unexpected body).
    """
    where = f"smoke test of {target_model} on {endpoint} failed"
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint,
            TargetModel=target_model,
            ContentType=JSON_TYPE,
            Accept=JSON_TYPE,
            Body=body,
        )
        payload = response["Body"].read()
    except (ClientError, BotoCoreError) as error:
        raise SmokeTestError(f"{where}: {_cause(error)}") from error
    text = payload.decode("utf-8", errors="replace") if isinstance(payload, (bytes, bytearray)) else str(payload)
    preview = text[:ERROR_PREVIEW]
    try:
        answer = json.loads(text)
    except ValueError:
        raise SmokeTestError(f"{where}: the answer is not JSON: {preview!r}") from None
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != 1:
        count = len(predictions) if isinstance(predictions, list) else "no"
        raise SmokeTestError(f"{where}: expected 'predictions' with exactly 1 entry, got {count}: {preview!r}")
    entry = predictions[0] if isinstance(predictions[0], dict) else {}
    if "probabilities" in entry:
        return _multiclass_answer(entry, f"{where}: ", f": {preview!r}")
    if "value" in entry and "score" not in entry:
        value = entry["value"]
        if not _finite(value):
            raise SmokeTestError(f"{where}: 'value' must be a finite number, got {value!r}: {preview!r}")
        return SmokeAnswer(REGRESSION, value=float(value))
    score = entry.get("score")
    if not _finite(score) or not 0 <= score <= 1:
        raise SmokeTestError(f"{where}: 'score' must be a finite number in [0, 1], got {score!r}: {preview!r}")
    return SmokeAnswer(BINARY, score=float(score))


def _finite(value: Any) -> bool:
    """A JSON number (not a boolean) that is neither NaN nor infinite."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _multiclass_answer(entry: Mapping[str, Any], head: str, tail: str) -> SmokeAnswer:
    """The checks of a multiclass prediction (see :func:`smoke_test`); ``head``/``tail`` frame the error."""
    probabilities = entry["probabilities"]
    if not isinstance(probabilities, dict) or not probabilities:
        raise SmokeTestError(f"{head}'probabilities' must be an object of class name -> probability, "
                             f"got {probabilities!r}{tail}")
    for name, p in probabilities.items():
        if not _finite(p) or not 0 <= p <= 1:
            raise SmokeTestError(f"{head}'probabilities' must be finite numbers in [0, 1], got {p!r} for "
                                 f"class {name!r}{tail}")
    total = math.fsum(probabilities.values())
    if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
        raise SmokeTestError(f"{head}'probabilities' must sum to 1, got {total!r}{tail}")
    label = entry.get("label")
    if not isinstance(label, str) or label not in probabilities:
        raise SmokeTestError(f"{head}'label' must be one of the classes of 'probabilities' {list(probabilities)}, "
                             f"got {label!r}{tail}")
    score = entry.get("score")
    if not _finite(score) or not math.isclose(score, probabilities[label], rel_tol=1e-9, abs_tol=1e-12):
        raise SmokeTestError(f"{head}'score' must be the probability of 'label' {label!r} "
                             f"({probabilities[label]!r}), got {score!r}{tail}")
    return SmokeAnswer(MULTICLASS, score=float(score), label=label)


def endpoint_status(sagemaker: Any, endpoint: str) -> Optional[str]:
    """``EndpointStatus`` of ``endpoint`` (``InService``, ``Updating``, ...), or None when it does not exist."""
    try:
        return sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
    except ClientError as error:
        if error.response["Error"].get("Code") == "ValidationException" and "could not find" in str(error).lower():
            return None
        raise


# --- helpers --------------------------------------------------------------------------------------------


def _head(s3: Any, bucket: str, key: str, where: str) -> Optional[Mapping[str, Any]]:
    """The staged object's HeadObject, or None when it does not exist.

    Existence is asked with ListObjectsV2 (prefix = the key): the function may list only its staging
    prefix (an ``s3:prefix`` condition), and without an unconditional ListBucket S3 answers HeadObject
    on a missing key with 403, indistinguishable from a real denial.
    """
    try:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents") or []
        if not any(item.get("Key") == key for item in listed):
            return None
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in _MISSING_CODES:
            return None
        raise StagingError(f"cannot stage {where}: HeadObject on the target failed: {_cause(error)}") from error
    except BotoCoreError as error:
        raise StagingError(f"cannot stage {where}: HeadObject on the target failed: {_cause(error)}") from error


