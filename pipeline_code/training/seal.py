"""Seal the model that passed the gate: its archive written once to a content-addressed key, its digests recorded.

The evaluate job calls :func:`seal` when the gate passes and a seal location is given (the pipeline
gives ``s3://<artifacts>/pipelines/<model>/registered/``). The archive the gate judged is written to
``<location><sha256>/model.tar.gz`` (:func:`pipeline_code.core.integrity.sealed_key`) with

* ``If-None-Match: *``: the write succeeds only if the key does not exist yet. The artifacts
  bucket's policy refuses any other write and any delete below ``registered/``, so once written the
  object can never change - not by the training role, not by a later run;
* ``x-amz-checksum-sha256``: S3 rejects the upload unless the bytes it received are the bytes
  hashed here, and keeps the checksum, so the deploy handler can compare it without a download.

The register step then points the model package at that key and records the archive digest, the
model digest (:func:`pipeline_code.core.integrity.model_digest`) and the model's content digest
(:func:`pipeline_code.core.integrity.model_content_digest`, for comparing runs) in its customer metadata.

A key that already exists (a retried step, the same archive sealed by an earlier run) is re-used
after checking that it holds the same bytes; anything else is a :class:`SealError` and the step
fails, so no model is registered that cannot be verified later.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

from pipeline_code.core import integrity
from pipeline_code.job_runtime import split_s3_uri
from pipeline_code.training import data_io
from pipeline_code.training.data_io import InputError

# A conflicting concurrent write (409 ConditionalRequestConflict) is retried this often, this far apart.
CONFLICT_RETRIES = 3
CONFLICT_WAIT_SECONDS = 2.0


class SealError(InputError):
    """The artefact could not be sealed (or an existing sealed key holds other bytes)."""


@dataclass(frozen=True)
class Digests:
    """The digests of one model artefact (``archive`` is None for a model directory without an archive);
    ``model_content_sha256`` is the model's content digest (None when not computed)."""

    model_sha256: str
    sha256: Optional[str] = None
    archive: Optional[str] = None  # local path of model.tar.gz
    bytes: Optional[int] = None
    model_content_sha256: Optional[str] = None


@dataclass(frozen=True)
class Sealed:
    """Where the archive was sealed; ``created`` is False when the key already held the same bytes."""

    uri: str
    sha256: str
    model_sha256: str
    bytes: int
    created: bool
    model_content_sha256: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def digests(model_dir: str) -> Digests:
    """The digests of the model in ``model_dir``: a directory holding ``model.tar.gz`` (as SageMaker mounts
    it), the archive itself, or a directory with ``model.json`` + ``feature_metadata.json`` (the local run).

    Raises:
        InputError: no model there, or the archive holds no ``model.json`` + ``feature_metadata.json``.
    """
    archive = data_io.model_archive(model_dir)
    if not os.path.isfile(archive):
        found = integrity.model_digest(model_dir) if os.path.isdir(model_dir) else None
        if found is None:
            raise InputError(
                f"no model at {model_dir!r}: expected {integrity.MODEL_ARCHIVE} or {integrity.MODEL_FILE} + {integrity.METADATA_FILE}"
            )
        return Digests(model_sha256=found, model_content_sha256=integrity.model_content_digest(model_dir))
    scratch = tempfile.mkdtemp(prefix="mlops-loop-seal-")
    try:
        data_io.extract_tar_safely(archive, scratch)
        found = content = None
        for root, _dirs, names in os.walk(scratch):
            if integrity.MODEL_FILE in names:
                found, content = integrity.model_digest(root), integrity.model_content_digest(root)
                break
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if found is None:
        raise InputError(f"{archive}: no {integrity.MODEL_FILE} + {integrity.METADATA_FILE} inside the archive")
    return Digests(model_sha256=found, sha256=integrity.sha256_file(archive), archive=archive, bytes=os.path.getsize(archive),
                   model_content_sha256=content)


def seal(found: Digests, location: str, *, s3_client: Any = None, region: Optional[str] = None) -> Sealed:
    """Write ``found.archive`` once below ``location`` (``s3://bucket/prefix/``, or a local directory).

    Raises:
        SealError: no archive, too large for one request, a key holding other bytes, or an S3 error.
    """
    if found.archive is None or found.sha256 is None or found.bytes is None:
        raise SealError(f"only a {integrity.MODEL_ARCHIVE} can be sealed; the model was given as a directory")
    if found.bytes > integrity.MAX_SEALED_BYTES:
        raise SealError(
            f"{found.archive} is {found.bytes} bytes; a sealed archive is written in one request of at most "
            f"{integrity.MAX_SEALED_BYTES} bytes (S3's PutObject limit)"
        )
    if not location.endswith("/"):
        raise SealError(f"seal location must end with '/', got {location!r}")
    if location.startswith("s3://"):
        return _seal_s3(found, location, s3_client=s3_client, region=region)
    return _seal_local(found, location)


def _seal_local(found: Digests, directory: str) -> Sealed:
    path = os.path.join(directory, integrity.sealed_key("", found.sha256))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path, "xb") as target, open(found.archive, "rb") as source:
            shutil.copyfileobj(source, target)
        created = True
    except FileExistsError:
        created = False
    actual = integrity.sha256_file(path)
    if actual != found.sha256:
        raise SealError(f"sealed copy {path} holds sha256 {actual}, not {found.sha256}; it was changed after sealing")
    return Sealed(uri=path, sha256=found.sha256, model_sha256=found.model_sha256, bytes=found.bytes, created=created,
                  model_content_sha256=found.model_content_sha256)


def _seal_s3(found: Digests, location: str, *, s3_client: Any, region: Optional[str]) -> Sealed:
    from botocore.exceptions import ClientError

    if s3_client is None:
        import boto3  # lazily: local runs and tests pass their own client

        s3_client = boto3.session.Session(region_name=region).client("s3")
    bucket, prefix = split_s3_uri(location)
    key = integrity.sealed_key(prefix, found.sha256)
    uri = f"s3://{bucket}/{key}"
    for attempt in range(CONFLICT_RETRIES + 1):
        try:
            with open(found.archive, "rb") as body:
                s3_client.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=body,
                    IfNoneMatch="*",
                    ChecksumSHA256=integrity.hex_to_base64(found.sha256),
                    ContentType="application/gzip",
                )
            return Sealed(uri=uri, sha256=found.sha256, model_sha256=found.model_sha256, bytes=found.bytes, created=True,
                          model_content_sha256=found.model_content_sha256)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "ConditionalRequestConflict" and attempt < CONFLICT_RETRIES:
                time.sleep(CONFLICT_WAIT_SECONDS)  # another writer of this key is finishing; then it exists
                continue
            if code not in ("PreconditionFailed", "412"):
                raise SealError(f"sealing {uri} failed: {error}") from None
            break
    actual = integrity.stored_sha256(s3_client, bucket, key)
    if actual != found.sha256:
        raise SealError(f"{uri} already exists and holds sha256 {actual}, not {found.sha256}; a sealed key never changes")
    return Sealed(uri=uri, sha256=found.sha256, model_sha256=found.model_sha256, bytes=found.bytes, created=False,
                  model_content_sha256=found.model_content_sha256)

