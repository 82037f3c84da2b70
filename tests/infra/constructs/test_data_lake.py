"""DataLake, built in a bare stack: one key, six fixed-name buckets, their retention, and the names S3 would refuse."""

from __future__ import annotations

import re
from typing import Any, Optional

import pytest
from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.data_lake import DataLake
from tests.support.built_stack import acknowledged

ACCOUNT, REGION = "123456789012", "eu-west-1"
ENV = Environment(account=ACCOUNT, region=REGION)
PREFIX = "shop-dev"
KINDS = ("raw", "curated", "features", "artifacts", "inference", "access-logs")
# The five data buckets (attribute -> kind); access logs are the sixth, holding only request logs.
DATA_BUCKETS = {"raw_bucket": "raw", "curated_bucket": "curated", "features_bucket": "features",
                "artifacts_bucket": "artifacts", "inference_bucket": "inference"}


def _name(kind: str, prefix: str = PREFIX) -> str:
    return f"{prefix}-{kind}-{ACCOUNT}-{REGION}"


def _lake(stack: Optional[Stack] = None, **overrides: Any) -> tuple[Stack, DataLake]:
    """GIVEN a bare stack WHEN a DataLake is added with the given retention (dev-like defaults) THEN the stack and the lake."""
    stack = stack or Stack(new_app(), "Bare", env=ENV)
    props: dict[str, Any] = dict(
        name_prefix=PREFIX,
        removal_policy=RemovalPolicy.DESTROY,
        raw_expiration_days=30,
        curated_infrequent_access_days=60,
        noncurrent_version_expiration_days=7,
        access_log_expiration_days=14,
        inference_expiration_days=400,
    )
    props.update(overrides)
    return stack, DataLake(stack, "Lake", **props)


def _buckets(stack: Stack) -> dict[str, dict]:
    """The stack's buckets by BucketName."""
    return {b["Properties"]["BucketName"]: b for b in Template.from_stack(stack).find_resources("AWS::S3::Bucket").values()}


def _rule(bucket: dict) -> dict:
    (rule,) = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    return rule


def _key_id(stack: Stack, lake: DataLake) -> str:
    return stack.get_logical_id(lake.key.node.default_child)


@pytest.fixture(scope="module")
def built() -> tuple[Stack, DataLake, dict[str, dict]]:
    stack, lake = _lake()
    return stack, lake, _buckets(stack)


# ------------------------------------------------------------------ names
def test_six_buckets_get_fixed_names_from_prefix_kind_account_and_region(built):
    _, lake, buckets = built
    assert lake.bucket_names == {kind: _name(kind) for kind in KINDS}
    assert set(buckets) == {_name(kind) for kind in KINDS}


def test_each_bucket_attribute_is_the_bucket_of_its_kind(built):
    stack, lake, _ = built
    template = Template.from_stack(stack).to_json()["Resources"]
    for attribute, kind in {**DATA_BUCKETS, "access_logs_bucket": "access-logs"}.items():
        logical_id = stack.get_logical_id(getattr(lake, attribute).node.default_child)
        assert template[logical_id]["Properties"]["BucketName"] == _name(kind), attribute


# ------------------------------------------------------------------ the key
def test_the_key_rotates_has_the_data_alias_and_lets_only_this_accounts_log_groups_use_it(built):
    stack, lake, _ = built
    template = Template.from_stack(stack)
    (key,) = template.find_resources("AWS::KMS::Key").values()
    props = key["Properties"]
    assert props["EnableKeyRotation"] is True and props["PendingWindowInDays"] == 30
    assert props["Description"] == "shop-dev: encrypts the data lake, Feature Store, Glue jobs and job logs"
    (alias,) = template.find_resources("AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == "alias/shop-dev/data"
    named = {s["Sid"]: s for s in props["KeyPolicy"]["Statement"] if "Sid" in s}
    # No publisher services: only CloudWatch Logs (Glue's encrypted job logs) besides the account itself.
    assert list(named) == ["AllowCloudWatchLogsOfThisAccount"]
    logs = named["AllowCloudWatchLogsOfThisAccount"]
    assert logs["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    assert logs["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:*"}}


def test_the_five_data_buckets_are_encrypted_with_the_lake_key_and_log_to_the_access_log_bucket(built):
    stack, lake, buckets = built
    key_arn = {"Fn::GetAtt": [_key_id(stack, lake), "Arn"]}
    logs_ref = {"Ref": stack.get_logical_id(lake.access_logs_bucket.node.default_child)}
    for kind in DATA_BUCKETS.values():
        props = buckets[_name(kind)]["Properties"]
        (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert encryption == {"BucketKeyEnabled": True,
                              "ServerSideEncryptionByDefault": {"KMSMasterKeyID": key_arn, "SSEAlgorithm": "aws:kms"}}, kind
        assert props["LoggingConfiguration"] == {"DestinationBucketName": logs_ref, "LogFilePrefix": f"{kind}/"}, kind
    assert lake.key is lake.raw_bucket.encryption_key


def test_the_access_log_bucket_is_sse_s3_not_logged_itself_and_expires_its_logs(built):
    """S3 log delivery accepts only SSE-S3 on its target; logging the target to itself would loop."""
    _, _, buckets = built
    props = buckets[_name("access-logs")]["Properties"]
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    assert "LoggingConfiguration" not in props
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    assert _rule(buckets[_name("access-logs")]) == {
        "Id": "expire-logs", "Status": "Enabled", "ExpirationInDays": 14,
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def test_the_access_log_bucket_acknowledges_exactly_its_logging_and_encryption_findings(built):
    stack, lake, _ = built
    rules_by_path = {
        c.node.path: sorted(acknowledged(c)) for c in stack.node.find_all()
    }
    assert {path: rules for path, rules in rules_by_path.items() if rules} == {
        "Bare/Lake": ["NIST.800.53.R5-S3BucketReplicationEnabled"],
        "Bare/Lake/AccessLogs": ["AwsSolutions-S1", "NIST.800.53.R5-S3BucketLoggingEnabled",
                                 "NIST.800.53.R5-S3DefaultEncryptionKMS"],
    }


# ------------------------------------------------------------------ retention
def test_retention_days_reach_the_bucket_they_are_for(built):
    _, _, buckets = built
    rules = {kind: _rule(buckets[_name(kind)]) for kind in DATA_BUCKETS.values()}
    assert rules["raw"]["ExpirationInDays"] == 30
    assert rules["inference"]["ExpirationInDays"] == 400
    assert rules["curated"]["Transitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 60}]
    # Curated, features and artifacts never expire; only curated moves to Infrequent Access.
    assert [k for k, r in rules.items() if "ExpirationInDays" in r] == ["raw", "inference"]
    assert [k for k, r in rules.items() if "Transitions" in r] == ["curated"]
    assert {k: r["NoncurrentVersionExpiration"] for k, r in rules.items()} == {k: {"NoncurrentDays": 7} for k in rules}


def test_without_expiry_or_transition_days_raw_and_inference_are_kept_and_curated_stays_standard():
    stack, _ = _lake(raw_expiration_days=None, inference_expiration_days=None, curated_infrequent_access_days=None)
    buckets = _buckets(stack)
    for kind in DATA_BUCKETS.values():
        rule = _rule(buckets[_name(kind)])
        assert "ExpirationInDays" not in rule and "Transitions" not in rule, kind


def test_inference_traffic_is_kept_by_default():
    """``inference_expiration_days`` is optional: leaving it out keeps captured traffic."""
    stack = Stack(new_app(), "Bare", env=ENV)
    DataLake(stack, "Lake", name_prefix=PREFIX, removal_policy=RemovalPolicy.RETAIN, raw_expiration_days=30,
             curated_infrequent_access_days=None, noncurrent_version_expiration_days=7, access_log_expiration_days=14)
    assert "ExpirationInDays" not in _rule(_buckets(stack)[_name("inference")])


@pytest.mark.parametrize(("policy", "expected"), [(RemovalPolicy.RETAIN, "Retain"), (RemovalPolicy.DESTROY, "Delete")])
def test_the_removal_policy_applies_to_the_key_and_every_bucket(policy: RemovalPolicy, expected: str):
    stack, _ = _lake(removal_policy=policy)
    template = Template.from_stack(stack)
    stateful = {**template.find_resources("AWS::S3::Bucket"), **template.find_resources("AWS::KMS::Key")}
    assert len(stateful) == 7
    assert {(r["DeletionPolicy"], r["UpdateReplacePolicy"]) for r in stateful.values()} == {(expected, expected)}


# ------------------------------------------------------------------ sealed models
def test_only_the_artifacts_bucket_makes_sealed_models_write_once(built):
    stack, lake, _ = built
    policies = Template.from_stack(stack).find_resources("AWS::S3::BucketPolicy")
    write_once = {}
    for policy in policies.values():
        bucket_id = policy["Properties"]["Bucket"]["Ref"]
        sids = [s.get("Sid", "") for s in policy["Properties"]["PolicyDocument"]["Statement"]]
        write_once[bucket_id] = [s for s in sids if s.startswith("WriteOnce")]
    artifacts_id = stack.get_logical_id(lake.artifacts_bucket.node.default_child)
    assert write_once.pop(artifacts_id) == ["WriteOnceOnlyIfNoneMatch", "WriteOnceNoIfMatch", "WriteOnceNoDelete"]
    assert write_once and not any(write_once.values())
    (artifacts_policy,) = [p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": artifacts_id}]
    resources = {str(s["Resource"]) for s in artifacts_policy["Properties"]["PolicyDocument"]["Statement"]
                 if s.get("Sid", "").startswith("WriteOnce")}
    assert len(resources) == 1 and "/pipelines/*/registered/*" in resources.pop()


# ------------------------------------------------------------------ references from other stacks
def test_a_reference_from_another_stack_names_the_bucket_and_carries_the_lake_key():
    """GIVEN the lake in one stack WHEN another stack references a bucket THEN it is addressed by its fixed name
    (concrete ARNs, no cross-stack export) and encrypts with the lake key."""
    app = new_app()
    storage, lake = _lake(Stack(app, "Storage", env=ENV))
    other = Stack(app, "Jobs", env=ENV)
    for kind in KINDS:
        reference = lake.reference(other, kind)
        assert other.resolve(reference.bucket_name) == _name(kind)
        assert other.resolve(reference.bucket_arn) == f"arn:aws:s3:::{_name(kind)}"
        assert reference.encryption_key is lake.key
    assert other.node.try_find_child("AccessLogsBucket") is not None
    assert other.node.try_find_child("RawBucket") is not None
    assert Template.from_stack(other).to_json().get("Resources") in (None, {}), "a reference creates no resource"


# ------------------------------------------------------------------ names S3 would refuse
def test_a_prefix_that_makes_the_longest_bucket_name_too_long_is_refused():
    """29 characters of prefix fit every bucket but the access-log bucket, whose name is the longest."""
    prefix = "a" * 29
    name = _name("access-logs", prefix)
    with pytest.raises(ValueError, match=rf"^bucket name '{name}' is 64 characters; S3 allows at most 63$"):
        _lake(name_prefix=prefix)


def test_a_prefix_s3_reserves_is_refused():
    with pytest.raises(ValueError, match=rf"^bucket name '{_name('raw', 'xn--shop')}' starts with 'xn--', which S3 reserves$"):
        _lake(name_prefix="xn--shop")


def test_a_prefix_with_uppercase_letters_is_refused():
    with pytest.raises(ValueError, match=re.escape(f"bucket name '{_name('raw', 'Shop-dev')}' is invalid "
                                                   "(3-63 lowercase letters, digits, '-' or '.')") + "$"):
        _lake(name_prefix="Shop-dev")


def test_a_stack_without_a_concrete_account_and_region_is_refused():
    """Bucket names embed the account and region, so an environment-agnostic stack cannot hold a lake."""
    pattern = (r"^bucket name 'shop-dev-raw-\$\{Token\[AWS\.AccountId\.\d+\]\}-\$\{Token\[AWS\.Region\.\d+\]\}' is invalid "
               + re.escape("(3-63 lowercase letters, digits, '-' or '.')") + "$")
    with pytest.raises(ValueError, match=pattern):
        _lake(Stack(new_app(), "Agnostic"))
