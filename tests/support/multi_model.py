"""A multi-model endpoint's world for handler tests: model archives as SageMaker writes them, the
serving container's answers, a fake sagemaker-runtime client and a moto endpoint."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from typing import Any, Dict, List, Optional, Sequence

from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID

from pipeline_code.core.contract import VARIANT
from pipeline_code.handlers import multi_model as mme
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
