"""notify_key_changes, built in a bare stack: a successful ScheduleKeyDeletion, DisableKey or PutKeyPolicy on one of the
environment's keys tells people which key, who, and the commands that undo it."""

from __future__ import annotations

import re

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.key_changes import KEY_CHANGES, notify_key_changes
from tests.support.cdk_outdirs import bare_outdir


def _built() -> dict:
    """GIVEN a bare stack with two keys, a topic and a dead-letter queue WHEN their changes are notified."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    keys = {"alias/shop-dev/data": kms.Key(stack, "DataKey"), "alias/shop-dev/ops": kms.Key(stack, "OpsKey")}
    topic, queue = sns.Topic(stack, "Topic"), sqs.Queue(stack, "DeadLetters")
    rule = notify_key_changes(stack, "KeyChanges", name_prefix="shop-dev", keys=keys, topic=topic, dead_letter_queue=queue)
    ids = {name: stack.get_logical_id(c.node.default_child)
           for name, c in (("rule", rule), ("topic", topic), ("queue", queue), *((a.rsplit("/", 1)[1], k) for a, k in keys.items()))}
    template = Template.from_stack(stack)
    return {"rule": template.find_resources("AWS::Events::Rule")[ids["rule"]]["Properties"], "ids": ids}


def test_the_rule_matches_successful_key_changes_of_these_keys_by_id_or_arn():
    """THEN CloudTrail's API-call events of KMS, the three calls, each key by the key ID and the key ARN (the caller
    names it either way in requestParameters.keyId), and no refused call (errorCode set)."""
    made = _built()
    ids = made["ids"]
    assert made["rule"]["EventPattern"] == {
        "source": ["aws.kms"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["kms.amazonaws.com"],
            "eventName": ["ScheduleKeyDeletion", "DisableKey", "PutKeyPolicy"],
            "requestParameters": {"keyId": [{"Ref": ids["data"]}, {"Fn::GetAtt": [ids["data"], "Arn"]},
                                            {"Ref": ids["ops"]}, {"Fn::GetAtt": [ids["ops"], "Arn"]}]},
            "errorCode": [{"exists": False}],
        },
    }
    assert set(KEY_CHANGES) == {"ScheduleKeyDeletion", "DisableKey", "PutKeyPolicy"}


def test_people_are_told_which_key_who_and_how_to_undo_it_in_the_environments_region():
    """THEN the notice goes to the topic (undeliverable ones to the queue) and names the call, the key, the caller, every
    key of the environment, and the cancel-key-deletion and enable-key commands with --region; every placeholder is a
    key of the InputPathsMap (EventBridge refuses any other)."""
    made = _built()
    (target,) = made["rule"]["Targets"]
    assert target["Arn"] == {"Ref": made["ids"]["topic"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [made["ids"]["queue"], "Arn"]}}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {
        "detail-eventName": "$.detail.eventName", "detail-requestParameters-keyId": "$.detail.requestParameters.keyId",
        "detail-userIdentity-arn": "$.detail.userIdentity.arn", "detail-eventTime": "$.detail.eventTime"}
    text = transformer["InputTemplate"]  # plain text: no token (another stack's output) in it
    assert set(re.findall(r"<([^<>]*)>", text)) <= set(transformer["InputPathsMap"])
    assert "aws kms cancel-key-deletion --key-id <detail-requestParameters-keyId> --region eu-west-1" in text
    assert "aws kms enable-key --key-id <detail-requestParameters-keyId> --region eu-west-1" in text
    assert "The environment's keys: alias/shop-dev/data, alias/shop-dev/ops (which one this is: aws kms list-aliases " \
        "--key-id <detail-requestParameters-keyId> --region eu-west-1)" in text
    assert "<detail-eventName> on KMS key <detail-requestParameters-keyId> by <detail-userIdentity-arn>" in text


def test_no_keys_is_refused():
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    with pytest.raises(ValueError, match=r"^notify_key_changes: no keys given; a rule matching no key tells nobody anything$"):
        notify_key_changes(stack, "KeyChanges", name_prefix="shop-dev", keys={}, topic=sns.Topic(stack, "Topic"),
                           dead_letter_queue=sqs.Queue(stack, "DeadLetters"))
