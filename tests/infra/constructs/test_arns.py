"""ARNs formatted in Python are the strings ``Stack.format_arn`` returns, for every format and environment."""

from __future__ import annotations

import itertools

import pytest
from aws_cdk import ArnFormat, Aws, Environment, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.arns import format_arn, s3_url
from tests.support.cdk_outdirs import bare_outdir

FORMATS = [None, *ArnFormat]  # None: Stack.format_arn's default


@pytest.mark.parametrize("region", ["eu-west-1", "cn-north-1", None], ids=["aws", "aws-cn", "environment-agnostic"])
def test_every_format_is_what_the_stacks_format_arn_returns(region):
    """GIVEN a stack in a region of each partition (or in none, where partition, region and account are tokens)
    and a construct inside it WHEN ARNs are formatted for each ARN format, with and without a resource name
    (also one with a token in it), with the stack's region and account or others THEN each is exactly the string
    ``Stack.format_arn`` returns (so also resolves alike)."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region=region) if region else None)
    inner = Construct(Construct(stack, "Outer"), "Inner")
    names = [None, "name", "path/with/*", f"{Aws.ACCOUNT_ID}-*"]
    overrides = [{}, {"region": "", "account": ""}, {"region": "us-east-1", "account": "210987654321"}]
    for arn_format, name, override in itertools.product(FORMATS, names, overrides):
        arguments = dict(service="sagemaker", resource="endpoint", resource_name=name, **override)
        if arn_format is not None:
            arguments["arn_format"] = arn_format
        expected = stack.format_arn(**arguments)
        assert format_arn(stack, **arguments) == expected, arguments
        assert format_arn(inner, **arguments) == expected, arguments


def test_the_partition_is_literal_where_the_region_is_known_and_a_token_elsewhere():
    """What the stacks of this app get (each has its account and region) and what an agnostic one gets."""
    app = new_app(bare_outdir())
    known = Stack(app, "Known", env=Environment(account="123456789012", region="cn-north-1"))
    agnostic = Stack(app, "Agnostic")

    assert format_arn(known, service="s3", resource="bucket", region="", account="") == "arn:aws-cn:s3:::bucket"
    assert agnostic.resolve(format_arn(agnostic, service="sqs", resource="queue")) == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":sqs:", {"Ref": "AWS::Region"}, ":",
                          {"Ref": "AWS::AccountId"}, ":queue"]]}


@pytest.mark.parametrize("region", ["eu-west-1", None], ids=["with-region", "environment-agnostic"])
def test_an_s3_url_is_what_the_buckets_s3_url_for_object_returns(region):
    """GIVEN a bucket of the stack (its name a token), one imported by name and one whose name is a token of a pseudo
    parameter WHEN ``s3://`` URLs are made for no key and for keys with and without leading and trailing ``/`` (also one
    with a token in it) THEN each is exactly the string ``s3_url_for_object`` returns (so also resolves alike)."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region=region) if region else None)
    buckets = [s3.Bucket(stack, "Own"), s3.Bucket.from_bucket_name(stack, "Imported", "some-bucket"),
               s3.Bucket.from_bucket_name(stack, "Named", f"data-{Aws.ACCOUNT_ID}")]
    keys = [None, "", "/", "prefix/", "/prefix/", "a/b.json", "//twice", f"{Aws.REGION}/x/"]
    for bucket, key in itertools.product(buckets, keys):
        expected = bucket.s3_url_for_object() if key is None else bucket.s3_url_for_object(key)
        assert s3_url(bucket.bucket_name, key) == expected, (bucket.node.id, key)
