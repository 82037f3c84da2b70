"""NotificationWatchdog, built in a bare stack: a second topic, under the key it is given, that the alarms of one
name prefix of this account alone may publish to."""

from __future__ import annotations

import pytest
from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.notification_watchdog import NotificationWatchdog
from mlops_loop.constructs.service_key import service_key
from mlops_loop.nag import add_nag_packs
from mlops_loop.tools.cloud_assembly import nag_violations
from tests.support.cdk_outdirs import bare_outdir

ALARMS = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:shop-dev-*"
FROM_THE_ALARMS = {"StringEquals": {"aws:SourceAccount": "123456789012"}, "ArnLike": {"aws:SourceArn": ALARMS}}


def _watchdog(outdir: str | None = None) -> tuple[Stack, dict]:
    """GIVEN a bare stack and a key the alarms named ``shop-dev-...`` may use (as the Storage stack's watchdog key)
    WHEN the watchdog of those alarms is made under it."""
    stack = Stack(new_app(outdir or bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    key = service_key(stack, "WatchdogKey", alias="alias/shop-dev/watchdog", description="watchdog",
                      publishers=("cloudwatch.amazonaws.com",), publisher_sources={"cloudwatch.amazonaws.com": ALARMS},
                      log_groups=False, removal_policy=RemovalPolicy.RETAIN)
    watchdog = NotificationWatchdog(stack, "NotificationWatchdog", name_prefix="shop-dev", key=key)
    ids = {name: stack.get_logical_id(c.node.default_child) for name, c in (("topic", watchdog.topic), ("key", key))}
    return stack, ids


def _only(template: Template, cfn_type: str) -> dict:
    (resource,) = template.find_resources(cfn_type).values()
    return resource


def test_the_topic_is_encrypted_with_the_key_it_is_given():
    """THEN the topic's key is the given customer-managed key (one whose policy CloudWatch can be granted in: alarm
    actions to a topic under the AWS-managed ``alias/aws/sns`` fail), not SNS's default."""
    stack, ids = _watchdog()
    topic = _only(Template.from_stack(stack), "AWS::SNS::Topic")["Properties"]
    assert topic == {"DisplayName": "shop-dev ML loop notification watchdog",
                     "KmsMasterKeyId": {"Fn::GetAtt": [ids["key"], "Arn"]}}


def test_the_topic_takes_only_the_alarms_of_the_prefix_of_this_account_over_tls():
    """THEN the topic policy has exactly the TLS-only deny and the environment topic's alarm statement: CloudWatch,
    for this account's alarms named ``shop-dev-...``; no rule, no other service may publish."""
    stack, ids = _watchdog()
    statements = _only(Template.from_stack(stack), "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]["Statement"]
    topic = {"Ref": ids["topic"]}
    assert statements == [
        {"Sid": "AllowPublishThroughSSLOnly", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
         "Resource": topic, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "PublishAlarms", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
         "Action": "sns:Publish", "Resource": topic, "Condition": FROM_THE_ALARMS},
    ]


def test_it_adds_exactly_a_topic_and_its_policy_and_nobody_is_subscribed():
    """THEN nothing else (the key is the caller's): subscriptions are the environment's people's to make (docs/monitoring.md,
    Closing the loop)."""
    stack, _ = _watchdog()
    made = {k: r["Type"] for k, r in Template.from_stack(stack).to_json()["Resources"].items() if not k.startswith("WatchdogKey")}
    assert sorted(made.values()) == ["AWS::SNS::Topic", "AWS::SNS::TopicPolicy"]


def test_cdk_nag_finds_nothing_to_acknowledge(tmp_path):
    """GIVEN the AwsSolutions and NIST 800-53 R5 packs, and beside the watchdog a plain topic they flag
    WHEN the bare stack synthesizes THEN the packs' topic rules ran (on the plain topic) and every finding is the plain
    topic's: the watchdog's topic is KMS-encrypted (NIST.800.53.R5-SNSEncryptedKMS) and TLS-only (AwsSolutions-SNS3),
    and its key rotates, so nothing of the watchdog needs an acknowledgement."""
    stack, _ = _watchdog(str(tmp_path))
    sns.Topic(stack, "Plain")
    add_nag_packs(stack.node.root)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        stack.node.root.synth()
    found = {(v["ruleName"], c["constructPath"]) for v in nag_violations(tmp_path) for c in v["violatingConstructs"]}
    assert {("AwsSolutions-SNS3", "Bare/Plain/Resource"), ("NIST.800.53.R5-SNSEncryptedKMS", "Bare/Plain/Resource")} <= found
    assert all(path.startswith("Bare/Plain/") for _, path in found), found
