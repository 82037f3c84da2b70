"""RolloutParityCheck, built in a bare stack: one function on the Inferentia2 endpoints' deployment events, allowed
to find the version being rolled out, read its sealed parity sample, invoke those endpoints and publish its verdict."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.rollout_parity_check import ParityEndpoint, RolloutParityCheck
from pipeline_code.core.compiled import DEPLOYMENT_EVENT, ENDPOINT_EVENT
from tests.support.cdk_outdirs import bare_outdir

ENDPOINTS = (ParityEndpoint("shop-staging-churn-net", "Shop-Staging-Churn-Net", 0.1),
             ParityEndpoint("shop-staging-eta-net", "shop-staging-eta-net", 1.0))


def _check(endpoints=ENDPOINTS) -> tuple[Stack, Template]:
    """GIVEN a bare stack with a bucket, keys and a topic WHEN the parity check of ``endpoints`` is added."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    key, data_key = kms.Key(stack, "Key"), kms.Key(stack, "DataKey")
    RolloutParityCheck(stack, "Parity", name_prefix="shop-staging", endpoints=endpoints,
                       artifacts_bucket=s3.Bucket.from_bucket_name(stack, "Artifacts", "shop-artifacts"), data_key=data_key,
                       topic=sns.Topic(stack, "Topic", master_key=key), key=key, log_retention=logs.RetentionDays.ONE_WEEK,
                       removal_policy=RemovalPolicy.RETAIN)
    return stack, Template.from_stack(stack)


def _statements(template: Template) -> dict[str, dict]:
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_the_function_knows_each_endpoint_and_the_traffic_its_new_fleet_takes_in_the_first_bake():
    _, template = _check()
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    props = function["Properties"]
    assert props["FunctionName"] == "shop-staging-rollout-parity"
    assert props["Handler"] == "pipeline_code.handlers.parity_check.handler"
    assert json.loads(props["Environment"]["Variables"]["PARITY_ENDPOINTS"]) == {
        "shop-staging-churn-net": {"share": 0.1}, "shop-staging-eta-net": {"share": 1.0}}
    assert props["ReservedConcurrentExecutions"] == 2 and props["Timeout"] == 180


def _rules(template: Template) -> dict[str, dict]:
    """The rules by the detail-type they match."""
    rules = template.find_resources("AWS::Events::Rule").values()
    return {r["Properties"]["EventPattern"]["detail-type"][0]: r["Properties"] for r in rules}


def test_the_rule_sends_only_these_endpoints_deployment_events_with_retries_and_a_dead_letter_queue():
    _, template = _check()
    rule = _rules(template)[DEPLOYMENT_EVENT]
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"], "detail-type": [DEPLOYMENT_EVENT],
        "detail": {"EndpointName": ["shop-staging-churn-net", "shop-staging-eta-net"]}}
    (target,) = rule["Targets"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 2}
    assert "DeadLetterConfig" in target


def test_an_endpoint_in_service_sends_the_version_it_was_created_with_to_the_same_function():
    """GIVEN the check of two endpoints WHEN built THEN a second rule sends their state changes to in service (both
    spellings: the event's IN_SERVICE and the API's InService) to the same function, with the same retries and dead
    letters: an endpoint's creation runs no deployment, so its first version is checked there; and no other rule."""
    _, template = _check()
    rules = _rules(template)
    assert set(rules) == {DEPLOYMENT_EVENT, ENDPOINT_EVENT}
    first = rules[ENDPOINT_EVENT]
    assert first["EventPattern"] == {
        "source": ["aws.sagemaker"], "detail-type": [ENDPOINT_EVENT],
        "detail": {"EndpointName": ["shop-staging-churn-net", "shop-staging-eta-net"],
                   "EndpointStatus": ["IN_SERVICE", "InService"]}}
    (target,) = first["Targets"]
    (deployments,) = rules[DEPLOYMENT_EVENT]["Targets"]
    assert target["Arn"] == deployments["Arn"] and target["DeadLetterConfig"] == deployments["DeadLetterConfig"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 2}
    permissions = template.find_resources("AWS::Lambda::Permission")
    assert {json.dumps(p["Properties"]["SourceArn"]) for p in permissions.values()} >= {
        json.dumps({"Fn::GetAtt": [logical, "Arn"]}) for logical in template.find_resources("AWS::Events::Rule")}


def test_the_function_changes_nothing_in_the_registry():
    """GIVEN the check WHEN its policy is read THEN no statement allows a registry write (UpdateModelPackage or any
    other Update/Create/Delete/Put on SageMaker): IAM cannot tell a first version from the one serving after many
    rollouts, nor limit what else UpdateModelPackage rewrites, so approval stays the approver's alone."""
    _, template = _check()
    actions = []
    for statement in _statements(template).values():
        action = statement["Action"]
        actions += [action] if isinstance(action, str) else action
    sagemaker = sorted(a for a in actions if a.startswith("sagemaker:"))
    assert sagemaker == ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel",
                         "sagemaker:DescribeModelPackage", "sagemaker:InvokeEndpoint"]
    assert "HoldFailedFirstVersions" not in _statements(template)


def test_the_function_may_invoke_only_its_endpoints_read_only_sealed_artefacts_and_publish_only_its_verdicts():
    _, template = _check()
    statements = _statements(template)
    assert statements["InvokeEndpoints"]["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/shop-staging-churn-net",
        "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/shop-staging-eta-net"]
    assert statements["ReadPackages"]["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/shop-staging-churn-net/*",
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/shop-staging-eta-net/*"]
    assert statements["ReadSealedArtifacts"]["Action"] == "s3:GetObject"
    assert statements["ReadSealedArtifacts"]["Resource"] == "arn:aws:s3:::shop-artifacts/pipelines/*/registered/*"
    # Each of its endpoints' own namespace, exactly: it cannot publish a verdict for another environment's endpoint.
    assert statements["PublishVerdict"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": [
        "shop-staging-churn-net/rollout", "shop-staging-eta-net/rollout"]}}
    assert statements["DataKey"]["Action"] == ["kms:Decrypt", "kms:DescribeKey"]
    assert statements["InvokeEndpoints"]["Action"] == ["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"]
    assert set(statements) >= {"FindPendingVersion", "Notify", "WriteLogs", "DeadLetters"}


def test_a_check_that_fails_or_loses_events_pages_people():
    _, template = _check()
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    assert set(alarms) == {"shop-staging-rollout-parity-errors", "shop-staging-rollout-parity-dead-letters"}
    assert alarms["shop-staging-rollout-parity-errors"]["MetricName"] == "Errors"
    assert all(len(a["AlarmActions"]) == 1 for a in alarms.values())


def test_a_check_of_no_endpoint_is_refused():
    with pytest.raises(ValueError) as error:
        _check(endpoints=())
    assert str(error.value) == "RolloutParityCheck: endpoints must name at least one endpoint"
