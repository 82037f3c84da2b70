"""service_key, built in a bare stack: a rotated key that CloudWatch Logs and named publishers may use, for this account only."""

from __future__ import annotations

from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.service_key import service_key


def _key(publishers=()) -> dict:
    stack = Stack(new_app(), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    key = service_key(stack, "OpsKey", key_alias="alias/shop-dev-ops", key_description="ops", key_publishers=publishers,
                      key_removal_policy=RemovalPolicy.RETAIN)
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
