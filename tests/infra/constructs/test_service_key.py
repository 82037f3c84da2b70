"""service_key, built in a bare stack: a rotated key that CloudWatch Logs and named publishers may use, for this account only."""

from __future__ import annotations

import pytest
from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.service_key import service_key
from tests.support.cdk_outdirs import bare_outdir


def _key(publishers=()) -> dict:
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    key = service_key(stack, "OpsKey", alias="alias/shop-dev-ops", description="ops", publishers=publishers,
                      removal_policy=RemovalPolicy.RETAIN)
    template = Template.from_stack(stack)
    (resource,) = template.find_resources("AWS::KMS::Key").values()
    return {"logical_id": stack.get_logical_id(key.node.default_child), "key": resource,
            "statements": {s.get("Sid"): s for s in resource["Properties"]["KeyPolicy"]["Statement"]}}


def test_the_key_rotates_is_retained_and_keeps_its_logical_id_in_the_scope():
    made = _key()
    assert made["logical_id"].startswith("OpsKey")
    props = made["key"]["Properties"]
    assert props["EnableKeyRotation"] is True and props["PendingWindowInDays"] == 30
    assert made["key"]["DeletionPolicy"] == "Retain"


def test_nobody_may_schedule_its_deletion_with_a_shorter_window_than_the_templates():
    """GIVEN any key WHEN its policy is read THEN one Deny, for every principal, of kms:ScheduleKeyDeletion with a window
    under 30 days (the template's own): the exact condition, and no other action, so it locks nobody out of anything else
    and CloudFormation's own deletion (30 days) still passes."""
    made = _key()
    deny = made["statements"]["DenyDeletionWithinThirtyDays"]
    assert deny == {"Sid": "DenyDeletionWithinThirtyDays", "Effect": "Deny", "Principal": {"AWS": "*"},
                    "Action": "kms:ScheduleKeyDeletion", "Resource": "*",
                    "Condition": {"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": "30"}}}
    assert made["key"]["Properties"]["PendingWindowInDays"] == 30  # not below the Deny's bound
    denies = [s for s in made["key"]["Properties"]["KeyPolicy"]["Statement"] if s["Effect"] == "Deny"]
    assert denies == [deny]


def test_cloudwatch_logs_may_use_it_only_for_this_accounts_log_groups_here():
    logs = _key()["statements"]["AllowCloudWatchLogsOfThisAccount"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:123456789012:*"}}
    assert "kms:Describe*" not in logs["Action"]


def test_publishers_are_added_only_when_named():
    assert "AllowPublishersOfThisAccount" not in _key()["statements"]
    publishers = _key(["events.amazonaws.com", "sns.amazonaws.com"])["statements"]["AllowPublishersOfThisAccount"]
    assert publishers["Principal"] == {"Service": ["events.amazonaws.com", "sns.amazonaws.com"]}
    assert publishers["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert publishers["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_a_publisher_with_a_source_pattern_gets_its_own_statement_bound_to_it():
    """CloudWatch alarms of one environment (issue #13): aws:SourceAccount and an aws:SourceArn pattern; the other
    publishers keep the account condition; a source for a publisher that is not named is refused."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    alarms = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:shop-dev-*"
    service_key(stack, "OpsKey", alias="alias/shop-dev-ops", description="ops",
                publishers=("events.amazonaws.com", "cloudwatch.amazonaws.com"),
                publisher_sources={"cloudwatch.amazonaws.com": alarms}, removal_policy=RemovalPolicy.RETAIN)
    (resource,) = Template.from_stack(stack).find_resources("AWS::KMS::Key").values()
    statements = {s.get("Sid"): s for s in resource["Properties"]["KeyPolicy"]["Statement"]}
    assert statements["AllowPublishersOfThisAccount"]["Principal"] == {"Service": "events.amazonaws.com"}
    cloudwatch = statements["AllowPublisherCloudwatch"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert cloudwatch["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"},
                                       "ArnLike": {"aws:SourceArn": alarms}}
    other = Stack(new_app(bare_outdir()), "Other", env=Environment(account="123456789012", region="eu-west-1"))
    with pytest.raises(ValueError, match=r"^OpsKey: publisher_sources / unbound_publishers name \['sns.amazonaws.com'\]"):
        service_key(other, "OpsKey", alias="alias/x", description="ops", publishers=("events.amazonaws.com",),
                    publisher_sources={"sns.amazonaws.com": "arn:aws:sns:*"}, removal_policy=RemovalPolicy.RETAIN)


def test_an_unbound_publisher_gets_no_source_condition_and_the_others_keep_theirs():
    """EventBridge delivering to an encrypted topic sends KMS no source (SNS Developer Guide): under a source
    condition its deliveries would fail, so it is named unbound and bound in the topic's policy instead."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    service_key(stack, "OpsKey", alias="alias/shop-dev-ops", description="ops",
                publishers=("events.amazonaws.com", "sns.amazonaws.com"), unbound_publishers=("events.amazonaws.com",),
                removal_policy=RemovalPolicy.RETAIN)
    (resource,) = Template.from_stack(stack).find_resources("AWS::KMS::Key").values()
    statements = {s.get("Sid"): s for s in resource["Properties"]["KeyPolicy"]["Statement"]}
    unbound = statements["AllowPublishersUnbound"]
    assert unbound["Principal"] == {"Service": "events.amazonaws.com"} and "Condition" not in unbound
    assert statements["AllowPublishersOfThisAccount"]["Principal"] == {"Service": "sns.amazonaws.com"}


def test_a_key_no_log_group_uses_leaves_cloudwatch_logs_out():
    """GIVEN ``log_groups=False`` (a topic's own key) THEN no CloudWatch Logs statement; the publishers keep theirs."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    service_key(stack, "TopicKey", alias="alias/shop-dev-topic", description="topic", publishers=("cloudwatch.amazonaws.com",),
                log_groups=False, removal_policy=RemovalPolicy.DESTROY)
    (resource,) = Template.from_stack(stack).find_resources("AWS::KMS::Key").values()
    statements = resource["Properties"]["KeyPolicy"]["Statement"]
    assert not any("logs." in str(s.get("Principal")) for s in statements)
    assert [s.get("Sid") for s in statements] == [None, "DenyDeletionWithinThirtyDays", "AllowPublishersOfThisAccount"]
