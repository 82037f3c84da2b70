"""A multi-model endpoint's world for handler tests: model archives as SageMaker writes them, the
serving container's answers, a fake sagemaker-runtime client and a moto endpoint."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from typing import Any, Dict, List, Mapping, Optional, Sequence

from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID

from pipeline_code.core import integrity
from pipeline_code.core.contract import ARCHIVE_SHA256_PROPERTY, CONTAINER_SHA256_PROPERTY, MODEL_SHA256_PROPERTY
from pipeline_code.core.contract import VARIANT
from tests.support.pipeline_specs import CHURN_SPEC
from pipeline_code.core.contract import SMOKE_TEST_INFERENCE_ID

INFERENCE = "mlops-loop-prod-inference"
ENDPOINT = "mlops-loop-prod-mme"

# churn's feature order as train.py writes it (docs/invocation-contract.md).
CHURN_FEATURES = list(CHURN_SPEC["features"])


def model_archive(
    *,
    model: str = "churn",
    features: Sequence[str] = CHURN_FEATURES,
    metadata_name: Optional[str] = "./feature_metadata.json",
    metadata: Optional[Dict[str, Any]] = None,
    before: Sequence[tuple] = (),
) -> bytes:
    """A model.tar.gz as SageMaker tars a training job's model directory: ``./model.json`` and
    ``./feature_metadata.json`` (``metadata_name=None`` leaves it out), after the ``before`` members
    (``(name, bytes)``)."""
    buffer = io.BytesIO()
    # mtime=0: the same arguments give the same bytes (the gzip header would carry the current time).
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed, tarfile.open(fileobj=compressed, mode="w") as archive:
        members = [*before, ("./model.json", json.dumps({"learner": {"dummy": True}}).encode())]
        if metadata_name is not None:
            content = metadata if metadata is not None else {"format": 1, "model": model, "feature_order": list(features)}
            members.append((metadata_name, json.dumps(content).encode()))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def archive_digests(archive: bytes) -> Dict[str, str]:
    """The customer metadata a sealed registration records for ``archive``: its sha256 and the model digest
    (``model.json`` then ``feature_metadata.json``, as :func:`pipeline_code.core.integrity.model_digest`)."""
    model = hashlib.sha256()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
        for name in (integrity.MODEL_FILE, integrity.METADATA_FILE):
            if name in members:
                model.update(tar.extractfile(members[name]).read())
    return {
        ARCHIVE_SHA256_PROPERTY: hashlib.sha256(archive).hexdigest(),
        MODEL_SHA256_PROPERTY: model.hexdigest(),
    }


def seal_archive(s3: Any, bucket: str, model: str, archive: bytes, *, upload: bool = True,
                 container: Optional[Mapping[str, Any]] = None) -> tuple[str, Dict[str, str]]:
    """Put ``archive`` at its sealed key as the evaluate step does (conditional write, stored sha256);
    return its ``s3://`` URI and the customer metadata a sealed registration records: the archive's digests
    and, for the inference ``container`` it is registered with (its ``Image`` and ``Environment``), the
    container digest."""
    metadata = archive_digests(archive)
    if container is not None:
        metadata[CONTAINER_SHA256_PROPERTY] = integrity.container_digest(container["Image"], container.get("Environment"))
    key = integrity.sealed_key(integrity.sealed_prefix(model), metadata[ARCHIVE_SHA256_PROPERTY])
    if upload:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=archive, IfNoneMatch="*", ChecksumAlgorithm="SHA256")
        except ClientError as error:
            if error.response["Error"]["Code"] != "PreconditionFailed":
                raise  # else: already sealed - the key names its bytes
    return f"s3://{bucket}/{key}", metadata


def replace_inference_specification(arn: str, specification: Mapping[str, Any], *, account: str, region: str) -> None:
    """What ``UpdateModelPackage`` with ``InferenceSpecification`` does in SageMaker: the version's inference
    specification becomes ``specification``. moto's UpdateModelPackage ignores that parameter, so the test sets it on
    moto's record of the package."""
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[account][region]
    backend.model_packages[backend.model_package_name_mapping.get(arn, arn)].inference_specification = dict(specification)


def keep_package_metadata(monkeypatch: Any) -> None:
    """Make moto's UpdateModelPackage keep CustomerMetadataProperties as SageMaker does (an update adds or
    changes the properties it names and keeps the others); moto replaces them with the request's, so an
    approval would erase a sealed version's digests."""
    from moto.sagemaker.models import SageMakerModelBackend

    original = SageMakerModelBackend.update_model_package

    def update(self: Any, model_package_arn: str, **fields: Any) -> str:
        package = self.model_packages.get(self.model_package_name_mapping.get(model_package_arn, model_package_arn))
        kept = dict((package.customer_metadata_properties or {}) if package is not None else {})
        fields["customer_metadata_properties"] = {**kept, **(fields.get("customer_metadata_properties") or {})} or None
        return original(self, model_package_arn=model_package_arn, **fields)

    monkeypatch.setattr(SageMakerModelBackend, "update_model_package", update)


def answer(score: Any = 0.31, *, count: int = 1) -> bytes:
    """The JSON answer of the serving container (inference.py) with ``count`` predictions."""
    predictions = [{"score": score, "label": 0, "inference_id": SMOKE_TEST_INFERENCE_ID} for _ in range(count)]
    return json.dumps({"predictions": predictions, "model": {"name": "churn", "version": None}}).encode()


class FakeRuntime:
    """A sagemaker-runtime client: records InvokeEndpoint calls, returns ``body`` or raises ``error``."""

    def __init__(self, body: bytes = b"", error: Optional[BaseException] = None) -> None:
        self.body = body or answer()
        self.error = error
        self.calls: List[Dict[str, Any]] = []

    def invoke_endpoint(self, **kwargs: Any) -> Dict[str, Any]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return {"Body": io.BytesIO(self.body), "ContentType": "application/json", "InvokedProductionVariant": VARIANT}

    def requests(self) -> List[Dict[str, Any]]:
        """The JSON bodies sent."""
        return [json.loads(call["Body"]) for call in self.calls]


def model_error(message: str) -> ClientError:
    """InvokeEndpoint's answer when the container fails (botocore puts the modelled fields top-level)."""
    return ClientError(
        {
            "Error": {"Code": "ModelError", "Message": "Received server error (500) from primary with message ..."},
            "OriginalStatusCode": 500,
            "OriginalMessage": message,
        },
        "InvokeEndpoint",
    )


def create_mme_endpoint(sagemaker: Any, *, name: str = ENDPOINT) -> None:
    """A multi-model endpoint as the serving stack defines it (moto puts it InService at once)."""
    sagemaker.create_model(
        ModelName=f"{name}-model",
        PrimaryContainer={
            "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5",
            "Mode": "MultiModel",
            "ModelDataUrl": f"s3://{INFERENCE}/mme/{name}/",
        },
        ExecutionRoleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/serving",
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {"VariantName": VARIANT, "ModelName": f"{name}-model", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
