"""The deploy-on-approval handler's test world (tests/handlers/test_deploy_on_approval.py and tests/handlers/deploy/):
a moto account with the registry (SageMaker), the serving stack (CloudFormation), the artifacts bucket and a topic read
back through an SQS subscription; versions registered and sealed as the pipeline does; events as EventBridge delivers
them; the approval ledger and run-record settings. Import the fixtures (``shared_clients``, ``aws``, ``ledger``,
``runs``) into a test module to use them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from typing import Any, Dict
from urllib.parse import urlparse

import pytest
from moto import mock_aws
from moto.cloudformation.models import Event, cloudformation_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from pipeline_code.handlers import deploy_on_approval as dod
from tests.support.moto_clients import SharedClients
from tests.support.multi_model import keep_package_metadata, model_archive, seal_archive
from tests.support.pipeline_runs import EXECUTION, Runs


REGION = "eu-west-1"
GROUP = "mlops-loop-prod-churn"
OTHER_GROUP = "mlops-loop-prod-credit-risk"
STACK = "mlops-loop-prod-serving"
ARTIFACTS = "mlops-loop-prod-artifacts"
PARAMETERS = {GROUP: "ChurnModelPackageArn", OTHER_GROUP: "CreditRiskModelPackageArn"}
DEPLOYER = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/mlops-loop-prod-deployer"
CREDIT_RISK_SERVING = f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:model-package/{OTHER_GROUP}/3"
TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {
        "ChurnModelPackageArn": {"Type": "String", "Default": ""},
        "CreditRiskModelPackageArn": {"Type": "String", "Default": ""},
        "ChurnModelSha256": {"Type": "String", "Default": ""},
        "ChurnInstanceType": {"Type": "String", "Default": "ml.m5.large"},
    },
    "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
}
SPEC = {
    "Containers": [
        {
            "Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5",
            "ModelDataUrl": "s3://mlops-loop-prod-artifacts/churn/model.tar.gz",
        }
    ],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}


@pytest.fixture(scope="module")
def shared_clients() -> SharedClients:
    """The module's clients (tests/support/moto_clients.py): made once, not five to seven times per test."""
    return SharedClients(REGION)


class Aws:
    """The mocked account: clients, the notification queue and a record of UpdateStack requests."""

    def __init__(self, clients: SharedClients) -> None:
        self.client = clients
        self.sagemaker = clients("sagemaker")
        self.cloudformation = clients("cloudformation")
        self.sns = clients("sns")
        self.sqs = clients("sqs")
        self.s3 = clients("s3")
        self.updates: list[dict] = []
        # Records what the handler asked CloudFormation for (moto keeps no ClientRequestToken / Capabilities).
        self.cloudformation.meta.events.register(
            "provide-client-params.cloudformation.UpdateStack", lambda params, **_: self.updates.append(dict(params))
        )

    def parameters(self) -> dict:
        stack = self.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    def notices(self) -> list[str]:
        """Subjects published to the topic since the last call."""
        return [subject for subject, _ in self.published()]

    def published(self) -> list[tuple[str, str]]:
        """(subject, body) of each notice published to the topic since the last call."""
        out = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return out
            for message in messages:
                notice = json.loads(message["Body"])
                out.append((notice["Subject"], notice["Message"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])


def build_world(env: Aws, *, by_api: bool = False) -> None:
    """The account every test starts from, in the active mock: the artifacts bucket, both model package groups, the
    serving stack, the topic and the queue subscribed to it (``env.topic``, ``env.queue``).

    The bucket, groups, topic, queue and subscription are made on moto's backends, as its request handlers make them
    (each through the API cost ~4 ms of moto's request handling, ~25 ms a test over 100s of tests);
    ``by_api`` makes them through the API instead, which tests/handlers/deploy/test_world.py compares this with. The
    stack is made through the API either way (moto's template handling is behind it)."""
    if by_api:
        env.s3.create_bucket(Bucket=ARTIFACTS, CreateBucketConfiguration={"LocationConstraint": REGION})
        for group in PARAMETERS:
            env.sagemaker.create_model_package_group(ModelPackageGroupName=group)
    else:
        s3_backends[DEFAULT_ACCOUNT_ID]["aws"].create_bucket(ARTIFACTS, REGION)
        for group in PARAMETERS:
            sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].create_model_package_group(
                model_package_group_name=group, model_package_group_description=None, tags=None)
    # Every parameter is passed explicitly: moto resolves UsePreviousValue only for parameters given
    # at creation (CloudFormation itself also keeps defaults).
    env.cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(TEMPLATE),
        Parameters=[
            {"ParameterKey": "ChurnModelPackageArn", "ParameterValue": ""},
            {"ParameterKey": "CreditRiskModelPackageArn", "ParameterValue": CREDIT_RISK_SERVING},
            {"ParameterKey": "ChurnModelSha256", "ParameterValue": ""},
            {"ParameterKey": "ChurnInstanceType", "ParameterValue": "ml.c5.xlarge"},
        ],
    )
    if by_api:
        env.topic = env.sns.create_topic(Name="mlops-loop-prod-notifications")["TopicArn"]
        env.queue = env.sqs.create_queue(QueueName="people")["QueueUrl"]
        queue_arn = env.sqs.get_queue_attributes(QueueUrl=env.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        env.sns.subscribe(TopicArn=env.topic, Protocol="sqs", Endpoint=queue_arn)
        return
    sns = sns_backends[DEFAULT_ACCOUNT_ID][REGION]
    env.topic = sns.create_topic("mlops-loop-prod-notifications", {}, {}).arn
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].create_queue("people", {})
    env.queue = queue.url(urlparse(env.sqs.meta.endpoint_url))
    sns.subscribe(env.topic, queue.queue_arn, "sqs")


@pytest.fixture()
def aws(monkeypatch, shared_clients):
    keep_package_metadata(monkeypatch)
    with mock_aws(), shared_clients.fresh() as clients:
        env = Aws(clients)
        build_world(env)
        monkeypatch.setenv("SERVING_STACK_NAME", STACK)
        monkeypatch.setenv("MODEL_PARAMETERS", json.dumps(PARAMETERS))
        monkeypatch.setenv("DEPLOYER_ROLE_ARN", DEPLOYER)
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", env.topic)
        yield env


def register(aws, *, spec=SPEC, group=GROUP, archive: bytes | None = None, upload: bool = True, sealed: bool = True,
             metrics: dict | None = None) -> str:
    """A new version of ``group``; by default sealed as the pipeline registers it: a distinct model.tar.gz (or
    ``archive``) at its sealed key (``upload=False`` leaves the object out) and both digests in its metadata.
    ``metrics``: its ModelMetrics (:func:`evaluation_reports`)."""
    kwargs = {} if metrics is None else {"ModelMetrics": metrics}
    if spec is not None and sealed:
        number = len(aws.sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]) + 1
        archive = model_archive(before=[(f"./version-{number}", b"")]) if archive is None else archive
        uri, metadata = seal_archive(aws.s3, ARTIFACTS, group.rsplit("-", 1)[-1], archive, upload=upload,
                                     container=spec["Containers"][0])
        spec = {**spec, "Containers": [{**spec["Containers"][0], "ModelDataUrl": uri}]}
        kwargs["CustomerMetadataProperties"] = metadata
    if spec is not None:
        kwargs["InferenceSpecification"] = spec
    return aws.sagemaker.create_model_package(ModelPackageGroupName=group, ModelApprovalStatus="PendingManualApproval", **kwargs)[
        "ModelPackageArn"
    ]


EVALUATION_PREFIX = "pipelines/churn/{execution}/evaluate/evaluation"


def evaluation_reports(aws, *, reasons: list | None = None, execution: str = "run0001", prefix: str | None = None,
                       bucket: str = ARTIFACTS) -> dict:
    """Write an evaluation report whose gate passed (``reasons`` None) or failed for ``reasons``, and the bias report
    carrying its digest, where the evaluation job writes them (or below ``prefix`` of ``bucket``: a version registered
    by hand); returns the ModelMetrics that registers them (bias.json by its ContentDigest, evaluation.json beside the
    ModelQuality statistics), as the pipeline's register step does."""
    prefix = EVALUATION_PREFIX.format(execution=execution) if prefix is None else prefix
    gate = {"passed": reasons is None, "reasons": reasons or [], "thresholds": {"min_auc": 0.7}}
    evaluation = json.dumps({"metrics": {"auc": 0.81}, "gate": gate}).encode()
    bias = json.dumps({"evaluation_digest": "sha256:" + hashlib.sha256(evaluation).hexdigest()}).encode()
    for name, body in (("evaluation.json", evaluation), ("bias.json", bias), ("model_quality.json", b"{}")):
        aws.s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=body)
    return {
        "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/{prefix}/model_quality.json",
                                        "ContentDigest": "sha256:" + hashlib.sha256(b"{}").hexdigest()}},
        "Bias": {"Report": {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/{prefix}/bias.json",
                            "ContentDigest": "sha256:" + hashlib.sha256(bias).hexdigest()}},
    }


def source_url(aws, arn) -> str:
    """The ModelDataUrl a version was registered with."""
    return aws.sagemaker.describe_model_package(ModelPackageName=arn)["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]


def digests(aws, arn) -> dict:
    """The digests a version recorded at registration."""
    return aws.sagemaker.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]


def _after_registration() -> None:
    """A decision made in the millisecond its version was registered would carry its creation time as LastModifiedTime
    (millisecond resolution), which the handler reads as registered Approved, no decision since (_no_reason): a test
    decision is always a later one."""
    time.sleep(0.002)


def set_approval(aws, arn, status, why: str = "reviewed: model card and evaluation report") -> None:
    """``status`` set on ``arn`` with its reason (``why``; the deploy handler tells people of an approval without one)."""
    _after_registration()
    aws.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=why)
    # LastModifiedTime travels with millisecond resolution: keep successive approvals distinguishable.
    time.sleep(0.005)


def state_change(arn, *, approval="Approved", status="Completed", group=GROUP) -> dict:
    """A ``SageMaker Model Package State Change`` event as EventBridge delivers it (shape from the AWS docs)."""
    return {
        "version": "0",
        "id": f"event-{arn.rsplit('/', 1)[-1]}-{approval}",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": DEFAULT_ACCOUNT_ID,
        "time": "2026-11-26T09:00:00Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": int(arn.rsplit("/", 1)[-1]),
            "ModelPackageArn": arn,
            "CreationTime": "2026-11-26T08:00:00Z",
            "ModelPackageStatus": status,
            "ModelApprovalStatus": approval,
            "UpdatedModelPackageFields": ["ModelApprovalStatus"],
        },
    }


def run(aws, event):
    return dod.handler(event, sagemaker=aws.sagemaker, cloudformation=aws.cloudformation, sns=aws.sns, s3=aws.s3)


def approve_and_deploy(aws, arn):
    set_approval(aws, arn, "Approved")
    assert run(aws, state_change(arn))["deployed"] is True


def roll_back_last_update(aws, *, to_arn: str, to_sha: str) -> None:
    """What CloudFormation does when the handler's last update trips a rollback alarm: that operation's events (all
    carrying its client request token) end in UPDATE_ROLLBACK_COMPLETE and the parameters are restored. moto finishes
    updates at once and keeps no token, so the token and the failure are written into its backend."""
    token = aws.updates[-1]["ClientRequestToken"]
    stack = cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].get_stack(STACK)
    for event in stack.events:
        if event.client_request_token is None and event.timestamp >= aws.update_started:
            event.client_request_token = token
    current = aws.parameters()
    restored = {"ChurnModelPackageArn": to_arn, "ChurnModelSha256": to_sha}
    aws.cloudformation.update_stack(StackName=STACK, UsePreviousTemplate=True, Parameters=[
        {"ParameterKey": k, "ParameterValue": restored.get(k, v)} for k, v in current.items()])
    aws.updates.pop()  # the test's own restore, not the handler's
    stack.events = [e for e in stack.events if e.client_request_token is not None]
    for logical, kind, status, reason in (
        ("ChurnEndpoint", "AWS::SageMaker::Endpoint", "UPDATE_FAILED", "Rollback alarm ChurnRollback5xx in ALARM"),
        (STACK, "AWS::CloudFormation::Stack", "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update"),
        (STACK, "AWS::CloudFormation::Stack", "UPDATE_ROLLBACK_COMPLETE", None),
    ):
        event = Event(stack.stack_id, STACK, logical, logical, kind, status, reason, None)
        event.client_request_token = token
        stack.events.append(event)
    stack.status = "UPDATE_ROLLBACK_COMPLETE"


def deploy_and_fail(aws, serving: str, failing: str) -> None:
    """``serving`` serves; ``failing`` is approved, deployed by the handler, and its rollout rolled back."""
    approve_and_deploy(aws, serving)
    sha = aws.parameters()["ChurnModelSha256"]
    # moto stamps its events in naive UTC
    aws.update_started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(milliseconds=1)
    approve_and_deploy(aws, failing)
    roll_back_last_update(aws, to_arn=serving, to_sha=sha)
    aws.notices()


APPROVER = f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/mlops-loop-prod-model-approver/alice"


LEDGER_PREFIX = "approval-ledger/churn/"


@pytest.fixture()
def ledger(aws, monkeypatch):
    monkeypatch.setenv("APPROVAL_LEDGER", json.dumps({"bucket": ARTIFACTS, "group_prefix": "mlops-loop-prod-"}))
    return aws


def decide(aws, arn, status, *, by=APPROVER, why="reviewed: model card and evaluation report"):
    """``by`` sets ``status`` on ``arn`` with the description ``why``, as the approver role's UpdateModelPackage does."""
    _after_registration()
    aws.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=why)
    backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.model_packages[backend.model_package_name_mapping.get(arn, arn)].last_modified_by = {
        "IamIdentity": {"Arn": by, "PrincipalId": "AROAEXAMPLE:alice"}}
    time.sleep(0.005)


def records(aws, version=None) -> dict:
    """``{key: bytes}`` of the ledger's records (of ``version``), in key order."""
    prefix = LEDGER_PREFIX + (f"{version}/" if version is not None else "")
    keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=prefix).get("Contents", [])]
    return {key: aws.s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read() for key in sorted(keys)}


@pytest.fixture()
def runs(ledger) -> Runs:
    return Runs(ledger.sagemaker)


def register_run(aws: Any, execution_arn: str = EXECUTION) -> str:
    """A version as the pipeline registers it: sealed, its MetadataProperties.GeneratedBy naming its execution
    (``execution_arn``)."""
    arn = register(aws)
    backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.model_packages[backend.model_package_name_mapping.get(arn, arn)].metadata_properties = {"GeneratedBy": execution_arn}
    assert aws.sagemaker.describe_model_package(ModelPackageName=arn)["MetadataProperties"]["GeneratedBy"] == execution_arn
    return arn


def v1_recorded_at_its_approval(aws: Any) -> tuple[str, Dict[str, bytes]]:
    """GIVEN v1, its run ended, approved and its run record kept at the approval event (notices read): (v1's ARN, the
    run records as written)."""
    v1 = register_run(aws)
    decide(aws, v1, "Approved")
    run(aws, state_change(v1))
    first = kept(aws)
    aws.notices()
    return v1, first


def kept(aws: Any) -> Dict[str, bytes]:
    """``{key: bytes}`` of the run records below run-records/churn/."""
    keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=ARTIFACTS, Prefix="run-records/churn/").get("Contents", [])]
    return {key: aws.s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read() for key in keys}


SECOND_EXECUTION = EXECUTION.replace("run0001", "run0002")


def execution_ended(execution_arn: str = EXECUTION, status: str = "Succeeded") -> dict:
    """What the rule on a pipeline execution's end sends the handler (its input transformer's template)."""
    return {"action": "record-execution", "execution": execution_arn, "status": status, "source_event_id": "event-end-1"}
