"""What the constructs read from the CDK once is what they would read from it every time."""

from __future__ import annotations

import pytest
from aws_cdk import Duration, Environment, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.cdk_reads import (
    days, environment_of, event_field, hours, minutes, once_per, read_once, service_principal, stack_of,
)
from tests.support.cdk_outdirs import bare_outdir


@pytest.mark.parametrize("env", [Environment(account="123456789012", region="cn-north-1"), None], ids=["known", "agnostic"])
def test_a_constructs_stack_and_environment_are_the_cdks(env):
    """GIVEN constructs at several depths of two stacks (one environment-agnostic: tokens) WHEN their stack is asked,
    alone or with the scope each was made in, and their environment THEN each is what the CDK says, every time."""
    app = new_app(bare_outdir())
    stack = Stack(app, "One", env=env)
    other = Stack(app, "Two", env=Environment(account="210987654321", region="eu-west-1"))
    outer = Construct(stack, "Outer")
    inner = Construct(outer, "Inner")
    elsewhere = Construct(other, "Elsewhere")

    assert stack_of(stack) is stack
    assert stack_of(inner, outer) is Stack.of(inner) is stack
    assert stack_of(outer) is stack_of(outer, stack) is stack
    assert stack_of(elsewhere, other) is other and stack_of(elsewhere) is other
    for construct, owner in ((inner, stack), (outer, stack), (stack, stack), (elsewhere, other)):
        for _ in range(2):
            assert environment_of(construct) == (owner.partition, owner.region, owner.account)
            assert environment_of(construct).region == owner.region


def test_an_attribute_is_read_once_per_object_and_is_the_cdks():
    """GIVEN two buckets, a key and a role WHEN their names and ARNs are read once THEN each is the token the object
    itself gives, per object, and a second read gives the same."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    first, second = s3.Bucket(stack, "First"), s3.Bucket.from_bucket_name(stack, "Second", "second-bucket")
    key = kms.Key(stack, "Key")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))

    for _ in range(2):
        assert read_once(first, "bucket_name") == first.bucket_name
        assert read_once(second, "bucket_name") == "second-bucket"
        assert read_once(key, "key_arn") == key.key_arn
        assert read_once(role, "role_name") == role.role_name
        assert read_once(role, "role_arn") == role.role_arn != read_once(role, "role_name")
    assert stack.resolve(read_once(first, "bucket_name")) == {"Ref": stack.get_logical_id(first.node.default_child)}


def test_a_duration_is_made_once_per_count_and_is_the_cdks():
    """GIVEN durations asked twice WHEN compared THEN each is one shared value of the length asked for."""
    assert days(7) is days(7) and days(7).to_days() == Duration.days(7).to_days() == 7
    assert days(1).to_hours() == 24 and days(30).to_days() == 30
    assert hours(1) is hours(1) and hours(1).to_minutes() == Duration.hours(1).to_minutes() == 60
    assert minutes(5) is minutes(5) and minutes(5).to_seconds() == Duration.minutes(5).to_seconds() == 300
    assert minutes(1) is not minutes(5) and minutes(1).to_seconds() == 60


def test_once_per_makes_a_value_once_per_owner_and_key():
    """GIVEN two owners WHEN a value is asked per owner and key, twice THEN it is made once for each pair, and made
    anew for another owner."""
    class Owner:
        pass

    first, second, made = Owner(), Owner(), []

    def make(tag):
        return lambda: made.append(tag) or tag

    for _ in range(2):
        assert once_per(first, "a", make("first-a")) == "first-a"
        assert once_per(first, "b", make("first-b")) == "first-b"
        assert once_per(second, "a", make("second-a")) == "second-a"
    assert made == ["first-a", "first-b", "second-a"]
    assert once_per(Owner(), "a", make("new-a")) == "new-a" and made[-1] == "new-a"


# Regions of three partitions: a service principal's rendered name may depend on the stack's region and partition.
REGIONS = ("eu-west-1", "cn-north-1", "us-gov-west-1")


def test_a_service_principal_is_made_once_per_service_and_renders_as_a_fresh_one_in_every_stack():
    """GIVEN roles and a queue policy trusting services, in stacks of three partitions, once with the shared principal
    and once with a fresh ``iam.ServicePrincipal`` per use WHEN the stacks are resolved THEN both render the same trust
    and resource policies in every stack, and the shared principal is one object per service name."""
    services = ("lambda.amazonaws.com", "events.amazonaws.com", "logs.cn-north-1.amazonaws.com", "sagemaker.amazonaws.com")
    assert service_principal(services[0]) is service_principal(services[0]) is not service_principal(services[1])
    app = new_app(bare_outdir())
    rendered = {}
    for how, principal in (("shared", service_principal), ("fresh", iam.ServicePrincipal)):
        for region in REGIONS:
            stack = Stack(app, f"{how.capitalize()}{region.replace('-', '').capitalize()}",
                          env=Environment(account="123456789012", region=region))
            for index, service in enumerate(services):
                iam.Role(stack, f"Role{index}", assumed_by=principal(service))
            document = iam.PolicyDocument(statements=[iam.PolicyStatement(
                sid=f"Allow{index}", principals=[principal(service)], actions=["sqs:SendMessage"], resources=["*"])
                for index, service in enumerate(services)])
            roles = [stack.resolve(stack.node.find_child(f"Role{index}").node.default_child.assume_role_policy_document)
                     for index in range(len(services))]
            rendered[how, region] = (roles, stack.resolve(document.to_json()))
    for region in REGIONS:
        assert rendered["shared", region] == rendered["fresh", region]
    assert rendered["shared", "eu-west-1"][0][0]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_an_event_field_is_made_once_per_path_and_renders_as_a_fresh_one_in_every_rule():
    """GIVEN rules in two stacks whose inputs name event fields (one path twice, two paths with the same last part),
    once with the shared fields and once with fresh ``EventField.from_path`` tokens per use WHEN their inputs are
    rendered THEN each rule's input is the same both ways, and the shared field is one token per path."""
    paths = ("$.detail.alarmName", "$.id", "$.detail.state.value", "$.detail.previousState.value")
    assert event_field(paths[0]) == event_field(paths[0]) != event_field(paths[1])
    app = new_app(bare_outdir())
    rendered = {}
    for how, field in (("shared", event_field), ("fresh", events.EventField.from_path)):
        for region in REGIONS[:2]:
            stack = Stack(app, f"{how.capitalize()}{region.replace('-', '').capitalize()}",
                          env=Environment(account="123456789012", region=region))
            inputs = [
                events.RuleTargetInput.from_object({"alarm": field(paths[0]), "id": field(paths[1]), "again": field(paths[0])}),
                events.RuleTargetInput.from_text(f"{field(paths[2])} after {field(paths[3])} ({field(paths[0])})"),
            ]
            for index, target_input in enumerate(inputs):
                rule = events.Rule(stack, f"Rule{index}", event_pattern=events.EventPattern(source=["aws.cloudwatch"]))
                rendered[how, region, index] = stack.resolve(target_input.bind(rule))
    for key in [k for k in rendered if k[0] == "shared"]:
        assert rendered[key] == rendered[("fresh", *key[1:])]
    first = rendered["shared", "eu-west-1", 0]
    assert first == {"inputPathsMap": {"detail-alarmName": "$.detail.alarmName", "id": "$.id"},
                     "inputTemplate": '{"alarm":<detail-alarmName>,"id":<id>,"again":<detail-alarmName>}'}
