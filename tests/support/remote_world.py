"""A moto world for the scheduled monitor (``monitor --from-s3``): a serving stack (CloudFormation), a registry
(model packages registered as the training pipeline's register step does), the buckets (S3) and CloudWatch, with the
helpers that upload traffic and read the report back.

The same world as ``tests/monitoring/test_remote.py`` builds for itself, here for the test modules that need it too
(tests share helpers only through ``tests/support``). moto stamps ``LastModified`` with the upload time and has no API
to change it: :meth:`Aws.age` sets it on the object in moto's S3 backend.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tarfile

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from mlops_cli.local import replay
from pipeline_code.core import integrity
from pipeline_code.core.contract import (ARCHIVE_SHA256_PROPERTY, ATTRIBUTIONS_SHA256_PROPERTY, DEFAULT_PROJECT,
                                         monitor_namespace)
from pipeline_code.training.train import predict
from tests.support.credentials import moto_credentials
from tests.support.moto_clients import SharedClients

REGION = "eu-west-1"
STACK = "mlops-loop-dev-serving"
GROUP = "mlops-loop-dev-churn"
ARTIFACTS = "mlops-loop-dev-artifacts"
INFERENCE = "mlops-loop-dev-inference"
CAPTURE_URI = f"s3://{INFERENCE}/capture/churn/"
LABELS_URI = f"s3://{INFERENCE}/labels/churn/"
BATCH_URI = f"s3://{INFERENCE}/batch/churn/"
HISTORY_URI = f"s3://{INFERENCE}/monitor/churn/"
NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)
TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"ChurnModelPackageArn": {"Type": "String", "Default": ""},
                   "CreditRiskModelPackageArn": {"Type": "String", "Default": ""}},
    "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
}

# Where the monitor publishes by default (no --metric-namespace): the default project's namespace of the
# model ("churn") in its environment ("dev").
NAMESPACE = monitor_namespace(DEFAULT_PROJECT, "dev", "churn")


class Aws:
    def __init__(self, tmp, clients: SharedClients) -> None:
        self.tmp = tmp
        self.s3 = clients("s3")
        self.sagemaker = clients("sagemaker")
        self.cloudformation = clients("cloudformation")
        self.cloudwatch = clients("cloudwatch")
        self.clients = {"s3": self.s3, "sagemaker": self.sagemaker, "cloudformation": self.cloudformation}

    def put(self, uri: str, body: bytes, *, age_hours: float | None = None) -> None:
        bucket, _, key = uri[5:].partition("/")
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        if age_hours is not None:
            self.age(uri, NOW - dt.timedelta(hours=age_hours))

    @staticmethod
    def age(uri: str, when: dt.datetime) -> None:
        """Set an object's LastModified in moto's backend (moto offers no API for it)."""
        bucket, _, key = uri[5:].partition("/")
        s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[bucket].keys[key].last_modified = when.replace(tzinfo=None)

    def serving_stack(self, churn_arn: str = "") -> None:
        self.cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE), Parameters=[
            {"ParameterKey": "ChurnModelPackageArn", "ParameterValue": churn_arn},
            {"ParameterKey": "CreditRiskModelPackageArn", "ParameterValue": ""}])


@pytest.fixture(scope="session")
def remote_clients() -> SharedClients:
    """The world's clients (tests/support/moto_clients.py), made once per process rather than four per test: every
    ``aws`` is in REGION with moto's stand-in credentials, and what a test registers on a client is undone after it."""
    return SharedClients(REGION)


@pytest.fixture()
def aws(monkeypatch, tmp_path_factory, remote_clients):
    moto_credentials(monkeypatch, REGION)
    with mock_aws(), remote_clients.fresh() as clients:
        env = Aws(tmp_path_factory.mktemp("aws"), clients)
        for bucket in (ARTIFACTS, INFERENCE):
            env.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        env.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        yield env


def model_archive(model_dir: str, extra: dict | None = None) -> bytes:
    """model.tar.gz as SageMaker training writes it: the model directory's files at the archive root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in sorted(os.listdir(model_dir)):
            tar.add(os.path.join(model_dir, name), arcname=name)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def register(aws: Aws, reference: dict, run: str, *, skip: tuple = (), archive: bytes | None = None,
             drift_check_baselines: bool = True, digests: bool = False, attributions_digest: bool | None = None) -> str:
    """Upload a training run's outputs and register them like ``register_step`` (DriftCheckBaselines +
    ModelMetrics; attributions.json only next to statistics.json, evaluation.json next to model_quality.json).

    ``digests``: as the pipeline registers since it digests its evidence - each ModelMetrics document with its
    ContentDigest, ``bias.json`` carrying ``evaluation.json``'s digest, and the archive's sha256 in the customer
    metadata; without, as a version registered before that (no digest anywhere). ``attributions_digest`` (default:
    ``digests``): attributions.json's ContentDigest in the customer metadata (``attributions_sha256``), as the
    pipeline registers since; False with ``digests``: a version registered with digests but before that one."""
    attributions_digest = digests if attributions_digest is None else attributions_digest
    base, evaluation = f"s3://{ARTIFACTS}/churn/{run}/baseline", f"s3://{ARTIFACTS}/churn/{run}/evaluation"
    written: dict = {}
    for name in ("statistics", "constraints", "attributions", "evaluation"):
        if name not in skip:
            folder = evaluation if name == "evaluation" else base
            written[name] = open(os.path.join(reference["baseline_dir"], f"{name}.json"), "rb").read()
            aws.put(f"{folder}/{name}.json", written[name])
    written["model_quality"] = b"{}"
    aws.put(f"{evaluation}/model_quality.json", written["model_quality"])
    if digests:
        evaluation_digest = integrity.content_digest(hashlib.sha256(written.get("evaluation", b"")).hexdigest())
        written["bias"] = json.dumps({integrity.EVALUATION_DIGEST_KEY: evaluation_digest}).encode()
        aws.put(f"{evaluation}/bias.json", written["bias"])
        written["explainability"] = b"{}"
        aws.put(f"{evaluation}/explainability.json", written["explainability"])
    archive = archive or model_archive(reference["model_dir"])
    aws.put(f"s3://{ARTIFACTS}/churn/{run}/model/model.tar.gz", archive)

    def source(uri: str) -> dict:
        name = uri.rsplit("/", 1)[-1][: -len(".json")]
        digest = {"ContentDigest": integrity.content_digest(hashlib.sha256(written[name]).hexdigest())} if digests else {}
        return {"ContentType": "application/json", "S3Uri": uri, **digest}

    data_quality = {"Statistics": source(f"{base}/statistics.json"), "Constraints": source(f"{base}/constraints.json")}
    return aws.sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5",
                            "ModelDataUrl": f"s3://{ARTIFACTS}/churn/{run}/model/model.tar.gz"}],
            "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]},
        ModelMetrics={"ModelQuality": {"Statistics": source(f"{evaluation}/model_quality.json")},
                      "ModelDataQuality": data_quality,
                      "Bias": {"Report": source(f"{evaluation}/bias.json")},
                      "Explainability": {"Report": source(f"{evaluation}/explainability.json")}},
        **({"DriftCheckBaselines": {"ModelDataQuality": data_quality}} if drift_check_baselines else {}),
        **({"CustomerMetadataProperties": {
            ARCHIVE_SHA256_PROPERTY: hashlib.sha256(archive).hexdigest(),
            **({ATTRIBUTIONS_SHA256_PROPERTY: integrity.content_digest(hashlib.sha256(written["attributions"]).hexdigest())}
               if attributions_digest and "attributions" in written else {}),
        }} if digests else {}),
    )["ModelPackageArn"]


def upload_traffic(aws: Aws, spec, model, *, rows: int, seed: int, drift: float = 0.0, labels: bool = False) -> None:
    """A window of generated traffic as SageMaker data capture writes it (+ its ground truth)."""
    frame = replay.traffic(spec, rows, seed=seed, drift=drift)
    lines = replay.capture_lines(spec, frame, predict(model, frame))
    aws.put(f"{CAPTURE_URI}mlops-loop-dev-churn/AllTraffic/2026/11/26/08/capture-{seed}.jsonl", ("\n".join(lines) + "\n").encode())
    if labels:
        scratch = aws.tmp / f"labels-{seed}"
        replay.write_labels(spec, frame, str(scratch), coverage=1.0)
        aws.put(f"{LABELS_URI}2026/11/26/labels-{seed}.parquet", (scratch / "labels.parquet").read_bytes())


def from_s3_args(spec, tmp_path, *extra: str) -> list:
    return ["--model-spec", spec.to_json(), "--from-s3", "--serving-stack", STACK, "--capture-s3-uri", CAPTURE_URI,
            "--baseline-dir", str(tmp_path / "in" / "baseline"), "--model-dir", str(tmp_path / "in" / "model"),
            "--capture-dir", str(tmp_path / "in" / "capture"), "--output-dir", str(tmp_path / "out"),
            "--environment", "dev", "--region", REGION, "--shap-sample-rows", "300", *extra]


def read_report(tmp_path) -> dict:
    with open(tmp_path / "out" / "report.json", encoding="utf-8") as handle:
        return json.load(handle)


def published(aws: Aws) -> dict:
    """``{metric name: latest value}`` of the model's headline metrics in CloudWatch."""
    names = {m["MetricName"] for m in aws.cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]}
    dims = [{"Name": "Environment", "Value": "dev"}, {"Name": "Model", "Value": "churn"}]
    now = dt.datetime.now(dt.timezone.utc)
    out = {}
    for name in names - {"FeaturePsi"}:
        result = aws.cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": name,
                                                                     "Dimensions": dims}, "Period": 60, "Stat": "Maximum"}}],
            StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(hours=1))["MetricDataResults"][0]["Values"]
        out[name] = result[0] if result else None
    if "FeaturePsi" in names:
        out["FeaturePsi"] = "per feature"
    return out
