"""notify_endpoint_losses, built in a bare stack: an endpoint of the environment being deleted, failed or out of service
tells people what to do (the reconcile that names the fix, or the command that shows why)."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.endpoint_state import LOST_STATES, notify_endpoint_losses
from tests.support.cdk_outdirs import bare_outdir

ENDPOINTS = {"shop-dev-churn": ["shop-dev-churn"], "shop-dev-mme-shared": ["shop-dev-b", "shop-dev-a"]}


def _built() -> dict:
    """GIVEN a bare stack with a topic and a dead-letter queue WHEN two endpoints' losses are notified (one serving two
    groups, as a multi-model endpoint does)."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    topic, queue = sns.Topic(stack, "Topic"), sqs.Queue(stack, "DeadLetters")
    rule = notify_endpoint_losses(stack, "EndpointLosses", name_prefix="shop-dev", endpoints=ENDPOINTS,
                                  deploy_function_name="shop-dev-deploy-on-approval", topic=topic, dead_letter_queue=queue)
    ids = {n: stack.get_logical_id(c.node.default_child) for n, c in (("rule", rule), ("topic", topic), ("queue", queue))}
    return {"rule": Template.from_stack(stack).find_resources("AWS::Events::Rule")[ids["rule"]]["Properties"], "ids": ids}


def test_the_rule_matches_these_endpoints_going_deleting_failed_or_out_of_service():
    """THEN SageMaker's endpoint state changes of exactly these endpoints to a lost state, in the event's spelling
    (IN_SERVICE in the documented example) and the API's (InService), and no other state."""
    assert _built()["rule"]["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Endpoint State Change"],
        "detail": {"EndpointName": ["shop-dev-churn", "shop-dev-mme-shared"],
                   "EndpointStatus": ["DELETING", "FAILED", "OUT_OF_SERVICE", "Deleting", "Failed", "OutOfService"]},
    }
    assert "IN_SERVICE" not in LOST_STATES and "UPDATING" not in LOST_STATES


def test_people_are_told_to_reconcile_the_endpoints_group_or_read_why_it_failed():
    """THEN the notice goes to the topic (undeliverable ones to the queue), names the endpoint and state, the deploy
    handler's reconcile command with each endpoint's groups, and describe-endpoint, every command with --region; every
    placeholder is a key of the InputPathsMap (EventBridge refuses any other)."""
    made = _built()
    (target,) = made["rule"]["Targets"]
    assert target["Arn"] == {"Ref": made["ids"]["topic"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [made["ids"]["queue"], "Arn"]}}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-EndpointName": "$.detail.EndpointName",
                                            "detail-EndpointStatus": "$.detail.EndpointStatus"}
    text = json.loads(transformer["InputTemplate"])
    assert set(re.findall(r"<([^<>]*)>", text)) <= set(transformer["InputPathsMap"])
    assert text.startswith("shop-dev endpoint <detail-EndpointName> is <detail-EndpointStatus>.")
    assert ("aws lambda invoke --function-name shop-dev-deploy-on-approval --cli-binary-format raw-in-base64-out "
            """--payload '{"action": "reconcile", "group": "GROUP"}' out.json --region eu-west-1 (GROUP by endpoint: """
            "shop-dev-churn: shop-dev-churn; shop-dev-mme-shared: shop-dev-a, shop-dev-b)") in text
    assert "aws sagemaker describe-endpoint --endpoint-name <detail-EndpointName> --region eu-west-1" in text


def test_no_endpoints_is_refused():
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    with pytest.raises(ValueError, match=r"^notify_endpoint_losses: no endpoints given; a rule matching no endpoint "
                                         r"tells nobody anything$"):
        notify_endpoint_losses(stack, "EndpointLosses", name_prefix="shop-dev", endpoints={},
                               deploy_function_name="f", topic=sns.Topic(stack, "Topic"),
                               dead_letter_queue=sqs.Queue(stack, "DeadLetters"))
