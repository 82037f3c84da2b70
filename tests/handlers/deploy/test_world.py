"""The deploy handler's test world (tests/support/deploy_handler.py) made on moto's backends is the account its API
calls made: every test of the handler starts from it."""

from __future__ import annotations

import json
import re

from moto import mock_aws

from tests.support.deploy_handler import ARTIFACTS, PARAMETERS, STACK, Aws, build_world

_CHANGING = ("CreationTime", "CreatedTimestamp", "LastModifiedTimestamp", "ResponseMetadata", "SubscriptionArn")


def _without(mapping: dict) -> dict:
    """``mapping`` without what differs between any two worlds (times, generated ids)."""
    return {k: v for k, v in mapping.items() if k not in _CHANGING}


def _state(env: Aws) -> dict:
    """What the handler and the tests can read of the world."""
    sagemaker, sns, sqs = env.sagemaker, env.sns, env.sqs
    stack = env.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=env.topic)["Subscriptions"]
    sns.publish(TopicArn=env.topic, Subject="s", Message="m")
    (message,) = sqs.receive_message(QueueUrl=env.queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(message["Body"])
    return {
        "buckets": [b["Name"] for b in env.s3.list_buckets()["Buckets"]],
        "location": env.s3.get_bucket_location(Bucket=ARTIFACTS)["LocationConstraint"],
        "objects": env.s3.list_objects_v2(Bucket=ARTIFACTS)["KeyCount"],
        "groups": [_without(sagemaker.describe_model_package_group(ModelPackageGroupName=g)) for g in PARAMETERS],
        "group list": [_without(g) for g in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]],
        "stack": (stack["StackStatus"], stack["Parameters"], stack.get("Outputs")),
        "topic": (env.topic, _without(sns.get_topic_attributes(TopicArn=env.topic)["Attributes"])),
        "subscription": (_without(subscription),
                         _without(sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"])),
        # The stack's queue is named with a random suffix (as CloudFormation names it), whichever way the world is made.
        "queues": [re.sub(r"-Placeholder-[A-Z0-9]{12}$", "-Placeholder-<random>", url) for url in sqs.list_queues()["QueueUrls"]],
        "queue": (env.queue, _without(sqs.get_queue_attributes(QueueUrl=env.queue, AttributeNames=["All"])["Attributes"])),
        "notice": (body["Type"], body["TopicArn"], body["Subject"], body["Message"]),
    }


def test_the_world_made_on_motos_backends_reads_as_the_one_its_api_calls_made(shared_clients):
    """GIVEN the world made through the API (as it was made before) and on moto's backends (as every test's is now)
    WHEN each is read - the bucket, the groups, the stack, the topic and its queue subscription, a notice published
    to the topic and received in the queue THEN they read the same."""
    states = []
    for by_api in (True, False):
        with mock_aws(), shared_clients.fresh() as clients:
            env = Aws(clients)
            build_world(env, by_api=by_api)
            states.append(_state(env))
    assert states[0] == states[1]
