"""Deploy on approval, against moto: a real registry (SageMaker), a real serving stack (CloudFormation)
and a real topic (SNS, read back through an SQS subscription).

Where moto cannot reach a state by its API, the test sets it in moto's backend and says so:
a package whose ModelPackageStatus is Failed (moto always completes packages) and a stack that is
UPDATE_IN_PROGRESS (moto finishes updates at once). The "No updates are to be performed" answer
is stubbed (botocore Stubber), because the handler never sends an update moto would refuse.
"""

from __future__ import annotations

import json
import logging
import re
import time

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.cloudformation.models import cloudformation_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from pipeline_code.handlers import deploy_on_approval as dod

REGION = "eu-west-1"
GROUP = "mlops-loop-prod-churn"
OTHER_GROUP = "mlops-loop-prod-credit-risk"
STACK = "mlops-loop-prod-serving"
PARAMETERS = {GROUP: "ChurnModelPackageArn", OTHER_GROUP: "CreditRiskModelPackageArn"}
DEPLOYER = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/mlops-loop-prod-deployer"
CREDIT_RISK_SERVING = f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:model-package/{OTHER_GROUP}/3"
TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {
        "ChurnModelPackageArn": {"Type": "String", "Default": ""},
        "CreditRiskModelPackageArn": {"Type": "String", "Default": ""},
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


class Aws:
    """The mocked account: clients, the notification queue and a record of UpdateStack requests."""

    def __init__(self) -> None:
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.cloudformation = boto3.client("cloudformation", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
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
        subjects = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return subjects
            for message in messages:
                subjects.append(json.loads(message["Body"])["Subject"])
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture()
def aws(monkeypatch):
    with mock_aws():
        env = Aws()
        for group in PARAMETERS:
            env.sagemaker.create_model_package_group(ModelPackageGroupName=group)
        # Every parameter is passed explicitly: moto resolves UsePreviousValue only for parameters given
        # at creation (CloudFormation itself also keeps defaults).
        env.cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(TEMPLATE),
            Parameters=[
                {"ParameterKey": "ChurnModelPackageArn", "ParameterValue": ""},
                {"ParameterKey": "CreditRiskModelPackageArn", "ParameterValue": CREDIT_RISK_SERVING},
                {"ParameterKey": "ChurnInstanceType", "ParameterValue": "ml.c5.xlarge"},
            ],
        )
        env.topic = env.sns.create_topic(Name="mlops-loop-prod-notifications")["TopicArn"]
        env.queue = env.sqs.create_queue(QueueName="people")["QueueUrl"]
        queue_arn = env.sqs.get_queue_attributes(QueueUrl=env.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        env.sns.subscribe(TopicArn=env.topic, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("SERVING_STACK_NAME", STACK)
        monkeypatch.setenv("MODEL_PARAMETERS", json.dumps(PARAMETERS))
        monkeypatch.setenv("DEPLOYER_ROLE_ARN", DEPLOYER)
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", env.topic)
        yield env


def register(aws, *, spec=SPEC, group=GROUP) -> str:
    kwargs = {"InferenceSpecification": spec} if spec is not None else {}
    return aws.sagemaker.create_model_package(ModelPackageGroupName=group, ModelApprovalStatus="PendingManualApproval", **kwargs)[
        "ModelPackageArn"
    ]


def set_approval(aws, arn, status) -> None:
    aws.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)
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
    return dod.handler(event, sagemaker=aws.sagemaker, cloudformation=aws.cloudformation, sns=aws.sns)


def approve_and_deploy(aws, arn):
    set_approval(aws, arn, "Approved")
    assert run(aws, state_change(arn))["deployed"] is True


def test_approval_updates_the_stack_with_the_new_version_and_keeps_the_other_parameters(aws):
    """GIVEN a stack with no churn endpoint WHEN v1 is approved THEN the stack's churn parameter is v1's ARN,
    every other parameter keeps its value, and the update ran as the deployer role with a valid token."""
    v1 = register(aws)
    set_approval(aws, v1, "Approved")

    decision = run(aws, state_change(v1))

    assert decision["deployed"] is True and decision["outcome"] == "deploying"
    assert aws.parameters() == {
        "ChurnModelPackageArn": v1,
        "CreditRiskModelPackageArn": CREDIT_RISK_SERVING,
        "ChurnInstanceType": "ml.c5.xlarge",
    }
    (update,) = aws.updates
    assert update["UsePreviousTemplate"] is True
    assert update["RoleARN"] == DEPLOYER
    assert update["Capabilities"] == ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    assert {p["ParameterKey"] for p in update["Parameters"] if p.get("UsePreviousValue")} == {
        "CreditRiskModelPackageArn",
        "ChurnInstanceType",
    }
    assert re.fullmatch(r"[a-zA-Z0-9][-a-zA-Z0-9]{0,127}", update["ClientRequestToken"])
    assert aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["RoleARN"] == DEPLOYER
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)"]


def test_a_duplicate_event_makes_no_second_update(aws):
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    event = state_change(v1)

    first, again = run(aws, event), run(aws, dict(event))

    assert first["deployed"] is True
    assert again["deployed"] is False and again["outcome"] == "unchanged"
    assert len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)"]


def test_a_later_approval_replaces_the_serving_version_and_a_late_event_does_not_undo_it(aws):
    """Order independence: v1's event delivered after v2's approval still leaves v2 serving."""
    v1, v2 = register(aws), register(aws)
    approve_and_deploy(aws, v1)
    set_approval(aws, v2, "Approved")

    assert run(aws, state_change(v2))["reason"] == "v1 -> v2"
    late = run(aws, state_change(v1))

    assert late["outcome"] == "unchanged"
    assert aws.parameters()["ChurnModelPackageArn"] == v2
    assert len(aws.updates) == 2


def test_an_event_for_another_group_is_ignored_with_a_log_line(aws, caplog):
    caplog.set_level(logging.INFO, logger=dod.__name__)
    event = state_change(f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:model-package/someone-elses-model/4", group="someone-elses-model")

    decision = run(aws, event)

    assert decision["outcome"] == "ignored" and "someone-elses-model" in decision["reason"]
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == dod.__name__]
    assert line == decision
    assert aws.updates == [] and aws.notices() == []


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ("not json", "expected a JSON object, got str"),
        ([1, 2], "expected a JSON object, got list"),
        ({}, "expected source 'aws.sagemaker'"),
        ({"source": "aws.sagemaker", "detail-type": "SageMaker Endpoint State Change", "detail": {}}, "expected source"),
        ({"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change", "detail": "x"}, "'detail' must be an object"),
        ({"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change", "detail": {}}, "detail.ModelPackageGroupName"),
        (
            {
                "source": "aws.sagemaker",
                "detail-type": "SageMaker Model Package State Change",
                "detail": {"ModelPackageGroupName": GROUP, "ModelPackageVersion": "2"},
            },
            "must be an integer",
        ),
        ({"action": "deploy", "group": GROUP}, "action 'deploy' is not 'reconcile'"),
        ({"action": "reconcile"}, "field 'group'"),
    ],
)
def test_malformed_events_are_logged_and_dropped_not_raised(aws, caplog, event, problem):
    caplog.set_level(logging.INFO, logger=dod.__name__)
    decision = run(aws, event)
    assert decision["deployed"] is False and decision["outcome"] == "malformed"
    assert problem in decision["reason"]
    assert [json.loads(r.getMessage())["outcome"] for r in caplog.records if r.name == dod.__name__] == ["malformed"]
    assert aws.updates == []


def test_a_stack_update_in_progress_raises_a_retryable_error_and_changes_nothing(aws, caplog):
    """The stack is put into UPDATE_IN_PROGRESS in moto's backend (moto completes updates at once)."""
    caplog.set_level(logging.INFO, logger=dod.__name__)
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].get_stack(STACK).status = "UPDATE_IN_PROGRESS"

    with pytest.raises(dod.StackBusyError, match="UPDATE_IN_PROGRESS"):
        run(aws, state_change(v1))

    assert aws.updates == [] and aws.parameters()["ChurnModelPackageArn"] == ""
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == dod.__name__]
    assert line["outcome"] == "retry" and line["desired"]["version"] == 1


def test_a_duplicate_during_the_rollout_it_started_is_not_retried(aws):
    """The parameter already names the desired version while the stack rolls it out: nothing to do."""
    v1 = register(aws)
    approve_and_deploy(aws, v1)
    cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].get_stack(STACK).status = "UPDATE_IN_PROGRESS"

    assert run(aws, state_change(v1))["outcome"] == "unchanged"
    assert len(aws.updates) == 1


def test_rejecting_the_serving_version_redeploys_the_previously_approved_one(aws):
    v1, v2 = register(aws), register(aws)
    approve_and_deploy(aws, v1)
    approve_and_deploy(aws, v2)
    aws.notices()
    set_approval(aws, v2, "Rejected")

    decision = run(aws, state_change(v2, approval="Rejected"))

    assert decision["deployed"] is True and decision["reason"] == "v2 -> v1"
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert aws.notices() == [f"{GROUP}: deploying v1 (was v2)"]


def test_with_no_approved_version_left_nothing_is_removed_and_people_are_told(aws):
    v1 = register(aws)
    approve_and_deploy(aws, v1)
    aws.notices()
    set_approval(aws, v1, "Rejected")

    decision = run(aws, state_change(v1, approval="Rejected"))

    assert decision["deployed"] is False and decision["outcome"] == "nothing-to-serve"
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: nothing left to serve"]


def test_a_registration_before_any_approval_is_quiet(aws):
    """Pending versions of a model with no endpoint yet: nothing to deploy and nothing to tell people."""
    v1 = register(aws)
    decision = run(aws, state_change(v1, approval="PendingManualApproval"))
    assert decision["outcome"] == "nothing-to-serve"
    assert aws.updates == [] and aws.notices() == []


def test_an_approved_version_without_a_container_never_replaces_the_serving_one(aws):
    v1, broken = register(aws), register(aws, spec=None)
    approve_and_deploy(aws, v1)
    aws.notices()
    set_approval(aws, broken, "Approved")

    decision = run(aws, state_change(broken))

    assert decision["deployed"] is False and decision["outcome"] == "refused"
    assert "no inference container" in decision["reason"]
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: v2 refused"]


def test_an_approved_failed_package_is_not_deployed_and_people_are_told(aws):
    """ModelPackageStatus is set to Failed in moto's backend (moto completes every package)."""
    v1, failed = register(aws), register(aws)
    approve_and_deploy(aws, v1)
    aws.notices()
    sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].model_packages[failed].model_package_status = "Failed"
    set_approval(aws, failed, "Approved")

    decision = run(aws, state_change(failed, status="Failed"))

    assert decision["deployed"] is False and decision["refused"] == [2]
    assert aws.parameters()["ChurnModelPackageArn"] == v1
    assert len(aws.updates) == 1
    assert aws.notices() == [f"{GROUP}: v2 refused"]


def test_a_missing_stack_is_logged_and_notified_not_raised(aws, monkeypatch):
    monkeypatch.setenv("SERVING_STACK_NAME", "mlops-loop-prod-serving-not-deployed")
    v1 = register(aws)
    set_approval(aws, v1, "Approved")

    decision = run(aws, state_change(v1))

    assert decision["outcome"] == "stack-missing" and "does not exist" in decision["reason"]
    assert aws.updates == []
    assert aws.notices() == [f"{GROUP}: cannot deploy v1: stack missing"]


def test_a_stack_without_the_models_parameter_is_reported_not_updated(aws, monkeypatch):
    monkeypatch.setenv("MODEL_PARAMETERS", json.dumps({GROUP: "ChurnModelArn"}))
    v1 = register(aws)
    set_approval(aws, v1, "Approved")

    decision = run(aws, state_change(v1))

    assert decision["outcome"] == "misconfigured" and "ChurnModelArn" in decision["reason"]
    assert aws.updates == []


def test_manual_reconcile_deploys_the_desired_version(aws):
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    decision = run(aws, {"action": "reconcile", "group": GROUP})
    assert decision["deployed"] is True
    assert aws.parameters()["ChurnModelPackageArn"] == v1


def test_no_updates_to_be_performed_is_a_no_op(aws):
    """CloudFormation's own idempotency answer (stubbed: moto is never asked for an update it would refuse)."""
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": STACK,
                        "CreationTime": "2026-11-26T08:00:00Z",
                        "StackStatus": "UPDATE_COMPLETE",
                        "Parameters": [{"ParameterKey": "ChurnModelPackageArn", "ParameterValue": ""}],
                    }
                ]
            },
            {"StackName": STACK},
        )
        stub.add_client_error("update_stack", "ValidationError", "No updates are to be performed.", 400)
        decision = dod.handler(state_change(v1), sagemaker=aws.sagemaker, cloudformation=cloudformation, sns=aws.sns)
        stub.assert_no_pending_responses()
    assert decision["outcome"] == "unchanged" and decision["deployed"] is False


def test_the_idempotency_token_is_stable_per_approval_and_new_per_re_approval(aws):
    v1 = register(aws)
    set_approval(aws, v1, "Approved")
    (first,) = dod.list_versions(aws.sagemaker, GROUP)
    assert dod.client_token(first) == dod.client_token(dod.list_versions(aws.sagemaker, GROUP)[0])
    set_approval(aws, v1, "PendingManualApproval")
    set_approval(aws, v1, "Approved")
    (again,) = dod.list_versions(aws.sagemaker, GROUP)
    assert dod.client_token(again) != dod.client_token(first)
    long_group = "g" * 63
    token = dod.client_token(dod.Version(group=long_group * 2, version=12345, arn="a", approval="Approved", status="Completed", created=first.created))
    assert re.fullmatch(r"[a-zA-Z0-9][-a-zA-Z0-9]{0,127}", token)


@pytest.mark.parametrize(
    ("name", "value", "fix"),
    [
        ("SERVING_STACK_NAME", "", "SERVING_STACK_NAME"),
        ("MODEL_PARAMETERS", "churn", "MODEL_PARAMETERS must be a JSON object"),
        ("MODEL_PARAMETERS", '{"mlops-loop-prod-churn": 3}', "MODEL_PARAMETERS must be a JSON object"),
        ("DEPLOYER_ROLE_ARN", "deployer", "DEPLOYER_ROLE_ARN"),
    ],
)
def test_a_misconfigured_function_fails_loudly_naming_the_variable(aws, monkeypatch, name, value, fix):
    monkeypatch.setenv(name, value)
    with pytest.raises(dod.ConfigurationError, match=fix):
        run(aws, {"action": "reconcile", "group": GROUP})
